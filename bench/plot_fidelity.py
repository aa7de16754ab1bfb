"""Where in the prior the emulator is good or bad: per-cosmology figures of a bench_emulator.py run.

    python bench/plot_fidelity.py runs/emulator.json --out assets/fidelity_by_cosmology.png

    python bench/plot_fidelity.py runs/emulator50.json --ratio loo --out assets/fidelity_over_prior.png

Four panels over the (Ωₘ, σ₈) prior, one marker per held-out cosmology, coloured by its mean over
the sampler seeds of: the fidelity ratio, the mean log10 Σ offset [dex], the pixel σ ratio and the
ratio of the map-to-map scatter of the maps' mean levels (generated / simulated). The
ratio is χ²_r(generated) over χ²_r of new-seed simulations (``--ratio newseed``: the 20 cosmologies
with twins) or over the cosmology's own leave-one-out floor (``--ratio loo``: every cosmology, e.g.
all 50 of assets/valid). The worst cosmology of each is circled.
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
          ("fidelity_loo", "χ²_r(generated) / leave-one-out floor", "magma_r"),
          ("mean_offset", "mean log10 Σ offset [dex]", "RdBu_r"),
          ("pixel_std_ratio", "pixel σ ratio (generated / true)", "RdBu_r"),
          ("map_mean_scatter_ratio", "map-to-map scatter of the mean level (generated / true)", "RdBu_r"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, help="JSON written by bench_emulator.py --json")
    p.add_argument("--config", default=None, help="sampler configuration (default: the first in the report)")
    p.add_argument("--ratio", choices=("newseed", "loo"), default="newseed",
                   help="fidelity ratio against new-seed simulations (20 cosmologies) or the leave-one-out floor")
    p.add_argument("--out", type=Path, default=Path("assets/fidelity_by_cosmology.png"))
    args = p.parse_args(argv)
    report = json.loads(args.report.read_text())
    name = args.config or next(iter(report["fidelity"]))
    fid = report["fidelity"][name]
    ratio = f"fidelity_{args.ratio}"
    rows = [r for r in fid["per_cosmology"] if r.get(ratio) is not None]
    theta = np.array([r["theta"] for r in rows])
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    panels = [p for p in PANELS if not p[0].startswith("fidelity_") or p[0] == ratio]
    for ax, (key, title, cmap) in zip(axes, panels):
        values = np.array([r[key] for r in rows])
        if key.startswith("fidelity_"):
            norm = LogNorm(vmin=0.3, vmax=3.0)
        elif key == "mean_offset":
            lim = max(np.abs(values).max(), 1e-3)
            norm = TwoSlopeNorm(0.0, -lim, lim)
        elif key == "map_mean_scatter_ratio":  # a ratio of scatters: symmetric in log
            lim = max(np.abs(np.log(values)).max(), 1e-3)
            norm = LogNorm(np.exp(-lim), np.exp(lim))
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
    which = "with new-seed twins" if args.ratio == "newseed" else "(each against its own leave-one-out floor)"
    save(fig, args.out, f"Emulator ({name}) on the {len(rows)} held-out cosmologies {which}; "
                        "each marker the mean over sampler seeds")


if __name__ == "__main__":
    main()
