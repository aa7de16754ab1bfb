"""Reference maps for the app: nearest simulations of a CMD set, 1P sets, fresh stand-in runs.

No panel here: these classes only select and convert maps (log10 Σ at the model's resolution,
block-averaged from the linear maps as everywhere else in the project).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.data import MAPS_PER_SIM, find_cmd, load_cmd, params_filename, parse_maps_filename, to_log10

from explorer.params import PRIOR  # noqa: E402,F401


def open_cmd(path: str | Path, set_name: str):
    """A CMD set from a directory (discovered by name pattern, Mcdm then Mtot) or a ``Maps_*.npy`` path."""
    path = Path(path)
    if path.is_file():
        info = parse_maps_filename(path.name)
        if info is None:
            raise ValueError(f"{path.name} is not a CMD maps file name (Maps_<field>_<suite>_<set>_z=0.00.npy)")
        suite = info["suite"]
        candidates = [params_filename(suite, info["set_name"])]
        if suite.startswith("Nbody_"):
            candidates.append(params_filename(suite[len("Nbody_"):], info["set_name"]))
        for cand in candidates:
            if (path.parent / cand).is_file():
                return load_cmd(path, path.parent / cand)
        raise FileNotFoundError(f"no {' or '.join(candidates)} next to {path}")
    try:
        maps, params = find_cmd(path, field="Mcdm", set_name=set_name)
    except FileNotFoundError:
        maps, params = find_cmd(path, field="Mtot", set_name=set_name)
    return load_cmd(maps, params)


@dataclass(frozen=True)
class Neighbour:
    """A simulation of the reference set and its distance to the requested θ."""

    sim: int
    omega_m: float
    sigma_8: float
    distance: float  # Euclidean, in units of the prior width of each parameter


class _MapSource:
    """Shared by the reference sets: log10 maps of one simulation at the model resolution, cached."""

    def __init__(self, cmd, resolution: int):
        if cmd.resolution < resolution or cmd.resolution % resolution:
            raise ValueError(f"reference maps of {cmd.resolution}² cannot be brought to the model "
                             f"resolution {resolution}² (it must divide the map size)")
        self.cmd = cmd
        self.resolution = int(resolution)
        self.maps = functools.lru_cache(maxsize=16)(self._maps)

    def _maps(self, sim: int) -> np.ndarray:
        """(15, r, r) float32 log10 Σ of simulation ``sim``."""
        return to_log10(self.cmd.maps, self.resolution, indices=self.cmd.map_indices([sim]))

    @property
    def source(self) -> str:
        path = self.cmd.maps_path
        return f"{path.parent.name}/{path.name}" if path else "in-memory set"

    @property
    def is_stand_in(self) -> bool:
        """True for the project's particle-mesh stand-in (suite "PM"), which can be re-simulated."""
        return self.cmd.suite == "PM"


class ReferenceSet(_MapSource):
    """An LH-like CMD set: the simulations nearest to a slider cosmology are the reference."""

    @classmethod
    def from_directory(cls, path, resolution: int, set_name: str = "LH") -> "ReferenceSet":
        return cls(open_cmd(path, set_name), resolution)

    def nearest(self, omega_m: float, sigma_8: float, k: int = 3) -> list[Neighbour]:
        """The ``k`` simulations closest to (Ωₘ, σ₈), distance in prior-width units, nearest first."""
        theta = self.cmd.theta
        width = np.array([hi - lo for lo, hi in PRIOR])
        d = np.hypot(*((theta - [omega_m, sigma_8]) / width).T)
        order = np.argsort(d, kind="stable")[:k]
        return [Neighbour(int(i), float(theta[i, 0]), float(theta[i, 1]), float(d[i])) for i in order]


class OnePSet(_MapSource):
    """A CAMELS "1P" set: one parameter varied at a time around a fiducial, one initial-condition seed."""

    @classmethod
    def from_directory(cls, path, resolution: int) -> "OnePSet":
        return cls(open_cmd(path, "1P"), resolution)

    @property
    def fiducial(self) -> tuple[float, float]:
        """The most common value of each of Ωₘ and σ₈ (every row but one variation holds it)."""
        fid = []
        for col in self.cmd.params[:, :2].T:
            values, counts = np.unique(np.round(col, 6), return_counts=True)
            fid.append(float(values[np.argmax(counts)]))
        return fid[0], fid[1]

    def values(self, param: str) -> list[tuple[float, int]]:
        """``[(value, sim), ...]`` of the simulations varying ``param`` ("omega_m" or "sigma_8"), sorted.

        Only rows whose other columns all hold their most common value (CAMELS 1P also varies the
        astrophysical parameters) are kept; a repeated value keeps its first simulation.
        """
        j = {"omega_m": 0, "sigma_8": 1}[param]
        params = np.round(self.cmd.params, 6)
        modes = []
        for col in params.T:
            values, counts = np.unique(col, return_counts=True)
            modes.append(values[np.argmax(counts)])
        others = np.delete(params, j, axis=1) == np.delete(np.array(modes), j)
        rows = {}
        for sim in np.flatnonzero(others.all(axis=1)):
            rows.setdefault(float(params[sim, j]), int(sim))
        return sorted(rows.items())


def simulate_reference(omega_m: float, sigma_8: float, seed: int, resolution: int) -> np.ndarray:
    """Run one stand-in simulation at (Ωₘ, σ₈): (15, r, r) float32 log10 Σ (a few seconds on a CPU)."""
    from explorer.sim.sets import simulate_one

    map_size = resolution if 128 % resolution == 0 else 128
    linear = simulate_one(omega_m, sigma_8, seed, map_size=map_size)
    assert linear.shape[0] == MAPS_PER_SIM
    return to_log10(linear, resolution)
