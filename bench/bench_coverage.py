"""Coverage and precision of the shipped, calibrated likelihood over several noise seeds.

    python bench/bench_coverage.py --noise-seeds 0 1 2 --json runs/coverage.json
    python bench/bench_coverage.py --network small --terms vlb:8   # the small network's own calibration

The evaluation half of ``explorer calibrate``, repeated with other noise draws and without refitting
anything: the temperatures stored in ``WEIGHTS/explorer.json`` are used as they are. Fields: one map
of each of the 50 ``assets/valid`` simulations (the same maps as ``explorer calibrate``: map
``15 s + r``, r drawn with field-choice seed 1), never trained on.

Noise replicate ``r`` draws the VLB terms' fixed noise from seed ``field_seed(field) + r`` (``r = 0``
is what ``explorer infer`` does by default), so each replicate is an honest re-run of the
likelihood with other Monte-Carlo draws. The P(k) baseline has no noise: one row.

Prints one JSON line per field and replicate (``"row": "field"``), one per replicate
(``"row": "seed"``: coverage, bias, relative error, mean |z|), then the summary: every figure as
mean ± standard deviation over replicates, with the worst replicate and the worst fields (largest
|z|) named.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from explorer.evaluate import spread
from explorer.params import PARAM_NAMES
from explorer.paths import resolve_assets, resolve_weights

FIGURES = ("coverage68", "coverage95", "bias", "rel_error", "mean_abs_z")


def summarise(per_seed: dict, per_field: list, names) -> dict:
    """Mean ± spread over replicates of each figure; the worst replicate per 68 % coverage; the fields
    with the largest |z| (mean over replicates)."""
    out = {}
    for name in names:
        out[name] = {f: spread([m[name][f] for m in per_seed.values()]) for f in FIGURES}
        cov = {s: m[name]["coverage68"] for s, m in per_seed.items()}
        worst = max(cov, key=lambda s: abs(cov[s] - 0.683))
        out[name]["worst_seed_coverage68"] = {"noise_replicate": int(worst), "coverage68": cov[worst]}
    for key in ("coverage_2d_1sigma", "coverage_2d_2sigma"):
        out[key] = spread([m[key] for m in per_seed.values()])
    truth = {row["map"]: row["truth"] for row in per_field}
    for name in names:
        z = {}
        for row in per_field:
            z.setdefault(row["map"], []).append(row[name]["z"])
        ranked = sorted(z, key=lambda m: -abs(np.mean(z[m])))[:3]
        out[name]["worst_fields"] = [{"map": int(m), "truth": truth[m], "z_per_replicate": [round(v, 2) for v in z[m]]}
                                     for m in ranked]
    return out


def field_row(map_index, theta, post, replicate) -> dict:
    row = {"row": "field", "map": int(map_index), "noise_replicate": int(replicate),
           "truth": [float(t) for t in theta], "delta_chi2_truth": round(post.delta_chi2_truth(), 3)}
    for j, name in enumerate(PARAM_NAMES):
        e = post.estimates[name]
        row[name] = {"mean": round(e["mean"], 5), "std": round(e["std"], 5),
                     "z": round((e["mean"] - theta[j]) / max(e["std"], 1e-12), 3),
                     "in68": bool(e["lo68"] <= theta[j] <= e["hi68"])}
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights folder (default: --weights, $EXPLORER_WEIGHTS, shipped)")
    p.add_argument("--network", default=None,
                   help="the likelihood's network: a sub-folder of --weights (e.g. small, as `explorer infer --network`); "
                        "the P(k) baseline is --weights' own")
    p.add_argument("--valid", default=None, help="evaluation CMD directory (default: the bundled assets/valid)")
    p.add_argument("--noise-seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="noise replicates r: field f uses seed field_seed(f) + r (0 = explorer infer's default)")
    p.add_argument("--max-fields", type=int, default=None, help="first N fields only (quick runs)")
    p.add_argument("--terms", default=None,
                   help="likelihood terms (default: explorer infer's); the weights' calibration must be for them")
    p.add_argument("--coarse", type=int, nargs=2, default=None, metavar=("N_OM", "N_S8"),
                   help="coarse grid points per axis (default: explorer infer's)")
    p.add_argument("--fine", type=int, nargs=2, default=None, metavar=("N_OM", "N_S8"),
                   help="fine grid points per axis (default: explorer infer's)")
    p.add_argument("--window-from", default=None, metavar="NETWORK",
                   help="the app's refinement: NETWORK's fast preset first (e.g. small), its calibrated 3σ box "
                        "(explorer.inference.grid.window_from) as the fine window, no coarse scan")
    p.add_argument("--json", type=Path, default=None, help="also write the whole report here")
    args = p.parse_args(argv)
    if len(args.noise_seeds) < 1 or len(set(args.noise_seeds)) != len(args.noise_seeds):
        raise SystemExit("--noise-seeds: give distinct integers")

    from explorer.data import find_cmd, load_cmd
    from explorer.inference import infer
    from explorer.inference.defaults import (DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_TERMS, FAST_COARSE,
                                             FAST_FINE, FAST_TERMS)
    from explorer.inference.grid import calibration_temperature, window_from
    from explorer.inference.batch import likelihood_folder
    from explorer.inference.calibrate import _fields, coverage_metrics, one_map_per_simulation
    from explorer.inference.pk_baseline import FILENAME, PkBaseline
    from explorer.inference.vlb import field_seed
    from explorer.model import load_model

    weights = resolve_weights(args.weights)
    valid = Path(args.valid) if args.valid else resolve_assets() / "valid"
    if not (weights / FILENAME).is_file():  # before the long part, not after it
        raise SystemExit(f"no P(k) baseline {weights / FILENAME}: for a sub-network give its parent folder and "
                         "--network NAME, else fit one with `explorer calibrate`")
    baseline = PkBaseline.load(weights / FILENAME)
    loaded = load_model(likelihood_folder(weights, args.network))
    first = None if args.window_from is None else load_model(likelihood_folder(weights, args.window_from))
    cmd = load_cmd(*find_cmd(valid))
    sims = np.arange(cmd.n_sims)[:args.max_fields]
    idx = one_map_per_simulation(sims, 1)  # explorer calibrate's evaluation fields (field-choice seed 0 + 1)
    maps, thetas = _fields(cmd, idx, loaded.resolution), cmd.theta[sims]

    terms = args.terms or DEFAULT_TERMS
    coarse, fine = tuple(args.coarse or DEFAULT_COARSE), tuple(args.fine or DEFAULT_FINE)
    note = calibration_temperature(loaded.metadata, terms, DEFAULT_N_NOISE)[2]
    if note:  # the figures are of the calibrated likelihood: refuse a raw one
        raise SystemExit(f"{weights}: {note}")
    start = time.perf_counter()
    per_seed, per_field, posts_by_seed, seconds = {}, [], {}, []
    for r in args.noise_seeds:
        posts = []
        for i, field, theta in zip(idx, maps, thetas):
            seed = (field_seed(field) + r) % 2**63
            window, spent = None, 0.0
            if first is not None:  # the fast preset's posterior places the fine window
                fast = infer(first, field, kind="log10", truth=tuple(theta), seed=seed, terms=FAST_TERMS,
                             coarse=FAST_COARSE, fine=FAST_FINE)
                window, spent = window_from(fast), fast.seconds
            post = infer(loaded, field, kind="log10", truth=tuple(theta), seed=seed, terms=terms, coarse=coarse,
                         fine=fine, window=window)
            posts.append(post)
            seconds.append(post.seconds + spent)
            row = field_row(i, theta, post, r)
            per_field.append(row)
            print(json.dumps(row), flush=True)
        m = coverage_metrics(posts)
        per_seed[r] = m
        posts_by_seed[r] = posts
        print(json.dumps({"row": "seed", "noise_replicate": r, **m}), flush=True)
    pk_posts = [baseline.posterior(f, truth=tuple(t)) for f, t in zip(maps, thetas)]
    pk = coverage_metrics(pk_posts)
    # How often the diffusion estimate beats P(k) per field (|mean − truth|, Ωₘ), per replicate.
    pk_err = np.array([abs(q.estimates["omega_m"]["mean"] - t[0]) for q, t in zip(pk_posts, thetas)])
    wins = {r: int(np.sum(np.array([abs(q.estimates["omega_m"]["mean"] - t[0]) for q, t in zip(posts, thetas)]) < pk_err))
            for r, posts in posts_by_seed.items()}
    report = {"weights": str(weights), "network": args.network, "valid": str(valid), "n_fields": int(len(idx)),
              "terms": terms, "n_noise": DEFAULT_N_NOISE, "coarse": list(coarse), "fine": list(fine),
              "window_from": args.window_from,
              "n_evaluations": posts_by_seed[args.noise_seeds[0]][0].n_evaluations,
              "seconds_per_field": {"median": float(np.median(seconds)), "min": float(np.min(seconds)),
                                    "max": float(np.max(seconds))}, "noise_replicates": list(args.noise_seeds),
              "temperatures": {"2d": posts_by_seed[args.noise_seeds[0]][0].temperature,
                               "marginal": posts_by_seed[args.noise_seeds[0]][0].marginal_temperatures},
              "vlb_calibrated": summarise(per_seed, per_field, PARAM_NAMES),
              "vlb_per_seed": {str(r): m for r, m in per_seed.items()},
              "omega_m_beats_pk_fields": {str(r): w for r, w in wins.items()},
              "pk": pk, "seconds": time.perf_counter() - start}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report, "fields": per_field}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
