"""Benchmark of parameter inference: wall time and network evaluations for one 64² field with the
default settings (median of ``--repeats`` runs), and optionally the calibration figures.

    python bench/bench_inference.py                          # weights/, a bundled example field
    python bench/bench_inference.py --random-model           # untrained model of the default size
    python bench/bench_inference.py --calibrate --data data/train --valid assets/valid

Prints one JSON object. Reference: the seed paper's fixed 50 x 50 grid = 2,500 evaluations of L_0
per field; target ≤ 20 s per 64² field on the 2-core development CPU. ``--calibrate`` runs
``explorer calibrate`` without writing to the weights folder (add ``--write`` to store τ and the
P(k) baseline) and adds its coverage / bias / relative-error figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from explorer.inference import infer
from explorer.paths import SHIPPED_ASSETS, resolve_weights
from explorer.inference.grid import (DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_INTERPOLATE, DEFAULT_N_NOISE,
                                     DEFAULT_TERMS)

ANCHOR_EVALUATIONS = 2500


def random_model(resolution: int = 64):
    """An untrained model of the default architecture (cost only; its posterior means nothing)."""
    from explorer.data.transform import Normalization
    from explorer.model import Denoiser, ParamUNet, schedule_from_spec, seed_schedule_spec

    torch.manual_seed(0)
    model = ParamUNet(sample_size=resolution, block_out_channels=(32, 64, 96, 128), layers_per_block=2,
                      attention_levels=2).eval()
    spec = seed_schedule_spec(1000)
    return Denoiser(model, schedule_from_spec(spec), Normalization(9.42, 15.45),
                    metadata={"schedule": spec, "resolution": resolution})


def pick_field(path: str | None, resolution: int):
    """(field, truth, description): --field, else an example field, else an assets/valid map, else synthetic."""
    from explorer.data import find_cmd, load_cmd, read_field

    if path:
        return read_field(path), None, path
    examples = sorted((SHIPPED_ASSETS / "examples").glob("field_*.npy"))
    if examples:
        truth = None
        meta = SHIPPED_ASSETS / "examples" / "examples.json"
        if meta.is_file():
            try:
                info = json.loads(meta.read_text())
                entries = info if isinstance(info, list) else info.get("fields", info.get("examples", []))
                for e in entries:
                    if Path(str(e.get("file", e.get("path", "")))).name == examples[0].name:
                        truth = (float(e["omega_m"]), float(e["sigma_8"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                truth = None
        return read_field(examples[0]), truth, str(examples[0])
    try:
        cmd = load_cmd(*find_cmd(SHIPPED_ASSETS / "valid"))
        return np.asarray(cmd.maps[0], dtype=np.float64), tuple(cmd.theta[0]), "assets/valid map 0"
    except (FileNotFoundError, ValueError):
        pass
    rng = np.random.default_rng(0)
    return 10 ** (12 + 0.4 * rng.normal(size=(2 * resolution, 2 * resolution))), None, "synthetic lognormal"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped one)")
    p.add_argument("--random-model", action="store_true", help="time an untrained model of the default size")
    p.add_argument("--field", default=None, help="field file (default: a bundled example)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--terms", default=DEFAULT_TERMS)
    p.add_argument("--n-noise", type=int, default=DEFAULT_N_NOISE)
    p.add_argument("--coarse", type=int, nargs=2, default=DEFAULT_COARSE)
    p.add_argument("--fine", type=int, nargs=2, default=DEFAULT_FINE)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (not the default: rough surface)")
    p.add_argument("--calibrate", action="store_true", help="also measure coverage (explorer calibrate, no write)")
    p.add_argument("--write", action="store_true", help="with --calibrate: store τ and the P(k) baseline")
    p.add_argument("--data", default="data/train")
    p.add_argument("--valid", default=str(SHIPPED_ASSETS / "valid"))
    p.add_argument("--max-fields", type=int, default=None)
    args = p.parse_args(argv)

    if args.random_model:
        loaded, source = random_model(), "random model (32,64,96,128) x 2 blocks, attention at 2 levels"
    else:
        from explorer.model import load_model

        loaded, source = load_model(args.weights), str(resolve_weights(args.weights))
    field, truth, field_name = pick_field(args.field, loaded.resolution)
    settings = dict(terms=args.terms, n_noise=args.n_noise, coarse=tuple(args.coarse), fine=tuple(args.fine),
                    bf16=args.bf16)
    times, post = [], None
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        post = infer(loaded, field, truth=truth, **settings)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    report = {
        "weights": source, "field": field_name, "resolution": loaded.resolution,
        "settings": {**settings, "coarse": list(args.coarse), "fine": list(args.fine),
                     "interpolate_to": list(DEFAULT_INTERPOLATE)},
        "torch_threads": torch.get_num_threads(),
        "n_evaluations": post.n_evaluations, "anchor_evaluations": ANCHOR_EVALUATIONS,
        "seconds_median": round(median, 3), "seconds_all": [round(t, 3) for t in times],
        "ms_per_evaluation": round(1000 * median / post.n_evaluations, 2),
        "target_seconds": 20.0, "within_target": median <= 20.0,
        "temperature": post.temperature, "estimates": post.estimates, "truth": truth, "notes": list(post.notes),
    }
    if args.calibrate:
        from explorer.inference.calibrate import calibrate

        report["calibration"] = calibrate(resolve_weights(args.weights), args.data, args.valid, terms=args.terms,
                                          n_noise=args.n_noise, coarse=tuple(args.coarse), fine=tuple(args.fine),
                                          max_fields=args.max_fields, write=args.write, show=sys.stderr.isatty())
    print(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
