"""Is the emulator wrong at a cosmology, or is that cosmology's one reference simulation atypical?

    python bench/bench_corner.py                      # assets/valid cosmology 4, (0.111, 0.953): 3 min
    python bench/bench_corner.py --cosmology 4 --new-seeds 10 --sampler-seeds 0 1000 2000 \
        --json runs/corner.json --plot assets/corner_check.png

The fidelity of README "Figures" compares the emulator's maps with the 15 maps of *one* simulation
per held-out cosmology, against that simulation's leave-one-out floor. The floor holds the scatter
of maps within one simulation only; two simulations of the same θ also differ as whole boxes (their
mean density level above all). This benchmark measures that directly at one cosmology:

1. it runs ``--new-seeds`` more stand-in simulations at the cosmology's exact θ (the valid recipe's
   settings, initial-condition seeds 7,000,000 + k, never used elsewhere);
2. a *perfect emulator* is one of those simulations: its χ²_r against the reference divided by the
   reference's floor is what the fidelity target asks of the emulator (``newseed_vs_reference``),
   and every new simulation against every other one gives the spread among true simulations
   (``newseed_vs_newseed``);
3. the emulator (the weights' default sampler, 15 maps, seed S + c as in ``explorer evaluate``) is
   scored against the reference and against each new simulation the same way.

Prints one JSON report: the mean log10 Σ of every simulation (and the reference's z among the new
ones), the ratios, and the emulator's mean-level offset from the new simulations' mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # prior_plot

from explorer.paths import resolve_assets, resolve_weights  # noqa: E402

SEED_BASE = 7_000_000


def ratios(power_a: np.ndarray, references: dict) -> dict:
    """χ²_r of the maps with power ``power_a`` against each reference, over that reference's floor."""
    from explorer.stats import reduced_chi2

    return {name: float(reduced_chi2(power_a, p).mean() / floor) for name, (p, floor) in references.items()}


