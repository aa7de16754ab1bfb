r"""Connected over-dense regions of thresholded periodic maps: counts, sizes, nodes and filaments.

This is the seed study's "third-order" look at the cosmic web. For a map f with mean μ and
pixel standard deviation σ (ddof = 0), the excursion set at threshold ν is {f > μ + νσ}. Its
connected regions are found with 4-connectivity (pixels sharing an edge) on the **torus**: a region
that leaves through one edge and comes back through the opposite edge is one region.

Shape of a region: its pixels are unit squares; with offsets Δx, Δy from the region's circular
mean position (so regions crossing an edge are unwrapped), the second-moment matrix

.. math::

    I = \begin{pmatrix} \langle\Delta y^2\rangle_c & \langle\Delta y\Delta x\rangle_c \\
    \langle\Delta y\Delta x\rangle_c & \langle\Delta x^2\rangle_c \end{pmatrix}
    + \frac{1}{12}\,\mathbb{1}

(⟨·⟩_c: mean over the region's pixels, centred; 1/12 is a unit square's own variance) has
eigenvalues λ₁ ≥ λ₂ > 0, and the elongation is the axis ratio e = sqrt(λ₁/λ₂): 1 for a disk,
exactly ℓ for an ℓ × 1 bar. A region is a *filament* when e > ``filament_elongation`` and it has at
least ``min_filament_pixels`` pixels, otherwise a *node*. Regions spanning the whole torus have no
unique unwrapping; their moments are those of the wrapped offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.csgraph

from explorer.stats._arrays import as_float_array


@dataclass(frozen=True, eq=False)
class Regions:
    """Connected regions of one thresholded map.

    Attributes
    ----------
    n_regions : int
        Number of connected regions (periodic boundaries).
    sizes : (n_regions,) int64, pixels
        Region sizes, descending.
    labels : (H, W) int64
        0 for pixels at or below the threshold; label i (1-based) marks the region of size
        ``sizes[i - 1]``.
    """

    n_regions: int
    sizes: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True, eq=False)
class Structure:
    """Excursion-set statistics per map and threshold.

    Leading shape (B,) for (B, H, W) input, none for a single (H, W) map.

    Attributes
    ----------
    thresholds : (n_t,) float64
        ν, in units of each map's own σ above its mean.
    n_regions : (B, n_t) int64
        Number of connected over-dense regions.
    mean_size : (B, n_t) float64, pixels
        Mean region size; NaN where there is no region.
    area_fraction : (B, n_t) float64
        Fraction of the map's pixels above the threshold.
    n_filaments : (B, n_t) int64
        Regions with elongation > ``filament_elongation`` and >= ``min_filament_pixels`` pixels.
    n_nodes : (B, n_t) int64
        All other regions (n_regions − n_filaments).
    """

    thresholds: np.ndarray
    n_regions: np.ndarray
    mean_size: np.ndarray
    area_fraction: np.ndarray
    n_filaments: np.ndarray
    n_nodes: np.ndarray


def _label_periodic(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label 4-connected True regions of each (H, W) slice of ``mask (B, H, W)`` on the torus.

    Returns labels (B, H, W) int64 numbered 1..n across the whole batch (0 = background), and n.
    """
    # 1. Label each map's plane; the structure has no neighbours along the batch axis.
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = scipy.ndimage.generate_binary_structure(2, 1)
    labels, n = scipy.ndimage.label(mask, structure=structure)
    labels = labels.astype(np.int64)
    if n == 0:
        return labels, 0
    # 2. Labels touching across opposite edges are the same region: join them in a graph.
    a = np.concatenate([labels[:, 0, :].ravel(), labels[:, :, 0].ravel()])
    b = np.concatenate([labels[:, -1, :].ravel(), labels[:, :, -1].ravel()])
    touching = (a > 0) & (b > 0)
    graph = scipy.sparse.coo_matrix(
        (np.ones(touching.sum()), (a[touching], b[touching])), shape=(n + 1, n + 1)
    )
    _, component = scipy.sparse.csgraph.connected_components(graph, directed=False)
    # 3. Renumber components 1..n_merged; label 0 touches nothing and stays background.
    _, merged = np.unique(component[1:], return_inverse=True)
    lookup = np.concatenate([[0], merged.ravel() + 1])
    return lookup[labels], int(lookup.max())


