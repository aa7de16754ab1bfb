"""Train the conditional diffusion model on a CMD-format directory (stand-in or real CAMELS).

    explorer train --data data/train --run-dir runs/main                      # 64², from scratch
    explorer train --data data/train --run-dir runs/main                      # again: resumes
    explorer train --data data/train --run-dir runs/r2 --init weights         # warm start from weights/
    explorer train --data CAMELS/ --maps Maps_Mcdm_IllustrisTNG_LH_z=0.00.npy \\
                   --params params_LH_IllustrisTNG.txt --resolution 256 --init weights  # progressive
    torchrun --nproc_per_node=2 -m explorer train --data data/train --run-dir runs/ddp   # DDP (gloo on CPU)

What it does: split by simulation (deterministic), log10 at the working resolution, normalise,
random rotations/flips; ε-prediction loss ‖ε − ε̂(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, θ)‖² with t uniform
(Ho et al. 2020, Algorithm 1), plus an extra weight on each map's mean (see `diffusion_loss`);
AdamW with linear warm-up, bf16 autocast on CPU, gradient clipping,
EMA weights. Every `val_every` steps the EMA model samples maps at held-out cosmologies and the
reduced χ² of their power spectra (explorer.evaluate) is logged; the best EMA weights are kept in
RUN/best/ (a weights folder). RUN/checkpoint.pt (model, EMA, optimizer, step; tensors and plain
types only, loaded with weights_only=True) makes the run resumable; RUN/log.jsonl has one JSON
line per logging interval.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from explorer.data.transform import Normalization
from explorer.train_config import TrainConfig  # noqa: F401  (the settings; re-exported)


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises torch.distributed under torchrun (gloo on CPU)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of this run's step ``step``: linear warm-up over ``warmup`` steps, then
    constant, or (``lr_decay="cosine"``) a half cosine from ``lr`` to 0 at ``max_steps``."""
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
    if cfg.lr_decay == "cosine":
        lr *= 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, cfg.max_steps))))
    elif cfg.lr_decay != "constant":
        raise ValueError(f"unknown lr_decay {cfg.lr_decay!r}: 'constant' or 'cosine'")
    return lr


