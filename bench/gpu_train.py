"""Train both networks on one CUDA GPU in one command, from a bare checkout (issue #14 item 4).

    bash bench/gpu_train.sh OUTDIR [MINUTES]           # the wrapper: offline wheels, then this script
    python3 bench/gpu_train.py OUTDIR --minutes 9      # the same, when the dependencies are there
    python3 bench/gpu_train.py OUTDIR --tiny           # CPU smoke run of every phase (CI, ~20 s)

Phases, each timed and printed, all written into OUTDIR:

1. **simulate** the training set with the project's particle-mesh code on the GPU (``--sims``
   simulations of the ``train`` recipe, default 500: the set and split the shipped weights were
   trained on, so their validation and test simulations stay unseen; ``--sim-procs`` processes share
   the GPU, since the cosmology part of each simulation runs on the CPU) -> ``OUTDIR/data``;
2. **train** the full network (inference's) and the small one (the emulator's) at the same time,
   each warm-started from the shipped weights (``--init``), bf16 autocast, batch ``--batch``, for
   what is left of the wall-clock budget after simulation and a reserve for the evaluation;
   ``--gpus N`` runs the full network on N GPUs with DDP (torchrun) -> ``OUTDIR/runs/{full,small}``
   (checkpoints, log.jsonl, best/ and last/ EMA weights);
3. **assemble** a complete weights folder ``OUTDIR/weights``: the full network, its P(k) baseline
   and Gaussian start refitted on the simulated set (``explorer calibrate --start-only``), the small
   network attached as the sampling default, the few-call sampler's start matched to it
   (``explorer fit-start``), the sampler settings and the CNN estimator of ``--init``. The likelihood's calibration (temperature, typicality line) is not redone here (about an
   hour, on the CPU): ``OUTDIR/weights/GPU_TRAINING.md`` says to run ``explorer calibrate`` before
   ``explorer infer`` uses the folder;
4. **evaluate** the shipped and the new weights side by side, in this one run: fidelity on the 20
   twin cosmologies of ``assets/`` over sampler seeds ``--eval-seeds`` (``explorer evaluate``),
   with the emulator's default sampler -> ``OUTDIR/eval.json``;
5. **figures** ``OUTDIR/figures/train_loss.png`` and ``OUTDIR/figures/fidelity.png``, and
   ``OUTDIR/summary.json`` (device, versions, phase times, steps, throughput, figures).

Nothing here assumes a CPU: every phase runs where ``--device`` says (auto: CUDA if present).
Nothing is downloaded. The script uses only the packages that training needs (torch, numpy, scipy,
diffusers, colossus, safetensors, matplotlib, tqdm), not the app's (panel, holoviews, bokeh, dask).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_PM = {"n_particles": 16, "n_mesh": 32, "n_steps": 2}  # --tiny: a seconds-long smoke run


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="output folder (created; a rerun resumes simulation and training)")
    p.add_argument("--minutes", type=float, default=9.0, help="wall-clock budget of all phases (default 9)")
    p.add_argument("--sims", type=int, default=500, help="training simulations (default 500: the shipped split)")
    p.add_argument("--data", type=Path, default=None,
                   help="use this simulated CMD set instead of simulating (e.g. data/train, simulated before)")
    p.add_argument("--sim-procs", type=int, default=None, help="simulation processes (default 6 on CUDA, 1 on CPU)")
    p.add_argument("--init", type=Path, default=ROOT / "weights", help="weights to start from (default: shipped)")
    p.add_argument("--batch", type=int, default=None, help="maps per step (default 128 on CUDA, 2 on CPU)")
    p.add_argument("--full-lr", type=float, default=2e-4, help="peak learning rate, full network")
    p.add_argument("--small-lr", type=float, default=5e-4, help="peak learning rate, small network")
    p.add_argument("--val-every", type=int, default=500, help="validation (and best/ export) every N steps")
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1000, 2000], help="sampler seeds of the evaluation")
    p.add_argument("--eval-reserve", type=float, default=None,
                   help="minutes kept for assembling and evaluating (default 2 on CUDA)")
    p.add_argument("--gpus", type=int, default=1,
                   help="GPUs for the full network (DDP through torchrun when > 1; on a CPU: processes)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cuda, cpu")
    p.add_argument("--tiny", action="store_true",
                   help="smoke run on any machine: 22 tiny simulations, a few steps, 2 cosmologies, 2 sampler steps")
    return p.parse_args(argv)


class Phases:
    """Times and prints each phase; everything it learns goes into OUTDIR/summary.json."""

    def __init__(self, out: Path, budget_minutes: float):
        self.out, self.start, self.budget = out, time.perf_counter(), 60 * budget_minutes
        self.summary = {"phases": {}}
        self._t = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()

    def begin(self, name: str, what: str) -> None:
        self._name, self._t = name, time.perf_counter()
        say(f"[{name}] {what} (t = {self.elapsed():.0f} s of {self.budget:.0f} s)")

    def end(self, **figures) -> None:
        seconds = time.perf_counter() - self._t
        self.summary["phases"][self._name] = {"seconds": round(seconds, 1), **figures}
        say(f"[{self._name}] done in {seconds:.1f} s")
        self.write()

    def write(self) -> None:
        self.summary["seconds_total"] = round(self.elapsed(), 1)
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=1) + "\n")


def say(text: str) -> None:
    print(text, flush=True)


def environment(device) -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "device": str(device),
            "cuda": torch.version.cuda, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["bf16"] = bool(torch.cuda.is_bf16_supported())
    for name in ("diffusers", "colossus", "numpy", "scipy"):
        try:
            info[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            info[name] = None
    return info


# ---------------------------------------------------------------------------------------------- 1.
def simulate(args, device, data: Path) -> dict:
    """The first ``args.sims`` simulations of the ``train`` recipe in ``data`` (resumable)."""
    from explorer.sim.fastpm import PMConfig
    from explorer.sim.sets import RECIPES, generate, merge, part_path

    recipe = RECIPES["train"]
    if args.tiny:
        recipe = replace(recipe, pm=PMConfig(**TINY_PM))
    procs = args.sim_procs or (6 if device.type == "cuda" else 1)
    before = sum(part_path(data, recipe, i).exists() for i in range(args.sims))
    if procs == 1 or args.tiny:
        generate(recipe, data, stop=args.sims, device=device, progress=True)
    else:  # shards in parallel processes on the same GPU (the cosmology integrals run on the CPU)
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        jobs = [subprocess.Popen([sys.executable, "-m", "explorer", "simulate", "--recipe", "train",
                                  "--out", str(data), "--stop", str(args.sims), "--shard", f"{i}/{procs}",
                                  "--device", str(device), "--threads", "2"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=open(data / f"shard{i}.log", "w"))
                for i in range(procs)]
        while any(job.poll() is None for job in jobs):
            time.sleep(5)
            done = sum(part_path(data, recipe, i).exists() for i in range(args.sims))
            say(f"  simulated {done}/{args.sims}")
        failed = [i for i, job in enumerate(jobs) if job.returncode]
        if failed:
            raise RuntimeError(f"simulation shards {failed} failed: see {data}/shard{failed[0]}.log")
    merge(recipe, data, stop=args.sims)
    return {"simulations": args.sims, "simulated_now": args.sims - before, "processes": procs,
            "pm": recipe.pm.__dict__}


# ---------------------------------------------------------------------------------------------- 2.
def train_command(args, name: str, data: Path, run: Path, minutes: float, device) -> list[str]:
    """`explorer train` for the full or the small network, warm-started from ``--init``."""
    init = args.init if name == "full" else args.init / "small"
    batch = args.batch or (128 if device.type == "cuda" else 2)
    lr = args.full_lr if name == "full" else args.small_lr
    opts = ["--data", str(data), "--run-dir", str(run), "--init", str(init), "--batch-size", str(batch),
            "--lr", str(lr), "--warmup", "100", "--max-minutes", f"{minutes:.3f}", "--device", str(device),
            "--log-every", "25", "--ckpt-every", "500"]
    if args.tiny:
        opts += ["--max-steps", "1", "--val-every", "0", "--log-every", "1"]
    else:
        # best/ is chosen on 10 of the 25 validation simulations x 15 maps (the default 3 x 8 is too noisy
        # to choose by; on a GPU this costs seconds)
        opts += ["--val-every", str(args.val_every), "--val-cosmologies", "10", "--val-maps", "15", "--workers", "4"]
    if device.type == "cuda":
        opts += ["--bf16"]
    if name == "small":  # the shipped small network's architecture (README: "Two networks")
        opts += ["--channels", "16", "32", "64", "64", "--layers-per-block", "1", "--attention-levels", "1",
                 "--norm-groups", "8"]
    if name == "full" and args.gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.gpus}",
                "-m", "explorer.train", *opts]
    return [sys.executable, "-m", "explorer", "train", *opts]


def loss_lines(run: Path) -> list[dict]:
    """The loss lines of a run's log.jsonl (none before the first)."""
    path = run / "log.jsonl"
    if not path.exists():
        return []
    return [e for e in map(json.loads, filter(str.strip, path.read_text().splitlines())) if "loss" in e]