def _region_shapes(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes, elongations and map index of regions 1..n in ``labels (B, H, W)``.

    Returns three (n + 1,) arrays indexed by label (entry 0 unused): size in pixels, axis ratio
    sqrt(λ₁/λ₂) of the unwrapped second-moment matrix, and the batch index of the region's map.
    """
    height, width = labels.shape[-2:]
    b, y, x = np.nonzero(labels)
    lab = labels[b, y, x]

    def per_region(values):
        return np.bincount(lab, weights=values, minlength=n + 1)

    size = np.bincount(lab, minlength=n + 1)
    safe_size = np.maximum(size, 1)

    def unwrapped(coord, period):
        # Offsets from the circular mean position, wrapped into [-period/2, period/2).
        angle = 2.0 * np.pi * coord / period
        centre = np.arctan2(per_region(np.sin(angle)), per_region(np.cos(angle)))
        centre *= period / (2.0 * np.pi)
        return (coord - centre[lab] + period / 2.0) % period - period / 2.0

    dy, dx = unwrapped(y, height), unwrapped(x, width)
    mean_y, mean_x = per_region(dy) / safe_size, per_region(dx) / safe_size
    i_yy = per_region(dy * dy) / safe_size - mean_y**2 + 1.0 / 12.0
    i_xx = per_region(dx * dx) / safe_size - mean_x**2 + 1.0 / 12.0
    i_xy = per_region(dy * dx) / safe_size - mean_y * mean_x
    half_trace = 0.5 * (i_yy + i_xx)
    radius = np.hypot(0.5 * (i_yy - i_xx), i_xy)
    lam_min = np.maximum(half_trace - radius, 1.0 / 12.0)  # >= 1/12 exactly; guard rounding
    elongation = np.sqrt((half_trace + radius) / lam_min)

    map_index = np.zeros(n + 1, dtype=np.int64)
    map_index[lab] = b
    return size, elongation, map_index


def connected_regions(field, threshold: float) -> Regions:
    """Connected regions of the pixels above a threshold, with periodic boundaries.

    Parameters
    ----------
    field : (H, W) array-like or torch.Tensor
        One periodic map, e.g. log10 Σ.
    threshold : float
        Absolute threshold in the unit of ``field``; pixels with field > threshold are over-dense.

    Returns
    -------
    Regions
        Number of 4-connected regions on the torus, sizes (descending) and a label map.

    Raises
    ------
    ValueError
        If ``field`` is not 2D or not finite, or ``threshold`` is not a finite number.
    """
    field = as_float_array(field, "field", ndims=(2,))
    if not (np.isscalar(threshold) and np.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    labels, n = _label_periodic((field > threshold)[None])
    labels = labels[0]
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    order = np.argsort(-sizes, kind="stable")  # label order by decreasing size
    lookup = np.zeros(n + 1, dtype=np.int64)
    lookup[order + 1] = np.arange(1, n + 1)
    return Regions(n_regions=n, sizes=sizes[order], labels=lookup[labels])


def structure_statistics(
    maps,
    thresholds=(1.0, 2.0, 3.0),
    filament_elongation: float = 3.0,
    min_filament_pixels: int = 10,
) -> Structure:
    """Counts, sizes, area and node/filament census of over-dense regions at several thresholds.

    Parameters
    ----------
    maps : (B, H, W) or (H, W) array-like or torch.Tensor
        Periodic maps, e.g. log10 Σ.
    thresholds : (n_t,) array-like, default (1, 2, 3)
        ν in units of each map's own pixel σ (ddof = 0) above its own mean.
    filament_elongation : float, default 3.0
        Axis ratio above which a region counts as a filament.
    min_filament_pixels : int, default 10
        Smaller regions are nodes whatever their elongation.

    Returns
    -------
    Structure
        Arrays shaped (B, n_t), or (n_t,) for a single map.

    Raises
    ------
    ValueError
        If maps are not 2D/3D or not finite, thresholds are empty or not finite,
        ``filament_elongation`` < 1 or ``min_filament_pixels`` < 1.
    """
    maps = as_float_array(maps, "maps", ndims=(2, 3))
    thresholds = as_float_array(thresholds, "thresholds", ndims=(0, 1)).reshape(-1)
    if not (np.isscalar(filament_elongation) and filament_elongation >= 1):
        raise ValueError(f"filament_elongation must be a number >= 1, got {filament_elongation!r}")
    if not (isinstance(min_filament_pixels, (int, np.integer)) and min_filament_pixels >= 1):
        raise ValueError(
            f"min_filament_pixels must be an integer >= 1, got {min_filament_pixels!r}"
        )
    batch = maps.reshape((-1,) + maps.shape[-2:])  # (B, H, W)
    n_maps, n_t = batch.shape[0], thresholds.size
    mean = batch.mean(axis=(1, 2), keepdims=True)
    sigma = batch.std(axis=(1, 2), keepdims=True)

    n_regions = np.zeros((n_maps, n_t), dtype=np.int64)
    n_filaments = np.zeros((n_maps, n_t), dtype=np.int64)
    area_fraction = np.zeros((n_maps, n_t))
    for j, nu in enumerate(thresholds):
        mask = batch > mean + nu * sigma  # (B, H, W)
        area_fraction[:, j] = mask.mean(axis=(1, 2))
        labels, n = _label_periodic(mask)
        if n == 0:
            continue
        size, elongation, map_index = _region_shapes(labels, n)
        filament = (elongation > filament_elongation) & (size >= min_filament_pixels)
        n_regions[:, j] = np.bincount(map_index[1:], minlength=n_maps)
        n_filaments[:, j] = np.bincount(map_index[1:], weights=filament[1:], minlength=n_maps)

    area_pixels = area_fraction * batch.shape[1] * batch.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_size = np.where(n_regions > 0, area_pixels / n_regions, np.nan)
    lead = maps.shape[:-2]
    return Structure(
        thresholds=thresholds,
        n_regions=n_regions.reshape(lead + (n_t,)),
        mean_size=mean_size.reshape(lead + (n_t,)),
        area_fraction=area_fraction.reshape(lead + (n_t,)),
        n_filaments=n_filaments.reshape(lead + (n_t,)),
        n_nodes=(n_regions - n_filaments).reshape(lead + (n_t,)),
    )
