"""Gaussian start of the sampler: skip the high-noise steps by drawing x_t from a Gaussian field.

At high noise a sample x_t = √ᾱ x₀ + √(1−ᾱ) ε only still carries the largest-scale modes of x₀,
and on large scales the log density field is close to Gaussian (the lognormal picture). So the
reverse process from T down to a noise level σ* = √((1−ᾱ)/ᾱ) is replaced by one exact draw from
the Gaussian model of the data: x₀^G is a Gaussian random field with the training maps' power
spectrum and mean at θ, and x_{t*} = √ᾱ_{t*} x₀^G + √(1−ᾱ_{t*}) ε. The network then only runs
below σ* (Karras noise levels are dense there). With σ* = 3 and 30 Karras levels the network
runs 14 times instead of 30, and the maps keep their skewness, kurtosis and excursion-set counts;
with σ* ≤ 1 they become measurably too Gaussian although their power spectra stay right (README,
"Emulator speed").

The Gaussian model, in the normalised units of the network (x = 2 (log10 Σ − lo)/(hi − lo) − 1),
on an N² map with DFT X_m = Σ_j x_j e^{−2πi m·j/N}:

* ring n = round(|m|) (1 ≤ n ≤ R = round(N/√2)): S_n(θ) = E|X_m|²/N² (white noise of unit
  variance per pixel has S = 1), modelled as ln S_n(θ) = Σ_a c_{a,n} φ_a(u), φ the monomials of
  total degree ≤ ``degree`` in the scaled θ u ∈ [0, 1]², fitted by least squares to the log ring
  means of every training map and corrected for the mean of a log: a ring mean of K independent
  exponential |X|² has E[ln] = ln S + ψ(K) − ln K;
* map mean m ~ N(μ(θ), s(θ)²), μ the same kind of polynomial but in u = (ln Ωₘ scaled, σ₈ scaled)
  (:func:`scaled_theta`; weights fitted before session 17 use Ωₘ linearly), log s linear in the same u.

``GaussianStart.fit`` fits it (``explorer calibrate`` does so on the training split and stores it
in the weights' ``explorer.json`` under "gaussian_start"); ``GaussianStart.draw`` draws x₀^G.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import digamma

from .noise import randn

__all__ = ["GaussianStart", "OMEGA_SCALES", "ring_index", "ring_power", "scaled_theta", "theta_monomials"]


def ring_index(n: int) -> np.ndarray:
    """``(n, n) int``: round(|m|) of every DFT mode of an n² map (numpy FFT order)."""
    m = np.fft.fftfreq(n, 1.0 / n)
    return np.rint(np.hypot(m[:, None], m[None, :])).astype(np.int64)


def ring_power(x) -> tuple[np.ndarray, np.ndarray]:
    """Ring means of |X_m|²/N² of maps ``x (B, N, N)`` with their own mean removed.

    Returns ``(B, R + 1)`` (ring 0, the mean, is 0) and the number of modes per ring ``(R + 1,)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != x.shape[2] or x.shape[1] < 2:
        raise ValueError(f"maps must have shape (B, N, N), got {x.shape}")
    n = x.shape[-1]
    r = ring_index(n).ravel()
    count = np.bincount(r)
    p = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2 / n ** 2
    sums = np.stack([np.bincount(r, weights=pi.ravel(), minlength=count.size) for pi in p])
    return sums / count, count


OMEGA_SCALES = ("linear", "log")


