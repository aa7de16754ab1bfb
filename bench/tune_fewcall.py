"""The few-call sampler's tuning figures, on the training set's held-out simulations; prints JSON.

    explorer fit-start --weights /tmp/w_b05 --data data/train --modulation 0.5    # a variant, in a copy
    python bench/tune_fewcall.py --data data/train --weights weights /tmp/w_b05 --seeds 0 1000 2000

Choices of the few-call sampler (``sde-translation``: its start's σ*, gain, shaping) are made here,
never on the evaluation set (``assets/valid``, ``assets/twins``). For each weights folder, side by
side in one run: the sampler's maps at each held-out simulation's θ of ``--data`` (the trainer's test
and validation simulations, 50 of the 500 training-recipe ones; ``--n-generated`` maps per seed) against
that simulation's 15 maps: χ² fidelity against the leave-one-out floor, small-scale scatter ratio, pixel
skewness and kurtosis, regions above 1σ and 2σ (:func:`explorer.evaluate.non_gaussianity`) and how
large the regions above 1σ are, and the generated over simulated mean P(k) in k bands; the
simulations' own statistics once.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from explorer.evaluate import fidelity, load_reference, non_gaussianity, over_seeds
from explorer.inference.calibrate import training_split
from explorer.model import Emulator
from explorer.stats import connected_regions, power_spectrum

BANDS = [(0.25, 1.0), (1.0, 3.0), (3.0, 4.5), (4.5, 6.0), (6.0, 9.0)]  # h/Mpc
SIZE_BINS = {"1": (1, 1), "2": (2, 2), "3-5": (3, 5), "6-20": (6, 20), "21+": (21, np.inf)}  # pixels, inclusive


def band_ratios(generated: np.ndarray, truth: np.ndarray) -> dict:
    """Mean P(k) of ``generated`` over that of ``truth`` (both (N, n, n) log10 Σ) in each of :data:`BANDS`."""
    pg, pt = power_spectrum(generated), power_spectrum(truth)
    k = np.asarray(pg.k)
    out = {}
    for lo, hi in BANDS:
        sel = (k >= lo) & (k < hi)
        if sel.any():
            out[f"{lo:g}-{hi:g}"] = float(np.asarray(pg.power)[:, sel].mean() / np.asarray(pt.power)[:, sel].mean())
    return out


def region_sizes(maps: np.ndarray, nu: float = 1.0) -> dict:
    """Regions above μ + ν σ per map (``maps (N, n, n)``, each its own μ, σ; 4-connected, periodic, as
    :func:`explorer.evaluate.non_gaussianity`) by size in pixels: {bin of :data:`SIZE_BINS`: mean count}."""
    counts = dict.fromkeys(SIZE_BINS, 0)
    for m in np.asarray(maps, dtype=np.float64):
        sizes = connected_regions(m, m.mean() + nu * m.std()).sizes
        for name, (lo, hi) in SIZE_BINS.items():
            counts[name] += int(np.count_nonzero((sizes >= lo) & (sizes <= hi)))
    return {name: c / len(maps) for name, c in counts.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="the CMD directory the weights were trained on")
    p.add_argument("--weights", nargs="+", required=True, help="weights folders to compare (each with a start)")
    p.add_argument("--method", default="sde-translation:4", help="sampler METHOD:STEPS (sde-translation:4)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1000, 2000])
    p.add_argument("--n-generated", type=int, default=15)
    p.add_argument("--n-sims", type=int, default=50, help="held-out simulations used (the first N)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    method, steps = args.method.split(":")
    emus = {w: Emulator.from_folder(w) for w in args.weights}
    first = next(iter(emus.values()))
    den = first.network(first.default_network)
    from explorer.data import find_cmd, load_cmd

    _, held = training_split(load_cmd(*find_cmd(args.data)), den.metadata, with_val=True)
    held = held[:args.n_sims]
    if not len(held):
        raise SystemExit(f"{args.data} has no simulation outside the weights' training split to tune on")
    theta, truth = load_reference(args.data, first.resolution, sims=held)
    flat_truth = truth.reshape(-1, *truth.shape[-2:])
    out = {"data": str(args.data), "held_out_sims": held.tolist(), "method": args.method, "seeds": args.seeds,
           "simulations": {**non_gaussianity(flat_truth), "regions_above_1sigma_by_size": region_sizes(flat_truth)},
           "weights": {}}
    print(json.dumps({"simulations": out["simulations"], "n_sims": len(held)}), flush=True)
    for folder, emu in emus.items():
        start, generated, results = time.perf_counter(), [], {}

        def emulate(om, s8, n, seed, emu=emu):
            maps = emu.sample(om, s8, n=n, seed=seed, method=method, steps=int(steps))
            generated.append(maps)
            return maps

        for seed in args.seeds:
            results[seed] = fidelity(emulate, theta, truth, None, n_generated=args.n_generated, seed=seed)
        gen = np.concatenate(generated)
        summary = over_seeds(results)["summary"]
        row = {"fidelity_loo": summary.get("fidelity_loo"), "small_scale_scatter_ratio": summary.get("small_scale_scatter_ratio"),
               "non_gaussianity": non_gaussianity(gen), "regions_above_1sigma_by_size": region_sizes(gen),
               "power_ratio": band_ratios(gen, flat_truth),
               "seconds": round(time.perf_counter() - start, 1)}
        out["weights"][folder] = row
        print(json.dumps({"weights": folder, **row}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
