"""`explorer simulate`: run the particle-mesh stand-in and write CAMELS CMD files.

Examples
--------
    explorer simulate --recipe train --out data/train                  # the training set (resumable)
    explorer simulate --recipe train --out data/train --shard 0/2 &    # split over processes ...
    explorer simulate --recipe train --out data/train --shard 1/2      # ... then merge runs itself
    explorer simulate --assets --out assets                            # all bundled reference data
    explorer simulate --n-sims 20 --seed 7 --map-size 64 --out data/mine   # a custom LH set
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: The named sets of ``explorer.sim.sets.RECIPES`` (listed here so that `--help` does not load torch;
#: tests/test_sim.py checks the two agree).
RECIPE_NAMES = ("corners", "examples", "onep", "train", "twins", "valid")


def add_arguments(parser):
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--recipe", choices=RECIPE_NAMES, help="a named set of the project")
    what.add_argument("--assets", action="store_true",
                      help="build every set bundled in assets/ (valid, twins, onep, examples)")
    parser.add_argument("--n-sims", type=int, default=None, help="custom LH set: simulations")
    parser.add_argument("--seed", type=int, default=100, help="custom LH set: base seed")
    parser.add_argument("--map-size", type=int, default=128, help="custom set: map side (divides 128)")
    parser.add_argument("--suite", default="PM", help="suite name in the file names")
    parser.add_argument("--shard", default="0/1", help="I/N: simulate simulations i = I mod N")
    parser.add_argument("--stop", type=int, default=None,
                        help="only simulations [0, STOP) of the set (a prefix of the same recipe)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--device", default="cpu",
                        help="where --recipe and custom sets run: cpu (default), cuda, or auto (CUDA if present); "
                             "--assets always runs on the CPU")
    parser.add_argument("--parts", type=Path, default=None,
                        help="where unmerged simulations are kept (default: OUT, or data/assets-parts "
                             "with --assets)")


def _recipes():
    from explorer.sim.sets import RECIPES

    return RECIPES


def run(args) -> int:
    import torch

    from explorer.sim.sets import SetRecipe, generate

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        shard = tuple(int(v) for v in args.shard.split("/"))
        assert len(shard) == 2
    except (ValueError, AssertionError):
        raise ValueError(f"--shard {args.shard!r}: expected I/N, e.g. 0/2") from None

    if args.assets:
        return _build_assets(args.out, args.parts or Path("data/assets-parts"), shard)
    if args.recipe:
        recipe = _recipes()[args.recipe]
    elif args.n_sims:
        recipe = SetRecipe(args.out.name or "custom", "LH", args.n_sims, seed=args.seed,
                           map_size=args.map_size, suite=args.suite)
    else:
        raise ValueError("say what to simulate: --recipe NAME, --assets, or --n-sims N")
    from explorer.model.device import pick_device

    generate(recipe, args.parts or args.out, shard=shard, stop=args.stop, device=pick_device(args.device))
    _merge_if_complete(recipe, args.out, args.parts, args.stop)
    return 0


def _merge_if_complete(recipe, out, parts_root=None, stop=None):
    from explorer.sim.sets import merge

    try:
        maps_path, params_path = merge(recipe, out, parts_root=parts_root, stop=stop)
    except FileNotFoundError as err:
        print(f"not merged yet: {err}")
        return None
    print(f"wrote {maps_path} and {params_path}")
    return maps_path


def _build_assets(out: Path, parts_root: Path, shard):
    """One folder per bundled set: valid/, twins/, onep/ as CMD files; examples/ as single fields."""
    from explorer.sim.sets import RECIPES, generate, part_path

    names = ("valid", "twins", "onep", "examples")
    for name in names:
        generate(RECIPES[name], parts_root, shard=shard)
    if shard != (0, 1):
        print("shard done; run again without --shard to merge")
    for name in names[:3]:
        _merge_if_complete(RECIPES[name], out / name, parts_root)
    recipe = RECIPES["examples"]
    folder = out / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for i, (om, s8) in enumerate(recipe.params()):
        field = np.load(part_path(parts_root, recipe, i))[0]  # map 0: first slab along x
        name = f"field_{i}_om{om:.2f}_s8{s8:.2f}.npy"
        np.save(folder / name, field)
        index.append({"file": name, "omega_m": float(om), "sigma_8": float(s8),
                      "seed": recipe.sim_seed(i), "kind": "density",
                      "unit": "(M_sun/h)/(Mpc/h)^2", "shape": list(field.shape)})
    (folder / "examples.json").write_text(json.dumps(index, indent=1))
    print(f"wrote {len(index)} example fields to {folder}")
    return 0
