"""`explorer infer FIELD...`: (Ωₘ, σ₈) constraints from one field or many.

    explorer infer field.npy --truth 0.3 0.8 --json post.json --plot post.png
    explorer infer Maps_Mcdm_PM_LH_z=0.00.npy --select one-per-sim --out runs/valid50   # a batch

One FIELD (.npy, .npz with one array, or FITS; a density Σ or log10 Σ, ``--kind``; of any size
that the model resolution divides) is printed, and written with ``--json``/``--plot``: the
diffusion likelihood, the P(k) baseline and the CNN estimator (when the weights carry one).
Several fields, a folder, a CMD maps file or ``--out`` make a batch (:mod:`.batch`): one row per
field in ``OUT/results.csv``, resumable, on Dask. Bad input (file, truth outside the prior, output
path) raises ValueError before anything is written; the CLI turns it into a message on stderr and
exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from .defaults import (DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_TERMS, FAST_COARSE, FAST_FINE,
                       FAST_NETWORK, FAST_TERMS, PARAM_NAMES)

PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def add_arguments(parser) -> None:
    parser.add_argument("field", nargs="+",
                        help="field file(s): .npy, .npz (one array), .fits/.fit/.fits.gz; or a folder of them, "
                             "or a CMD maps file / folder (a batch, with --out)")
    parser.add_argument("--truth", type=float, nargs=2, metavar=("OMEGA_M", "SIGMA_8"), help="true parameters")
    parser.add_argument("--terms", default=DEFAULT_TERMS,
                        help=f"VLB terms: vlb:K (K strata of the whole bound; default {DEFAULT_TERMS}), L0 (seed paper), "
                             "Lk, or sum:K (L0 .. L(K-1)); a suffix /kK1:W1,K2:W2 weights the residual's Fourier modes "
                             "above K h/Mpc by W (a soft scale cut, e.g. vlb:8/k4:0.7,5.5:0.5; calibrate it first)")
    parser.add_argument("--n-noise", type=int, default=DEFAULT_N_NOISE, help="noise draws per term")
    parser.add_argument("--coarse", type=int, nargs=2, default=DEFAULT_COARSE, metavar=("N_OM", "N_S8"),
                        help="coarse grid over the prior")
    parser.add_argument("--fine", type=int, nargs=2, default=DEFAULT_FINE, metavar=("N_OM", "N_S8"),
                        help="evaluated fine grid around the minimum")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the fixed noise draws (default: a hash of the field, its own draws per field)")
    parser.add_argument("--noise-replicate", type=int, default=0, metavar="R",
                        help="with the default seed: use the hash of the field + R (other honest noise draws)")
    parser.add_argument("--weights", default=None, help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped weights/ next to the package)")
    parser.add_argument("--network", default=None,
                        help="likelihood from this sub-folder network of the weights (e.g. small: ~3x faster, "
                             "calibrated on its own; README, Figures); default: the weights' own network")
    parser.add_argument("--fast", action="store_true",
                        help=f"the fast preset (the app's default): --network {FAST_NETWORK} --terms {FAST_TERMS} "
                             f"--coarse {FAST_COARSE[0]} {FAST_COARSE[1]} --fine {FAST_FINE[0]} {FAST_FINE[1]}: the inference ~6x faster "
                             "than the default, ~40 %% more Ωₘ error (README, Inference); options given explicitly win")
    parser.add_argument("--one-stage", action="store_true",
                        help="the coarse-to-fine scan of the full network even where the weights' small network "
                             "could place the fine window (the default since session 19: its fast preset first, "
                             "then the full network's 4x4 grid on its calibrated 3-sigma box, no coarse scan; "
                             "the same posteriors within 0.03 std on the 50 held-out fields, README Inference)")
    parser.add_argument("--kind", default="auto", choices=("auto", "density", "log10"), help="what FIELD holds")
    parser.add_argument("--raw", action="store_true", help="do not apply the stored calibration temperature")
    parser.add_argument("--no-baseline", action="store_true", help="skip the P(k) baseline")
    parser.add_argument("--per-timestep", action="store_true", help="keep each term's grid in the JSON")
    parser.add_argument("--json", default=None, help="write the posterior grids here")
    parser.add_argument("--plot", default=None, help="write a figure here (.png, .pdf, .svg)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    batch = parser.add_argument_group("many fields (explorer.inference.batch)")
    batch.add_argument("--out", default=None, help="batch: folder for results.csv and fields/ID.json (resumes there)")
    batch.add_argument("--select", default=None,
                       help="maps of a CMD set: all (default), one-per-sim, a slice A:B[:STEP] or a list i,j,k")
    batch.add_argument("--workers", type=int, default=2,
                       help="local Dask worker processes (default 2; 0: one field after another in this process)")
    batch.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--no-cnn", action="store_true", help="skip the CNN estimator")


def _check_output(path: str | None, option: str, suffixes=None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {path}: unsupported file type; use one of {', '.join(suffixes)}")
    if not p.parent.is_dir():
        raise ValueError(f"{option} {path}: directory {p.parent} does not exist")
    if p.is_dir():
        raise ValueError(f"{option} {path} is a directory")
    return p


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _line(name: str, e: dict, truth: float | None) -> str:
    s = (f"{name:8s} = {e['max']:.4f}  68%: [{e['lo68']:.4f}, {e['hi68']:.4f}]  "
         f"95%: [{e['lo95']:.4f}, {e['hi95']:.4f}]  mean {e['mean']:.4f} ± {e['std']:.4f}")
    return s + (f"   (truth {truth:.4f})" if truth is not None else "")


def _options(args) -> dict:
    return {"weights": str(args.weights), "network": args.network, "device": args.device, "kind": args.kind,
            "terms": args.terms,
            "n_noise": args.n_noise, "coarse": list(args.coarse), "fine": list(args.fine), "seed": args.seed,
            "noise_replicate": args.noise_replicate,
            "calibrated": not args.raw, "per_timestep": args.per_timestep, "baseline": not args.no_baseline,
            "cnn": not args.no_cnn, "one_stage": args.one_stage, "window_from": getattr(args, "window_from", None)}


def apply_fast(args) -> None:
    """``--fast``: the fast preset's network, terms and grids wherever the option is at its default."""
    if not getattr(args, "fast", False):
        return
    for name, default, fast in (("network", None, FAST_NETWORK), ("terms", DEFAULT_TERMS, FAST_TERMS),
                                ("coarse", DEFAULT_COARSE, FAST_COARSE), ("fine", DEFAULT_FINE, FAST_FINE)):
        value = getattr(args, name)
        if value is None or (value == default if isinstance(value, str) else list(value) == list(default)):
            setattr(args, name, fast if isinstance(fast, str) else list(fast))


