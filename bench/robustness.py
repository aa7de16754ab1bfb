"""Robustness of the three estimators to white noise and smoothing (issue #16 item 4).

    python bench/robustness.py --out runs/robust --plot assets/robustness.png --json runs/robust.json
    python bench/robustness.py --max-sims 20 --noise 0.05 --smooth 1.0     # a quicker run

The held-out fields of ``bench/predicted_vs_true.py`` (one map per ``assets/valid`` simulation, the
maps ``explorer calibrate`` evaluates), altered before inference:

- ``noise σ``: white Gaussian noise of σ dex added to log10 Σ at the model resolution (64²);
- ``smooth s``: a Gaussian kernel of s pixels (periodic) applied to log10 Σ.

Each altered set is written as a CMD set (``OUT/<condition>/data``) and run through the batch path of
``explorer infer`` (diffusion likelihood, noise replicate 0, and the P(k) baseline; resumable); the CNN
is evaluated on the same maps directly. "clean" is the unaltered set (the rows of
``predicted_vs_true.py``'s replicate 0 when ``--clean-from`` points at them). Prints JSON per condition
and estimator: bias, RMS relative error, mean |z| and 68 % coverage of Ωₘ and σ₈, and the mean
typicality z of the diffusion fits (how loudly the bound notices the alteration).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from explorer.params import PARAM_LABELS, PARAM_NAMES
from explorer.paths import resolve_assets, resolve_weights

from predicted_vs_true import ESTIMATORS, add_cnn_columns, arrays, load_rows, metrics


def alter(log10: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """An altered copy of ``log10: (N, r, r)`` log10 Σ (module docstring)."""
    if kind == "noise":
        return log10 + rng.normal(0.0, level, log10.shape)
    k = np.fft.fftfreq(log10.shape[-1])
    kernel = np.exp(-2 * np.pi ** 2 * level ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    return np.fft.ifft2(np.fft.fft2(log10) * kernel).real


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--out", type=Path, default=Path("runs/robust"))
    p.add_argument("--noise", type=float, nargs="*", default=[0.02, 0.05], help="white-noise levels, dex")
    p.add_argument("--smooth", type=float, nargs="*", default=[0.5, 1.0], help="Gaussian smoothing, pixels")
    p.add_argument("--max-sims", type=int, default=None, help="first N simulations only")
    p.add_argument("--clean-from", type=Path, default=None,
                   help="results.csv of the unaltered fields (e.g. runs/pvt/r0/results.csv); default: run them")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from explorer.data import find_cmd, load_cmd, to_log10, write_cmd
    from explorer.inference.batch import collect, default_options, run_batch
    from explorer.inference.cnn import CnnEstimator, find_cnn

    weights = resolve_weights(args.weights)
    valid = load_cmd(*find_cmd(resolve_assets() / "valid"))
    n_sims = valid.n_sims if args.max_sims is None else min(args.max_sims, valid.n_sims)
    from explorer.model import load_model

    resolution = load_model(weights).resolution
    log10 = to_log10(valid.maps, resolution, indices=np.arange(15 * n_sims), progress=False).astype(np.float64)
    params = valid.params[:n_sims]
    options = default_options(weights, kind="log10", cnn=False)
    cnn_dir = find_cnn(weights)
    cnn = CnnEstimator.load(cnn_dir) if cnn_dir else None
    conditions = [("clean", 0.0)] + [("noise", v) for v in args.noise] + [("smooth", v) for v in args.smooth]
    report, start = {"weights": str(weights), "n_fields": int(n_sims), "conditions": {}}, time.perf_counter()
    for kind, level in conditions:
        name = "clean" if kind == "clean" else f"{kind}_{level:g}"
        folder = args.out / name
        if kind == "clean" and args.clean_from:
            rows = [r for r in load_rows(args.clean_from) if int(r["map_index"]) // 15 < n_sims]
            specs = [s for s in collect([resolve_assets() / "valid"], "one-per-sim") if s.map_index // 15 < n_sims]
        else:
            data = folder / "data"
            if not (data / "params_LH_PM.txt").is_file():
                rng = np.random.default_rng(abs(hash((kind, level))) % 2 ** 32 if kind != "clean" else 0)
                maps = log10 if kind == "clean" else alter(log10, kind, level, rng)
                if data.exists():
                    shutil.rmtree(data)
                write_cmd(data, (10.0 ** maps).astype(np.float32), params, suite="PM", set_name="LH")
            specs = collect([data], "one-per-sim")
            run_batch(specs, folder, {**options, "kind": "density"}, workers=args.workers)
            rows = load_rows(folder / "results.csv")
        if cnn is not None:
            add_cnn_columns(rows, specs, cnn)
        entry = {"kind": kind, "level": level}
        for est in ESTIMATORS:
            entry[est] = {pname: {k: v for k, v in metrics(arrays(rows, est, pname)).items() if k != "worst"}
                          for pname in PARAM_NAMES if arrays(rows, est, pname)["id"]}
        z = [float(r["vlb_typicality_z"]) for r in rows if r.get("vlb_typicality_z") not in (None, "")]
        entry["vlb_typicality_z_mean"] = float(np.mean(z)) if z else None
        entry["vlb_flagged_atypical"] = int(sum(abs(v) > 3 for v in z))
        report["conditions"][name] = entry
        print(json.dumps({name: entry}), flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.5), layout="constrained")
    axes = fig.subplots(2, 3)
    conds = report["conditions"]
    # clean in the middle: noise grows to the left, smoothing to the right
    level = lambda n: float(n.split("_")[1])  # noqa: E731
    names = (sorted((n for n in conds if n.startswith("noise")), key=level, reverse=True) + ["clean"]
             + sorted((n for n in conds if n.startswith("smooth")), key=level))
    colors = ("#d95f02", "#1b9e77", "#7570b3")
    for i, pname in enumerate(PARAM_NAMES):
        for j, (figure, label) in enumerate((("bias", "bias"), ("rms_rel_error", "RMS relative error"),
                                             ("coverage68", "68 % coverage"))):
            ax = axes[i, j]
            for c, est in zip(colors, ESTIMATORS):
                y = [conds[n][est].get(pname, {}).get(figure, np.nan) for n in names]
                # one line from "clean" through each kind of alteration (noise, smoothing), not across kinds
                for kind in ("noise", "smooth"):
                    idx = [k for k, n in enumerate(names) if n == "clean" or n.startswith(kind)]
                    ax.plot(idx, [y[k] for k in idx], "o-" if kind == "noise" else "s--", color=c,
                            label=ESTIMATORS[est] if kind == "noise" else None)
            if figure == "coverage68":
                ax.axhspan(0.60, 0.76, color="0.9", zorder=0)
                ax.axhline(0.683, color="0.5", lw=1, ls="--")
            if figure == "bias":
                ax.axhline(0.0, color="0.5", lw=1, ls="--")
            ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
            ax.set_ylabel(f"{label}, {PARAM_LABELS[pname]}")
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.suptitle(f"Robustness on {report['n_fields']} held-out fields: white noise (dex in log10 Σ, left) and "
                 "Gaussian smoothing (pixels, right) added before inference", fontsize=10)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
