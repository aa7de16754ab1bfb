"""Predicted vs true (Ωₘ, σ₈) for the three estimators over the 50 `assets/valid` fields (issue #16 item 2).

    python bench/predicted_vs_true.py --replicates 0 1 2 --out runs/pvt --plot assets/predicted_vs_true.png

One map of each of the 50 held-out simulations (the maps ``explorer calibrate`` evaluates:
``--select one-per-sim``), run through the batch path of ``explorer infer`` (:mod:`explorer.inference.batch`,
a local Dask cluster of ``--workers`` processes; resumable: rerunning the command reuses finished rows).
Noise replicate r draws the diffusion likelihood's fixed noise from ``field_seed(field) + r``
(r = 0 is what ``explorer infer`` does); the P(k) baseline and the CNN have no noise. The CNN
(``WEIGHTS/cnn`` or ``--cnn``) is evaluated here on the same maps in one batched call, so the slow
diffusion rows need not be recomputed when the CNN is retrained.

Prints JSON: per estimator and parameter, RMS relative error, bias, mean |z| (|mean − truth| / σ), 68 %
coverage (truth inside the central 68 % interval), each as mean ± spread over the replicates for the
diffusion likelihood (and the mean |relative error|, the statistic of ``bench_coverage.py``), and the
field with the largest |z|; the ratios of the diffusion likelihood's
and the P(k) baseline's RMS relative error to the CNN's on the same fields. The figure (Figure 3 of
the seed paper, rows 2–3) shows replicate ``--replicates[0]``: points with 68 % error bars.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from explorer.params import PARAM_LABELS, PARAM_NAMES, PRIOR
from explorer.paths import resolve_assets, resolve_weights

ESTIMATORS = {"vlb": "diffusion likelihood (VLB, calibrated)", "pk": "P(k) baseline", "cnn": "CNN estimator"}


def load_rows(table: Path) -> list[dict]:
    with table.open(newline="") as f:
        return [r for r in csv.DictReader(f)]


def arrays(rows, est: str, name: str) -> dict:
    ok = [r for r in rows if r["status"] == "ok" and r[f"{est}_{name}_mean"] != ""]
    get = lambda col: np.array([float(r[col]) for r in ok])  # noqa: E731
    return {"id": [r["id"] for r in ok], "truth": get(f"truth_{name}"), "mean": get(f"{est}_{name}_mean"),
            "std": get(f"{est}_{name}_std"), "lo68": get(f"{est}_{name}_lo68"), "hi68": get(f"{est}_{name}_hi68")}


def add_cnn_columns(rows, specs, cnn) -> None:
    """Fill the ``cnn_*`` columns of table ``rows`` (matched by id) from one batched prediction on the
    fields of ``specs`` (mean ± σ as the 68 % interval)."""
    from explorer.data import prepare_field
    from explorer.inference.batch import read_spec

    maps = np.stack([prepare_field(read_spec(s), cnn.resolution, "auto").log10 for s in specs])
    mean, std = cnn.predict(maps)
    by_id = {s.id: (m, d) for s, m, d in zip(specs, mean, std)}
    for row in rows:
        if row["id"] in by_id:
            m, d = by_id[row["id"]]
            for j, name in enumerate(PARAM_NAMES):
                row.update({f"cnn_{name}_mean": m[j], f"cnn_{name}_std": d[j], f"cnn_{name}_lo68": m[j] - d[j],
                            f"cnn_{name}_hi68": m[j] + d[j]})


def metrics(a: dict) -> dict:
    err = a["mean"] - a["truth"]
    z = np.abs(err) / np.maximum(a["std"], 1e-12)
    worst = int(np.argmax(z))
    return {"n": int(err.size), "rms_rel_error": float(np.sqrt(np.mean((err / a["truth"]) ** 2))),
            "mean_abs_rel_error": float(np.mean(np.abs(err) / a["truth"])),
            "bias": float(np.mean(err)), "mean_abs_z": float(np.mean(z)),
            "coverage68": float(np.mean((a["lo68"] <= a["truth"]) & (a["truth"] <= a["hi68"]))),
            "worst": {"id": a["id"][worst], "truth": float(a["truth"][worst]), "mean": float(a["mean"][worst]),
                      "z": float(z[worst])}}


def spread(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


def plot(rows, summary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(2, 3)
    for i, name in enumerate(PARAM_NAMES):
        lo, hi = PRIOR[i]
        for j, est in enumerate(ESTIMATORS):
            ax = axes[i, j]
            a = arrays(rows, est, name)
            if not a["id"]:
                ax.text(0.5, 0.5, "not available", ha="center", transform=ax.transAxes)
                continue
            yerr = np.stack([np.maximum(a["mean"] - a["lo68"], 0), np.maximum(a["hi68"] - a["mean"], 0)])
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--")
            ax.errorbar(a["truth"], a["mean"], yerr=yerr, fmt="o", ms=3.5, lw=1, capsize=2,
                        color=("#d95f02", "#1b9e77", "#7570b3")[j])
            s = summary[est][name]
            fmt = (lambda k: f"{s[k]['mean']:.3g} ± {s[k]['std']:.2g}") if est == "vlb" and s["replicates"] > 1 \
                else (lambda k: f"{s[k]['mean']:.3g}")
            ax.text(0.03, 0.97, f"RMS rel. error {fmt('rms_rel_error')}\nbias {fmt('bias')}\n"
                                f"mean |z| {fmt('mean_abs_z')}\n68 % coverage {fmt('coverage68')}",
                    transform=ax.transAxes, va="top", fontsize=8.5,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
            ax.set_xlim(lo - 0.02, hi + 0.02)
            ax.set_ylim(lo - 0.05, hi + 0.05)
            ax.set_xlabel(f"true {PARAM_LABELS[name]}")
            ax.set_ylabel(f"predicted {PARAM_LABELS[name]}")
            if i == 0:
                ax.set_title(ESTIMATORS[est], fontsize=10)
    n = summary["n_fields"]
    fig.suptitle(f"Predicted vs true on {n} held-out simulations (one 64² map each; mean with its 68 % interval; "
                 f"VLB figures: mean ± spread over {summary['vlb']['omega_m']['replicates']} noise replicate(s))",
                 fontsize=10)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--valid", default=None, help="CMD directory of the held-out simulations (default: assets/valid)")
    p.add_argument("--replicates", type=int, nargs="+", default=[0, 1, 2], help="noise replicates of the VLB")
    p.add_argument("--out", type=Path, default=Path("runs/pvt"), help="batch folders OUT/rR (resumable)")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers (0: this process)")
    p.add_argument("--select", default="one-per-sim")
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--cnn", default=None, help="CNN estimator folder (default: WEIGHTS/cnn)")
    args = p.parse_args(argv)

    from explorer.inference.batch import collect, default_options, run_batch
    from explorer.inference.cnn import CnnEstimator, find_cnn

    weights = resolve_weights(args.weights)
    valid = Path(args.valid) if args.valid else resolve_assets() / "valid"
    specs = collect([valid], args.select)
    options = default_options(weights, cnn=False)  # the CNN: evaluated below, in one call
    start = time.perf_counter()
    tables, runs = {}, {}
    for r in args.replicates:
        runs[r] = run_batch(specs, args.out / f"r{r}", {**options, "noise_replicate": r}, workers=args.workers)
        tables[r] = load_rows(args.out / f"r{r}" / "results.csv")
    cnn_dir = args.cnn or find_cnn(weights)
    if cnn_dir:
        cnn = CnnEstimator.load(cnn_dir)
        for rows in tables.values():
            add_cnn_columns(rows, specs, cnn)
        summary_cnn = {"folder": str(cnn_dir), "sigma_scale": list(cnn.sigma_scale)}
    else:
        summary_cnn = None
    first = tables[args.replicates[0]]
    summary = {"weights": str(weights), "valid": str(valid), "n_fields": len(specs), "runs": runs, "cnn_model": summary_cnn,
               "seconds": round(time.perf_counter() - start, 1)}
    for est in ESTIMATORS:
        summary[est] = {}
        for name in PARAM_NAMES:
            reps = [metrics(arrays(tables[r], est, name)) for r in (args.replicates if est == "vlb" else args.replicates[:1])
                    if arrays(tables[r], est, name)["id"]]
            if not reps:
                continue
            summary[est][name] = {k: spread([m[k] for m in reps]) for k in ("rms_rel_error", "mean_abs_rel_error",
                                                                             "bias", "mean_abs_z", "coverage68")}
            summary[est][name]["replicates"] = len(reps)
            summary[est][name]["worst_field"] = max((m["worst"] for m in reps), key=lambda w: w["z"])
    if summary["cnn"]:
        summary["error_ratio_to_cnn"] = {
            est: {name: summary[est][name]["rms_rel_error"]["mean"] / summary["cnn"][name]["rms_rel_error"]["mean"]
                  for name in PARAM_NAMES} for est in ("vlb", "pk") if summary[est]}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    if args.plot:
        plot(first, summary, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
