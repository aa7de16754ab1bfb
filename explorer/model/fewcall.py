"""The few-call sampler ``"sde-translation"``: a translation-field start and posterior-variance steps.

Two changes to the Gaussian-start sampler let 4 network calls do what 14 did:

1. **Start late, from a non-Gaussian field.** x at the first level σ* = 0.15 is drawn from the
   translation-field model of the data (:mod:`.translation`), which already has the simulations'
   one-point distribution and power spectrum; the network shapes what is left.
2. **Put back the variance a posterior mean lacks.** A first-order stochastic DPM-Solver++ step
   (Lu et al. 2022, arXiv 2211.01095, eq. for SDE-DPM-Solver-1 in data prediction) from level s to
   level t, written with σ = √((1−ᾱ)/ᾱ), α = √ᾱ, s_t = √(1−ᾱ_t) and r = σ_t/σ_s, is

       x_t = (s_t/s_s) r x_s + α_t (1 − r²) x̂₀ + s_t √(1 − r²) z,

   the exact transition of the reverse process only when x̂₀ is a *sample* of p(x₀ | x_s); with its
   mean D(x_s) (what the network returns) the step drops (1 − r²)² Cov(x₀ | x_s), which is negligible
   for small steps and 5–10 % of the pixel variance over 4 big ones (the maps come out smooth:
   fidelity 1.4 instead of 0.76, measured). Here x̂₀ = D(x_s) + ξ with ξ drawn from the Gaussian
   model's posterior covariance, diagonal in Fourier space: per mode

       Cov(x₀ | x_s) = S(k; θ) σ_s² / (S(k; θ) + σ_s²),

   S the data's spectrum (the Gaussian start's convention, white noise of unit variance has S = 1),
   times a gain γ (``variance_gain``), and shaped in real space by (T_θ′)^β normalised to unit mean
   square (``modulation``; T_θ′ the translation's slope at D's pixels), so that the added variance
   sits where the maps are dense and keeps their skewness. For Gaussian data with an exact
   denoiser and γ = 1, β = 0 the steps are exact in their second moments whatever their size (tested).
   The last call returns x̂₀ (with its ξ) as the map.

The levels are Karras' (ρ = 7) from σ* down to the schedule's smallest σ (:func:`.distill.karras_levels`),
one network call each. Noise order per request: the start's white field and mean level, its
x_s noise, then per level ξ's white noise and (except at the last level) z, all from the request's
generator (a :class:`.noise.GeneratorGroup` gives every request its own).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .distill import gaussian_start_x, karras_levels
from .noise import randn

__all__ = ["posterior_variance_noise", "sample_translation"]


def posterior_variance_noise(spectrum: np.ndarray, sigma: float, generator, gain: float = 1.0,
                             shape: np.ndarray | None = None) -> np.ndarray:
    """ξ ``(B, n, n)`` float64: a Gaussian field with covariance ``gain`` · S σ²/(S + σ²) per DFT mode
    (``spectrum`` S ``(B, n, n)``), multiplied pixel by pixel by ``shape / rms(shape)`` when given."""
    white = randn(spectrum.shape, generator, torch.float64).numpy()
    post = gain * spectrum * sigma ** 2 / (spectrum + sigma ** 2)
    xi = np.fft.ifft2(np.fft.fft2(white) * np.sqrt(post)).real
    if shape is not None:
        xi *= shape / np.sqrt(np.mean(shape ** 2, axis=(1, 2), keepdims=True))
    return xi


def sample_translation(x0_fn: Callable, schedule, start, theta: torch.Tensor, shape, steps: int, generator,
                       device, progress=None) -> torch.Tensor:
    """``(B, 1, n, n)`` normalised maps by the module's sampler.

    x0_fn(x, t, theta): the network's x̂₀ (clipped) at code timesteps ``t (B,)``; ``start``: a
    :class:`.translation.TranslationStart` (its σ*, γ and β); ``steps``: network calls (Karras levels).
    """
    levels = karras_levels(schedule, int(steps), start.sigma)
    alpha_bar = np.asarray(schedule.alpha_bar, dtype=np.float64)
    th = theta.detach().cpu().numpy().astype(np.float64)
    spectrum = start.base.spectrum(th)
    b = shape[0]
    x = gaussian_start_x(start, theta, alpha_bar[levels[0]], shape, generator, device)
    for i, t in enumerate(int(v) for v in levels):
        d = x0_fn(x, torch.full((b,), t, dtype=torch.long, device=device), theta)
        sigma_s = float(np.sqrt((1.0 - alpha_bar[t]) / alpha_bar[t]))
        if start.variance_gain > 0:
            shaping = None
            if start.modulation > 0:
                shaping = start.slope(th, d[:, 0].detach().cpu().double().numpy()) ** start.modulation
            xi = posterior_variance_noise(spectrum, sigma_s, generator, start.variance_gain, shaping)
            d = d + torch.from_numpy(xi[:, None]).to(device=device, dtype=d.dtype)
        if i == len(levels) - 1:
            x = d
        else:
            nxt = int(levels[i + 1])
            a_s, s_s = alpha_bar[t] ** 0.5, (1.0 - alpha_bar[t]) ** 0.5
            a_t, s_t = alpha_bar[nxt] ** 0.5, (1.0 - alpha_bar[nxt]) ** 0.5
            r = (s_t / a_t) / (s_s / a_s)
            z = randn(shape, generator).to(device)
            x = (s_t / s_s) * r * x + a_t * (1.0 - r ** 2) * d + s_t * (1.0 - r ** 2) ** 0.5 * z
        if progress is not None:
            progress(i + 1, len(levels))
    return x