def last_log(run: Path) -> dict:
    """The last loss line of a run's log.jsonl ({} before the first)."""
    lines = loss_lines(run)
    return lines[-1] if lines else {}


def train_both(args, device, data: Path, runs: Path, minutes: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1" if args.tiny else "4"}
    jobs = {}
    for name in ("full", "small"):
        run = runs / name
        run.mkdir(parents=True, exist_ok=True)
        cmd = train_command(args, name, data, run, minutes, device)
        (run / "command.txt").write_text(" ".join(cmd) + "\n")
        jobs[name] = subprocess.Popen(cmd, env=env, stdout=open(run / "stdout.log", "w"), stderr=subprocess.STDOUT)
    while any(job.poll() is None for job in jobs.values()):
        time.sleep(1 if args.tiny else 15)
        parts = []
        for name in jobs:
            entry = last_log(runs / name)
            if entry:
                parts.append(f"{name}: step {entry['step']} loss {entry['loss']:.4f} {entry['maps_per_s']:.0f} maps/s")
        if parts:
            say("  " + " | ".join(parts))
    failed = [name for name, job in jobs.items() if job.returncode]
    if failed:
        tail = (runs / failed[0] / "stdout.log").read_text()[-3000:]
        raise RuntimeError(f"training of the {failed[0]} network failed:\n{tail}")
    out = {}
    for name in jobs:
        entry = last_log(runs / name)
        meta = json.loads((runs / name / "last" / "explorer.json").read_text())
        out[name] = {"steps": meta["training"]["steps_this_run"], "loss": entry.get("loss"),
                     "maps_per_s": entry.get("maps_per_s"), "best_validation": meta["training"].get("best_validation")}
    return out


# ---------------------------------------------------------------------------------------------- 3.
def assemble(args, runs: Path, data: Path, weights: Path) -> dict:
    """OUTDIR/weights: full network + start + small network + sampler + CNN (module docstring, 3)."""
    from explorer.inference.calibrate import calibrate
    from explorer.model.attach import attach_network
    from explorer.model.translation_command import fit_start
    from explorer.model.weights import read_metadata, set_metadata

    pick = lambda run: run / "best" if (run / "best").is_dir() else run / "last"  # noqa: E731
    if weights.exists():
        shutil.rmtree(weights)
    shutil.copytree(pick(runs / "full"), weights)
    init_meta = read_metadata(args.init)
    sampler = {k: v for k, v in (init_meta.get("sampler") or {}).items() if k != "network"}
    if sampler:
        set_metadata(weights, "sampler", sampler)
    calibrate(weights, str(data), str(ROOT / "assets" / "valid"), skip_coverage=True)
    attach_network(weights, pick(runs / "small"), "small")
    # the few-call sampler's start, matched to the new small network's output (explorer fit-start)
    fit_start(weights, str(data), degree=1 if args.tiny else 3)
    if (args.init / "cnn").is_dir():
        shutil.copytree(args.init / "cnn", weights / "cnn")
    return {"full_from": str(pick(runs / "full")), "small_from": str(pick(runs / "small")),
            "likelihood_calibrated": False}


# ---------------------------------------------------------------------------------------------- 4.
def evaluate(args, device, folders: dict) -> dict:
    """`explorer evaluate` of each weights folder, same seeds and settings (side by side)."""
    from explorer.evaluate import add_arguments, run

    results = {}
    for name, folder in folders.items():
        p = argparse.ArgumentParser()
        add_arguments(p)
        extra = ["--n-cosmologies", "2", "--n-generated", "2", "--steps", "2"] if args.tiny else []
        path = args.out / f"eval_{name}.json"
        run(p.parse_args(["--weights", str(folder), "--device", str(device), "--json", str(path),
                          "--seeds", *map(str, args.eval_seeds), *extra]))
        results[name] = json.loads(path.read_text())
    return results


def headline(result: dict) -> dict:
    return {key: {k: result["summary"][key][k] for k in ("mean", "std", "min", "max")}
            for key in ("fidelity_loo", "fidelity_newseed", "mean_offset", "pixel_std_ratio", "small_scale_scatter_ratio")
            if key in result["summary"]}


# ---------------------------------------------------------------------------------------------- 6.
def device_paths(args, device) -> dict:
    """`explorer sample` and `explorer infer` with the shipped weights on ``device`` and on the CPU,
    same seeds: the device gives the CPU's numbers (to float tolerance), and how much faster."""
    import numpy as np

    out, report = args.out / "device_paths", {}
    out.mkdir(exist_ok=True)
    field = ROOT / "assets" / "examples" / "field_1_om0.30_s80.80.npy"
    for where in (str(device), "cpu"):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "explorer", "sample", "--weights", str(args.init), "--omega-m", "0.3",
                        "--sigma-8", "0.8", "-n", "4", "--seed", "1", "--device", where, "--no-bf16",
                        "--out", str(out / f"sample_{where}.npy")], check=True, stdout=subprocess.DEVNULL)
        report[f"sample_seconds_{where}"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "explorer", "infer", str(field), "--weights", str(args.init),
                        "--truth", "0.3", "0.8", "--device", where, "--quiet", "--json", str(out / f"infer_{where}.json")],
                       check=True, stdout=subprocess.DEVNULL)
        report[f"infer_seconds_{where}"] = round(time.perf_counter() - t, 2)
    a, b = (np.load(out / f"sample_{w}.npy") for w in (str(device), "cpu"))
    report["sample_max_abs_diff_dex"] = float(np.abs(a - b).max())
    post = [json.loads((out / f"infer_{w}.json").read_text()) for w in (str(device), "cpu")]
    report["infer"] = {w: {"estimates": {k: {q: round(p["posterior"]["estimates"][k][q], 4) for q in ("mean", "std")}
                                         for k in ("omega_m", "sigma_8")},
                           "bf16": p["posterior"]["settings"]["bf16"], "seconds": round(p["posterior"]["seconds"], 2),
                           "cnn": p.get("cnn")}
                       for w, p in zip((str(device), "cpu"), post)}
    return report


