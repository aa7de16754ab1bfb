r"""Reduced χ² of power spectra against a reference set, its leave-one-out floor, and z-scores.

The seed work (Mudur, Cuesta-Lazaro & Finkbeiner 2023) scores a map s by

.. math::

    \chi^2_r(s) = \frac{1}{n_k - 1} \sum_{k}
    \frac{\big(P_s(k) - \langle P_\mathrm{ref}(k)\rangle\big)^2}{\sigma[P_\mathrm{ref}(k)]^2},

with the mean and the sample standard deviation (ddof = 1) over the M reference maps at each k.
For Gaussian P(k) scatter, independent k bins and s independent of the reference,

.. math::

    \langle\chi^2_r\rangle = \Big(1 + \frac{1}{M}\Big)\,\frac{M-1}{M-3}\,\frac{n_k}{n_k-1},

and the leave-one-out floor (each reference map against the other M − 1) is the same with
M → M − 1: 1.276 for M = 15 maps and n_k = 128 (the seed paper's 1.27).
"""

from __future__ import annotations

import numpy as np

from explorer.stats._arrays import as_float_array


def _reference(reference, min_maps: int) -> np.ndarray:
    reference = as_float_array(reference, "reference", ndims=(2,))
    if reference.shape[0] < min_maps:
        raise ValueError(
            f"reference needs at least {min_maps} maps (rows), got shape {reference.shape}"
        )
    if reference.shape[1] < 2:
        raise ValueError(
            f"reference needs at least 2 k bins (columns), got shape {reference.shape}"
        )
    return reference


def _chi2_r(power: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """χ²_r of power (..., n_k) against mean and std broadcastable to it (sum over last axis)."""
    n_k = power.shape[-1]
    return np.asarray(np.sum(((power - mean) / std) ** 2, axis=-1) / (n_k - 1))


def reduced_chi2(power, reference) -> np.ndarray:
    """Reduced χ² of each power spectrum against the mean and scatter of a reference set.

    Parameters
    ----------
    power : (B, n_k) or (n_k,) array-like, (Mpc/h)^2
        Power spectra to score, e.g. of generated maps.
    reference : (M, n_k) array-like, (Mpc/h)^2
        Power spectra of the reference (true) maps on the same k bins, M >= 2.

    Returns
    -------
    (B,) or () float64 ndarray
        χ²_r(s) = 1/(n_k − 1) Σ_k (P_s(k) − ⟨P_ref(k)⟩)² / σ[P_ref(k)]², σ with ddof = 1.

    Raises
    ------
    ValueError
        If shapes disagree, M < 2, n_k < 2, values are not finite, or the reference has zero
        scatter at some k.
    """
    reference = _reference(reference, min_maps=2)
    power = as_float_array(power, "power", ndims=(1, 2))
    if power.shape[-1] != reference.shape[1]:
        raise ValueError(
            f"power has {power.shape[-1]} k bins but reference has {reference.shape[1]}"
        )
    std = reference.std(axis=0, ddof=1)
    if np.any(std == 0):
        bad = np.flatnonzero(std == 0).tolist()
        raise ValueError(f"reference has zero scatter at k bins {bad}")
    return _chi2_r(power, reference.mean(axis=0), std)


def leave_one_out_chi2(reference) -> np.ndarray:
    """Cosmic-variance floor: χ²_r of each reference spectrum against the other M − 1.

    Parameters
    ----------
    reference : (M, n_k) array-like, (Mpc/h)^2
        Power spectra of the reference maps, M >= 3.

    Returns
    -------
    (M,) float64 ndarray
        χ²_r of map i against the mean and ddof = 1 scatter of the maps j ≠ i.

    Raises
    ------
    ValueError
        If M < 3, n_k < 2, values are not finite, or a leave-one-out set has zero scatter.
    """
    reference = _reference(reference, min_maps=3)
    m = reference.shape[0]
    others = np.array([np.delete(np.arange(m), i) for i in range(m)])  # (M, M - 1)
    rest = reference[others]  # (M, M - 1, n_k)
    std = rest.std(axis=1, ddof=1)  # (M, n_k)
    if np.any(std == 0):
        raise ValueError("reference has zero scatter at some k once one map is left out")
    return _chi2_r(reference, rest.mean(axis=1), std)


def z_scores(power, reference) -> np.ndarray:
    """Per-k z-score of the mean power of one set against the mean of a reference set.

    z(k) = (mean_s(k) − mean_r(k)) / sqrt(var_s(k)/n_s + var_r(k)/n_r), the difference of the two
    means in units of its standard error (Welch), with sample variances (ddof = 1).

    Parameters
    ----------
    power : (n_s, n_k) array-like, (Mpc/h)^2
        Power spectra of the maps under test, n_s >= 2.
    reference : (n_r, n_k) array-like, (Mpc/h)^2
        Power spectra of the reference maps, n_r >= 2.

    Returns
    -------
    (n_k,) float64 ndarray
        z(k); |z| ≲ 2 where the means agree within their errors.

    Raises
    ------
    ValueError
        If either set has fewer than 2 spectra, the k bins differ, or both sets have zero scatter
        at some k.
    """
    reference = _reference(reference, min_maps=2)
    power = as_float_array(power, "power", ndims=(2,))
    if power.shape[0] < 2:
        raise ValueError(f"power needs at least 2 spectra (rows), got shape {power.shape}")
    if power.shape[1] != reference.shape[1]:
        raise ValueError(
            f"power has {power.shape[1]} k bins but reference has {reference.shape[1]}"
        )
    error = np.sqrt(
        power.var(axis=0, ddof=1) / power.shape[0]
        + reference.var(axis=0, ddof=1) / reference.shape[0]
    )
    if np.any(error == 0):
        bad = np.flatnonzero(error == 0).tolist()
        raise ValueError(f"both sets have zero scatter at k bins {bad}")
    return (power.mean(axis=0) - reference.mean(axis=0)) / error