def summary(values) -> dict:
    """:func:`explorer.evaluate.spread` of ``values`` with their median and count, rounded for the report."""
    from explorer.evaluate import spread

    v = np.asarray(list(values), dtype=np.float64)
    return {**{k: round(x, 4) for k, x in spread(v).items()}, "median": round(float(np.median(v)), 4), "n": int(v.size)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights folder (default: $EXPLORER_WEIGHTS, shipped)")
    p.add_argument("--cosmology", type=int, default=4, help="index c of the assets/valid cosmology (default 4, the prior's corner)")
    p.add_argument("--new-seeds", type=int, default=10, help="new simulations at its θ (default 10)")
    p.add_argument("--sampler-seeds", type=int, nargs="+", default=[0, 1000, 2000],
                   help="emulator seeds S (cosmology c uses S + c, as explorer evaluate does)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None, help="also draw the figure (PNG)")
    p.add_argument("--from-json", type=Path, default=None, help="only draw --plot from an earlier --json report")
    args = p.parse_args(argv)
    if args.from_json:
        if not args.plot:
            raise SystemExit("--from-json needs --plot")
        plot(json.loads(args.from_json.read_text()), args.plot)
        return 0
    if args.new_seeds < 3:
        raise SystemExit("--new-seeds: at least 3")

    from explorer.data import find_cmd, load_cmd, to_log10
    from explorer.data import MAPS_PER_SIM
    from explorer.model import Emulator
    from explorer.sim.sets import RECIPES, simulate_one
    from explorer.stats import leave_one_out_chi2, power_spectrum

    start = time.perf_counter()
    valid = load_cmd(*find_cmd(resolve_assets() / "valid"))
    c = args.cosmology
    if not 0 <= c < valid.n_sims:
        raise SystemExit(f"--cosmology: 0 … {valid.n_sims - 1}")
    theta = valid.theta[c]
    emu = Emulator.from_folder(resolve_weights(args.weights))
    res = emu.resolution
    recipe = RECIPES["valid"]
    if not np.allclose(recipe.params()[c], theta, rtol=1e-5):
        raise SystemExit("assets/valid does not match the valid recipe: cannot simulate the same θ")
    reference = to_log10(valid.maps, res, indices=list(range(MAPS_PER_SIM * c, MAPS_PER_SIM * (c + 1))),
                         progress=False).astype(np.float64)
    sims = []
    for k in range(args.new_seeds):
        linear = simulate_one(*theta, SEED_BASE + k, recipe.map_size, recipe.pm, "cpu")
        sims.append(to_log10(linear, res, progress=False).astype(np.float64))  # as the reference is read
        print(f"simulation {k + 1}/{args.new_seeds}", file=sys.stderr, flush=True)

    def power(maps):
        return power_spectrum(maps).power

    refs = {"reference": (power(reference), float(leave_one_out_chi2(power(reference)).mean()))}
    for k, s in enumerate(sims):
        ps = power(s)
        refs[f"new{k}"] = (ps, float(leave_one_out_chi2(ps).mean()))
    new_names = [f"new{k}" for k in range(len(sims))]

    # A perfect emulator: a new simulation, against the reference and against the other new ones.
    newseed_vs_reference = [ratios(refs[n][0], {"reference": refs["reference"]})["reference"] for n in new_names]
    newseed_vs_newseed = [ratios(refs[a][0], {b: refs[b]})[b] for a in new_names for b in new_names if a != b]

    emulator = {}
    for s in args.sampler_seeds:
        maps = np.asarray(emu.sample(float(theta[0]), float(theta[1]), n=MAPS_PER_SIM, seed=s + c), dtype=np.float64)
        r = ratios(power(maps), refs)
        emulator[str(s)] = {"vs_reference": round(r["reference"], 4),
                            "vs_new_seeds": summary(r[n] for n in new_names),
                            "mean_log10": round(float(maps.mean()), 4)}
        print(f"sampler seed {s}: {json.dumps(emulator[str(s)])}", file=sys.stderr, flush=True)

    sim_means = np.array([s.mean() for s in sims])
    ref_mean = float(reference.mean())
    emu_means = np.array([e["mean_log10"] for e in emulator.values()])
    report = {
        "weights": str(resolve_weights(args.weights)), "cosmology": c, "theta": [round(float(t), 4) for t in theta],
        "new_seeds": [SEED_BASE + k for k in range(len(sims))],
        "mean_log10": {"reference": round(ref_mean, 4), "new_seeds": [round(float(m), 4) for m in sim_means],
                       "new_seeds_mean": round(float(sim_means.mean()), 4),
                       "new_seeds_std": round(float(sim_means.std(ddof=1)), 4),
                       "reference_z": round(float((ref_mean - sim_means.mean()) / sim_means.std(ddof=1)), 2),
                       "emulator_offset_from_new_seeds": round(float(emu_means.mean() - sim_means.mean()), 4)},
        "floor_reference": round(refs["reference"][1], 4),
        "newseed_vs_reference": summary(newseed_vs_reference),
        "newseed_vs_reference_each": [round(x, 3) for x in newseed_vs_reference],
        "newseed_fail_1p5_vs_reference": int(np.sum(np.array(newseed_vs_reference) > 1.5)),
        "newseed_vs_newseed": summary(newseed_vs_newseed),
        "newseed_vs_newseed_each": [round(x, 3) for x in newseed_vs_newseed],
        "emulator": emulator,
        "emulator_vs_reference": summary(e["vs_reference"] for e in emulator.values()),
        "emulator_vs_new_seeds": summary(e["vs_new_seeds"]["mean"] for e in emulator.values()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.plot:
        plot(report, args.plot)
    return 0


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from prior_plot import save

    m = report["mean_log10"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    new = np.array(m["new_seeds"])
    a.scatter(new, np.zeros_like(new), s=70, c="0.5", label=f"{len(new)} new simulations (same θ)")
    a.scatter([m["reference"]], [0], s=110, c="C3", marker="D", label=f"the reference simulation (z = {m['reference_z']:+.1f})")
    emu = [e["mean_log10"] for e in report["emulator"].values()]
    a.scatter(emu, np.full(len(emu), 1.0), s=70, c="C0", marker="s", label="emulator, 15 maps per sampler seed")
    a.axvline(m["new_seeds_mean"], color="0.5", lw=1, ls="--")
    a.set_ylim(-0.8, 1.8)
    a.set_yticks([0, 1], ["simulations", "emulator"])
    a.set_xlabel("mean log10 Σ of 15 maps")
    a.legend(fontsize=8, loc="upper left")
    a.set_title("The map-mean level", fontsize=10)

    groups = [("a new simulation\nvs the reference", report["newseed_vs_reference_each"], "0.5"),
              ("a new simulation\nvs another new one", report["newseed_vs_newseed_each"], "0.75"),
              ("emulator\nvs the reference", [e["vs_reference"] for e in report["emulator"].values()], "C3"),
              ("emulator vs each\nnew simulation", [e["vs_new_seeds"]["mean"] for e in report["emulator"].values()], "C0")]
    rng = np.random.default_rng(0)
    for i, (label, values, colour) in enumerate(groups):
        v = np.asarray(values)
        b.scatter(i + 0.12 * rng.standard_normal(v.size), v, s=14 if v.size > 20 else 40, c=colour, alpha=0.7)
        b.plot([i - 0.3, i + 0.3], [np.median(v)] * 2, color="k", lw=2)
    b.axhline(1.5, color="C3", ls=":", lw=1)
    b.text(3.45, 1.53, "target 1.5", color="C3", fontsize=8, ha="right", va="bottom")
    b.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=8)
    b.set_ylabel("χ²ᵣ of P(k) / the compared simulation's floor")
    b.set_title("Fidelity ratio (bars: medians; emulator: one point per sampler seed)", fontsize=9)
    t = report["theta"]
    save(fig, out, f"Is the emulator off at (Ωₘ, σ₈) = ({t[0]:.3f}, {t[1]:.3f}), or is the one reference simulation atypical?")


if __name__ == "__main__":
    sys.exit(main())
