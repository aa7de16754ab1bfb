"""Translation-field start of the few-call sampler: a non-Gaussian field drawn without the network.

The Gaussian start (:mod:`.gaussian`) hands a Gaussian random field to the network at σ* = 3, and
the network needs 14 calls to make it look like a simulation; started at σ* ≤ 1 the maps stay too
Gaussian (README, "What a power spectrum cannot see"). A *translation field* (a Gaussian field put
through a monotone pixel transform, as in lognormal mocks) carries the simulations' one-point
distribution, so the network can start much later and only has to shape the smallest scales.

In the normalised units of the network (x = 2 (log10 Σ − lo)/(hi − lo) − 1), for a map x with its own
mean removed, d = x − ⟨x⟩:

* **one-point transform** T_θ: the quantiles q_j(θ) of d at the Gaussian levels g_j (65 points on
  [−4, 4], probabilities Φ(g_j)), pooled over the maps of each training simulation and fitted as
  polynomials of total degree ``degree`` in the scaled θ (:func:`.gaussian.theta_monomials`);
  T_θ(g) interpolates g ↦ q(θ) linearly, continued linearly beyond ±4, and is kept monotone;
* **Gaussian field** g with ring spectrum S^g(θ) (the :class:`.gaussian.GaussianStart` convention,
  white noise of unit variance has S = 1), fitted first to the training maps Gaussianised with
  T_θ⁻¹, then corrected ``iterations`` times in its polynomial coefficients, ln S^g += ln S^x −
  ln S^{T(g)}, until the drawn T_θ(g) has the training maps' own spectrum S^x (a transform changes
  the spectrum it is given), and then (:meth:`TranslationStart.matched_to_sampler`, run by
  ``explorer fit-start``) until the few-call sampler's *output* has it (its network steps take ≈ 10 %
  of the power at 1–3 h/Mpc);
* **mean level** m ~ N(μ(θ), s(θ)²) of the Gaussian start fitted on the same maps (``base``):
  x₀ = T_θ(g) − ⟨T_θ(g)⟩ + m.
* optionally (``displacement`` A > 0, pixels) **Zel'dovich morphology**: g's random phases make
  blobs, where the simulations string their dense regions on filaments, and the few-call sampler's
  4 calls from σ* = 0.15 keep what the start gives them above 1σ (README, "Where the extra regions
  are"). With A > 0 the field handed to T_θ is instead the Gaussianised rank of a density made by
  moving particles (2 per pixel and axis, on a regular grid q) by the Zel'dovich displacement
  ψ = −A ∇∇⁻²g / ψ_rms (Zel'dovich 1970; ψ_k = i k g_k / k², ψ_rms(θ) its expected RMS per axis pair
  from S^g, so A is the RMS displacement) and depositing them with cloud-in-cell on the map's grid:
  g̃ = Φ⁻¹((rank(ρ) + ½)/n²), ties (empty voids) ordered by g. One-point distribution and mean level
  are T_θ's and m as above; only the arrangement of the pixels changes.

:func:`TranslationStart.slope` gives T_θ′ at a map's pixels: the few-call sampler
(:mod:`.fewcall`) shapes the variance it adds with it, larger where the transform stretches (dense
regions), so that the added variance keeps the maps' skewness.

``explorer fit-start`` fits it on a weights folder's training split and stores it in the weights'
``explorer.json`` under "translation_start".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.special import ndtr

from .gaussian import GaussianStart, theta_monomials
from .noise import randn

__all__ = ["TranslationStart", "GAUSS_LEVELS"]

#: the Gaussian levels g_j of the quantile grid
GAUSS_LEVELS = np.linspace(-4.0, 4.0, 65)


def _transform(g: np.ndarray, q: np.ndarray) -> np.ndarray:
    """T(g) for one map ``g (n, n)`` and its quantiles ``q (65,)`` at :data:`GAUSS_LEVELS`, continued linearly."""
    step = GAUSS_LEVELS[1] - GAUSS_LEVELS[0]
    lo, hi = (q[1] - q[0]) / step, (q[-1] - q[-2]) / step
    y = np.interp(g, GAUSS_LEVELS, q)
    y = np.where(g < GAUSS_LEVELS[0], q[0] + lo * (g - GAUSS_LEVELS[0]), y)
    return np.where(g > GAUSS_LEVELS[-1], q[-1] + hi * (g - GAUSS_LEVELS[-1]), y)


def _spectrum_coef(theta, maps, param_ranges, degree: int) -> np.ndarray:
    """The ring-spectrum coefficients ln S_n(θ) of :meth:`GaussianStart.fit` for ``maps (N, n, n)`` (only
    those: the mean level of Gaussianised or drawn maps is not modelled)."""
    return GaussianStart.fit(theta, maps, param_ranges, degree=degree, scatter="constant").log_spectrum_coef


def cic_deposit(positions: np.ndarray, n: int) -> np.ndarray:
    """Cloud-in-cell counts ``(n, n)`` of particles at ``positions (P, 2)`` [pixels; pixel (i, j) spans
    [i, i+1) × [j, j+1)], periodic: each particle spreads unit mass over the 4 pixels its cell overlaps."""
    x = np.asarray(positions, dtype=np.float64) - 0.5
    base = np.floor(x)
    frac = x - base
    i0 = base.astype(np.int64) % n
    out = np.zeros(n * n)
    for dx in (0, 1):
        wx = frac[:, 0] if dx else 1.0 - frac[:, 0]
        for dy in (0, 1):
            wy = frac[:, 1] if dy else 1.0 - frac[:, 1]
            out += np.bincount(((i0[:, 0] + dx) % n) * n + (i0[:, 1] + dy) % n, weights=wx * wy, minlength=n * n)
    return out.reshape(n, n)


def zeldovich_ranks(g_k: np.ndarray, spectrum: np.ndarray, displacement: float) -> np.ndarray:
    """g̃ ``(B, n, n)``: the Gaussianised ranks of the CIC density of particles (2 per pixel and axis)
    moved by the Zel'dovich displacement of the fields g with ``g_k = FFT(g) (B, n, n)`` and expected power
    ``spectrum (B, n, n)`` (per DFT mode, white noise of unit variance has 1), scaled to an expected RMS
    of ``displacement`` pixels; ties ordered by g (module docstring). The finer sampling of ψ is the
    zero-padding of :func:`explorer.sim.maps.upsample_displacements`, in 2D and keeping the Nyquist modes."""
    from scipy.special import ndtri

    b, n = g_k.shape[0], g_k.shape[-1]
    k = 2 * np.pi * np.fft.fftfreq(n)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    k2 = kx ** 2 + ky ** 2
    k2[0, 0] = np.inf
    # E|ψ|² per pixel = (1/n²) Σ_k S/k² (numpy's unnormalised FFT: E|FFT(white)_k|² = n²)
    rms = np.sqrt((spectrum / k2).sum(axis=(1, 2)) / n ** 2)
    m, h = 2 * n, n // 2
    q = (np.arange(m) + 0.5) / 2.0
    grid = np.stack(np.meshgrid(q, q, indexing="ij"), axis=-1).reshape(-1, 2)
    g = np.fft.ifft2(g_k).real
    out = np.empty((b, n, n))
    for i in range(b):
        psi = []
        for kc in (kx, ky):
            small = 1j * kc / k2 * g_k[i] * (displacement / rms[i])
            big = np.zeros((m, m), dtype=complex)  # the same band-limited field sampled twice as finely
            big[:h, :h], big[:h, -h:], big[-h:, :h], big[-h:, -h:] = (small[:h, :h], small[:h, -h:],
                                                                      small[-h:, :h], small[-h:, -h:])
            psi.append(np.fft.ifft2(big).real.ravel() * (m / n) ** 2)
        rho = cic_deposit((grid + np.stack(psi, axis=-1)) % n, n)
        order = np.lexsort((g[i].ravel(), rho.ravel()))
        ranks = np.empty(n * n)
        ranks[order] = np.arange(n * n)
        out[i] = ndtri((ranks + 0.5) / (n * n)).reshape(n, n)
    return out


def _groups(theta: np.ndarray) -> list[np.ndarray]:
    """Indices of the maps sharing each distinct θ (one simulation each, in a CMD set)."""
    _, inverse = np.unique(theta, axis=0, return_inverse=True)
    return [np.flatnonzero(inverse.ravel() == i) for i in range(inverse.max() + 1)]


@dataclass(frozen=True, eq=False)
class TranslationStart:
    """Translation-field model of the normalised maps given θ, and the noise level σ* where sampling starts."""

    base: GaussianStart             # mean level μ(θ), s(θ) and the maps' own spectrum S^x(θ)
    quantile_coef: np.ndarray       # (n_features, 65): q_j(θ) = φ(u) · coef[:, j]
    g_log_spectrum_coef: np.ndarray  # (n_features, R): ln S^g_n(θ) = φ(u) · coef[:, n-1]
    sigma: float                    # σ* of the first network call
    variance_gain: float = 1.0      # γ of the sampler's added posterior variance (:mod:`.fewcall`)
    modulation: float = 0.25        # β: the added variance is shaped by (T′)^β
    displacement: float = 0.0       # A: RMS Zel'dovich displacement [pixels] of g before T (0: g itself)

    def __post_init__(self):
        n_feat = self.base.log_spectrum_coef.shape[0]
        if self.quantile_coef.shape != (n_feat, GAUSS_LEVELS.size):
            raise ValueError(f"translation_start: quantile_coef has shape {self.quantile_coef.shape}, "
                             f"expected {(n_feat, GAUSS_LEVELS.size)}")
        if self.g_log_spectrum_coef.shape != self.base.log_spectrum_coef.shape:
            raise ValueError(f"translation_start: g_log_spectrum_coef has shape {self.g_log_spectrum_coef.shape}, "
                             f"expected {self.base.log_spectrum_coef.shape}")
        if not (np.isfinite(self.quantile_coef).all() and np.isfinite(self.g_log_spectrum_coef).all()):
            raise ValueError("translation_start: coefficients must be finite")
        if not (self.sigma > 0 and self.variance_gain >= 0 and self.modulation >= 0 and self.displacement >= 0):
            raise ValueError(f"translation_start: need sigma > 0 and variance_gain, modulation, displacement >= 0, "
                             f"got {self.sigma}, {self.variance_gain}, {self.modulation}, {self.displacement}")

    @property
    def resolution(self) -> int:
        return self.base.resolution

    @classmethod
    def fit(cls, theta_per_map, maps, param_ranges, *, sigma: float = 0.15, degree: int = 3,
            iterations: int = 3, seed: int = 0, variance_gain: float = 1.0,
            modulation: float = 0.25, displacement: float = 0.0) -> "TranslationStart":
        """Fit to normalised maps ``(N, n, n)`` at ``theta_per_map (N, 2)`` (module docstring); the
        spectrum correction draws its maps from ``seed``."""
        maps = np.asarray(maps, dtype=np.float64)
        theta = np.asarray(theta_per_map, dtype=np.float64)
        try:  # (checks shapes and NaN)
            base = GaussianStart.fit(theta, maps, param_ranges, sigma=sigma, degree=degree)
        except np.linalg.LinAlgError:  # map means that do not scatter at all (synthetic maps): one s
            base = GaussianStart.fit(theta, maps, param_ranges, sigma=sigma, degree=degree, scatter="constant")
        d = maps - maps.mean(axis=(1, 2), keepdims=True)
        groups = _groups(theta)
        phi_sims = theta_monomials(np.stack([theta[g[0]] for g in groups]), param_ranges, degree)
        if len(groups) < phi_sims.shape[1] + 1:
            raise ValueError(f"need maps of at least {phi_sims.shape[1] + 1} distinct cosmologies for a degree-{degree} "
                             f"model, got {len(groups)}")
        pooled = np.stack([np.quantile(d[g].ravel(), ndtr(GAUSS_LEVELS)) for g in groups])
        quantile_coef = np.linalg.lstsq(phi_sims, pooled, rcond=None)[0]
        start = cls(base=base, quantile_coef=quantile_coef, g_log_spectrum_coef=base.log_spectrum_coef.copy(),
                    sigma=float(sigma), variance_gain=float(variance_gain), modulation=float(modulation),
                    displacement=float(displacement))
        q = start.quantiles(theta)
        gauss = np.stack([np.interp(d[i], q[i], GAUSS_LEVELS) for i in range(len(d))])
        coef = _spectrum_coef(theta, gauss, param_ranges, degree)
        start = replace(start, g_log_spectrum_coef=coef)
        gen = torch.Generator().manual_seed(int(seed))
        for _ in range(int(iterations)):
            drawn = np.concatenate([start.draw(theta[i:i + 512], gen)[:, 0].numpy() for i in range(0, len(theta), 512)])
            got = _spectrum_coef(theta, drawn, param_ranges, degree)
            start = replace(start, g_log_spectrum_coef=start.g_log_spectrum_coef + base.log_spectrum_coef - got)
        return start

    def matched_to_sampler(self, sample_maps, theta, iterations: int = 2, seed: int = 0) -> tuple["TranslationStart", list]:
        """This start with S^g corrected until the *sampler's output* has the training maps' spectrum S^x.

        The network's few steps reshape the start's structure and lower its power at 1–3 h/Mpc by
        ≈ 10 % (measured); each iteration draws maps with ``sample_maps(start, theta, generator) -> (B, n, n)``
        (normalised) at ``theta (B, 2)`` (training cosmologies) and adds ln S^x − ln S^out to ln S^g, in
        the polynomial coefficients. Returns the corrected start and, per iteration, the output's ring
        power over the model's at the mean θ before that iteration's correction (a list of ``(R,)``)."""
        theta = np.asarray(theta, dtype=np.float64)
        start, ratios = self, []
        centre = theta.mean(axis=0, keepdims=True)
        phi = theta_monomials(centre, self.base.param_ranges, self.base.degree)
        for i in range(int(iterations)):
            out = np.asarray(sample_maps(start, theta, torch.Generator().manual_seed(int(seed) + i)), dtype=np.float64)
            got = _spectrum_coef(theta, out, self.base.param_ranges, self.base.degree)
            ratios.append(np.exp(phi @ (got - self.base.log_spectrum_coef))[0])
            start = replace(start, g_log_spectrum_coef=start.g_log_spectrum_coef + self.base.log_spectrum_coef - got)
        return start, ratios

    def quantiles(self, theta) -> np.ndarray:
        """q(θ) ``(B, 65)``, non-decreasing, normalised units (map mean removed)."""
        phi = theta_monomials(theta, self.base.param_ranges, self.base.degree)
        return np.maximum.accumulate(phi @ self.quantile_coef, axis=1)

    def g_spectrum(self, theta) -> np.ndarray:
        """S^g(θ) on every DFT mode: ``(B, n, n)`` (as :meth:`.GaussianStart.spectrum`)."""
        return replace(self.base, log_spectrum_coef=self.g_log_spectrum_coef).spectrum(theta)

    def draw(self, theta, generator) -> torch.Tensor:
        """x₀ at each θ of ``theta (B, 2)``: ``(B, 1, n, n)`` float32, from the CPU ``generator`` (or a
        :class:`~explorer.model.noise.GeneratorGroup` of B rows): white noise, then the mean level."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        b, n = theta.shape[0], self.resolution
        white = randn((b, n, n), generator, torch.float64).numpy()
        level = randn((b,), generator, torch.float64).numpy()
        spectrum = self.g_spectrum(theta)
        g_k = np.fft.fft2(white) * np.sqrt(spectrum)
        g = zeldovich_ranks(g_k, spectrum, self.displacement) if self.displacement > 0 else np.fft.ifft2(g_k).real
        q = self.quantiles(theta)
        field = np.stack([_transform(g[i], q[i]) for i in range(b)])
        field += (self.base.mean(theta) + self.base.scatter(theta) * level - field.mean(axis=(1, 2)))[:, None, None]
        return torch.from_numpy(field[:, None]).float()

    def slope(self, theta, x) -> np.ndarray:
        """T_θ′ at the pixels of maps ``x (B, n, n)`` (normalised units, each map's mean removed first):
        ``(B, n, n)``, the slope of the transform's segment holding T_θ⁻¹(x − ⟨x⟩)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        x = np.asarray(x, dtype=np.float64)
        q = self.quantiles(theta)
        slopes = np.diff(q, axis=1) / np.diff(GAUSS_LEVELS)
        mid = 0.5 * (GAUSS_LEVELS[1:] + GAUSS_LEVELS[:-1])
        d = x - x.mean(axis=(1, 2), keepdims=True)
        return np.stack([np.interp(np.interp(d[i], q[i], GAUSS_LEVELS), mid, slopes[i]) for i in range(len(x))])

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "gauss_levels": [float(GAUSS_LEVELS[0]), float(GAUSS_LEVELS[-1]),
                                                             int(GAUSS_LEVELS.size)],
                "quantile_coef": self.quantile_coef.tolist(), "g_log_spectrum_coef": self.g_log_spectrum_coef.tolist(),
                "sigma": self.sigma, "variance_gain": self.variance_gain, "modulation": self.modulation,
                "displacement": self.displacement}

    @classmethod
    def from_dict(cls, d: dict) -> "TranslationStart":
        """The inverse of ``to_dict``; ValueError naming what is wrong."""
        if not isinstance(d, dict):
            raise ValueError(f"translation_start must be a JSON object, got {type(d).__name__}")
        missing = {"base", "gauss_levels", "quantile_coef", "g_log_spectrum_coef", "sigma"} - set(d)
        if missing:
            raise ValueError(f"translation_start lacks {sorted(missing)}")
        if list(d["gauss_levels"]) != [float(GAUSS_LEVELS[0]), float(GAUSS_LEVELS[-1]), int(GAUSS_LEVELS.size)]:
            raise ValueError(f"translation_start: gauss_levels {d['gauss_levels']!r} are not this version's "
                             f"{GAUSS_LEVELS.size} levels on [{GAUSS_LEVELS[0]}, {GAUSS_LEVELS[-1]}]; refit with "
                             "`explorer fit-start`")
        return cls(base=GaussianStart.from_dict(d["base"]),
                   quantile_coef=np.asarray(d["quantile_coef"], dtype=np.float64),
                   g_log_spectrum_coef=np.asarray(d["g_log_spectrum_coef"], dtype=np.float64),
                   sigma=float(d["sigma"]), variance_gain=float(d.get("variance_gain", 1.0)),
                   modulation=float(d.get("modulation", 0.25)), displacement=float(d.get("displacement", 0.0)))

