"""Read and write maps in the CAMELS Multifield Dataset (CMD) 2D format.

A CMD set is two files (Villaescusa-Navarro et al. 2022)::

    Maps_{field}_{suite}_{set}_z={z:.2f}.npy   (N, H, W) float32, one field per map
    params_{set}_{suite}.txt                   (n_sims, n_cols) text, columns
                                               Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2

with N = 15 n_sims: the maps of one simulation are consecutive (5 slabs x 3 axes), so map i
belongs to simulation ``i // 15``. For ``field="Mcdm"`` (or ``"Mtot"``) a map is the projected
surface density Σ in (M_⊙/h)/(Mpc/h)² over a periodic 25 Mpc/h square. Gravity-only maps use the
suite ``Nbody_<hydro suite>`` and, in real CAMELS, the params file of the hydro suite.

The real files are ~3.75 GB, so maps are memory-mapped read-only and never unpickled; content
checks (NaN, non-positive values) happen chunk by chunk in :func:`explorer.data.transform.to_log10`.
The project's stand-in simulator writes the same layout with :func:`write_cmd` (suite ``"PM"``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

MAPS_PER_SIM = 15
#: Column names of a CMD params file; only the first two condition the model.
PARAM_NAMES = ("Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2")

_MAPS_RE = re.compile(
    r"^Maps_(?P<field>[^_]+)_(?P<suite>.+)_(?P<set>[^_]+)_z=(?P<z>\d+(?:\.\d+)?)\.npy$"
)


class CMDPaths(NamedTuple):
    """The two files of a CMD set (a tuple: ``maps_path, params_path = find_cmd(...)``)."""

    maps: Path
    params: Path


def maps_filename(field: str, suite: str, set_name: str, redshift: float = 0.0) -> str:
    """``Maps_{field}_{suite}_{set_name}_z={redshift:.2f}.npy``, e.g. ``Maps_Mcdm_PM_LH_z=0.00.npy``."""
    return f"Maps_{field}_{suite}_{set_name}_z={redshift:.2f}.npy"


def params_filename(suite: str, set_name: str) -> str:
    """``params_{set_name}_{suite}.txt``, e.g. ``params_LH_IllustrisTNG.txt``."""
    return f"params_{set_name}_{suite}.txt"


def parse_maps_filename(name: str) -> dict | None:
    """Split a CMD maps file name into ``field, suite, set_name, redshift``; None if it does not match."""
    m = _MAPS_RE.match(Path(name).name)
    if m is None:
        return None
    return {"field": m["field"], "suite": m["suite"], "set_name": m["set"], "redshift": float(m["z"])}


def read_params(path: str | os.PathLike) -> np.ndarray:
    """Read a CMD params file.

    Parameters
    ----------
    path : text file, one simulation per row, whitespace-separated numbers; blank lines and lines
        starting with ``#`` (a header) are skipped.

    Returns
    -------
    params : (n_sims, n_cols) float64, columns Ωₘ, σ₈, A_SN1, A_AGN1, A_SN2, A_AGN2 for CAMELS.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    rows: list[list[float]] = []
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            row = [float(v) for v in text.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: not a row of numbers: {text[:80]!r}") from None
        if rows and len(row) != len(rows[0]):
            raise ValueError(
                f"{path}, line {lineno}: {len(row)} columns, but the first row has {len(rows[0])}"
            )
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no parameter rows found")
    params = np.asarray(rows, dtype=np.float64)
    if params.shape[1] < 2:
        raise ValueError(f"{path}: {params.shape[1]} column(s); at least Omega_m and sigma_8 are needed")
    bad = ~np.isfinite(params)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{path}: non-finite value {params[r, c]} in row {r} (0-based), column {c}")
    return params


def _check_layout(maps_shape: tuple, n_sims: int, maps_name: str, params_name: str) -> None:
    """Shape rules shared by :class:`CMDSet` and :func:`load_cmd`."""
    if len(maps_shape) != 3:
        raise ValueError(f"{maps_name}: expected a (N, H, W) stack of maps, got shape {maps_shape}")
    n, h, w = maps_shape
    if h != w:
        raise ValueError(f"{maps_name}: maps must be square, got {h} x {w}")
    if n != MAPS_PER_SIM * n_sims:
        raise ValueError(
            f"{maps_name} holds {n} maps but {params_name} has {n_sims} rows; "
            f"a CMD set has {MAPS_PER_SIM} maps per simulation ({MAPS_PER_SIM} x {n_sims} = "
            f"{MAPS_PER_SIM * n_sims})"
        )


@dataclass
class CMDSet:
    """A CMD set: maps plus the parameters of the simulations they come from.

    Attributes
    ----------
    maps : (N, H, W) floating array, linear field (Σ [(M_⊙/h)/(Mpc/h)²] for Mcdm); a read-only
        memmap when loaded from disk. N = 15 n_sims, map i is from simulation i // 15.
    params : (n_sims, n_cols) float64, columns Ωₘ, σ₈, then the astrophysical parameters.
    maps_path, params_path : where they were read from (None for in-memory sets).
    field, suite, set_name : parsed from the maps file name; None when it does not follow the pattern.
    """

    maps: np.ndarray
    params: np.ndarray
    maps_path: Path | None = None
    params_path: Path | None = None
    field: str | None = None
    suite: str | None = None
    set_name: str | None = None

    def __post_init__(self):
        self.params = np.asarray(self.params, dtype=np.float64)
        if self.params.ndim != 2 or self.params.shape[1] < 2:
            raise ValueError("params must be (n_sims, >=2) [Omega_m, sigma_8, ...], "
                             f"got shape {self.params.shape}")
        _check_layout(tuple(self.maps.shape), self.params.shape[0],
                      str(self.maps_path or "maps"), str(self.params_path or "params"))

    @property
    def n_sims(self) -> int:
        return int(self.params.shape[0])

    @property
    def n_maps(self) -> int:
        return int(self.maps.shape[0])

    @property
    def resolution(self) -> int:
        """Side of the maps in pixels (H = W)."""
        return int(self.maps.shape[-1])

    @property
    def theta(self) -> np.ndarray:
        """(n_sims, 2) float64: (Ωₘ, σ₈) per simulation."""
        return self.params[:, :2]

    def sim_of_map(self, i: int) -> int:
        """Simulation index of map ``i`` (``i // 15``); IndexError outside [0, N)."""
        i = int(i)
        if not 0 <= i < self.n_maps:
            raise IndexError(f"map index {i} out of range [0, {self.n_maps})")
        return i // MAPS_PER_SIM

    def map_indices(self, sims) -> np.ndarray:
        """(15 n,) int64 indices of all maps of simulations ``sims`` (n,), in the order given."""
        sims = np.atleast_1d(np.asarray(sims))
        if sims.ndim != 1 or (sims.size and not np.issubdtype(sims.dtype, np.integer)):
            raise ValueError(f"simulation indices must be a 1D list of integers, got {sims!r}")
        sims = sims.astype(np.int64)
        bad = (sims < 0) | (sims >= self.n_sims)
        if bad.any():
            raise ValueError(f"simulation index {sims[bad][0]} out of range [0, {self.n_sims})")
        return (sims[:, None] * MAPS_PER_SIM + np.arange(MAPS_PER_SIM)).ravel()

    def maps_theta(self) -> np.ndarray:
        """(N, 2) float64: (Ωₘ, σ₈) of every map."""
        return np.repeat(self.theta, MAPS_PER_SIM, axis=0)


def npy_header_problem(head: bytes) -> str | None:
    """Why the first bytes of a file are not a .npy array (None if they start like one)."""
    if head.startswith(b"\x93NUMPY"):
        return None
    if head.startswith(b"\x80"):
        return "is a Python pickle, which is never loaded; save a plain numeric array with np.save"
    if head.startswith(b"PK"):
        return "is a zip archive (.npz?), not a .npy array"
    return "is not a .npy array (no NUMPY header)"


def _open_maps(path: Path) -> np.ndarray:
    """Memory-map a .npy stack read-only, translating numpy's errors into user-facing ones."""
    if not path.is_file():
        raise FileNotFoundError(f"maps file not found: {path}")
    if path.suffix.lower() != ".npy":
        raise ValueError(f"maps file must be a .npy array, got {path.name!r}")
    if path.stat().st_size == 0:
        raise ValueError(f"maps file is empty: {path}")
    with open(path, "rb") as fh:
        problem = npy_header_problem(fh.read(6))
    if problem:
        raise ValueError(f"{path} {problem}")
    try:
        maps = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        msg = str(err)
        if "pickle" in msg or "Python objects" in msg or "Object arrays" in msg:
            raise ValueError(
                f"{path}: an object array (pickled Python objects), which is never loaded; "
                "save the maps as a plain float32 array"
            ) from None
        raise ValueError(f"{path}: not a readable .npy array ({msg})") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from None
    if maps.dtype.kind != "f":
        raise ValueError(f"{path}: maps must be floating point (float32), got dtype {maps.dtype}")
    return maps


def load_cmd(maps_path: str | os.PathLike, params_path: str | os.PathLike) -> CMDSet:
    """Open a CMD set without reading the maps into memory.

    Parameters
    ----------
    maps_path : ``Maps_*.npy``, (N, H, W) float array; memory-mapped read-only.
    params_path : ``params_*.txt`` with n_sims = N / 15 rows (see :func:`read_params`).

    Raises
    ------
    FileNotFoundError for a missing file; ValueError for a non-.npy, empty, pickled/object, non-3D,
    non-square or non-float maps file, or when N != 15 x (rows of params).
    """
    maps_path, params_path = Path(maps_path), Path(params_path)
    maps = _open_maps(maps_path)
    params = read_params(params_path)
    _check_layout(maps.shape, params.shape[0], str(maps_path), str(params_path))
    info = parse_maps_filename(maps_path.name) or {}
    return CMDSet(maps=maps, params=params, maps_path=maps_path, params_path=params_path,
                  field=info.get("field"), suite=info.get("suite"), set_name=info.get("set_name"))


def find_cmd(directory: str | os.PathLike, field: str = "Mcdm", suite: str | None = None,
             set_name: str = "LH", redshift: float = 0.0) -> CMDPaths:
    """Discover the maps and params files of a CMD set in ``directory`` by the naming pattern.

    ``suite=None`` accepts any suite, but exactly one maps file may then match. The params file is
    ``params_{set}_{suite}.txt``; for an N-body suite ``Nbody_X`` the hydro file
    ``params_{set}_X.txt`` is tried next (real CAMELS ships no separate N-body params file).
    When discovery is ambiguous, name both files explicitly with :func:`load_cmd`.
    """
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"data directory not found: {directory}")
    if not directory.is_dir():
        raise ValueError(f"not a directory: {directory}")
    all_maps = sorted(p.name for p in directory.glob("Maps_*.npy"))
    matches = []
    for name in all_maps:
        info = parse_maps_filename(name)
        if (info and info["field"] == field and info["set_name"] == set_name
                and abs(info["redshift"] - redshift) < 5e-3 and suite in (None, info["suite"])):
            matches.append((name, info["suite"]))
    wanted = maps_filename(field, suite or "*", set_name, redshift)
    if not matches:
        found = ", ".join(all_maps) or "no Maps_*.npy files"
        raise FileNotFoundError(f"no {wanted} in {directory} (found: {found})")
    if len(matches) > 1:
        raise ValueError(
            f"several {wanted} files in {directory}: {', '.join(n for n, _ in matches)}; "
            "pass suite=... or name the maps and params files explicitly"
        )
    name, found_suite = matches[0]
    candidates = [params_filename(found_suite, set_name)]
    if found_suite.startswith("Nbody_"):
        candidates.append(params_filename(found_suite[len("Nbody_"):], set_name))
    for cand in candidates:
        if (directory / cand).is_file():
            return CMDPaths(directory / name, directory / cand)
    present = ", ".join(sorted(p.name for p in directory.glob("params_*.txt"))) or "none"
    raise FileNotFoundError(
        f"found {name} in {directory} but no params file: tried {', '.join(candidates)} "
        f"(params files present: {present})"
    )


