"""Fidelity of several trained networks per sampler seed, from ``bench/bench_emulator.py --json`` reports
(issue #14 item 3: how much retraining moves the figures, README "Training recipe per compute hour").

    python bench/plot_seed_spread.py --out assets/training_seeds.png \\
        "training seed 0 (shipped)=runs/scratch/eval_shipped.json:shipped" \\
        "training seed 1=runs/scratch/eval_seeds.json:seed1" "training seed 2=runs/scratch/eval_seeds.json:seed2" \\
        "1,000 cosmologies, 4,000 steps=runs/scratch/eval_d1000.json:d1000s4k"

Each argument is LABEL=REPORT:NETWORK (the ``@NETWORK`` of the report's configuration). Two panels: the
fidelity ratio against new-seed simulations and against the leave-one-out floor (20 twin cosmologies),
one dot per sampler seed and the mean; the band is the mean ± std over the networks whose label starts
with "training seed" (the spread of retraining the same recipe). Prints the numbers as JSON.
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PANELS = (("fidelity_newseed", "χ²ᵣ(generated) / χ²ᵣ(new-seed sims)"),
          ("fidelity_loo", "χ²ᵣ(generated) / leave-one-out floor"))


def load(spec: str) -> tuple[str, dict]:
    label, rest = spec.split("=", 1)
    report, network = rest.rsplit(":", 1)
    fidelity = json.load(open(report))["fidelity"]
    match = [v for k, v in fidelity.items() if k.endswith("@" + network)]
    if len(match) != 1:
        raise SystemExit(f"{report}: no single configuration on network {network!r} ({sorted(fidelity)})")
    return label, match[0]["summary"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("networks", nargs="+", help="LABEL=REPORT:NETWORK")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    rows = [load(spec) for spec in args.networks]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.55 * len(rows) + 1.8), sharey=True)
    summary = {}
    for ax, (key, title) in zip(axes, PANELS):
        seeds = [np.mean(list(s[key]["per_seed"].values())) for label, s in rows if label.startswith("training seed")]
        if len(seeds) > 1:
            m, sd = float(np.mean(seeds)), float(np.std(seeds, ddof=1))
            ax.axvspan(m - sd, m + sd, color="0.85", label=f"training seeds: {m:.3f} ± {sd:.3f}")
            ax.axvline(m, color="0.5", lw=1)
            summary[key] = {"training_seeds_mean": round(m, 4), "training_seeds_std": round(sd, 4)}
        for y, (label, s) in enumerate(rows):
            values = list(s[key]["per_seed"].values())
            ax.plot(values, [y] * len(values), "o", color="C0", alpha=0.5, ms=5)
            ax.plot(np.mean(values), y, "D", color="C3", ms=7)
            summary.setdefault("networks", {}).setdefault(label, {})[key] = [round(v, 4) for v in values]
        ax.set_yticks(range(len(rows)), [label for label, _ in rows])
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylim(len(rows) - 0.5, -0.8)  # the first network on top, room for the legend
    fig.suptitle("Small network, 20 twin cosmologies: dots = sampler seeds 0 / 1000 / 2000, diamond = mean",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