# ---------------------------------------------------------------------------------------------- 5.
def figures(runs: Path, results: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in ("full", "small"):
        lines = loss_lines(runs / name)
        ax.plot([x["step"] for x in lines], [x["loss"] for x in lines], ".-", label=f"{name} network")
    ax.set(xlabel="optimiser step of this run", ylabel="training loss (mean over 25 steps)", yscale="log",
           title="Training from the shipped weights")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "train_loss.png", dpi=120)
    plt.close(fig)

    keys = [k for k in ("fidelity_loo", "fidelity_newseed") if k in results["shipped"]["summary"]]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for x, name in enumerate(("shipped", "new")):
            per_seed = list(results[name]["summary"][key]["per_seed"].values())
            ax.scatter([x] * len(per_seed), per_seed, color="k", s=12, zorder=3)
            ax.bar(x, sum(per_seed) / len(per_seed), color=("#999999", "#1b9e77")[x], width=0.6)
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        against = {"fidelity_loo": "leave-one-out floor", "fidelity_newseed": "new-seed simulations"}[key]
        ax.set(xticks=[0, 1], xticklabels=["shipped", "new"], ylabel=f"fidelity vs {against}",
               title="dots: sampler seeds")
    fig.suptitle("Fidelity on the twin cosmologies (lower is better; 1 = as good as a new simulation)", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "fidelity.png", dpi=120)
    plt.close(fig)
    return ["train_loss.png", "fidelity.png"]


