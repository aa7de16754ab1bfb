"""`explorer infer FIELD`: (Ωₘ, σ₈) constraints from one field, printed, as JSON and as a figure.

    explorer infer field.npy --truth 0.3 0.8 --json post.json --plot post.png

FIELD is .npy, .npz (one array) or FITS, a density Σ or log10 Σ (``--kind``), of any size that
the model resolution divides. Bad input (file, truth outside the prior, output path) raises
ValueError before anything is written; the CLI turns it into a message on stderr and exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from .defaults import DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_TERMS, PARAM_NAMES

PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def add_arguments(parser) -> None:
    parser.add_argument("field", help="field file: .npy, .npz (one array), .fits/.fit/.fits.gz")
    parser.add_argument("--truth", type=float, nargs=2, metavar=("OMEGA_M", "SIGMA_8"), help="true parameters")
    parser.add_argument("--terms", default=DEFAULT_TERMS,
                        help=f"VLB terms: vlb:K (K strata of the whole bound; default {DEFAULT_TERMS}), L0 (seed paper), "
                             "Lk, or sum:K (L0 .. L(K-1))")
    parser.add_argument("--n-noise", type=int, default=DEFAULT_N_NOISE, help="noise draws per term")
    parser.add_argument("--coarse", type=int, nargs=2, default=DEFAULT_COARSE, metavar=("N_OM", "N_S8"),
                        help="coarse grid over the prior")
    parser.add_argument("--fine", type=int, nargs=2, default=DEFAULT_FINE, metavar=("N_OM", "N_S8"),
                        help="evaluated fine grid around the minimum")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the fixed noise draws (default: a hash of the field, its own draws per field)")
    parser.add_argument("--weights", default=None, help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped weights/ next to the package)")
    parser.add_argument("--kind", default="auto", choices=("auto", "density", "log10"), help="what FIELD holds")
    parser.add_argument("--raw", action="store_true", help="do not apply the stored calibration temperature")
    parser.add_argument("--no-baseline", action="store_true", help="skip the P(k) baseline")
    parser.add_argument("--per-timestep", action="store_true", help="keep each term's grid in the JSON")
    parser.add_argument("--json", default=None, help="write the posterior grids here")
    parser.add_argument("--plot", default=None, help="write a figure here (.png, .pdf, .svg)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


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


def run(args) -> int:
    from explorer.data import prepare_field, read_field
    from explorer.model import load_model
    from explorer.paths import resolve_weights

    from .grid import check_truth, infer  # torch: only when the command runs
    from .pk_baseline import FILENAME as PK_FILENAME
    from .pk_baseline import PkBaseline

    # 1. everything that can be refused, before any work or output
    json_path = _check_output(args.json, "--json", (".json",))
    plot_path = _check_output(args.plot, "--plot", PLOT_SUFFIXES)
    field_path = Path(args.field).resolve()
    for p, opt in ((json_path, "--json"), (plot_path, "--plot")):
        if p is not None and p.resolve() == field_path:
            raise ValueError(f"{opt} would overwrite the input field {args.field}")
    field = read_field(args.field)
    args.weights = resolve_weights(args.weights)
    loaded = load_model(args.weights, device=args.device)
    truth = check_truth(args.truth, loaded.param_ranges)
    prepared = prepare_field(field, loaded.resolution, args.kind)

    # 2. the diffusion likelihood
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=1, desc="network evaluations", unit="eval", file=sys.stderr)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    post = infer(loaded, prepared, terms=args.terms, n_noise=args.n_noise, coarse=tuple(args.coarse),
                 fine=tuple(args.fine), seed=args.seed, calibrated=not args.raw, truth=truth,
                 per_timestep=args.per_timestep, progress=progress if bar is not None else None)
    if bar is not None:
        bar.close()

    # 3. the P(k) baseline (optional: a missing or broken file only warns)
    pk_post = pk_overlay = None
    pk_file = Path(args.weights) / PK_FILENAME
    if not args.no_baseline and pk_file.is_file():
        try:
            baseline = PkBaseline.load(pk_file)
            pk_post = baseline.posterior(prepared.log10, truth=truth)
            if plot_path is not None:
                pk_overlay = baseline.posterior(prepared.log10, np.linspace(post.omega_m[0], post.omega_m[-1], 121),
                                                np.linspace(post.sigma_8[0], post.sigma_8[-1], 121), truth=truth)
        except (ValueError, OSError) as err:
            print(f"explorer infer: warning: P(k) baseline skipped ({err})", file=sys.stderr)

    # 4. report
    truth_vals = truth or (None, None)
    print(f"{args.field}: {prepared.kind} field at {loaded.resolution}², terms {post.terms}, "
          f"{post.n_evaluations} network evaluations, {post.seconds:.1f} s, {post.temperature_label()}")
    for name, t in zip(PARAM_NAMES, truth_vals):
        print(_line(name, post.estimates[name], t))
    if truth is not None:
        levels = ", ".join(map(str, post.levels))
        print(f"Δχ² at the truth = {post.delta_chi2_truth():.2f} (1σ/2σ/3σ contours at {levels})")
    if pk_post is not None:
        print("P(k) baseline:")
        for name, t in zip(PARAM_NAMES, truth_vals):
            print("  " + _line(name, pk_post.estimates[name], t))
    for note in post.notes:
        print(f"note: {note}")
    if json_path is not None:
        doc = {"field": str(args.field), "kind": prepared.kind, "weights": str(args.weights),
               "posterior": post.to_dict(), "pk_baseline": pk_post.to_dict() if pk_post is not None else None}
        _write_text(json_path, json.dumps(doc) + "\n")
    if plot_path is not None:
        from .plot import plot_posterior

        plot_posterior(post, plot_path, baseline=pk_overlay)
    return 0
