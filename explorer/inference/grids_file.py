"""Raw VLB surfaces of calibration runs in one ``.npz`` file: ``explorer calibrate --grids`` writes
it, ``--from-grids`` refits the temperatures and redoes the coverage figures from it in seconds.

The file holds plain numeric and string arrays only (loaded with ``allow_pickle=False``), with the
terms and noise draws it was made for, so a file made for other fields, seeds or terms is refused.
"""

from __future__ import annotations

import numpy as np

from .posterior import Posterior


#: What ``save_grids`` keeps per field and level ("fine": the interpolated window, "coarse": the prior scan).
_GRID_ARRAYS = ("omega_m", "sigma_8", "chi2")


def save_grids(path, splits: dict, *, terms: str, n_noise: int) -> None:
    """Write raw VLB surfaces: ``splits`` = {name: (map indices, raw posteriors with truths)}.

    Per split ``NAME__map``, ``NAME__truth`` (n, 2), ``NAME__truth_chi2`` (n,), ``NAME__n_evaluations``
    and per level ``NAME__fine_chi2`` (n, a, b) etc.: raw −2ΔlnL̂ (τ = 1), fine and coarse relative
    to the same reference as in the posterior. The window size must be the same for every field.
    """
    arrays = {"terms": np.array(terms), "n_noise": np.array(int(n_noise)), "splits": np.array(list(splits))}
    for name, (maps, posts) in splits.items():
        if any(p.temperature != 1.0 or p.truth is None or p.coarse is None for p in posts):
            raise ValueError("save_grids needs raw (τ = 1) posteriors with a truth and a coarse scan")
        arrays[f"{name}__map"] = np.asarray(maps, dtype=np.int64)
        arrays[f"{name}__truth"] = np.array([p.truth for p in posts], dtype=np.float64)
        arrays[f"{name}__truth_chi2"] = np.array([p.delta_chi2_truth() for p in posts], dtype=np.float64)
        arrays[f"{name}__n_evaluations"] = np.array([p.n_evaluations for p in posts], dtype=np.int64)
        for level, get in (("fine", lambda p: p), ("coarse", lambda p: p.coarse)):
            for key, attr in zip(_GRID_ARRAYS, ("omega_m", "sigma_8", "delta_chi2")):
                arrays[f"{name}__{level}_{key}"] = np.stack([getattr(get(p), attr) for p in posts])
    np.savez_compressed(path, **arrays)


def load_grids(path, terms: str | None = None, n_noise: int | None = None) -> dict:
    """Inverse of :func:`save_grids`: {split: (map indices, raw posteriors)}; ValueError if the file
    is not such a file or was made for other ``terms``/``n_noise`` (when given)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            d = {k: f[k] for k in f.files}
        saved_terms, saved_noise, names = str(d["terms"]), int(d["n_noise"]), [str(s) for s in d["splits"]]
        out = {}
        for name in names:
            posts = []
            for k in range(d[f"{name}__map"].size):
                grid = {level: [d[f"{name}__{level}_{key}"][k] for key in _GRID_ARRAYS] for level in ("fine", "coarse")}
                truth = tuple(float(v) for v in d[f"{name}__truth"][k])
                coarse = Posterior.from_grid(*grid["coarse"], chi2_min=0.0, truth=truth, terms=saved_terms)
                posts.append(Posterior.from_grid(*grid["fine"], chi2_min=0.0, truth=truth, coarse=coarse,
                                                 terms=saved_terms, truth_delta_chi2=float(d[f"{name}__truth_chi2"][k]),
                                                 n_evaluations=int(d[f"{name}__n_evaluations"][k])))
            out[name] = (d[f"{name}__map"], posts)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not a grids file written by `explorer calibrate --grids` ({err})") from None
    if (terms is not None and saved_terms != terms) or (n_noise is not None and saved_noise != int(n_noise)):
        raise ValueError(f"{path} holds terms={saved_terms!r}, n_noise={saved_noise}; "
                         f"asked for terms={terms!r}, n_noise={n_noise}")
    return out


def _saved(saved: dict, split: str, map_indices, theta) -> list[Posterior]:
    """The saved raw posteriors of ``split``, checked against the fields this run would evaluate."""
    if split not in saved:
        raise ValueError(f"the grids file has no {split!r} split")
    maps, posts = saved[split]
    truths = np.array([p.truth for p in posts])
    if maps.shape != np.shape(map_indices) or (maps != map_indices).any() or not np.allclose(truths, theta):
        raise ValueError(f"the grids file's {split} fields are not the ones of these data and seeds "
                         f"({maps.size} saved, {np.size(map_indices)} asked)")
    return posts