def diffusion_loss(pred: torch.Tensor, target: torch.Tensor, mean_weight: float = 0.0,
                   sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """MSE plus `mean_weight` times the squared error of each map's mean (pred, target: (B, C, H, W)).

    Parseval: the per-pixel MSE is the sum over Fourier modes of |error_k|²/(HW)², in which the k = 0
    mode contributes exactly mean(error)². `mean_weight` = w therefore weights that mode (1 + w)
    times as much as any other mode. `sample_weight` (B,), if given, weights each map's terms (the
    batch mean of weight × loss; see `timestep_weights`).
    """
    err = pred - target
    per_map = err.pow(2).mean(dim=(1, 2, 3))
    if mean_weight:
        per_map = per_map + mean_weight * err.mean(dim=(-2, -1)).pow(2).mean(dim=1)
    if sample_weight is not None:
        per_map = per_map * sample_weight
    return per_map.mean()


def timestep_weights(schedule, t: torch.Tensor, prediction_type: str, weighting: str,
                     gamma: float = 5.0) -> torch.Tensor | None:
    """Per-map loss weights of a training recipe at code timesteps ``t`` (None: all 1).

    ``uniform``: Ho et al. (2020), every t alike. ``min-snr``: Hang et al. (2023), "Efficient
    Diffusion Training via Min-SNR Weighting Strategy" (ICCV), eq. 7-8: the x₀-error weight
    min(SNR, γ), written for the network's target, i.e. min(SNR, γ)/SNR for ε and
    min(SNR, γ)/(SNR + 1) for v, with SNR(t) = ᾱ_t/(1 − ᾱ_t). It stops the many nearly noise-free
    steps (SNR ≫ γ) from dominating the gradient.
    """
    if weighting == "uniform":
        return None
    if weighting != "min-snr":
        raise ValueError(f"unknown loss weighting {weighting!r}: 'uniform' or 'min-snr'")
    alpha_bar = torch.as_tensor(schedule.alpha_bar[t.cpu().numpy()], dtype=torch.float64, device=t.device)
    snr = alpha_bar / (1.0 - alpha_bar)
    denominator = snr if prediction_type == "epsilon" else snr + 1.0
    return (snr.clamp(max=gamma) / denominator).float()


def build_data(cfg: TrainConfig):
    """(train dataset, val dataset, split, normalization, cmd) for a config."""
    from explorer.data import MapDataset, find_cmd, load_cmd, split_by_simulation

    data = Path(cfg.data)
    if cfg.maps or cfg.params:
        if not (cfg.maps and cfg.params):
            raise ValueError("give both --maps and --params, or neither (to discover them)")
        maps_path, params_path = data / cfg.maps, data / cfg.params
    else:
        maps_path, params_path = find_cmd(data)
    cmd = load_cmd(maps_path, params_path)
    split = split_by_simulation(cmd.n_sims, (1 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction,
                                             cfg.test_fraction), seed=cfg.split_seed)
    train_cmd, train_sims = with_extra_data(cmd, split.train, cfg.extra_data)
    train = MapDataset(train_cmd, train_sims, resolution=cfg.resolution, normalization=None, augment=True)
    if cfg.normalization_from:
        norm = normalization_of(cfg.normalization_from, cfg.normalization)
    elif cfg.normalization == "minmax":
        norm = Normalization.fit(train.log10_maps, method="minmax")
    else:
        norm = Normalization.fit(train.log10_maps, method="percentile")
    train.normalization = norm
    val = MapDataset(cmd, split.val, resolution=cfg.resolution, normalization=norm, augment=False)
    return train, val, split, norm, cmd


def normalization_of(weights, method: str) -> Normalization:
    """The normalisation (lo, hi) of the weights folder ``weights`` (``--normalization-from``), checked to
    be of kind ``method``: a network trained with it describes the same maps as that folder's
    (:func:`explorer.model.sampling.check_same_maps`), e.g. one trained on a re-simulated or larger set."""
    from explorer.model.weights import WeightsError, read_metadata

    try:
        stored = read_metadata(weights)["normalization"]
    except WeightsError as err:
        raise ValueError(f"--normalization-from {weights}: not a weights folder ({err})") from None
    kind = stored.get("method", method)
    if kind != method:
        raise ValueError(f"--normalization-from {weights}: its normalisation is {kind!r}, this run's "
                         f"--normalization is {method!r}")
    return Normalization(float(stored["lo"]), float(stored["hi"]))


def with_extra_data(cmd, train_sims, extra_dirs):
    """(CMD set, simulation indices) of the training maps: ``cmd``'s ``train_sims`` plus every
    simulation of each CMD directory in ``extra_dirs`` (appended after ``cmd``'s simulations; the
    validation and test splits stay ``cmd``'s alone)."""
    from explorer.data import find_cmd, load_cmd
    from explorer.data.cmd import CMDSet

    if not extra_dirs:
        return cmd, train_sims
    extras = [load_cmd(*find_cmd(Path(d))) for d in extra_dirs]
    for d, extra in zip(extra_dirs, extras):
        if extra.maps.shape[1:] != cmd.maps.shape[1:]:
            raise ValueError(f"--extra-data {d}: maps of {extra.maps.shape[1]}² pixels, the training set's are "
                             f"{cmd.maps.shape[1]}²; simulate it at the same map size")
    maps = np.concatenate([cmd.maps, *(e.maps for e in extras)])
    params = np.concatenate([cmd.params[:, :2], *(e.params[:, :2] for e in extras)])
    n_extra = sum(e.n_sims for e in extras)
    sims = np.concatenate([np.asarray(train_sims), cmd.n_sims + np.arange(n_extra)])
    return CMDSet(maps, params), sims


def build_network(cfg: TrainConfig):
    """A fresh ParamUNet for the config."""
    from explorer.model import ParamUNet

    return ParamUNet(sample_size=cfg.resolution, block_out_channels=tuple(cfg.channels),
                     layers_per_block=cfg.layers_per_block, attention_levels=cfg.attention_levels,
                     norm_num_groups=cfg.norm_groups, prediction_type=cfg.prediction_type)


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run (or resume) training; returns the final record (steps, loss, best validation).

    The steps, each a function below: 1. the run folder and processes (``_start_run``); 2. data,
    split and normalisation (``build_data``); 3. the network: warm start, fresh, or its map-mean
    prior fitted (``_init_model``); 4. EMA copy, optimiser and resume from RUN/checkpoint.pt
    (``_resume``); 5. the loop: one optimiser step (``_train_step``), logging (``_Log``), validation
    keeping the best EMA weights, checkpoints and the ``last`` export.
    """
    from tqdm import tqdm

    rank, world, device, run = _start_run(cfg)                                   # 1.
    train_set, val_set, split, norm, cmd = build_data(cfg)                        # 2.
    ckpt_path = run / "checkpoint.pt"
    model, norm, warm_record = _init_model(cfg, norm, train_set, ckpt_path, rank)  # 3.
    train_set.normalization = val_set.normalization = norm
    model.to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)                       # 4.
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, record, norm = _resume(ckpt_path, model, ema, opt, device, norm, warm_record)
    train_set.normalization = val_set.normalization = norm
    record["normalization"] = {"lo": float(norm.lo), "hi": float(norm.hi)}
    for m in (model, ema):  # what the exported weights say: how lo, hi were chosen and the x̂₀ clip range
        m.normalization = Normalization(norm.lo, norm.hi, cfg.normalization, cfg_clip(norm, train_set.log10_maps))
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, seed=cfg.seed) if world > 1 else None
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=True, num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed + step))
    meta = {"data": _data_info(cfg, cmd, split), "train_config": asdict(cfg)}

    bar = tqdm(total=cfg.max_steps, initial=step, desc="train", disable=not progress or rank != 0)
    log = _Log(run / "log.jsonl", cfg, world, record, bar, device) if rank == 0 else None
    start, epoch = time.perf_counter(), 0
    out_of_time = lambda: cfg.max_minutes and time.perf_counter() - start > 60 * cfg.max_minutes  # noqa: E731
    try:
        while step < cfg.max_steps:                                              # 5.
            if sampler is not None:
                sampler.set_epoch(epoch)
            for x0, theta in loader:
                loss = _train_step(net, model, ema, opt, x0.to(device), theta.to(device), step, cfg,
                                   ema_step=step + int(record.get("steps_before", 0)))
                step += 1
                bar.update(1)
                if log is not None:
                    log.loss(step, loss)
                if cfg.val_every and step % cfg.val_every == 0 and rank == 0:
                    figures = validate(ema, val_set, cfg)
                    log.validation(step, figures)
                    best = record.get("best")
                    if best is None or figures["fidelity_loo"] < best["fidelity_loo"]:
                        record["best"] = figures
                        export(ema, run / "best", meta, step, record)
                if rank == 0 and (step % cfg.ckpt_every == 0 or step >= cfg.max_steps):
                    _checkpoint(ckpt_path, model, ema, opt, step, record)
                    export(ema, run / "last", meta, step, record)
                if step >= cfg.max_steps or out_of_time():
                    break
            epoch += 1
            if out_of_time():
                break
    finally:
        if rank == 0:
            _checkpoint(ckpt_path, model, ema, opt, step, record)
            export(ema, run / "last", meta, step, record)
            log.close()
        bar.close()
        if world > 1:
            dist.barrier()
    return {"step": step, **record}


def _start_run(cfg: TrainConfig):
    """Step 1: (rank, world, device, run folder); rank 0 writes RUN/config.json; seeds torch per rank."""
    from explorer.model import pick_device

    rank, world = _distributed()
    device = pick_device(cfg.device) if world == 1 or not torch.cuda.is_available() else \
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    run = Path(cfg.run_dir)
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    torch.manual_seed(cfg.seed + rank)
    return rank, world, device, run


def _data_info(cfg: TrainConfig, cmd, split) -> dict:
    """What the weights record about their training data (explorer.json "data")."""
    return {"maps": str(cmd.maps_path), "params": str(cmd.params_path), "n_sims": cmd.n_sims,
            "suite": cmd.suite, "set": cmd.set_name, "split_seed": cfg.split_seed,
            "train_sims": len(split.train), "extra_data": [str(d) for d in cfg.extra_data],
            "val_sims": [int(s) for s in split.val], "test_sims": [int(s) for s in split.test], "resolution": cfg.resolution}


def _init_model(cfg: TrainConfig, norm, train_set, ckpt_path: Path, rank: int):
    """Step 3: the :class:`~explorer.model.Denoiser` to train, the normalisation it works in, and the
    record a warm start continues.

    A warm start (``cfg.init``, no checkpoint yet) keeps the weights' normalisation (the network
    learned it), resizes the fully convolutional net to this resolution and, if asked, adds a mean
    level. A fresh mean level starts from a least-squares fit of the map-mean prior to the training
    maps. The schedule: the weights' for a warm start, else the seed schedule with T = 1000.
    Returns ``(denoiser, norm, record)``.
    """
    from explorer.model import Denoiser, MeanLevel, load_model, schedule_from_spec, seed_schedule_spec

    record = {"best": None, "cpu_hours": 0.0, "steps_before": 0}
    if cfg.init and not ckpt_path.exists():
        model = load_model(cfg.init, device="cpu")
        previous = model.metadata.get("training", {})  # a warm start continues the weights' record
        model.metadata, model.gaussian_start = {}, None  # this run writes its own metadata
        norm = Normalization(model.normalization.lo, model.normalization.hi)
        if model.network.config.sample_size != cfg.resolution:
            model.network.register_to_config(sample_size=cfg.resolution)  # fully convolutional: any size
        record.update(cpu_hours=float(previous.get("cpu_hours", 0.0)), gpu_hours=float(previous.get("gpu_hours", 0.0)),
                      steps_before=int(previous.get("steps", 0)), init=str(cfg.init))
    else:
        model = Denoiser(build_network(cfg), schedule_from_spec(seed_schedule_spec(1000)), norm)
    if cfg.mean_head and model.mean_level is None:
        model.mean_level = MeanLevel(model.param_ranges, omega="log")
        if not ckpt_path.exists():
            means = norm.encode(train_set.log10_maps).mean(axis=(-2, -1))
            fit = model.mean_level.fit(train_set.theta, means)
            if rank == 0:
                lo, hi = fit["s_range"]
                print(f"mean level: map-mean prior fitted to {len(means)} training maps: s(θ) = {lo:.4f}…{hi:.4f} "
                      f"(spread of the means {fit['rms_before']:.4f}, normalised units)")
    model.normalization = norm
    if model.mean_level is not None:  # a resumed run rebuilds its mean level with the same Ωₘ scale (_resume)
        record["mean_level_omega"] = model.mean_level.omega
    return model, norm, record


def _resume(ckpt_path: Path, model, ema, opt, device, norm, record: dict):
    """Step 4: load RUN/checkpoint.pt if there is one (tensors and plain types only). Returns
    ``(step, record, norm)``: 0, ``record`` and ``norm`` unchanged for a new run; else the checkpoint's
    step and record, and the run's own normalisation from it."""
    if not ckpt_path.exists():
        return 0, record, norm
    state = torch.load(ckpt_path, map_location=device, weights_only=True)
    if any(not k.startswith(("network.", "mean_level.")) for k in state["model"]):
        raise ValueError(f"{ckpt_path} was written before the Denoiser (network and mean level) existed; "
                         "start a new run, warm-started from its exported weights (--init RUN/last after "
                         "`explorer upgrade-weights RUN/last`)")
    model.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["optimizer"])
    record = json.loads(state["record"])
    for m in (model, ema):  # its parameters came with the state; the Ωₘ scale they go with is in the record
        if m.mean_level is not None:
            m.mean_level.omega = record.get("mean_level_omega", "linear")
    if "normalization" in record:  # the run's own normalisation (e.g. of its warm start)
        norm = Normalization(record["normalization"]["lo"], record["normalization"]["hi"])
    return int(state["step"]), record, norm


