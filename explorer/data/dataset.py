"""Train/validation/test splits by simulation and the torch Dataset of normalised log10 maps.

The 15 maps of a CAMELS simulation share its initial conditions and large-scale modes, so a split
assigns whole simulations, never single maps (DESIGN.md section 3).

Typical use::

    cmd = load_cmd(*find_cmd("data/"))
    split = split_by_simulation(cmd.n_sims, seed=0)
    train = MapDataset(cmd, split.train, resolution=64)                   # fits the normalisation
    val = MapDataset(cmd, split.val, 64, train.normalization, augment=False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .cmd import MAPS_PER_SIM, CMDSet
from .transform import Normalization, dihedral, to_log10

#: Show a progress bar while preprocessing at least this many maps (when ``progress=None``).
PROGRESS_MIN_MAPS = 3000


@dataclass
class Split:
    """Disjoint simulation indices, each (n_*,) int64 sorted ascending."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_by_simulation(n_sims: int, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
                        seed: int = 0) -> Split:
    """Randomly assign simulations 0..n_sims-1 to train/val/test.

    Deterministic for a given (n_sims, fractions, seed); the three sets are disjoint and cover all
    simulations. Sizes are round(f n) for val and test (at least 1 when its fraction is > 0) and the
    rest for train.
    """
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 1:
        raise ValueError(f"n_sims must be a positive integer, got {n_sims!r}")
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1.0, atol=1e-6):
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions!r}")
    n_val, n_test = (max(1, int(np.floor(fi * n_sims + 0.5))) if fi > 0 else 0 for fi in f[1:])
    n_train = n_sims - n_val - n_test
    if n_train < (1 if f[0] > 0 else 0):
        raise ValueError(f"{n_sims} simulations are too few for fractions {tuple(fractions)}")
    perm = np.random.default_rng(seed).permutation(n_sims)
    return Split(train=np.sort(perm[:n_train]),
                 val=np.sort(perm[n_train:n_train + n_val]),
                 test=np.sort(perm[n_train + n_val:]))


class MapDataset(torch.utils.data.Dataset):
    """Normalised log10 maps of chosen simulations at the working resolution, with θ = (Ωₘ, σ₈).

    The maps of ``sims`` are read from ``cmd.maps`` once, chunk by chunk (block-averaged linearly
    to ``resolution``, then log10; see :func:`to_log10`), and kept in memory as one float32 array.
    Item i is map ``map_indices[i]`` of the CMD set.

    Parameters
    ----------
    cmd : the CMD set.
    sims : (n,) int simulation indices (e.g. ``split.train``); all 15 maps of each are used.
    resolution : working side r in pixels; must divide ``cmd.resolution``.
    normalization : log10 -> [-1, 1] scaling; None fits min-max on these maps (do that for the
        training set only and pass its normalization to validation/test sets).
    augment : apply a random one of the 8 dihedral transforms per item.
    chunk : maps read per chunk while preprocessing.
    progress : tqdm bar while preprocessing; None shows one for >= 3000 maps.

    Attributes
    ----------
    log10_maps : (N, r, r) float32 numpy, log10 Σ [(M_⊙/h)/(Mpc/h)²], un-normalised, un-augmented.
    theta : (N, 2) float64 numpy, physical (Ωₘ, σ₈) of each map.
    sims : (n,) int64 simulation indices; map_indices : (N = 15 n,) int64 indices into ``cmd.maps``.
    normalization : :class:`Normalization`; resolution : r.

    Notes
    -----
    Only the un-normalised maps are stored (one copy; 13,500 maps at 256² are 3.5 GB); the affine
    encoding of one map in ``__getitem__`` costs microseconds. The augmentation draws from torch's
    *global* RNG: in a DataLoader each worker's torch RNG is seeded from the base seed + worker id,
    so ``torch.manual_seed`` (or the DataLoader's ``generator``) makes the augmentations
    reproducible without the dataset holding a generator of its own.
    """

    def __init__(self, cmd: CMDSet, sims, resolution: int = 64,
                 normalization: Normalization | None = None, augment: bool = True, *,
                 chunk: int = 512, progress: bool | None = None):
        sims = np.atleast_1d(np.asarray(sims))
        if sims.size == 0:
            raise ValueError("MapDataset needs at least one simulation")
        if len(np.unique(sims)) != sims.size:
            raise ValueError(f"simulation indices must be unique, got {sims.tolist()}")
        self.map_indices = cmd.map_indices(sims)
        self.sims = sims.astype(np.int64)
        self.resolution = int(resolution)
        if progress is None:
            progress = self.map_indices.size >= PROGRESS_MIN_MAPS
        self.log10_maps = to_log10(cmd.maps, resolution, chunk, indices=self.map_indices,
                                   progress=progress)
        self.theta = np.repeat(cmd.theta[self.sims], MAPS_PER_SIM, axis=0)
        self.normalization = normalization or Normalization.fit(self.log10_maps, "minmax")
        self.augment = bool(augment)
        self._maps_t = torch.from_numpy(self.log10_maps)  # shares memory, no copy
        self._theta_t = torch.as_tensor(self.theta, dtype=torch.float32)

    def __len__(self) -> int:
        return int(self.log10_maps.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``x`` (1, r, r) float32 normalised log10 Σ and ``theta`` (2,) float32 (Ωₘ, σ₈)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} maps")
        x = self.normalization.encode(self._maps_t[i].to(torch.float32))
        if self.augment:
            x = dihedral(x, int(torch.randint(0, 8, ())))
        return x.unsqueeze(0).contiguous(), self._theta_t[i].clone()