def scaled_theta(theta, param_ranges, omega: str = "linear") -> np.ndarray:
    """θ ``(G, 2)`` scaled to u ∈ [0, 1]² over the prior box: ``(G, 2)``. With ``omega="log"`` the
    first parameter (Ωₘ) is scaled in its logarithm, u₀ = ln(Ωₘ/lo)/ln(hi/lo): a map's mean linear
    density is ∝ Ωₘ, so its mean log10 Σ is log10 Ωₘ plus a smooth correction, which a polynomial in
    ln Ωₘ holds (at the low-Ωₘ edge, where log10 Ωₘ bends most) and one in Ωₘ does not (model card,
    "Map-mean model")."""
    if omega not in OMEGA_SCALES:
        raise ValueError(f"omega scale must be one of {OMEGA_SCALES}, got {omega!r}")
    theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
    lo = np.array([r[0] for r in param_ranges], dtype=np.float64)
    hi = np.array([r[1] for r in param_ranges], dtype=np.float64)
    u = (theta - lo) / (hi - lo)
    if omega == "log":
        if lo[0] <= 0:
            raise ValueError(f"a log scale for Ωₘ needs a positive prior range, got {tuple(param_ranges[0])}")
        u[:, 0] = np.log(theta[:, 0] / lo[0]) / np.log(hi[0] / lo[0])
    return u


def theta_monomials(theta, param_ranges, degree: int, centred: bool = False, omega: str = "linear") -> np.ndarray:
    """Monomials u₀^i u₁^j of total degree ≤ ``degree`` of θ ``(G, 2)`` scaled over the prior box:
    ``(G, (degree+1)(degree+2)/2)``, ordered by degree, then by falling power of u₀. u ∈ [0, 1]²
    (:func:`scaled_theta`, Ωₘ in its log with ``omega="log"``), or [−1, 1]² with ``centred`` (the
    P(k) baseline's convention)."""
    u = scaled_theta(theta, param_ranges, omega)
    if centred:
        u = 2.0 * u - 1.0
    return np.stack([u[:, 0] ** i * u[:, 1] ** (d - i) for d in range(degree + 1) for i in range(d, -1, -1)], axis=1)


def fit_log_scatter(features, residuals, iterations: int = 50) -> np.ndarray:
    """Maximum-likelihood w of a Gaussian scatter with log s = features · w, for zero-mean residuals.

    features: ``(N, k)`` (first column 1); residuals: ``(N,)``. Newton's method on the convex
    −log L = Σ_i [g_i·w + r_i² e^{−2 g_i·w} / 2]; starts from the constant s = rms(r). Returns ``(k,)``.
    """
    g = np.asarray(features, dtype=np.float64)
    r2 = np.asarray(residuals, dtype=np.float64) ** 2
    w = np.zeros(g.shape[1])
    w[0] = 0.5 * np.log(max(r2.mean(), 1e-16))
    for _ in range(iterations):
        e = r2 * np.exp(-2.0 * (g @ w))
        step = np.linalg.solve(2.0 * (g * e[:, None]).T @ g + 1e-12 * np.eye(g.shape[1]), g.T @ (1.0 - e))
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def _linear(theta, param_ranges, omega: str = "linear") -> np.ndarray:
    """[1, u, v] of θ ``(B, 2)`` scaled to [0, 1] over the prior box: ``(B, 3)``."""
    return theta_monomials(theta, param_ranges, 1, omega=omega)


