"""`explorer distill`: the few-call sampler by progressive distillation (:mod:`explorer.model.distill`).

    explorer distill --out runs/distill                       # from the shipped small network (resumable)
    explorer distill --start-levels 32 --final-levels 4 --steps 800 --batch 8 --lr 2e-4 --threads 1

A plain module (no torch) so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, default=None,
                        help="teacher weights folder with a Gaussian start (default: the shipped small network)")
    parser.add_argument("--data", default="data/train", help="training CMD directory (the teacher's split)")
    parser.add_argument("--out", type=Path, default=Path("runs/distill"), help="run folder (resumable)")
    parser.add_argument("--start-levels", type=int, default=16, help="DDIM levels of the first teacher (power of 2)")
    parser.add_argument("--final-levels", type=int, default=4, help="levels (network calls) of the last student")
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps per stage")
    parser.add_argument("--batch", type=int, default=16, help="maps per step")
    parser.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    parser.add_argument("--ema-decay", type=float, default=0.995, help="EMA decay of the student")
    parser.add_argument("--seed", type=int, default=0, help="seed of batches, levels drawn and noise (default 0)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumable) after this long per call")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")


def run(args) -> int:
    from explorer.model.distill import distill
    from explorer.paths import resolve_weights

    weights = args.weights if args.weights is not None else Path(resolve_weights(None)) / "small"
    folder = distill(weights, args.data, args.out, start_levels=args.start_levels, final_levels=args.final_levels,
                     steps=args.steps, batch=args.batch, lr=args.lr, ema_decay=args.ema_decay, seed=args.seed,
                     max_minutes=args.max_minutes, threads=args.threads)
    print(f"student: {folder}")
    return 0
