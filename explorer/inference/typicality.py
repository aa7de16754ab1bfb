"""How typical a field is for the model: its bound at the best fit, against held-out maps (issue #16).

The whole-bound estimate −ln L̂ of a field at its best θ is compared with a straight line in θ
fitted to held-out stand-in maps at their true θ (``bench/bench_gof.py --write`` stores it in the
weights' ``explorer.json`` under ``typicality``)::

    z = (−ln L̂(θ̂) − (c₀ + c_Ωm Ωₘ + c_σ8 σ₈)) / s

A field with |z| > 3 gets a note: measured on 20 altered copies of held-out maps, randomised
phases (same P(k), Gaussian) give z = +4 … +13 and smoothing by one pixel z = −13 … −11, while
the 100 held-out maps stay within |z| < 2.4; a pure offset of log10 Σ is not seen (it moves θ).
The best fit's −ln L̂ is ``Posterior.settings["chi2_min_raw"] / 2``: no extra network call.

The p-value is empirical: the fraction of the held-out maps whose |z| is at least the field's,
p = (1 + #{|zᵢ| ≥ |z|}) / (n + 1), from the held-out residuals stored with the line (``z_heldout``;
with 100 maps the smallest p is 1/101). A line stored without them gets the Gaussian two-sided
p = erfc(|z|/√2).
"""

from __future__ import annotations

import math

KEY = "typicality"
Z_WARN = 3.0


def reference(metadata: dict, terms: str, n_noise: int) -> dict | None:
    """The stored line for these terms and noise draws (the current one or one kept beside it,
    :mod:`.records`), or None (then no check is made)."""
    from .records import for_terms

    ref = for_terms(metadata, KEY, terms, n_noise)
    if ref is None:
        return None
    coef, scatter = ref.get("coef"), ref.get("scatter")
    if not (isinstance(coef, list) and len(coef) == 3 and isinstance(scatter, (int, float)) and scatter > 0):
        raise ValueError(f"explorer.json '{KEY}' needs coef [c0, c_omega_m, c_sigma_8] and scatter > 0, got {ref!r}")
    return ref


def z_score(neg_log_lik: float, theta, ref: dict) -> float:
    """(−ln L̂ − the held-out line at θ) / its scatter."""
    c0, c_om, c_s8 = ref["coef"]
    return (float(neg_log_lik) - (c0 + c_om * float(theta[0]) + c_s8 * float(theta[1]))) / float(ref["scatter"])


def p_value(z: float, ref: dict) -> float:
    """Two-sided p of ``z`` against the held-out maps' |z| (module docstring)."""
    held = ref.get("z_heldout")
    if isinstance(held, list) and held:
        n_as_far = sum(abs(float(v)) >= abs(float(z)) for v in held)
        return (1 + n_as_far) / (len(held) + 1)
    return math.erfc(abs(float(z)) / math.sqrt(2.0))


def note(z: float) -> str | None:
    """A plain warning for an atypical field (|z| > Z_WARN), else None."""
    if abs(z) <= Z_WARN:
        return None
    how = "worse" if z > 0 else "better"
    hint = ("other statistics: another simulator, added noise, a Gaussian or lognormal field?" if z > 0
            else "too smooth: another resolution or a smoothed map?")
    return (f"this field is atypical for the model (z = {z:+.1f}): its bound at the best fit is {abs(z):.0f}σ "
            f"{how} than for simulated maps; {hint} The contours assume a typical field.")