def write_cmd(directory: str | os.PathLike, maps, params, *, field: str = "Mcdm", suite: str = "PM",
              set_name: str = "LH", redshift: float = 0.0, overwrite: bool = False) -> CMDPaths:
    """Write a CMD set in the CAMELS layout.

    Parameters
    ----------
    maps : (15 n_sims, H, W) array, linear field (Σ [(M_⊙/h)/(Mpc/h)²]); written as float32.
    params : (n_sims, n_cols >= 2), Ωₘ, σ₈ first; fewer than 6 columns are padded with 1.0 (the
        fiducial astrophysical parameters); the file gets the header
        ``# Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2``.
    overwrite : replace existing files; otherwise FileExistsError.

    Returns
    -------
    (maps_path, params_path) : :class:`CMDPaths`.
    """
    maps = np.asarray(maps, dtype=np.float32)
    params = np.asarray(params, dtype=np.float64)
    if params.ndim == 1:
        params = params[None, :]
    if params.ndim != 2 or params.shape[1] < 2:
        raise ValueError(f"params must be (n_sims, >=2) [Omega_m, sigma_8, ...], got shape {params.shape}")
    if not np.isfinite(params).all():
        raise ValueError("params contain NaN or inf")
    _check_layout(maps.shape, params.shape[0], "maps", "params")
    finite = np.isfinite(maps).all(axis=(1, 2))
    if not finite.all():
        raise ValueError(f"maps contain NaN or inf (first in map {int(np.flatnonzero(~finite)[0])})")
    n_extra = max(0, 6 - params.shape[1])
    params = np.hstack([params, np.ones((params.shape[0], n_extra))])
    names = list(PARAM_NAMES) + [f"param_{j}" for j in range(6, params.shape[1])]

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    maps_path = directory / maps_filename(field, suite, set_name, redshift)
    params_path = directory / params_filename(suite, set_name)
    if not overwrite:
        for p in (maps_path, params_path):
            if p.exists():
                raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
    # write to temporary names, then rename: a crash never leaves a half-written set behind
    tmp_maps = maps_path.with_name(maps_path.name + ".part.npy")
    tmp_params = params_path.with_name(params_path.name + ".part")
    np.save(tmp_maps, maps, allow_pickle=False)
    lines = ["# " + " ".join(names)] + [" ".join(repr(float(v)) for v in row) for row in params]
    tmp_params.write_text("\n".join(lines) + "\n")
    os.replace(tmp_maps, maps_path)
    os.replace(tmp_params, params_path)
    return CMDPaths(maps_path, params_path)