def _train_step(net, model, ema, opt, x0, theta, step: int, cfg: TrainConfig, ema_step: int | None = None) -> float:
    """One optimiser step of Ho et al. (2020) Algorithm 1 (t uniform, ε or v target), then the EMA
    update. ``step`` counts this run's steps done before this one (the learning-rate warm-up);
    ``ema_step`` all the weights' steps (default ``step``): the EMA's decay warm-up
    (1 + n)/(10 + n) continues across warm starts (restarted, it averaged only the last ~90 steps
    after 800; continuing it changed fidelity by less than the seed spread, README "Training recipe
    per compute hour")."""
    from explorer.model import autocast

    schedule = model.schedule
    t = torch.randint(0, schedule.T, (x0.shape[0],), device=x0.device)
    noise = torch.randn_like(x0)
    xt = schedule.q_sample(x0, t, noise)
    target = noise if model.prediction_type == "epsilon" else schedule.v_from(x0, noise, t)
    for group in opt.param_groups:
        group["lr"] = _lr_at(step, cfg)
    with autocast(x0.device, enabled=cfg.bf16):
        pred = net(xt, t, theta)
    weights = timestep_weights(schedule, t, model.prediction_type, cfg.loss_weighting, cfg.min_snr_gamma)
    loss = diffusion_loss(pred.float(), target, cfg.mean_weight, weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    n = step if ema_step is None else ema_step
    _ema_update(ema, model, min(cfg.ema_decay, (2 + n) / (11 + n)))
    return loss.item()


class _Log:
    """RUN/log.jsonl (rank 0): the mean loss, learning rate and throughput every ``log_every`` steps,
    validation figures; adds the compute to ``record``: CPU-hours (wall time x threads x processes)
    on the CPU, GPU-hours (wall time x GPUs) on CUDA."""

    def __init__(self, path: Path, cfg: TrainConfig, world: int, record: dict, bar, device=torch.device("cpu")):
        self.file, self.cfg, self.world, self.record, self.bar = open(path, "a"), cfg, world, record, bar
        self.threads, self.last, self.losses = torch.get_num_threads(), time.perf_counter(), []
        self.hours_key = "gpu_hours" if torch.device(device).type == "cuda" else "cpu_hours"
        self.per_process = 1 if self.hours_key == "gpu_hours" else self.threads

    def loss(self, step: int, value: float) -> None:
        self.losses.append(value)
        if step % self.cfg.log_every:
            return
        now = time.perf_counter()
        rate = len(self.losses) * self.cfg.batch_size * self.world / (now - self.last)
        self.record[self.hours_key] = self.record.get(self.hours_key, 0.0) + \
            (now - self.last) * self.per_process * self.world / 3600
        self.last = now
        entry = {"step": step, "loss": float(np.mean(self.losses)), "lr": _lr_at(step, self.cfg),
                 "maps_per_s": rate, "time": time.time()}
        self.losses = []
        self.bar.set_postfix(loss=f"{entry['loss']:.4f}", maps_s=f"{rate:.1f}")
        self._write(entry)

    def validation(self, step: int, figures: dict) -> None:
        figures["step"] = step
        self._write({"val": figures})
        self.bar.write(f"step {step}: fidelity_loo {figures['fidelity_loo']:.3f} "
                       f"σ ratio {figures['pixel_std_ratio']:.3f} ({figures['seconds']:.0f} s)")
        self.last = time.perf_counter()  # validation time is not training throughput

    def _write(self, entry: dict) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def cfg_clip(norm, log10_maps, margin: float = 0.05) -> list[float]:
    """x̂₀ clipping range in normalised units: the 0.001 % and 99.999 % pixel percentiles of the
    training maps, widened by `margin`. Not the extremes: a handful of near-empty void pixels of the
    stand-in (log10 Σ ≈ 5.5, 4 dex below the mean) once stretched the range to −2.96 and let samples
    wander there; percentiles keep the range where the data actually lies."""
    lo, hi = np.percentile(np.asarray(log10_maps, dtype=np.float64), [0.001, 99.999])
    return [float(norm.encode(lo)) - margin, float(norm.encode(hi)) + margin]


def _checkpoint(path: Path, model, ema, opt, step: int, record: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "step": step, "record": json.dumps(record)}, tmp)
    os.replace(tmp, path)


