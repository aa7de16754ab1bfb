r"""Response of the power spectrum to one parameter (the CAMELS "1P" test).

With the initial-condition seeds held fixed, the ratio

.. math::

    R_s(k; \theta) = \frac{P_s(k; \theta)}{P_s(k; \theta_\mathrm{fid})}

cancels most of the seed's cosmic variance, so the response of an emulator can be compared with
the simulations' far more tightly than P(k) itself. Mean and scatter are taken over seeds s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.stats._arrays import as_float_array


@dataclass(frozen=True, eq=False)
class Response:
    """Power-spectrum ratios to the fiducial, per seed and summarised over seeds.

    Attributes
    ----------
    ratio : (n_values, n_seeds, n_k) float64
        P(k; θ_v) / P(k; θ_fid) for each parameter value v and seed s.
    mean : (n_values, n_k) float64
        Mean ratio over seeds.
    std : (n_values, n_k) float64
        Sample standard deviation (ddof = 1) of the ratio over seeds; NaN when n_seeds = 1.
    """

    ratio: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def response_ratio(power, fiducial) -> Response:
    """Ratio of power spectra at several parameter values to the fiducial, seed by seed.

    Parameters
    ----------
    power : (n_values, n_seeds, n_k) array-like, (Mpc/h)^2
        P(k) at each parameter value, for the same seeds as ``fiducial`` in the same order.
    fiducial : (n_seeds, n_k) array-like, (Mpc/h)^2
        P(k) at the fiducial parameters, positive.

    Returns
    -------
    Response
        ``ratio (n_values, n_seeds, n_k)``, ``mean`` and ``std (n_values, n_k)``.

    Raises
    ------
    ValueError
        If shapes disagree, values are not finite, or ``fiducial`` has a non-positive entry.
    """
    power = as_float_array(power, "power", ndims=(3,))
    fiducial = as_float_array(fiducial, "fiducial", ndims=(2,))
    if power.shape[1:] != fiducial.shape:
        raise ValueError(
            f"power (n_values, n_seeds, n_k) = {power.shape} does not match "
            f"fiducial (n_seeds, n_k) = {fiducial.shape}"
        )
    if np.any(fiducial <= 0):
        raise ValueError(f"fiducial must be positive, found minimum {fiducial.min()}")
    ratio = power / fiducial[None]
    n_seeds = ratio.shape[1]
    if n_seeds > 1:
        std = ratio.std(axis=1, ddof=1)
    else:
        std = np.full((ratio.shape[0], ratio.shape[2]), np.nan)
    return Response(ratio=ratio, mean=ratio.mean(axis=1), std=std)


def response_agreement(generated: Response, reference: Response) -> float:
    r"""One number for how well a generated response matches the reference response.

    .. math::

        A = \Big[\frac{1}{n_\mathrm{values}\, n_k} \sum_{v, k}
        \frac{(\bar R_\mathrm{gen}(v, k) - \bar R_\mathrm{ref}(v, k))^2}
        {\sigma_\mathrm{gen}(v, k)^2 + \sigma_\mathrm{ref}(v, k)^2}\Big]^{1/2},

    the RMS over parameter values v and bins k of the difference of the mean ratios in units of
    the combined seed-to-seed scatter (not the standard error of the means, so A does not grow
    with the number of seeds). A ≲ 1: the responses agree within the scatter of single seeds.

    Parameters
    ----------
    generated, reference : Response
        From ``response_ratio``, with equal (n_values, n_k); n_seeds may differ.

    Returns
    -------
    float
        A >= 0; 0 for identical mean responses.

    Raises
    ------
    ValueError
        If (n_values, n_k) differ, or the combined scatter is zero or undefined (n_seeds = 1 in
        both) at some (v, k).
    """
    if generated.mean.shape != reference.mean.shape:
        raise ValueError(
            f"generated (n_values, n_k) = {generated.mean.shape} does not match "
            f"reference {reference.mean.shape}"
        )
    variance = np.nan_to_num(generated.std**2) + np.nan_to_num(reference.std**2)
    if np.any(variance == 0):
        raise ValueError(
            "combined seed scatter is zero or undefined (n_seeds = 1) at "
            f"{int(np.sum(variance == 0))} (value, k) entries"
        )
    return float(np.sqrt(np.mean((generated.mean - reference.mean) ** 2 / variance)))
