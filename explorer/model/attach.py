"""`explorer attach-network`: make a second, smaller trained network the default for sampling.

    explorer train --data data/train --run-dir runs/small --channels 16 32 64 64 --layers-per-block 1 \\
        --attention-levels 1 --norm-groups 8 --lr 5e-4
    explorer attach-network runs/small/best --weights weights --name small

copies the run's network into ``weights/small/`` (a complete weights folder: it also gets the main
folder's sampler and Gaussian start, so ``explorer sample --weights weights/small`` works on its
own) and sets ``sampler.network = "small"`` in ``weights/explorer.json``: the emulator then samples
with the small network by default, while inference (and ``--network full``) keeps the main one.
Both must describe the same maps (resolution, normalisation, prior box, noise schedule).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path



def attach_network(weights: str | Path, source: str | Path, name: str = "small") -> Path:
    """Copy the weights folder ``source`` to ``weights/name`` and make it the sampling default."""
    from .sampling import check_same_maps, is_folder_name  # torch: only when it runs
    from .weights import CONFIG_FILE, METADATA_FILE, TENSORS_FILE, load_model, set_metadata

    weights, source = Path(weights), Path(source)
    if not is_folder_name(name):
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    full, small = load_model(weights), load_model(source)  # WeightsError if either is unusable
    check_same_maps(full, small)
    sampler = {k: v for k, v in (full.metadata.get("sampler") or {}).items() if k != "network"}
    meta = {**small.metadata, "sampler": sampler}
    if full.metadata.get("gaussian_start") is not None:
        meta["gaussian_start"] = full.metadata["gaussian_start"]
    meta["role"] = ("small network for sampling, trained on the same data; inference uses the network of the "
                    "parent folder")
    target = weights / name
    target.mkdir(exist_ok=True)
    for file in (CONFIG_FILE, TENSORS_FILE):
        if (source / file).resolve() != (target / file).resolve():
            shutil.copyfile(source / file, target / file)
    (target / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    set_metadata(weights, "sampler", {**sampler, "network": name})
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="weights folder of the small network (e.g. runs/small/best)")
    parser.add_argument("--weights", type=Path, default=None, help="main weights folder (default: $EXPLORER_WEIGHTS, else the shipped weights/ next to the package)")
    parser.add_argument("--name", default="small", help="sub-folder name (default small)")


def run(args) -> int:
    from explorer.paths import resolve_weights

    from .weights import read_metadata

    weights = resolve_weights(args.weights)
    target = attach_network(weights, args.source, args.name)
    print(f"attached {args.source} as {target}; `explorer sample` now uses it by default")
    if read_metadata(weights).get("translation_start") is not None:
        print("the few-call sampler's start (sde-translation) was matched to the previous network: refit it "
              f"with `explorer fit-start --weights {weights} --data DATA`")
    return 0
