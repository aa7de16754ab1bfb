"""Figure: the few-call sampler (``sde-translation``, 4 calls) beside the default (14 calls) and the simulations.

    python bench/plot_fewcall.py --out assets/fewcall.png          # shipped weights, bundled assets (~1 min)

Rows: three held-out cosmologies of ``assets/valid``: (0.237, 0.911), (0.318, 0.691) (the few-call
sampler's worst against the leave-one-out floor before its start was matched to it) and the prior's corner
(0.111, 0.953), whose one reference simulation is a 3.3σ atypical box (README). Columns: a simulated map, a map of the default sampler and one of the few-call sampler
(same colour scale per row), then the ratio of the generated mean power spectrum to the simulation's
(15 maps each; the band is the simulation's ±1σ of the mean) and the pixel histograms.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

COSMOLOGIES = (0, 16, 4)  # indices into assets/valid: (0.237, 0.911), (0.318, 0.691), the corner (0.111, 0.953)
SAMPLERS = (("default, 14 calls", None, None), ("few-call, 4 calls", "sde-translation", 4))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--assets", default="assets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cosmologies", type=int, nargs="+", default=list(COSMOLOGIES),
                        help="indices into valid/ (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("assets/fewcall.png"))
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker.NullFormatter)

    from explorer.evaluate import _reference_sets
    from explorer.model.sampling import Emulator
    from explorer.stats import power_spectrum

    emu = Emulator.from_folder(args.weights)
    theta, truth = _reference_sets(args.assets, emu.resolution, "valid", None)
    if max(args.cosmologies) >= len(theta) or min(args.cosmologies) < 0:
        raise SystemExit(f"--cosmologies: {args.assets}/valid has {len(theta)} cosmologies")
    fig, axes = plt.subplots(len(args.cosmologies), 5, figsize=(17, 3.4 * len(args.cosmologies)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.3, 1.3]})
    for row, c in enumerate(args.cosmologies):
        om, s8 = (float(v) for v in theta[c])
        sims = truth[c].astype(np.float64)
        maps = [emu.sample(om, s8, n=15, seed=args.seed + c, method=m, steps=s) for _, m, s in SAMPLERS]
        lo, hi = np.percentile(sims, [0.5, 99.5])
        for col, (img, title) in enumerate(zip([sims[0]] + [m[0] for m in maps],
                                               ["simulation"] + [name for name, *_ in SAMPLERS])):
            ax = axes[row, col]
            ax.imshow(img, vmin=lo, vmax=hi, cmap="magma", origin="lower")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{title}\nΩₘ = {om:.3f}, σ₈ = {s8:.3f}" if col == 0 else title, fontsize=10)
        ps = power_spectrum(sims, 25.0)
        mean, err = ps.power.mean(axis=0), ps.power.std(axis=0, ddof=1) / np.sqrt(len(sims))
        ax = axes[row, 3]
        ax.fill_between(ps.k, 1 - err / mean, 1 + err / mean, color="0.85", label="simulation ±1σ of the mean")
        for (name, *_), m, color in zip(SAMPLERS, maps, ("tab:blue", "tab:orange")):
            ax.plot(ps.k, power_spectrum(m.astype(np.float64), 25.0).power.mean(axis=0) / mean, color=color, label=name)
        ax.axhline(1, color="k", lw=0.6)
        ax.set_xscale("log"), ax.set_ylim(0.6, 1.4), ax.set_xlabel("k [h/Mpc]"), ax.set_ylabel("P_gen / P_sim")
        ax.set_xticks([0.3, 1, 3, 10]), ax.set_xticklabels(["0.3", "1", "3", "10"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax = axes[row, 4]
        bins = np.linspace(lo - 0.3, hi + 0.3, 50)
        ax.hist(sims.ravel(), bins, density=True, histtype="stepfilled", color="0.85", label="simulation")
        for (name, *_), m, color in zip(SAMPLERS, maps, ("tab:blue", "tab:orange")):
            ax.hist(m.ravel(), bins, density=True, histtype="step", color=color, label=name)
        ax.set_yscale("log"), ax.set_xlabel("log10 Σ"), ax.set_ylabel("pixel density")
        if row == 0:
            axes[row, 3].legend(fontsize=8), axes[row, 4].legend(fontsize=8)
    fig.suptitle(f"Few-call sampler vs default (small network, sampler seed {args.seed} + cosmology index; "
                 "15 maps per power spectrum and histogram)", fontsize=12)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
