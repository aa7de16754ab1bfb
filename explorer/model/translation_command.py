"""`explorer fit-start`: fit the few-call sampler's translation-field start on a weights folder's training maps.

    explorer fit-start --data data/train                 # the shipped weights (2-6 minutes on 2 cores)
    explorer fit-start --weights my_weights --data my_cmd --sigma 0.15

Fits :class:`explorer.model.translation.TranslationStart` on every map of the trainer's *train*
split (read from the weights' metadata, as ``explorer calibrate`` does) and stores it in the weights'
``explorer.json`` under "translation_start", with a record of the fit under "translation_start_fit".
The networks are not touched; ``--method sde-translation`` (``explorer sample``, the app's sampler
menu) then samples with it. Re-measure with ``bench/bench_emulator.py --configs sde-translation:4@small``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def fit_start(weights, data, sigma: float = 0.15, split_seed: int = 0, seed: int = 0,
              variance_gain: float = 1.0, modulation: float = 0.5, match_iterations: int = 2,
              maps_per_sim: int = 6, steps: int = 4, degree: int = 3, displacement: float = 2.0) -> dict:
    """Fit and write the translation start of ``weights`` on the train split of ``data``, its spectrum
    then matched to the few-call sampler's output (``match_iterations`` rounds of ``maps_per_sim`` maps
    per training simulation, ``steps`` calls, the weights' default network; 2 maps per simulation left
    the Ω_m response of the 1P set noisier, 0.49 against 0.38 with 6); returns the record."""
    import numpy as np

    from explorer.inference.calibrate import encoded_training_maps
    from explorer.model.translation import TranslationStart
    from explorer.model.weights import load_model, set_metadata

    den = load_model(weights)
    cmd, train_sims, idx, maps = encoded_training_maps(den, data, split_seed)
    start = TranslationStart.fit(cmd.maps_theta()[idx], maps, den.param_ranges, sigma=sigma, seed=seed,
                                 variance_gain=variance_gain, modulation=modulation, degree=degree,
                                 displacement=displacement)
    ratios, per_sim = [], 0
    if match_iterations > 0:
        import torch

        from explorer.model.sampling import Emulator, sample

        emu = Emulator.from_folder(weights)
        net = emu.network(emu.default_network)
        n_features = (degree + 1) * (degree + 2) // 2  # (a fit needs 3 maps per coefficient)
        per_sim = max(maps_per_sim, -(-3 * n_features // len(train_sims)))
        theta = np.repeat(cmd.theta[train_sims], per_sim, axis=0)

        def sample_maps(candidate, th, generator):
            out = [sample(net, th[i:i + 64], generator=generator, method="sde-translation", steps=steps,
                          bf16=emu.bf16, clip=emu.clip, translation_start=candidate) for i in range(0, len(th), 64)]
            return torch.cat(out).numpy()

        start, ratios = start.matched_to_sampler(sample_maps, theta, match_iterations, seed)
    record = {"data": str(data), "maps": int(len(idx)), "train_sims": int(len(train_sims)), "sigma": sigma,
              "seed": seed, "variance_gain": variance_gain, "modulation": modulation, "degree": degree,
              "displacement": displacement,
              "match_iterations": match_iterations, "match_steps": steps, "match_maps_per_sim": per_sim,
              "output_over_model_power_at_mean_theta": [np.round(r, 4).tolist() for r in ratios]}
    set_metadata(weights, "translation_start", start.to_dict())
    set_metadata(weights, "translation_start_fit", record)
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights folder to write into (default: $EXPLORER_WEIGHTS, else the shipped weights)")
    parser.add_argument("--data", type=Path, required=True, help="the CMD directory the weights were trained on")
    parser.add_argument("--sigma", type=float, default=0.15, help="noise level of the first network call (0.15)")
    parser.add_argument("--variance-gain", type=float, default=1.0,
                        help="gain γ of the posterior variance the steps put back (1: exact for Gaussian maps; 0: off)")
    parser.add_argument("--modulation", type=float, default=0.5,
                        help="β: that variance is shaped by the transform's slope to the power β (0.5; 0: uniform)")
    parser.add_argument("--displacement", type=float, default=2.0,
                        help="RMS Zel'dovich displacement [pixels] that strings the start's dense regions on "
                             "filaments (2; 0: the translation field's own random phases, the start of sessions 22-23)")
    parser.add_argument("--match-iterations", type=int, default=2,
                        help="rounds matching the start's spectrum to the sampler's output (2; 0: the maps' own)")
    parser.add_argument("--degree", type=int, default=3, help="total degree of the polynomials in θ (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the spectrum correction's draws")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="split seed if the weights do not record their train split (default 0)")


def run(args) -> int:
    from explorer.paths import resolve_weights

    if not args.sigma > 0:
        raise ValueError(f"--sigma must be > 0, got {args.sigma}")
    if args.variance_gain < 0 or args.modulation < 0 or args.displacement < 0:
        raise ValueError(f"--variance-gain, --modulation and --displacement must be >= 0, got {args.variance_gain}, "
                         f"{args.modulation}, {args.displacement}")
    if args.degree < 0:
        raise ValueError(f"--degree must be >= 0, got {args.degree}")
    if args.match_iterations < 0:
        raise ValueError(f"--match-iterations must be >= 0, got {args.match_iterations}")
    weights = resolve_weights(args.weights)
    record = fit_start(weights, args.data, args.sigma, args.split_seed, args.seed, args.variance_gain,
                       args.modulation, args.match_iterations, degree=args.degree, displacement=args.displacement)
    print(f"{weights}: translation start fitted on {record['maps']} maps of {record['train_sims']} training "
          f"simulations (sigma* = {args.sigma:g}); sample with --method sde-translation")
    return 0