def export(ema, folder: Path, meta: dict, step: int, record: dict) -> None:
    """Write the EMA denoiser as a weights folder with its training record."""
    from explorer.model import save_model

    training = {"steps": record.get("steps_before", 0) + step, "steps_this_run": step,
                "cpu_hours": round(record.get("cpu_hours", 0.0), 3), "gpu_hours": round(record.get("gpu_hours", 0.0), 4),
                "best_validation": record.get("best"),
                "warm_start_from": record.get("init")}
    save_model(folder, ema, {**meta, "training": training})


@torch.no_grad()
def validate(ema, val_set, cfg: TrainConfig) -> dict:
    """Sample-quality figures of the EMA denoiser at the first `val_cosmologies` held-out simulations."""
    from explorer.data import MAPS_PER_SIM
    from explorer.evaluate import fidelity
    from explorer.model import sample

    n_cos = min(cfg.val_cosmologies, len(val_set.sims))
    r = cfg.resolution
    truth = val_set.log10_maps[: n_cos * MAPS_PER_SIM].reshape(n_cos, MAPS_PER_SIM, r, r)
    theta = val_set.theta[::MAPS_PER_SIM][:n_cos]
    clip = tuple(cfg_clip(ema.normalization, val_set.log10_maps))

    def emulate(om, s8, n, seed):
        x = sample(ema, [om, s8], n=n, resolution=r, seed=seed, method=cfg.val_method,
                   steps=cfg.val_steps, bf16=cfg.bf16, clip=clip)
        return ema.normalization.decode(x.numpy())

    result = fidelity(emulate, theta, truth, n_generated=cfg.val_maps, seed=1234)
    out = result.to_dict()
    out.pop("per_cosmology")
    return out


if __name__ == "__main__":  # torchrun -m explorer.train ... also works
    import argparse

    from explorer.train_config import add_arguments, run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    raise SystemExit(run(p.parse_args()))