def _is_batch(args) -> bool:
    from explorer.data import parse_maps_filename

    return (args.out is not None or len(args.field) > 1
            or any(Path(f).is_dir() or parse_maps_filename(Path(f).name) for f in args.field))


def run_many(args) -> int:
    """The batch: every field a row of ``--out``/results.csv (module :mod:`.batch`)."""
    from explorer.paths import resolve_weights

    from .batch import collect, likelihood_folder, run_batch, window_network

    if args.out is None:
        raise ValueError("several fields, a folder or a CMD maps file need --out DIR for the results table")
    for opt in ("json", "plot", "truth"):
        if getattr(args, opt) is not None:
            raise ValueError(f"--{opt} is for one field; a batch writes OUT/fields/ID.json "
                             "(truths come from a CMD params file)")
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder")
    specs = collect(args.field, args.select)
    args.weights = resolve_weights(args.weights)
    args.window_from = window_network(args.weights, _options(args))
    from explorer.model import load_model

    load_model(likelihood_folder(args.weights, args.network), device="cpu")  # refuse broken weights before any worker starts
    where = (f"Dask scheduler {args.scheduler}" if args.scheduler else
             "this process" if args.workers == 0 else f"a local Dask cluster of {args.workers} processes")
    print(f"{len(specs)} field(s) -> {out / 'results.csv'}, on {where}", file=sys.stderr)
    summary = run_batch(specs, out, _options(args), workers=args.workers, scheduler=args.scheduler,
                        progress=not args.quiet)
    print(json.dumps(summary))
    return 0 if summary["failed"] == 0 else 1


