"""Sets of stand-in simulations in the CAMELS CMD layout: Latin-hypercube (LH) and 1P sets.

A set is fully defined by a `SetRecipe`: simulation i of a set has parameters `recipe.params()[i]`
and initial-condition seed `recipe.sim_seed(i)`, so any subset can be (re)generated anywhere and
the results merged. Work is done one simulation at a time into `<out>/parts_<name>/sim_#####.npy`
(resumable: finished parts are skipped; `shard=(I, N)` takes simulations i ≡ I mod N), then
merged into `Maps_Mcdm_<suite>_<set>_z=0.00.npy` + `params_<set>_<suite>.txt`.

The named recipes below are the project's data: the training set used for the shipped weights
(`explorer simulate --recipe train --out data/train`), and the small sets bundled in assets/, one
folder per recipe (`explorer simulate --assets --out assets`; parts kept in data/assets-parts).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.data.cmd import MAPS_PER_SIM, write_cmd
from explorer.data.transform import block_average
from explorer.sim.cosmology import Cosmology
from explorer.sim.fastpm import PMConfig, run_pm
from explorer.sim.maps import cdm_maps

from explorer.params import OMEGA_M_RANGE, SIGMA_8_RANGE  # noqa: E402,F401
FIDUCIAL = (0.3, 0.8)


@dataclass(frozen=True)
class SetRecipe:
    """What a set of simulations is: parameters, seeds and map resolution."""

    name: str  # file-name stem of the parts folder
    set_name: str  # CMD set name: "LH" or "1P" (file names)
    n_sims: int
    seed: int  # base seed: parameters (LH) and initial conditions
    map_size: int = 128  # maps are painted at 128² and block-averaged to this size
    suite: str = "PM"
    one_p_values: tuple = ()  # 1P: ((param index, value), ...), all with one IC seed
    theta: tuple = ()  # explicit ((Ωₘ, σ₈), ...) list, each with its own seed
    pm: PMConfig = field(default_factory=PMConfig)

    def params(self) -> np.ndarray:
        """(n_sims, 2) float64 (Ωₘ, σ₈) of every simulation of the set."""
        if self.one_p_values:
            rows = []
            for index, value in self.one_p_values:
                row = list(FIDUCIAL)
                row[index] = value
                rows.append(row)
            return np.asarray(rows, dtype=np.float64)
        if self.theta:
            return np.asarray(self.theta, dtype=np.float64)
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=2, rng=np.random.default_rng(self.seed)).random(self.n_sims)
        return qmc.scale(unit, [OMEGA_M_RANGE[0], SIGMA_8_RANGE[0]], [OMEGA_M_RANGE[1], SIGMA_8_RANGE[1]])

    def sim_seed(self, i: int) -> int:
        """Initial-condition seed of simulation i (1P sets share one seed, as in CAMELS)."""
        if self.one_p_values:
            return self.seed * 1_000_000
        return self.seed * 1_000_000 + i


def _one_p(index_values):
    return tuple((i, v) for i, values in index_values for v in values)


RECIPES = {
    # Training set of the shipped weights: 1000 LH cosmologies, maps stored at 128².
    "train": SetRecipe("train", "LH", 1000, seed=1, map_size=128),
    # assets/: held-out LH validation set (never trained on), reference maps of the app.
    "valid": SetRecipe("valid", "LH", 50, seed=2, map_size=64),
    # assets/: 1P sets around (0.3, 0.8), one IC seed for all values.
    "onep": SetRecipe("onep", "1P", 10, seed=4, map_size=64, one_p_values=_one_p(
        [(0, (0.2, 0.25, 0.3, 0.35, 0.4)), (1, (0.7, 0.75, 0.8, 0.85, 0.9))])),
}
# assets/: the first 20 validation cosmologies again with new seeds (the "new-seed simulations"
# a perfect emulator is compared against, DESIGN.md section 7).
RECIPES["twins"] = SetRecipe("twins", "LH", 20, seed=3, map_size=64,
                             theta=tuple(map(tuple, RECIPES["valid"].params()[:20])))
# assets/: a few single fields with known parameters for the inference tab, at 128².
RECIPES["examples"] = SetRecipe("examples", "EX", 4, seed=5, map_size=128, theta=(
    (0.2, 0.7), (0.3, 0.8), (0.4, 0.9), (0.15, 0.95)))


def _corner_theta(per_corner: int, seed: int, quarter: float = 0.25) -> tuple:
    """``per_corner`` Latin-hypercube cosmologies in each corner box of the prior (the lowest or
    highest ``quarter`` of each axis), corner by corner: (low, low), (low, high), (high, low), (high, high)."""
    from scipy.stats import qmc

    rows = []
    rng = np.random.default_rng(seed)
    for om_high in (False, True):
        for s8_high in (False, True):
            lo, hi = [], []
            for (a, b), high in ((OMEGA_M_RANGE, om_high), (SIGMA_8_RANGE, s8_high)):
                width = quarter * (b - a)
                lo.append(b - width if high else a)
                hi.append(b if high else a + width)
            unit = qmc.LatinHypercube(d=2, rng=rng).random(per_corner)
            rows.extend(map(tuple, qmc.scale(unit, lo, hi)))
    return tuple(rows)


# More training cosmologies where a Latin hypercube of the whole prior has fewest (issue #14 item 3):
# 20 in each corner box (a quarter of each axis), for `explorer train --extra-data`.
RECIPES["corners"] = SetRecipe("corners", "LH", 80, seed=6, map_size=128, theta=_corner_theta(20, seed=6))


def simulate_one(omega_m: float, sigma_8: float, seed: int, map_size: int = 128,
                 pm: PMConfig = PMConfig(), device="cpu") -> np.ndarray:
    """Run one stand-in simulation: (15, map_size, map_size) float32 Σ_cdm [(M_⊙/h)/(Mpc/h)²].

    ``device``: where the N-body steps and the painting run ("cuda" on a GPU); the initial white
    noise is numpy's on every device, so a seed gives the same universe up to float rounding.
    """
    paint = 128
    if paint % map_size:
        raise ValueError(f"map_size={map_size} must divide the painted size {paint}")
    cosmo = Cosmology(omega_m, sigma_8)
    maps = cdm_maps(run_pm(cosmo, seed, pm, device), cosmo, box_size=pm.box_size, map_size=paint)
    return block_average(maps.cpu().numpy().astype(np.float64), paint // map_size).astype(np.float32)


def part_path(parts_root, recipe: SetRecipe, i: int) -> Path:
    """Where simulation i of `recipe` is kept until merged: (15, r, r) float32 Σ."""
    return Path(parts_root) / f"parts_{recipe.name}" / f"sim_{i:05d}.npy"


def generate(recipe: SetRecipe, parts_root, shard: tuple[int, int] = (0, 1),
             stop: int | None = None, progress: bool = True, device="cpu") -> list[int]:
    """Simulate the missing parts of `recipe` in this shard (on ``device``); returns the indices simulated."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard={index}/{count}: need 0 <= I < N")
    stop = recipe.n_sims if stop is None else min(stop, recipe.n_sims)
    params = recipe.params()
    todo = [i for i in range(index, stop, count) if not part_path(parts_root, recipe, i).exists()]
    from tqdm import tqdm

    done = []
    for i in tqdm(todo, desc=f"simulate {recipe.name} {index}/{count}", disable=not progress):
        maps = simulate_one(*params[i], recipe.sim_seed(i), recipe.map_size, recipe.pm, device)
        path = part_path(parts_root, recipe, i)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, maps)
        os.replace(tmp, path)  # a part exists only once complete
        done.append(i)
    return done


def merge(recipe: SetRecipe, out, parts_root=None, stop: int | None = None, overwrite: bool = True):
    """Write the CMD files of simulations [0, stop) into `out` from their parts (all must exist)."""
    parts_root = out if parts_root is None else parts_root
    stop = recipe.n_sims if stop is None else min(stop, recipe.n_sims)
    missing = [i for i in range(stop) if not part_path(parts_root, recipe, i).exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {stop} simulations of '{recipe.name}' are not "
                                f"simulated yet (first missing: {missing[0]}); run the remaining shards")
    maps = np.concatenate([np.load(part_path(parts_root, recipe, i)) for i in range(stop)])
    assert maps.shape[0] == stop * MAPS_PER_SIM
    return write_cmd(out, maps, recipe.params()[:stop], field="Mcdm", suite=recipe.suite,
                     set_name=recipe.set_name, overwrite=overwrite)

