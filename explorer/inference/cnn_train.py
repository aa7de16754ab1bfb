"""`explorer train-cnn`: train the CNN moment network on the diffusion model's training split.

    explorer train-cnn --data data/train --out weights/cnn --steps 4000

Same data as the diffusion model: its CMD directory, its split by simulation (the split seed and
fractions are read from the diffusion weights' ``explorer.json``, and the validation simulations are
checked against the ones recorded there), its working resolution, and its augmentation (a random
one of the 8 rotations/flips per map). The validation simulations choose the best step (lowest
moment loss). The calibration factor on σ (:func:`cnn.calibration_scale`) is fitted on the
validation and test simulations together, the split `explorer calibrate` fits the diffusion
likelihood's temperature on (never trained on by either model). Writes the estimator folder (:mod:`explorer.inference.cnn`) with a
model card and prints one JSON line per validation.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

CARD = """# CNN estimator of (Ωₘ, σ₈)

A moment network (Jeffrey & Wandelt 2020), the estimator of the CAMELS CMD parameter-inference
networks (Villaescusa-Navarro et al. 2021b), trained on the same maps and split as the diffusion
model in the folder above. It predicts the posterior mean and standard deviation of Ωₘ and σ₈ from
one {res}² log10 Σ map; `explorer infer` and the Infer tab show it beside the diffusion likelihood
and the P(k) baseline. It is a baseline, not the product: it says how much the maps at this
resolution know.

| | |
|---|---|
| network | {n_levels} levels of two 3×3 convolutions with circular padding ({widths}), batch norm, leaky ReLU; an average over positions; 2 dense layers; {n_params:,} parameters |
| data | {data} ({n_train} training simulations × 15 maps; validation {n_val} simulations; calibration: the validation and test simulations, {n_cal} × 15 maps) |
| augmentation | a random rotation/flip per map in training; the 8 averaged in prediction |
| training | {steps} steps, batch {batch}, AdamW lr {lr}, cosine decay; best step {best_step} by validation loss; {minutes:.1f} minutes on {device} |
| batch norm | running statistics recomputed exactly on the training maps after training (they lag the weights during it) |
| calibration | σ × ({s0:.3f}, {s1:.3f}) for (Ωₘ, σ₈), so ±σ covers 68.3 % of the calibration maps |

Calibration maps ({n_val_maps}, calibrated): RMS relative error Ωₘ {rel0:.2%}, σ₈ {rel1:.2%}; 68 % coverage
Ωₘ {cov0:.0%}, σ₈ {cov1:.0%} (before calibration {raw0:.0%}, {raw1:.0%}). Figures on the 50 held-out
`assets/valid` simulations are in the project README (predicted vs true).