@dataclass(frozen=True, eq=False)
class GaussianStart:
    """Gaussian model of the normalised maps given θ, and the noise level σ* where sampling starts."""

    resolution: int
    param_ranges: tuple
    degree: int
    log_spectrum_coef: np.ndarray  # (n_features, R): ln S_n(θ) = φ(u) · coef[:, n-1]
    mean_coef: np.ndarray          # (n_features,): μ(θ) = φ(u) · mean_coef
    mean_scatter: float            # s, the rms scatter of the map means around μ(θ)
    sigma: float                   # σ* = √((1−ᾱ)/ᾱ) of the first network step
    n_maps: int = 0                # maps it was fitted on (record)
    mean_log_scatter: np.ndarray | None = None  # (3,): log s(θ) = [1, u, v] · this; None: s for every θ
    mean_omega: str = "linear"     # u of the map-mean model μ(θ), s(θ): Ωₘ scaled linearly or in its log

    def __post_init__(self):
        if self.mean_omega not in OMEGA_SCALES:
            raise ValueError(f"gaussian_start: mean_omega must be one of {OMEGA_SCALES}, got {self.mean_omega!r}")

    @classmethod
    def fit(cls, theta_per_map, maps, param_ranges, *, sigma: float = 1.0, degree: int = 3,
            scatter: str = "theta", mean_omega: str = "log") -> "GaussianStart":
        """Fit to normalised maps ``(N, n, n)`` at ``theta_per_map (N, 2)`` (module docstring); the map
        means' scatter depends on θ (``scatter="theta"``, log s linear in the scaled θ) or not ("constant");
        the map-mean model takes Ωₘ in its log (``mean_omega="log"``, :func:`scaled_theta`) or linearly
        (as fitted before session 17)."""
        if scatter not in ("theta", "constant"):
            raise ValueError(f"scatter must be 'theta' or 'constant', got {scatter!r}")
        if mean_omega not in OMEGA_SCALES:
            raise ValueError(f"mean_omega must be one of {OMEGA_SCALES}, got {mean_omega!r}")
        maps = np.asarray(maps, dtype=np.float64)
        theta = np.asarray(theta_per_map, dtype=np.float64)
        if maps.ndim != 3 or theta.shape != (maps.shape[0], 2):
            raise ValueError(f"need maps (N, n, n) and theta (N, 2), got {maps.shape} and {theta.shape}")
        phi = theta_monomials(theta, param_ranges, degree)
        if maps.shape[0] < 3 * phi.shape[1]:
            raise ValueError(f"need at least {3 * phi.shape[1]} maps to fit a degree-{degree} model, got {maps.shape[0]}")
        if not np.isfinite(maps).all():
            raise ValueError("maps contain NaN or inf")
        power, count = ring_power(maps)
        coef = np.linalg.lstsq(phi, np.log(np.maximum(power[:, 1:], 1e-300)), rcond=None)[0]
        k = count[1:] / 2.0  # independent complex modes per ring (X_{-m} = conj X_m)
        coef[0] -= digamma(k) - np.log(k)  # φ_0 = 1: remove the bias of the mean of a log
        means = maps.mean(axis=(1, 2))
        phi_mean = theta_monomials(theta, param_ranges, degree, omega=mean_omega)
        mean_coef = np.linalg.lstsq(phi_mean, means, rcond=None)[0]
        resid = means - phi_mean @ mean_coef
        log_scatter = (fit_log_scatter(_linear(theta, param_ranges, mean_omega), resid) if scatter == "theta"
                       else None)
        return cls(resolution=int(maps.shape[-1]), param_ranges=tuple(tuple(map(float, r)) for r in param_ranges),
                   degree=int(degree), log_spectrum_coef=coef, mean_coef=mean_coef,
                   mean_scatter=float(np.std(resid, ddof=phi.shape[1])), sigma=float(sigma),
                   n_maps=int(maps.shape[0]), mean_log_scatter=log_scatter, mean_omega=mean_omega)

    def spectrum(self, theta) -> np.ndarray:
        """S(θ) on every DFT mode: ``(B, n, n)`` (0 at m = 0; corner modes take the last ring's value)."""
        phi = theta_monomials(theta, self.param_ranges, self.degree)
        s = np.exp(phi @ self.log_spectrum_coef)  # (B, R)
        ring = np.clip(ring_index(self.resolution), 1, s.shape[1]) - 1
        out = s[:, ring]
        out[:, 0, 0] = 0.0
        return out

    def mean(self, theta) -> np.ndarray:
        """μ(θ) ``(B,)``, normalised units."""
        return theta_monomials(theta, self.param_ranges, self.degree, omega=self.mean_omega) @ self.mean_coef

    def scatter(self, theta) -> np.ndarray:
        """s(θ) ``(B,)`` of the map means around μ(θ), normalised units."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        if self.mean_log_scatter is None:
            return np.full(theta.shape[0], self.mean_scatter)
        return np.exp(_linear(theta, self.param_ranges, self.mean_omega) @ self.mean_log_scatter)

    def draw(self, theta, generator: torch.Generator) -> torch.Tensor:
        """x₀^G at each θ of ``theta (B, 2)``: ``(B, 1, n, n)`` float32, from the CPU ``generator``
        (or a :class:`~explorer.model.noise.GeneratorGroup` of B rows)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        b, n = theta.shape[0], self.resolution
        white = randn((b, n, n), generator, torch.float64).numpy()
        level = randn((b,), generator, torch.float64).numpy()
        field = np.fft.ifft2(np.fft.fft2(white) * np.sqrt(self.spectrum(theta))).real
        field += (self.mean(theta) + self.scatter(theta) * level)[:, None, None]
        return torch.from_numpy(field[:, None]).float()

    def to_dict(self) -> dict:
        return {"resolution": self.resolution, "param_ranges": [list(r) for r in self.param_ranges],
                "degree": self.degree, "log_spectrum_coef": self.log_spectrum_coef.tolist(),
                "mean_coef": self.mean_coef.tolist(), "mean_scatter": self.mean_scatter, "sigma": self.sigma,
                "n_maps": self.n_maps, **({} if self.mean_omega == "linear" else {"mean_omega": self.mean_omega}),
                **({} if self.mean_log_scatter is None else {"mean_log_scatter": self.mean_log_scatter.tolist()})}

    @classmethod
    def from_dict(cls, d: dict) -> "GaussianStart":
        """The inverse of ``to_dict``; ValueError naming what is wrong."""
        if not isinstance(d, dict):
            raise ValueError(f"gaussian_start must be a JSON object, got {type(d).__name__}")
        missing = {"resolution", "param_ranges", "degree", "log_spectrum_coef", "mean_coef", "mean_scatter",
                   "sigma"} - set(d)
        if missing:
            raise ValueError(f"gaussian_start lacks {sorted(missing)}")
        degree, n = int(d["degree"]), int(d["resolution"])
        n_feat = (degree + 1) * (degree + 2) // 2
        coef = np.asarray(d["log_spectrum_coef"], dtype=np.float64)
        mean_coef = np.asarray(d["mean_coef"], dtype=np.float64)
        rings = int(ring_index(n).max()) if n >= 2 else 0
        if coef.shape != (n_feat, rings) or mean_coef.shape != (n_feat,):
            raise ValueError(f"gaussian_start: coefficient shapes {coef.shape}, {mean_coef.shape} do not match "
                             f"degree {degree} and resolution {n} (expected {(n_feat, rings)}, {(n_feat,)})")
        sigma, scatter = float(d["sigma"]), float(d["mean_scatter"])
        if not (np.isfinite(coef).all() and np.isfinite(mean_coef).all() and sigma > 0 and scatter >= 0):
            raise ValueError("gaussian_start: coefficients must be finite, sigma > 0 and mean_scatter >= 0")
        log_scatter = None
        if d.get("mean_log_scatter") is not None:
            log_scatter = np.asarray(d["mean_log_scatter"], dtype=np.float64)
            if log_scatter.shape != (3,) or not np.isfinite(log_scatter).all():
                raise ValueError(f"gaussian_start: mean_log_scatter must be 3 finite numbers, got {d['mean_log_scatter']!r}")
        return cls(resolution=n, param_ranges=tuple(tuple(map(float, r)) for r in d["param_ranges"]), degree=degree,
                   log_spectrum_coef=coef, mean_coef=mean_coef, mean_scatter=scatter, sigma=sigma,
                   n_maps=int(d.get("n_maps", 0)), mean_log_scatter=log_scatter,
                   mean_omega=d.get("mean_omega", "linear"))  # __post_init__ refuses an unknown scale
