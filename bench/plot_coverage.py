"""Where in the prior the calibrated likelihood is off: per-field z of a bench_coverage.py run.

    python bench/plot_coverage.py runs/coverage.json --out assets/coverage_by_field.png
    python bench/plot_coverage.py runs/cov_r0.json runs/cov_r1.json runs/cov_r2.json   # one run per replicate

Two panels over the (Ωₘ, σ₈) prior, one marker per evaluation field at its true θ, coloured by
z = (posterior mean − truth)/posterior std of Ωₘ (left) and σ₈ (right), averaged over the noise
replicates; fields with |z| > 2 on average are labelled with their z per replicate. Several reports
(e.g. one ``--noise-seeds R`` run per replicate) are pooled; their settings must agree, and the
coverage in the titles is recomputed from the per-field rows.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from prior_plot import prior_axes, save  # noqa: E402

from explorer.evaluate import spread  # noqa: E402


def pool(reports: list[dict]) -> tuple[dict, list]:
    """({map index: its rows in replicate order}, the replicates) of bench_coverage reports, which
    must agree in their settings and together hold every field once per replicate."""
    for key in ("terms", "temperatures", "n_fields"):
        values = {json.dumps(r.get(key), sort_keys=True) for r in reports}
        if len(values) > 1:
            raise SystemExit(f"the reports differ in {key!r}: {sorted(values)}")
    rows = [row for r in reports for row in r["fields"]]
    replicates = sorted({row["noise_replicate"] for row in rows})
    if len(rows) != len({(row["map"], row["noise_replicate"]) for row in rows}):
        raise SystemExit("a field and noise replicate appears in two reports")
    fields = {}
    for row in sorted(rows, key=lambda row: row["noise_replicate"]):
        fields.setdefault(row["map"], []).append(row)
    if {len(v) for v in fields.values()} != {len(replicates)}:
        raise SystemExit("not every field has every noise replicate")
    return fields, replicates


def coverage68(fields: dict, name: str) -> np.ndarray:
    """The 68 % coverage of parameter ``name`` per replicate (fraction of fields whose interval holds the truth)."""
    return np.array([[row[name]["in68"] for row in rows] for rows in fields.values()], dtype=float).mean(axis=0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+", help="JSON written by bench_coverage.py --json")
    p.add_argument("--out", type=Path, default=Path("assets/coverage_by_field.png"))
    args = p.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    fields, replicates = pool(reports)
    theta = np.array([rows[0]["truth"] for rows in fields.values()])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (name, label) in zip(axes, (("omega_m", "Ωₘ"), ("sigma_8", "σ₈"))):
        z = np.array([[r[name]["z"] for r in rows] for rows in fields.values()])  # (fields, replicates)
        mean = z.mean(axis=1)
        lim = max(3.0, np.abs(mean).max())
        sc = ax.scatter(theta[:, 0], theta[:, 1], c=mean, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim),
                        s=90, edgecolor="k", lw=0.5)
        for t, zi in zip(theta, z):
            if abs(zi.mean()) > 2:
                right, top = t[0] > 0.38, t[1] > 0.95  # keep the label inside the box
                ax.annotate("z = " + ", ".join(f"{v:+.1f}" for v in zi), t, textcoords="offset points",
                            xytext=(-10 if right else 10, -14 if top else 8), ha="right" if right else "left",
                            fontsize=7, bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85, "lw": 0})
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.03, label=f"z of {label} (mean over replicates)")
        cov = spread(coverage68(fields, name))
        ax.set_title(f"{label}: (mean − truth)/std per field; 68 % coverage {cov['mean']:.0%} ± {cov['std']:.0%} "
                     f"over {len(replicates)} noise replicates", fontsize=9)
        prior_axes(ax, "true ")
    terms = reports[0].get("terms")
    save(fig, args.out, f"Calibrated VLB likelihood{f' ({terms})' if terms else ''} on {len(fields)} held-out fields (assets/valid)")


if __name__ == "__main__":
    main()
