"""`explorer refit-mean-level WEIGHTS --data DIR`: refit a weights folder's map-mean model on its training maps.

    explorer refit-mean-level weights/small --data data/train              # Ωₘ in its log, log s linear in θ
    explorer refit-mean-level weights --data data/train --scatter constant --omega linear  # as trained

The map-mean model (:class:`explorer.model.denoiser.MeanLevel`: m ~ N(μ(θ), s(θ)²) for each map's
mean level m, normalised units) sets the k = 0 mode of the denoiser's ε̂. It is refitted on every map
of the trainer's *train* split (read from the weights' metadata, as ``explorer calibrate`` does),
μ(θ) by least squares and s(θ) by maximum likelihood; the network is not touched. The previous
model is kept in ``explorer.json`` under ``mean_level_fit.previous``. ``--omega log`` (the default)
takes Ωₘ in its logarithm: a map's mean density is ∝ Ωₘ, and a quadratic in Ωₘ put μ 0.04–0.07 dex
too high at the prior's low-Ωₘ edge (model card, "Map-mean model"). The fast sampler's Gaussian start
has its own map-mean model, refitted (with Ωₘ in its log) by ``explorer calibrate --start-only``.

It changes the denoiser, so what was measured or calibrated with it changes too: re-measure the
emulator (``bench/bench_emulator.py``) and, for the network that inference uses, re-run
``explorer calibrate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def refit_mean_level(weights, data, scatter: str = "theta", split_seed: int = 0, omega: str = "log") -> dict:
    """Refit and write the mean level of ``weights`` on the train split of ``data``; returns the record."""
    from explorer.inference.calibrate import encoded_training_maps
    from explorer.model.denoiser import MeanLevel
    from explorer.model.weights import load_model, set_metadata

    den = load_model(weights)
    cmd, train_sims, idx, maps = encoded_training_maps(den, data, split_seed)
    means = maps.mean(axis=(-2, -1))
    level = MeanLevel(den.param_ranges, omega=omega)
    fit = level.fit(cmd.maps_theta()[idx], means, scatter=scatter)
    record = {"data": str(data), "maps": int(len(idx)), "train_sims": int(len(train_sims)), "scatter": scatter,
              "omega": omega,
              "s_range": fit["s_range"], "rms_of_means": fit["rms_before"],
              "previous": den.metadata.get("mean_level")}
    set_metadata(weights, "mean_level", level.to_dict())
    set_metadata(weights, "mean_level_fit", record)
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", type=Path, help="weights folder to refit in place (e.g. weights/small)")
    parser.add_argument("--data", type=Path, required=True,
                        help="the CMD directory the weights were trained on (e.g. data/train)")
    parser.add_argument("--scatter", choices=("theta", "constant"), default="theta",
                        help="s(θ) with log s linear in θ (default), or one s for every θ")
    parser.add_argument("--omega", choices=("log", "linear"), default="log",
                        help="scale Ωₘ in its log (default) or linearly in μ(θ) and s(θ)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="split seed if the weights do not record their train split (default 0)")


def run(args) -> int:
    record = refit_mean_level(args.weights, args.data, args.scatter, args.split_seed, args.omega)
    lo, hi = record["s_range"]
    print(f"{args.weights}: mean level refitted on {record['maps']} maps of {record['train_sims']} training "
          f"simulations; s(θ) = {lo:.4f} … {hi:.4f} normalised units ({args.scatter} scatter, Ωₘ {args.omega})")
    return 0
