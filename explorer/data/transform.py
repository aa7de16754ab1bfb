"""Resolution change, log10, normalisation and the dihedral augmentations of CMD maps.

Conventions, written once:

* Resolution is lowered by block-averaging the *linear* density over f x f pixel blocks,
  Σ'(I, J) = f⁻² Σ_{i,j ∈ block(I, J)} Σ(i, j), which conserves the total mass Σ' f² = Σ Σ; the
  log10 is taken afterwards (no offset: a CMD density is strictly positive).
* The network sees x = 2 (log10 Σ − lo) / (hi − lo) − 1 (:class:`Normalization`), which maps
  [lo, hi] onto [-1, 1]. The seed work used lo, hi = min, max of the training set (9.42, 15.45).
* Augmentation uses the dihedral group D4 of the square acting on the last two axes:
  D_k = R^(k mod 4) for k < 4 and R^(k mod 4) ∘ F for k >= 4, with R a 90° rotation and F the
  left-right flip. The periodic maps are statistically invariant under all eight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

#: log10 Σ [(M_⊙/h)/(Mpc/h)²] of CMD Mcdm maps lies well inside this band; linear Σ is ~1e9..1e16.
LOG10_BAND = (0.0, 25.0)


def block_average(maps, factor: int):
    """Mass-conserving block mean over ``factor x factor`` pixel blocks of the last two axes.

    Parameters
    ----------
    maps : (..., H, W) numpy array or torch tensor, *linear* density Σ; H, W divisible by factor.
    factor : int >= 1.

    Returns
    -------
    (..., H / factor, W / factor), same type; floating inputs keep their dtype (the sum is
    accumulated in float64), integer inputs become float64.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"block-average factor must be a positive integer, got {factor!r}")
    factor = int(factor)
    h, w = maps.shape[-2], maps.shape[-1]
    if h % factor or w % factor:
        raise ValueError(f"block-average factor {factor} does not divide the map size {h} x {w}")
    lead = tuple(maps.shape[:-2])
    shape = lead + (h // factor, factor, w // factor, factor)
    if torch.is_tensor(maps):
        out_dtype = maps.dtype if maps.is_floating_point() else torch.float64
        return maps.reshape(shape).mean(dim=(-3, -1), dtype=torch.float64).to(out_dtype)
    maps = np.asarray(maps)
    out_dtype = maps.dtype if maps.dtype.kind == "f" else np.float64
    return maps.reshape(shape).mean(axis=(-3, -1), dtype=np.float64).astype(out_dtype)


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="chunk")


def to_log10(maps_linear, resolution: int, chunk: int = 512, *, indices=None,
             progress: bool = False) -> np.ndarray:
    """log10 of the block-averaged linear maps, chunk by chunk.

    A 3.75 GB memmap is read ``chunk`` maps at a time, so neither it nor a float64 copy of it ever
    sits in memory; each chunk is checked before use.

    Parameters
    ----------
    maps_linear : (N, H, W) array or memmap, linear Σ [(M_⊙/h)/(Mpc/h)²], H = W.
    resolution : output side r; must divide H.
    chunk : maps per chunk.
    indices : (n,) int, optional; process only ``maps_linear[indices]`` in that order
        (sorted, contiguous runs are cheapest on a memmap). Default: all N maps.
    progress : show a tqdm bar over chunks.

    Returns
    -------
    log10_maps : (n, r, r) float32, log10 Σ.

    Raises
    ------
    ValueError naming the first offending map index (into ``maps_linear``) for NaN/inf or
    non-positive values, or when r does not divide H.
    """
    if getattr(maps_linear, "ndim", None) != 3:
        raise ValueError(f"expected (N, H, W) maps, got shape {getattr(maps_linear, 'shape', None)}")
    n, h, w = maps_linear.shape
    if h != w:
        raise ValueError(f"maps must be square, got {h} x {w}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    if resolution > h or h % resolution:
        raise ValueError(f"resolution {resolution} must divide the map size {h} (no upsampling)")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"map index out of range [0, {n}): {idx[(idx < 0) | (idx >= n)][0]}")
    factor = h // resolution
    out = np.empty((idx.size, resolution, resolution), dtype=np.float32)
    starts = range(0, idx.size, chunk)
    for s in _progress(starts, len(starts), progress, f"log10 maps at {resolution}²"):
        sel = idx[s:s + chunk]
        contiguous = bool(np.all(np.diff(sel) == 1))  # a slice of a memmap reads sequentially
        block = np.asarray(maps_linear[sel[0]:sel[-1] + 1] if contiguous else maps_linear[sel])
        finite = np.isfinite(block).all(axis=(1, 2))
        if not finite.all():
            raise ValueError(f"map {int(sel[np.flatnonzero(~finite)[0]])} contains NaN or inf")
        positive = (block > 0).all(axis=(1, 2))
        if not positive.all():
            j = int(np.flatnonzero(~positive)[0])
            raise ValueError(
                f"map {int(sel[j])} has non-positive values (min {float(block[j].min()):.4g}); "
                "a linear density must be > 0 (is this file already log10, or an overdensity?)"
            )
        # block mean accumulated in float64 without a float64 copy of the chunk
        mean = block.reshape(sel.size, resolution, factor, resolution, factor).mean(
            axis=(2, 4), dtype=np.float64)
        out[s:s + sel.size] = np.log10(mean)
    return out


