"""`explorer upgrade-weights FOLDER ...`: convert weights folders of the old layout once, in place.

Before the :class:`~explorer.model.denoiser.Denoiser`, the network carried the map-mean model and
its noise schedule (config.json ``mean_head``/``mean_schedule``, tensors ``mean_coef``/``mean_log_s``).
This moves those numbers unchanged to explorer.json ``mean_level`` and rewrites the other tensors bit
for bit (:func:`explorer.model.weights.upgrade_weights`). The shipped weights are already converted.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folders", type=Path, nargs="+", metavar="FOLDER",
                        help="weights folder(s) to convert in place (e.g. runs/main/best)")


def run(args) -> int:
    from .weights import upgrade_weights

    for folder in args.folders:
        changed = upgrade_weights(folder)
        print(f"{folder}: {'converted' if changed else 'already current, unchanged'}")
    return 0