def card(weights: Path, summary: dict) -> None:
    """A short model card for the new folder: how it was made and what was measured."""
    env = summary["environment"]
    n_sims = json.loads((weights / "explorer.json").read_text())["data"]["n_sims"]
    train = summary["phases"]["train"]
    lines = ["# Weights trained by bench/gpu_train.py", "",
             f"Device {env['device']} ({', '.join(env.get('gpus', [])) or 'CPU'}), torch {env['torch']}; "
             f"data {summary['arguments']['data'] or 'simulated by the script'} "
             f"({n_sims} simulations), warm-started from "
             f"{summary['arguments']['init']}; {train['seconds'] / 60:.1f} min of training.", ""]
    for name in ("full", "small"):
        t = train[name]
        lines.append(f"- {name} network: {t['steps']} steps this run, last loss {t['loss']:.4f}, "
                     f"{t['maps_per_s']:.0f} maps/s")
    lines += ["", "Fidelity on the twin cosmologies (mean ± std over sampler seeds, worst seed):", ""]
    for name, figs in summary["evaluation"].items():
        f = figs.get("fidelity_loo", {})
        lines.append(f"- {name}: fidelity vs leave-one-out {f.get('mean', float('nan')):.3f} ± "
                     f"{f.get('std', float('nan')):.3f} (worst {f.get('max', float('nan')):.3f})")
    if not summary["phases"]["assemble"]["likelihood_calibrated"]:
        lines += ["", "**The likelihood is not calibrated for this network** (temperature and typicality line "
                      "are absent): run `explorer calibrate --weights THIS --data DATA` before using "
                      "`explorer infer` with it."]
    (weights / "GPU_TRAINING.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    args = parse(argv)
    from explorer.model import pick_device

    device = pick_device(args.device)
    if args.tiny:
        args.sims, args.eval_seeds = 22, args.eval_seeds[:1]  # 20 training simulations: the P(k) fit's minimum
    args.out.mkdir(parents=True, exist_ok=True)
    data, runs, weights = args.data or args.out / "data", args.out / "runs", args.out / "weights"
    data.mkdir(exist_ok=True)
    phases = Phases(args.out, args.minutes)
    phases.summary["environment"] = environment(device)
    phases.summary["arguments"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    say(f"gpu_train: {json.dumps(phases.summary['environment'])}")
    if args.sims != 500 and not args.tiny:
        say("note: a split of other than 500 simulations puts some of the shipped weights' training "
            "simulations into validation and test")

    if args.data is None:
        phases.begin("simulate", f"{args.sims} simulations on {device}")
        phases.end(**simulate(args, device, data))
    else:
        phases.summary["phases"]["simulate"] = {"seconds": 0.0, "simulations": None, "data": str(args.data)}

    reserve = args.eval_reserve if args.eval_reserve is not None else (2.0 if device.type == "cuda" else 0.5)
    minutes = max(0.05, phases.left() / 60 - reserve)
    phases.begin("train", f"full and small networks together, {minutes:.2f} min each")
    phases.end(**train_both(args, device, data, runs, minutes))

    phases.begin("assemble", f"weights folder {weights}")
    phases.end(**assemble(args, runs, data, weights))

    phases.begin("evaluate", "shipped and new weights, same seeds")
    results = evaluate(args, device, {"shipped": args.init, "new": weights})
    phases.summary["evaluation"] = {name: headline(r) for name, r in results.items()}
    phases.end()

    if device.type != "cpu":
        phases.begin("device_paths", f"sample and infer on {device} and on the CPU, same seeds")
        phases.end(**device_paths(args, device))

    phases.begin("figures", "training loss, fidelity")
    phases.end(files=figures(runs, results, args.out / "figures"))
    card(weights, phases.summary)
    phases.write()
    say(json.dumps(phases.summary["evaluation"], indent=1))
    say(f"gpu_train: done in {phases.elapsed():.0f} s; weights in {weights}, figures in {args.out / 'figures'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