@dataclass(frozen=True)
class Normalization:
    """Affine map of log10 Σ onto the network's range: x = 2 (log10 Σ − lo) / (hi − lo) − 1.

    ``lo`` and ``hi`` are log10 Σ values (the seed work: 9.42, 15.45). With
    ``fit(method="percentile")`` a few pixels lie outside [lo, hi], so encoded values may exceed
    [-1, 1] slightly; :meth:`encode` never clips (a sampler clipping x̂₀ should clip to the range
    it wants explicitly).
    """

    lo: float
    hi: float
    method: str = "minmax"  # how lo and hi were chosen ("minmax", "percentile"); the map is affine either way
    clip: tuple[float, float] | None = None  # x̂₀ clipping range of a sampler, normalised units (None: [-1, 1])

    def __post_init__(self):
        for name in ("lo", "hi"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
                raise ValueError(f"Normalization.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.hi > self.lo:
            raise ValueError(f"Normalization needs hi > lo, got lo={self.lo}, hi={self.hi}")
        if not isinstance(self.method, str):
            raise ValueError(f"Normalization.method must be a string, got {self.method!r}")
        if self.clip is not None:
            try:
                c_lo, c_hi = (float(c) for c in self.clip)
            except (TypeError, ValueError):
                raise ValueError(f"Normalization.clip must be [lo, hi], got {self.clip!r}") from None
            if not c_lo < c_hi:
                raise ValueError(f"Normalization.clip needs lo < hi, got {self.clip!r}")
            object.__setattr__(self, "clip", (c_lo, c_hi))

    @property
    def clip_range(self) -> tuple[float, float]:
        """The x̂₀ clipping range: ``clip``, else the nominal [-1, 1]."""
        return self.clip if self.clip is not None else (-1.0, 1.0)

    def encode(self, log10):
        """log10 Σ (any shape, numpy or torch) -> normalised x, same shape and type."""
        return 2.0 * (log10 - self.lo) / (self.hi - self.lo) - 1.0

    def decode(self, x):
        """Normalised x (any shape, numpy or torch) -> log10 Σ."""
        return (x + 1.0) * 0.5 * (self.hi - self.lo) + self.lo

    def to_dict(self) -> dict:
        """The JSON form stored in a weights folder's ``explorer.json``."""
        out = {"lo": self.lo, "hi": self.hi, "method": self.method}
        if self.clip is not None:
            out["clip"] = list(self.clip)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        """Inverse of :meth:`to_dict` (``method`` defaults to "minmax", ``clip`` to none)."""
        if not isinstance(d, dict):
            raise ValueError(f"normalization must be a dict with 'lo' and 'hi', got {d!r}")
        missing = [k for k in ("lo", "hi") if k not in d]
        if missing:
            raise ValueError(f"normalization dict lacks {missing}: {d!r}")
        try:
            lo, hi = float(d["lo"]), float(d["hi"])
        except (TypeError, ValueError):
            raise ValueError(f"normalization lo and hi must be numbers, got {d!r}") from None
        return cls(lo=lo, hi=hi, method=d.get("method", "minmax"), clip=d.get("clip"))

    @classmethod
    def fit(cls, log10_maps, method: str = "minmax",
            percentiles: tuple[float, float] = (0.01, 99.99)) -> "Normalization":
        """Fit lo, hi on (training) log10 maps of any shape (numpy or torch).

        method="minmax": lo, hi = min, max (the seed work; set by the single extreme pixels).
        method="percentile": lo, hi = the given percentiles in percent (default 0.01 % and
        99.99 %), so one bright halo pixel does not set the scale (DESIGN.md section 7 Update).
        """
        x = log10_maps.detach().cpu().numpy() if torch.is_tensor(log10_maps) else np.asarray(log10_maps)
        if x.size == 0:
            raise ValueError("cannot fit a normalization on an empty array")
        if not np.isfinite(x).all():
            raise ValueError("cannot fit a normalization: log10 maps contain NaN or inf")
        if method == "minmax":
            return cls(float(x.min()), float(x.max()), method="minmax")
        if method == "percentile":
            p_lo, p_hi = percentiles
            if not 0 <= p_lo < p_hi <= 100:
                raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}")
            lo, hi = np.percentile(x, [p_lo, p_hi])
            return cls(float(lo), float(hi), method="percentile")
        raise ValueError(f"unknown normalization method {method!r}; use 'minmax' or 'percentile'")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < 8:
        raise ValueError(f"dihedral index k must be an integer in 0..7, got {k!r}")
    return int(k)


def dihedral(x, k: int):
    """Apply D_k (k = 0..7) to the last two axes of ``x`` (..., H, W) (numpy or torch, H = W).

    D_k = rot90^(k mod 4) for k < 4, and rot90^(k mod 4) after a left-right flip for k >= 4.
    Returns a contiguous copy of the same type.
    """
    k = _check_k(k)
    if torch.is_tensor(x):
        y = torch.flip(x, dims=(-1,)) if k >= 4 else x
        return torch.rot90(y, k % 4, dims=(-2, -1)).contiguous()
    y = np.flip(x, axis=-1) if k >= 4 else np.asarray(x)
    return np.ascontiguousarray(np.rot90(y, k % 4, axes=(-2, -1)))


def dihedral_inverse_index(k: int) -> int:
    """Index of D_k⁻¹: rotations invert to rot90^(4-k); the four reflections are their own inverse."""
    k = _check_k(k)
    return (4 - k) % 4 if k < 4 else k


def dihedral_inverse(x, k: int):
    """Undo :func:`dihedral`: ``dihedral_inverse(dihedral(x, k), k) == x``."""
    return dihedral(x, dihedral_inverse_index(k))


def looks_like_log10(field) -> bool:
    """Guess whether a CMD-like field holds log10 Σ (True) or linear Σ (False).

    log10 Σ of CMD maps lies in ~[5, 20]; linear Σ is ~1e9..1e16 [(M_⊙/h)/(Mpc/h)²]. A field with
    all values in [0, 25] and median in [5, 20] is log10; a non-negative field with median >= 1e3 is
    linear. Anything else raises ValueError saying why (negative values mean the field is neither a
    density nor log10 Σ, e.g. an overdensity δ or log10 of ρ/ρ̄) — pass the kind explicitly then.
    """
    a = field.detach().cpu().numpy() if torch.is_tensor(field) else np.asarray(field)
    if a.size == 0:
        raise ValueError("empty field")
    if not np.isfinite(a).all():
        raise ValueError("field contains NaN or inf")
    lo, hi, med = float(a.min()), float(a.max()), float(np.median(a))
    if lo < 0:
        raise ValueError(
            f"field has negative values (min {lo:.4g}): it is not a surface density, and not log10 Σ "
            "of a CMD map either (those lie in ~[5, 20]); it looks like an overdensity δ or the log10 "
            "of a normalised density — convert it to Σ [(M_sun/h)/(Mpc/h)^2] or log10 Σ and pass the kind"
        )
    if hi <= LOG10_BAND[1] and 5.0 <= med <= 20.0:
        return True
    if med >= 1e3:
        return False
    raise ValueError(
        f"cannot tell whether the field is log10 Σ or linear Σ (values {lo:.4g}..{hi:.4g}, median "
        f"{med:.4g}; expected log10 Σ in ~[5, 20] or Σ in ~1e9..1e16); pass kind='log10' or 'density'"
    )