def run(args) -> int:
    apply_fast(args)
    if _is_batch(args):
        return run_many(args)
    from explorer.data import read_field
    from explorer.model import load_model
    from explorer.paths import resolve_weights

    from .batch import analyse, likelihood_folder, window_network
    from .cnn import CnnEstimator, find_cnn
    from .grid import check_truth  # torch: only when the command runs
    from .pk_baseline import FILENAME as PK_FILENAME
    from .pk_baseline import PkBaseline

    # 1. everything that can be refused, before any work or output
    args.field = args.field[0]
    json_path = _check_output(args.json, "--json", (".json",))
    plot_path = _check_output(args.plot, "--plot", PLOT_SUFFIXES)
    field_path = Path(args.field).resolve()
    for p, opt in ((json_path, "--json"), (plot_path, "--plot")):
        if p is not None and p.resolve() == field_path:
            raise ValueError(f"{opt} would overwrite the input field {args.field}")
    field = read_field(args.field)
    args.weights = resolve_weights(args.weights)
    args.window_from = window_network(args.weights, _options(args))
    loaded = load_model(likelihood_folder(args.weights, args.network), device=args.device)
    truth = check_truth(args.truth, loaded.param_ranges)

    # 2. the baselines are optional: a missing or broken file only warns
    baseline = cnn = None
    pk_file = Path(args.weights) / PK_FILENAME
    if not args.no_baseline and pk_file.is_file():
        try:
            baseline = PkBaseline.load(pk_file)
        except (ValueError, OSError) as err:
            print(f"explorer infer: warning: P(k) baseline skipped ({err})", file=sys.stderr)
    cnn_dir = None if args.no_cnn else find_cnn(args.weights)
    if cnn_dir is not None:
        try:
            cnn = CnnEstimator.load(cnn_dir, device=loaded.device)
        except (ValueError, OSError) as err:
            print(f"explorer infer: warning: CNN estimator skipped ({err})", file=sys.stderr)

    # 3. the diffusion likelihood and the baselines
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=1, desc="network evaluations", unit="eval", file=sys.stderr)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    options = {**_options(args), "progress": progress if bar is not None else None}
    doc = analyse(field, options, truth=truth, models=(loaded, baseline, cnn))
    if bar is not None:
        bar.close()
    post, pk_post, cnn_est = doc["_vlb"], doc["_pk"], doc["cnn"]

    # 4. report
    truth_vals = truth or (None, None)
    print(f"{args.field}: {doc['kind']} field at {loaded.resolution}², terms {post.terms}, "
          f"{post.n_evaluations} network evaluations, {post.seconds:.1f} s, {post.temperature_label()}")
    if post.held_out_label():
        print(f"calibration check: {post.held_out_label()}")
    for name, t in zip(PARAM_NAMES, truth_vals):
        print(_line(name, post.estimates[name], t))
    if truth is not None:
        levels = ", ".join(map(str, post.levels))
        print(f"Δχ² at the truth = {post.delta_chi2_truth():.2f} (1σ/2σ/3σ contours at {levels})")
    if pk_post is not None:
        print("P(k) baseline:")
        for name, t in zip(PARAM_NAMES, truth_vals):
            print("  " + _line(name, pk_post.estimates[name], t))
    if cnn_est is not None:
        print("CNN estimator (Gaussian mean ± σ):")
        for name, t in zip(PARAM_NAMES, truth_vals):
            print("  " + _line(name, cnn_est[name], t))
    if "typicality_z" in post.settings:
        print(f"typicality: z = {post.settings['typicality_z']:+.2f}, p = {post.settings['typicality_p']:.3g} "
              "(the bound at the best fit against held-out simulated maps; |z| > 3 is atypical)")
    first = post.settings.get("window_from")
    if first:
        print(f"fine window: the calibrated 3σ box of the {first['network']} network's fast preset "
              f"({first['n_evaluations']} more evaluations; --one-stage for the coarse-to-fine scan)")
    for note in post.notes:
        print(f"note: {note}")
    if json_path is not None:
        out = {"field": str(args.field), **{k: v for k, v in doc.items() if not k.startswith("_")}}
        _write_text(json_path, json.dumps(out) + "\n")
    if plot_path is not None:
        from .plot import plot_posterior

        pk_overlay = None
        if baseline is not None:
            from explorer.data import prepare_field

            pk_overlay = baseline.posterior(prepare_field(field, loaded.resolution, args.kind).log10,
                                            np.linspace(post.omega_m[0], post.omega_m[-1], 121),
                                            np.linspace(post.sigma_8[0], post.sigma_8[-1], 121), truth=truth)
        plot_posterior(post, plot_path, baseline=pk_overlay, cnn=cnn_est)
    return 0
