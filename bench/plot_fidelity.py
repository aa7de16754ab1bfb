"""Where in the prior the emulator is good or bad: per-cosmology figures of a bench_emulator.py run.

    python bench/plot_fidelity.py runs/emulator.json --out assets/fidelity_by_cosmology.png

Three panels over the (Ω_m, σ_8) prior, one marker per held-out cosmology (the 20 with new-seed
twins), coloured by its mean over the sampler seeds of: χ²_r(generated)/χ²_r(new-seed simulation),
the mean log10 Σ offset [dex], and the pixel σ ratio. The worst cosmology of each is circled.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, TwoSlopeNorm  # noqa: E402
from prior_plot import prior_axes, save  # noqa: E402

PANELS = (("fidelity_newseed", "χ²_r(generated) / χ²_r(new-seed sim)", "magma_r"),
          ("mean_offset", "mean log10 Σ offset [dex]", "RdBu_r"),
          ("pixel_std_ratio", "pixel σ ratio (generated / true)", "RdBu_r"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, help="JSON written by bench_emulator.py --json")
    p.add_argument("--config", default=None, help="sampler configuration (default: the first in the report)")
    p.add_argument("--out", type=Path, default=Path("assets/fidelity_by_cosmology.png"))
    args = p.parse_args(argv)
    report = json.loads(args.report.read_text())
    name = args.config or next(iter(report["fidelity"]))
    fid = report["fidelity"][name]
    rows = fid["per_cosmology"]
    theta = np.array([r["theta"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, (key, title, cmap) in zip(axes, PANELS):
        values = np.array([r[key] for r in rows])
        if key == "fidelity_newseed":
            norm = LogNorm(vmin=0.3, vmax=3.0)
        elif key == "mean_offset":
            lim = max(np.abs(values).max(), 1e-3)
            norm = TwoSlopeNorm(0.0, -lim, lim)
        else:
            lim = max(np.abs(values - 1).max(), 1e-3)
            norm = TwoSlopeNorm(1.0, 1 - lim, 1 + lim)
        sc = ax.scatter(theta[:, 0], theta[:, 1], c=values, cmap=cmap, norm=norm, s=120, edgecolor="k", lw=0.5)
        worst = fid["worst"][key]
        ax.scatter(*worst["theta"], s=420, facecolor="none", edgecolor="k", lw=1.5)
        up = worst["theta"][1] < 0.75  # keep the label inside the box
        ax.annotate(f"worst: {worst['value']:.2f} at ({worst['theta'][0]:.3f}, {worst['theta'][1]:.3f})",
                    worst["theta"], xytext=(14, 16 if up else -22), textcoords="offset points", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.85, "lw": 0})
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.03)
        s = fid["summary"].get(key)
        ax.set_title(f"{title}\nall: {s['mean']:.3f} ± {s['std']:.3f} over seeds {fid['seeds']}" if s else title,
                     fontsize=9)
        prior_axes(ax)
    save(fig, args.out, f"Emulator ({name}) on the {len(rows)} held-out cosmologies with new-seed twins; "
                        "each marker the mean over sampler seeds")


if __name__ == "__main__":
    main()