Reproduce: `explorer train-cnn --data {data} --out weights/cnn --steps {steps} --seed {seed}`.
"""


def add_arguments(parser) -> None:
    parser.add_argument("--data", default=None, help="CMD directory (default: the one the diffusion weights record)")
    parser.add_argument("--weights", default=None, help="diffusion weights folder whose split and resolution to use "
                                                        "(default: $EXPLORER_WEIGHTS, else the shipped weights)")
    parser.add_argument("--out", default=None, help="estimator folder to write (default: WEIGHTS/cnn)")
    parser.add_argument("--steps", type=int, default=4000, help="optimizer steps (default 4000)")
    parser.add_argument("--batch", type=int, default=64, help="maps per step (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (cosine decay)")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128],
                        help="channels of each resolution level (each halves the map)")
    parser.add_argument("--val-every", type=int, default=250, help="steps between validations (best step kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation, batches and augmentations")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--max-sims", type=int, default=None, help="use only the first N simulations (quick runs)")
    parser.add_argument("--finalise-only", action="store_true",
                        help="do not train: redo the last steps (batch-norm statistics, calibration, card) on --out")


def _dihedral_batch(x, ks):
    """Apply transform ``ks[i]`` to map ``x[i]``: ``x: (B, 1, r, r)``, ``ks: (B,)`` ints 0..7."""
    from explorer.data.transform import dihedral

    out = x.clone()
    for k in range(8):
        sel = np.flatnonzero(ks == k)
        if sel.size:
            out[sel] = dihedral(x[sel], k)
    return out


def _evaluate(est, maps, theta) -> dict:
    mean, std = est.predict(maps, calibrated=False)
    rel = (mean - theta) / theta
    z = np.abs(mean - theta) / std
    return {"mean": mean, "std": std, "rms_rel_error": np.sqrt(np.mean(rel ** 2, axis=0)).tolist(),
            "coverage68_raw": np.mean(z <= 1.0, axis=0).tolist()}


def train_cnn(data: str | Path, out: str | Path, *, resolution: int, split_seed: int = 0,
              fractions=(0.9, 0.05, 0.05), expect_val=None, steps: int = 4000, batch: int = 64,
              lr: float = 1e-3, widths=(16, 32, 64, 128), val_every: int = 250, seed: int = 0,
              device: str = "auto", max_sims: int | None = None, progress: bool = True, log=print):
    """Train, select, calibrate and save; returns the :class:`CnnEstimator`."""
    import torch

    from explorer.data import find_cmd, load_cmd, split_by_simulation
    from explorer.data.cmd import MAPS_PER_SIM
    from explorer.data.transform import Normalization, to_log10
    from explorer.model.device import pick_device

    from .cnn import CnnEstimator, MomentNet, moment_loss

    t_start = time.perf_counter()
    cmd = load_cmd(*find_cmd(data))
    n_sims = cmd.n_sims if max_sims is None else min(cmd.n_sims, int(max_sims))
    split = split_by_simulation(n_sims, tuple(fractions), seed=split_seed)
    if expect_val is not None and max_sims is None and sorted(int(s) for s in expect_val) != split.val.tolist():
        raise ValueError("the validation simulations differ from the diffusion model's; pass the same --data "
                         "and split as its training")

    def load(sims):
        maps = to_log10(cmd.maps, resolution, indices=cmd.map_indices(sims), progress=False)
        return maps, np.repeat(cmd.theta[sims], MAPS_PER_SIM, axis=0)

    train_maps, train_theta = load(split.train)
    val_maps, val_theta = load(split.val)
    norm = Normalization.fit(train_maps, "minmax")
    dev = pick_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = MomentNet(resolution, widths).to(dev)
    est = CnnEstimator(net, norm)
    x_all = norm.encode(torch.from_numpy(train_maps))[:, None]
    u_all = torch.as_tensor(est.scale(train_theta), dtype=torch.float32)
    x_val = norm.encode(torch.from_numpy(val_maps))[:, None].to(dev)
    u_val = torch.as_tensor(est.scale(val_theta), dtype=torch.float32, device=dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    warm = min(100, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    best = {"loss": float("inf"), "step": 0, "state": copy.deepcopy(net.state_dict())}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="train-cnn", unit="step", file=sys.stderr)
    running = []
    for step in range(1, steps + 1):
        net.train()
        idx = rng.integers(0, x_all.shape[0], batch)
        x = _dihedral_batch(x_all[idx], rng.integers(0, 8, batch)).to(dev)
        mu, sigma = net(x)
        loss = moment_loss(mu, sigma, u_all[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if bar is not None:
            bar.update(1)
        if step % val_every == 0 or step == steps:
            net.eval()  # no dropout; batch norm uses the validation maps' own statistics (the running ones
            for m in net.modules():  # lag the weights) and leaves the running ones as they are
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
                    m.momentum = 0.0
            with torch.no_grad():
                mus, sigmas = zip(*(net(x_val[i:i + 512]) for i in range(0, x_val.shape[0], 512)))
                val_loss = float(moment_loss(torch.cat(mus), torch.cat(sigmas), u_val))
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.momentum = 0.1
            if val_loss < best["loss"]:
                best = {"loss": val_loss, "step": step, "state": copy.deepcopy(net.state_dict())}
            log(json.dumps({"step": step, "train_loss": round(float(np.mean(running)), 4),
                            "val_loss": round(val_loss, 4), "best_step": best["step"],
                            "seconds": round(time.perf_counter() - t_start, 1)}))
            running = []
    if bar is not None:
        bar.close()
    net.load_state_dict(best["state"])
    est.info = {
        "data": {"maps": str(cmd.maps_path or data), "n_sims": int(n_sims),
                 "split_seed": int(split_seed), "fractions": list(fractions), "train_sims": int(split.train.size),
                 "val_sims": split.val.tolist(), "resolution": int(resolution)},
        "training": {"steps": int(steps), "batch": int(batch), "lr": float(lr), "seed": int(seed),
                     "best_step": int(best["step"]), "best_val_loss": float(best["loss"]),
                     "minutes": round((time.perf_counter() - t_start) / 60, 2), "device": str(dev)},
    }
    cal_maps, cal_theta = load(np.sort(np.concatenate([split.val, split.test])))
    return finalise(est, train_maps, cal_maps, cal_theta, out, seed=seed, log=log)


def recompute_batch_norm(est, maps, seed: int = 0, batch: int = 256) -> None:
    """Set every batch-norm layer's running mean and variance to their exact averages over ``maps``
    ``(N, r, r)`` log10 Σ (each in a random one of the 8 rotations/flips), the network's weights
    fixed. During training they follow the changing weights with a lag, and predictions in eval
    mode were measured far worse than in training mode on the same maps (RMS error 0.24 against
    0.15 of the prior width after 200 steps)."""
    import torch
    from torch import nn

    layers = [m for m in est.network.modules() if isinstance(m, nn.BatchNorm2d)]
    if not layers:
        return
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    rng = np.random.default_rng(seed)
    device = next(est.network.parameters()).device
    est.network.train()
    with torch.no_grad():
        for start in range(0, maps.shape[0], batch):
            x = est.normalization.encode(torch.from_numpy(np.asarray(maps[start:start + batch])))[:, None]
            est.network(_dihedral_batch(x, rng.integers(0, 8, x.shape[0])).to(device))
    for m in layers:
        m.momentum = 0.1
    est.network.eval()


def finalise(est, train_maps, val_maps, val_theta, out, *, seed: int = 0, log=print):
    """The steps after training: exact batch-norm statistics on the training maps, the calibration
    factor on σ and the figures on the calibration maps ``val_maps`` (the validation and test
    simulations), then the folder with its card."""
    from .cnn import calibration_scale

    recompute_batch_norm(est, train_maps, seed=seed)
    val = _evaluate(est, val_maps, val_theta)
    est.sigma_scale = tuple(float(s) for s in calibration_scale(val["mean"], val["std"], val_theta))
    z = np.abs(val["mean"] - val_theta) / (val["std"] * np.asarray(est.sigma_scale))
    est.info["metrics"] = {"calibration": {"n_maps": int(val_maps.shape[0]), "rms_rel_error": val["rms_rel_error"],
                                          "coverage68_raw": val["coverage68_raw"],
                                          "coverage68_calibrated": np.mean(z <= 1.0, axis=0).tolist()},
                           "batch_norm": "recomputed on the training maps"}
    out = est.save(out)
    m, d, t = est.info["metrics"]["calibration"], est.info["data"], est.info["training"]
    widths = est.network.config["widths"]
    (Path(out) / "README.md").write_text(CARD.format(
        res=est.resolution, n_levels=len(widths), widths="–".join(map(str, widths)),
        n_params=sum(p.numel() for p in est.network.parameters()), data=Path(d["maps"]).parent,
        n_train=d["train_sims"], n_val=len(d["val_sims"]), n_cal=m["n_maps"] // 15, steps=t["steps"], batch=t["batch"], lr=t["lr"],
        best_step=t["best_step"], minutes=t["minutes"], device=t.get("device", "cpu"), s0=est.sigma_scale[0], s1=est.sigma_scale[1],
        n_val_maps=m["n_maps"], rel0=m["rms_rel_error"][0], rel1=m["rms_rel_error"][1],
        cov0=m["coverage68_calibrated"][0], cov1=m["coverage68_calibrated"][1],
        raw0=m["coverage68_raw"][0], raw1=m["coverage68_raw"][1], seed=t["seed"]))
    log(json.dumps({"saved": str(out), "sigma_scale": est.sigma_scale, **m}))
    return est


def refinalise(folder, data, *, seed: int = 0, log=print):
    """:func:`finalise` again on a trained folder (its recorded data and split): e.g. one trained
    before the batch-norm statistics were recomputed."""
    from explorer.data import find_cmd, load_cmd, split_by_simulation
    from explorer.data.cmd import MAPS_PER_SIM
    from explorer.data.transform import to_log10

    from .cnn import CnnEstimator

    est = CnnEstimator.load(folder)
    d = est.info.get("data") or {}
    cmd = load_cmd(*find_cmd(data))
    split = split_by_simulation(int(d["n_sims"]), tuple(d["fractions"]), seed=int(d["split_seed"]))
    if split.val.tolist() != list(d["val_sims"]):
        raise ValueError(f"{folder}: its recorded validation simulations do not match {data}")

    def load(sims):
        return (to_log10(cmd.maps, est.resolution, indices=cmd.map_indices(sims), progress=False),
                np.repeat(cmd.theta[sims], MAPS_PER_SIM, axis=0))

    train_maps, _ = load(split.train)
    cal_maps, cal_theta = load(np.sort(np.concatenate([split.val, split.test])))
    return finalise(est, train_maps, cal_maps, cal_theta, folder, seed=seed, log=log)


def run(args) -> int:
    import torch

    from explorer.model.weights import read_metadata
    from explorer.paths import resolve_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = resolve_weights(args.weights)
    meta = read_metadata(weights)
    rec = meta.get("data", {})
    data = args.data or str(Path(rec.get("maps", "data/train")).parent)
    n_val, n_test = len(rec.get("val_sims", [])), len(rec.get("test_sims", []))
    n = rec.get("n_sims")
    fractions = (0.9, 0.05, 0.05) if not n else ((n - n_val - n_test) / n, n_val / n, n_test / n)
    if args.finalise_only:
        if not args.out:
            raise ValueError("--finalise-only needs --out FOLDER (a trained CNN estimator)")
        refinalise(args.out, data, seed=args.seed)
        return 0
    for name, v in (("--steps", args.steps), ("--batch", args.batch), ("--val-every", args.val_every)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    train_cnn(data, args.out or Path(weights) / "cnn", resolution=int(meta["resolution"]),
              split_seed=int(rec.get("split_seed", 0)), fractions=fractions,
              expect_val=rec.get("val_sims") if n_val else None, steps=args.steps, batch=args.batch,
              lr=args.lr, widths=tuple(args.widths), val_every=args.val_every, seed=args.seed,
              device=args.device, max_sims=args.max_sims)
    return 0
