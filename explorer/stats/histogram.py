"""Pixel histograms of maps on common bins, with the mean ± σ envelope over maps.

A map's histogram is a density: counts / (number of pixels × bin width), so that
Σ density × width is the fraction of its pixels inside the edges (1 when the edges come from
``histogram_bins`` over the same maps). The last bin is closed on the right, as in
``numpy.histogram``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.stats._arrays import as_float_array


@dataclass(frozen=True, eq=False)
class Histograms:
    """Per-map pixel histograms and their spread over maps.

    Attributes
    ----------
    edges : (n_bins + 1,) float64
        Bin edges, in the unit of the map values (e.g. log10 Σ).
    centers : (n_bins,) float64
        Bin midpoints.
    density : (B, n_bins) float64
        Each map's histogram, counts / (pixels × width); integrates to 1 over the edges.
    mean : (n_bins,) float64
        Mean density over maps.
    std : (n_bins,) float64
        Sample standard deviation (ddof = 1) of the density over maps; zeros when B = 1.
    pixel_mean : (B,) float64
        Mean pixel value of each map.
    pixel_std : (B,) float64
        Standard deviation (ddof = 0) of the pixel values of each map.
    """

    edges: np.ndarray
    centers: np.ndarray
    density: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    pixel_mean: np.ndarray
    pixel_std: np.ndarray


def histogram_bins(*map_sets, n_bins: int = 50) -> np.ndarray:
    """Common, evenly spaced bin edges spanning the values of all map sets.

    Parameters
    ----------
    *map_sets : array-like of any shape, e.g. (B, H, W)
        One or more sets of maps (e.g. reference and generated); all their values are covered.
    n_bins : int, default 50
        Number of bins.

    Returns
    -------
    (n_bins + 1,) float64 ndarray
        Edges from the smallest to the largest value over all sets (±0.5 around a constant).

    Raises
    ------
    ValueError
        If no set is given, a set is empty or not finite, or ``n_bins`` is not a positive integer.
    """
    if not map_sets:
        raise ValueError("histogram_bins needs at least one set of maps")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    sets = [as_float_array(s, f"map_sets[{i}]") for i, s in enumerate(map_sets)]
    lo = min(float(s.min()) for s in sets)
    hi = max(float(s.max()) for s in sets)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(n_bins) + 1)


def pixel_histograms(maps, edges) -> Histograms:
    """Normalised pixel histogram of every map on shared edges, and the envelope over maps.

    Parameters
    ----------
    maps : (B, H, W) or (H, W) array-like or torch.Tensor
        Maps, e.g. log10 Σ. A single map is treated as B = 1.
    edges : (n_bins + 1,) array-like
        Strictly increasing bin edges, e.g. from ``histogram_bins``.

    Returns
    -------
    Histograms
        ``density (B, n_bins)``, ``mean``/``std (n_bins,)``, ``pixel_mean``/``pixel_std (B,)``.

    Raises
    ------
    ValueError
        If maps are not 2D/3D or not finite, or edges are not a strictly increasing 1D array of
        at least two values.
    """
    maps = as_float_array(maps, "maps", ndims=(2, 3))
    edges = as_float_array(edges, "edges", ndims=(1,))
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be strictly increasing with at least 2 values, got {edges}")
    n_bins = edges.size - 1
    pixels = maps.reshape(-1, maps.shape[-2] * maps.shape[-1])  # (B, H * W)
    n_maps, n_pixels = pixels.shape

    index = np.searchsorted(edges, pixels, side="right") - 1  # bin i: edges[i] <= x < edges[i+1]
    index[pixels == edges[-1]] = n_bins - 1  # last bin closed on the right
    inside = (index >= 0) & (index < n_bins)
    flat = (index + n_bins * np.arange(n_maps)[:, None])[inside]
    counts = np.bincount(flat, minlength=n_maps * n_bins).reshape(n_maps, n_bins)
    density = counts / (n_pixels * np.diff(edges))

    std = density.std(axis=0, ddof=1) if n_maps > 1 else np.zeros(n_bins)
    return Histograms(
        edges=edges,
        centers=0.5 * (edges[1:] + edges[:-1]),
        density=density,
        mean=density.mean(axis=0),
        std=std,
        pixel_mean=pixels.mean(axis=1),
        pixel_std=pixels.std(axis=1),
    )
