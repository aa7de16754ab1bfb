"""`explorer calibrate`: the command line of :mod:`explorer.inference.calibrate` (see its docstring).

    explorer calibrate --weights weights --data data/train --valid assets/valid --json calib.json
    explorer calibrate --start-only                  # P(k) baseline and Gaussian start only (seconds)
    explorer calibrate --from-grids runs/grids.npz   # refit from saved surfaces (seconds)

Nothing heavy is imported before the arguments are parsed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .defaults import DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_START_SIGMA, DEFAULT_TERMS


def add_arguments(parser) -> None:
    parser.add_argument("--weights", default=None, help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped weights/ next to the package); the calibration is written here")
    parser.add_argument("--data", default="data/train", help="training CMD directory (train/test split)")
    parser.add_argument("--valid", default="assets/valid", help="evaluation CMD directory (never trained on)")
    parser.add_argument("--terms", default=DEFAULT_TERMS, help=f"VLB terms: vlb:K (default {DEFAULT_TERMS}), L0, Lk or sum:K, optionally "
                        "with scale weights, e.g. vlb:8/k4:0.7,5.5:0.5")
    parser.add_argument("--n-noise", type=int, default=DEFAULT_N_NOISE, help="noise draws per term")
    parser.add_argument("--coarse", type=int, nargs=2, default=DEFAULT_COARSE, metavar=("N_OM", "N_S8"),
                        help="coarse grid over the prior (default %(default)s)")
    parser.add_argument("--fine", type=int, nargs=2, default=DEFAULT_FINE, metavar=("N_OM", "N_S8"),
                        help="evaluated fine grid around the minimum (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="field-choice seed (which map of each simulation)")
    parser.add_argument("--maps-per-sim", type=int, default=1, metavar="K",
                        help="calibration fields per calibration simulation (default 1; K steadies the "
                             "temperature fit at K times the cost)")
    parser.add_argument("--noise-seed", type=int, default=None,
                        help="one noise seed for every field (default: each field's own, a hash of its values)")
    parser.add_argument("--split-seed", type=int, default=0, help="split seed if the weights do not record it")
    parser.add_argument("--max-fields", type=int, default=None, help="limit each split (quick runs)")
    parser.add_argument("--no-write", action="store_true", help="measure only; leave the weights folder alone")
    parser.add_argument("--json", default=None, help="also write the report to this file")
    parser.add_argument("--start-sigma", type=float, default=DEFAULT_START_SIGMA,
                        help="noise level sigma* where the fast sampler's Gaussian start hands over to the network")
    parser.add_argument("--grids", default=None, metavar="FILE.npz",
                        help="keep every field's raw VLB surface here (for --from-grids)")
    parser.add_argument("--from-grids", default=None, metavar="FILE.npz",
                        help="refit and re-evaluate from saved surfaces, without network evaluations")
    parser.add_argument("--workers", type=int, default=0,
                        help="compute the fields' posteriors on a local Dask cluster of N processes (default 0: here)")
    parser.add_argument("--scheduler", default=None, help="... or on the Dask cluster at this address")
    parser.add_argument("--start-only", action="store_true",
                        help="only fit the P(k) baseline and the Gaussian start (seconds), no coverage run")


def run(args) -> int:
    from explorer.paths import resolve_weights

    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    for flag, path in (("--json", args.json), ("--grids", args.grids)):
        if path is not None and not Path(path).parent.is_dir():
            raise ValueError(f"{flag}: directory {Path(path).parent} does not exist")
    if args.from_grids is not None and not Path(args.from_grids).is_file():
        raise ValueError(f"--from-grids: no file {args.from_grids}")
    from .calibrate import calibrate

    report = calibrate(resolve_weights(args.weights), args.data, args.valid, terms=args.terms, n_noise=args.n_noise,
                       coarse=tuple(args.coarse), fine=tuple(args.fine), seed=args.seed,
                       noise_seed=args.noise_seed,
                       split_seed=args.split_seed, max_fields=args.max_fields, write=not args.no_write,
                       start_sigma=args.start_sigma, skip_coverage=args.start_only,
                       grids=args.grids, from_grids=args.from_grids, workers=args.workers, scheduler=args.scheduler,
                       maps_per_sim=args.maps_per_sim)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        Path(args.json).write_text(text + "\n")
    return 0
