"""Grid posterior over (Ω_m, σ_8): a coarse scan of the prior, a fine grid around the minimum.

    post = infer(load_model("weights"), np.load("field.npy"), truth=(0.3, 0.8))
    post.estimates["omega_m"]      # {"max", "lo68", "hi68", "lo95", "hi95", "mean", "std"}

Conventions (DESIGN.md section 6), written once:

* −2 ln L̂(θ) = 2 Σ_j w_j L_{k_j}(θ) for the chosen VLB terms and weights (:mod:`.vlb`); on a grid
  Δχ²(θ) = [−2 ln L̂(θ) − min_grid(−2 ln L̂)] / τ, with τ the calibration temperature (1 = raw).
* Contours of the 2-parameter Δχ² at ``LEVELS`` = (2.30, 6.18, 11.83): 68.3/95.4/99.7 %.
* Marginals: p(θ) ∝ exp(−Δχ²/2) (flat prior inside the box) summed over the other axis and
  **normalised to sum 1** over the grid points (probability mass per grid point, not a density).
  A calibration may give each parameter its own temperature τ_i for its marginal (the VLB's
  overconfidence differs between Ω_m and σ_8): p(θ_i) ∝ Σ_other exp(−raw/(2 τ_i)), while the
  2D Δχ² and its contours keep τ.
* 1D intervals are central (equal-tailed): each grid point carries its mass spread uniformly over
  its cell (edges half-way between points), the CDF is linear inside cells and inverted at
  (1 ∓ 0.683)/2 and (1 ∓ 0.954)/2. "max" is the marginal's maximum (parabola through the three
  highest points), "mean" and "std" its first two moments.

The search (``scan``): the whole prior on a ``coarse`` grid; the fine window is ±``fine_half_width``
around the coarse minimum (the seed paper's ±0.1), widened to cover every coarse point inside the
3σ contour (plus one coarse step) and clipped to the prior; ``fine`` grid points are evaluated
there and the surface is interpolated by a bicubic spline onto ``interpolate_to`` points (the
likelihood is a smooth function of θ thanks to common random numbers). Network evaluations:
(coarse points + fine points) × terms × noise draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from scipy.interpolate import RectBivariateSpline, RegularGridInterpolator

from .vlb import Cancel, InferenceCancelled, Progress, field_seed, term_weights, vlb_terms

from .defaults import (DEFAULT_BATCH, DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_HALF_WIDTH, DEFAULT_INTERPOLATE,
                       DEFAULT_N_NOISE, DEFAULT_TERMS, LEVELS, MASS_68, MASS_95, PARAM_NAMES)

__all__ = ["LEVELS", "Posterior", "InferenceCancelled", "marginals", "interval", "intervals", "interval_68",
           "scan", "infer"]


def marginals(delta_chi2, scale=(1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """1D marginals of exp(−Δχ²/(2 s_i)) on a grid, each normalised to sum 1.

    ``delta_chi2: (n1, n2)`` -> ``(n1,)`` over axis 0 (Ω_m), ``(n2,)`` over axis 1 (σ_8);
    ``scale = (s_1, s_2)`` extra temperature of each marginal (1: the surface as it is).
    """
    d = np.asarray(delta_chi2, dtype=np.float64)
    if d.ndim != 2 or np.isnan(d).any():
        raise ValueError(f"delta_chi2 must be a 2D array without NaN, got shape {d.shape}")
    out = []
    for axis, s in ((1, scale[0]), (0, scale[1])):
        p = np.exp(-0.5 * (d - d.min()) / float(s))
        out.append(p.sum(axis=axis) / p.sum())
    return out[0], out[1]


def _cell_edges(grid: np.ndarray) -> np.ndarray:
    mid = 0.5 * (grid[1:] + grid[:-1])
    return np.concatenate([[grid[0] - (mid[0] - grid[0])], mid, [grid[-1] + (grid[-1] - mid[-1])]])


def interval(grid, marginal, mass: float = MASS_68) -> tuple[float, float]:
    """Central interval holding ``mass`` of a marginal given as mass per grid point.

    ``grid: (n,)`` increasing, ``marginal: (n,)`` non-negative (normalised here). Each point's mass
    is spread uniformly over its cell; the edges are clipped to [grid[0], grid[-1]].
    """
    lo, hi = intervals(grid, np.asarray(marginal, dtype=np.float64)[None, :], mass)
    return float(lo[0]), float(hi[0])


def intervals(grid, marginals_, mass: float = MASS_68) -> tuple[np.ndarray, np.ndarray]:
    """:func:`interval` of each row of ``marginals_: (r, n)`` on one ``grid: (n,)`` -> (lo (r,), hi (r,))."""
    grid, m = np.asarray(grid, dtype=np.float64), np.asarray(marginals_, dtype=np.float64)
    if grid.ndim != 1 or m.ndim != 2 or m.shape[1] != grid.size or grid.size < 2 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be 1D increasing with >= 2 points and each marginal as long as it")
    total = m.sum(axis=1)
    if not 0 < mass < 1 or not (m >= 0).all() or not (total > 0).all():
        raise ValueError("need 0 < mass < 1 and non-negative marginals with positive sums")
    edges = _cell_edges(grid)
    cdf = np.concatenate([np.zeros((m.shape[0], 1)), np.cumsum(m / total[:, None], axis=1)], axis=1)
    bounds = np.array([np.interp([(1 - mass) / 2, (1 + mass) / 2], row, edges) for row in cdf])
    bounds = np.clip(bounds, grid[0], grid[-1])
    return bounds[:, 0], bounds[:, 1]


def interval_68(grid, marginal) -> tuple[float, float]:
    """The central 68.3 % interval of :func:`interval`."""
    return interval(grid, marginal, MASS_68)


def _summary(grid: np.ndarray, m: np.ndarray) -> dict:
    """max, central 68/95 % intervals, mean and std of one marginal (mass per grid point)."""
    m = m / m.sum()
    i = int(np.argmax(m))
    best = float(grid[i])
    if 0 < i < grid.size - 1 and m[i - 1] > 0 and m[i + 1] > 0:  # parabola through log m
        y0, y1, y2 = np.log(m[i - 1:i + 2])
        h = 0.5 * (grid[i + 1] - grid[i - 1])
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            best = float(np.clip(grid[i] + 0.5 * h * (y0 - y2) / denom, grid[i - 1], grid[i + 1]))
    lo68, hi68 = interval(grid, m, MASS_68)
    lo95, hi95 = interval(grid, m, MASS_95)
    mean = float((grid * m).sum())
    std = float(np.sqrt(max(((grid - mean) ** 2 * m).sum(), 0.0)))
    return {"max": best, "lo68": lo68, "hi68": hi68, "lo95": lo95, "hi95": hi95, "mean": mean, "std": std}


@dataclass
class Posterior:
    """−2ΔlnL̂ on a (Ω_m, σ_8) grid with its contours, marginals and estimates.

    The one return type of every likelihood in :mod:`explorer.inference` (VLB and P(k)).
    """

    omega_m: np.ndarray            # (n1,) grid of Ω_m
    sigma_8: np.ndarray            # (n2,) grid of σ_8
    delta_chi2: np.ndarray         # (n1, n2) −2ΔlnL̂ / temperature, 0 at the best grid point
    marginal_omega_m: np.ndarray   # (n1,) exp(−Δχ²/2) summed over σ_8, sums to 1
    marginal_sigma_8: np.ndarray   # (n2,) exp(−Δχ²/2) summed over Ω_m, sums to 1
    estimates: dict                # name -> {"max", "lo68", "hi68", "lo95", "hi95", "mean", "std"}
    method: str = "vlb"            # "vlb" (diffusion model) or "pk" (power-spectrum baseline)
    terms: str = ""                # which VLB terms ("L0", "sum:20") or the P(k) statistic
    levels: tuple = LEVELS         # Δχ² of the 1, 2, 3σ contours
    truth: tuple | None = None     # (Ω_m, σ_8) when known
    n_evaluations: int = 0         # network evaluations (0 for the P(k) baseline)
    seconds: float = 0.0           # wall time of the inference
    temperature: float = 1.0       # τ: delta_chi2 = raw −2ΔlnL̂ / τ
    marginal_temperatures: tuple | None = None  # (τ_Ωm, τ_σ8) of the marginals; None: both τ
    truth_delta_chi2: float | None = None  # Δχ² evaluated exactly at the truth (same τ and reference)
    per_timestep: dict | None = None  # "L<k>" -> (n1, n2) raw 2(L_k − min L_k), on request
    coarse: "Posterior | None" = None  # the coarse scan of the whole prior (same reference min)
    notes: tuple = ()              # warnings worth showing (calibration missing, window at edge...)
    settings: dict = field(default_factory=dict)  # n_noise, seed, grids, window, ...

    @classmethod
    def from_grid(cls, omega_m, sigma_8, chi2, *, temperature: float = 1.0, chi2_min: float | None = None,
                  marginal_temperatures=None, **meta) -> "Posterior":
        """Build from raw −2 ln L̂ ``chi2: (n1, n2)`` (any additive constant) on the grids.

        ``marginal_temperatures``: (τ_Ωm, τ_σ8) for the marginals and estimates (None: ``temperature``).
        """
        om, s8 = np.asarray(omega_m, float), np.asarray(sigma_8, float)
        chi2 = np.asarray(chi2, dtype=np.float64)
        if chi2.shape != (om.size, s8.size):
            raise ValueError(f"chi2 has shape {chi2.shape}, grids need ({om.size}, {s8.size})")
        taus = _check_temperatures(temperature, marginal_temperatures)
        ref = chi2.min() if chi2_min is None else chi2_min
        delta = (chi2 - ref) / temperature
        m1, m2 = marginals(delta, scale=(taus[1] / taus[0], taus[2] / taus[0]))
        est = {"omega_m": _summary(om, m1), "sigma_8": _summary(s8, m2)}
        return cls(omega_m=om, sigma_8=s8, delta_chi2=delta, marginal_omega_m=m1, marginal_sigma_8=m2,
                   estimates=est, temperature=taus[0],
                   marginal_temperatures=None if marginal_temperatures is None else taus[1:], **meta)

    def retempered(self, temperature: float, marginal_temperatures=None) -> "Posterior":
        """The same grids with other calibration temperatures (marginals and estimates redone)."""
        raw = self.delta_chi2 * self.temperature
        new = Posterior.from_grid(self.omega_m, self.sigma_8, raw, temperature=temperature, chi2_min=0.0,
                                  marginal_temperatures=marginal_temperatures)
        coarse = (self.coarse.retempered(temperature, marginal_temperatures) if self.coarse is not None
                  else None)
        at_truth = None if self.truth_delta_chi2 is None else self.truth_delta_chi2 * self.temperature / temperature
        return replace(self, delta_chi2=new.delta_chi2, marginal_omega_m=new.marginal_omega_m,
                       marginal_sigma_8=new.marginal_sigma_8, estimates=new.estimates,
                       temperature=new.temperature, marginal_temperatures=new.marginal_temperatures,
                       coarse=coarse, truth_delta_chi2=at_truth)

    def temperature_label(self) -> str:
        """"τ = 5.5" or "τ = 5.5 (2D), marginals Ω_m 7.1, σ_8 4.2" for captions."""
        if self.marginal_temperatures is None:
            return f"τ = {self.temperature:.3g}"
        t1, t2 = self.marginal_temperatures
        return f"τ = {self.temperature:.3g} (2D), marginals Ω_m {t1:.3g}, σ_8 {t2:.3g}"

    def delta_chi2_truth(self) -> float | None:
        """Δχ² at the truth: the exact value when it was evaluated, else interpolated; None without truth."""
        if self.truth is None:
            return None
        if self.truth_delta_chi2 is not None:
            return float(self.truth_delta_chi2)
        return self.delta_chi2_at(*self.truth)

    def delta_chi2_at(self, omega_m: float, sigma_8: float) -> float:
        """Δχ² at a point: bilinear on this grid, else on the coarse grid, else +inf."""
        for post in (self, self.coarse):
            if post is None:
                continue
            om, s8 = post.omega_m, post.sigma_8
            if om[0] <= omega_m <= om[-1] and s8[0] <= sigma_8 <= s8[-1]:
                f = RegularGridInterpolator((om, s8), post.delta_chi2, method="linear")
                return float(f([[omega_m, sigma_8]])[0])
        return float("inf")

    def to_dict(self) -> dict:
        """JSON-able dict (arrays as nested lists)."""
        def conv(v):
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, (np.floating, np.integer)):
                return v.item()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            return v
        out = {k: conv(getattr(self, k)) for k in self.__dataclass_fields__ if k != "coarse"}
        out["coarse"] = self.coarse.to_dict() if self.coarse is not None else None
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Posterior":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for k in ("omega_m", "sigma_8", "delta_chi2", "marginal_omega_m", "marginal_sigma_8"):
            d[k] = np.asarray(d[k], dtype=np.float64)
        d["levels"] = tuple(d.get("levels", LEVELS))
        d["truth"] = tuple(d["truth"]) if d.get("truth") is not None else None
        if d.get("marginal_temperatures") is not None:
            d["marginal_temperatures"] = tuple(float(t) for t in d["marginal_temperatures"])
        d["notes"] = tuple(d.get("notes", ()))
        if d.get("per_timestep"):
            d["per_timestep"] = {k: np.asarray(v, dtype=np.float64) for k, v in d["per_timestep"].items()}
        d["coarse"] = cls.from_dict(d["coarse"]) if d.get("coarse") else None
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _check_temperatures(temperature, marginal_temperatures) -> tuple[float, float, float]:
    """(τ, τ_Ωm, τ_σ8) as positive floats; the marginal ones default to τ."""
    taus = [temperature] + list((temperature, temperature) if marginal_temperatures is None
                                else marginal_temperatures)
    if len(taus) != 3 or not all(isinstance(t, (int, float, np.floating, np.integer)) and t > 0 for t in taus):
        raise ValueError(f"temperatures must be positive numbers, got {temperature!r} and {marginal_temperatures!r}")
    return float(taus[0]), float(taus[1]), float(taus[2])


def _check_shape(value, name: str, minimum: int) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of integers (n_omega_m, n_sigma_8), got {value!r}") from None
    if a < minimum or b < minimum:
        raise ValueError(f"{name} needs at least {minimum} points per axis, got {value!r}")
    return a, b


def _grid_points(om: np.ndarray, s8: np.ndarray) -> np.ndarray:
    return np.stack(np.meshgrid(om, s8, indexing="ij"), axis=-1).reshape(-1, 2)


def _spline(om, s8, values, om_new, s8_new) -> np.ndarray:
    kx, ky = min(3, om.size - 1), min(3, s8.size - 1)
    return RectBivariateSpline(om, s8, values, kx=kx, ky=ky, s=0)(om_new, s8_new)


def scan(objective: Callable[[np.ndarray, Progress | None], np.ndarray], param_ranges, *, coarse=DEFAULT_COARSE,
         fine=DEFAULT_FINE, fine_half_width=DEFAULT_HALF_WIDTH, interpolate_to=DEFAULT_INTERPOLATE,
         temperature: float = 1.0, marginal_temperatures=None, window_temperature: float | None = None,
         evaluations_per_point: int = 0, per_term: bool = False,
         term_names=None, progress: Progress | None = None, **meta) -> Posterior:
    """Coarse-to-fine grid search of ``objective`` over the prior box (module docstring).

    Parameters
    ----------
    objective : ``objective(theta (G, 2), progress) -> (K, G)`` −ln L̂ terms in nats, summed over
        the K terms; ``progress(done, total)`` reports within the call.
    param_ranges : ((Ω_m lo, hi), (σ_8 lo, hi)).
    coarse, fine : evaluated points per axis; interpolate_to : output grid (None: the fine grid).
    temperature : τ, Δχ² = raw / τ; marginal_temperatures : (τ_Ωm, τ_σ8) of the marginals (None: τ).
    window_temperature : the temperature whose 3σ region the fine window must hold (default: the
        largest of τ, τ_Ωm, τ_σ8, so that no marginal is cut off by the window).
    evaluations_per_point : network evaluations per θ (for ``n_evaluations`` and progress).
    per_term : keep the raw 2ΔL of each term as ``per_timestep`` (names ``term_names``).
    meta : further Posterior fields (method, terms, truth, settings, ...).
    """
    (o_lo, o_hi), (s_lo, s_hi) = ((float(a), float(b)) for a, b in param_ranges)
    nc = _check_shape(coarse, "coarse", 3)
    nf = _check_shape(fine, "fine", 3)
    ni = nf if interpolate_to is None else _check_shape(interpolate_to, "interpolate_to", 3)
    hw = tuple(float(h) for h in fine_half_width)
    if len(hw) != 2 or min(hw) <= 0:
        raise ValueError(f"fine_half_width must be two positive numbers, got {fine_half_width!r}")
    truth = meta.get("truth")
    n_coarse, n_fine = nc[0] * nc[1] + (truth is not None), nf[0] * nf[1]
    total = (n_coarse + n_fine) * max(evaluations_per_point, 1)
    per = max(evaluations_per_point, 1)

    def stage(offset):
        if progress is None:
            return None
        return lambda done, _tot: progress(offset + done, total)

    # 1. coarse scan of the whole prior (and the truth, when known)
    om_c, s8_c = np.linspace(o_lo, o_hi, nc[0]), np.linspace(s_lo, s_hi, nc[1])
    points = _grid_points(om_c, s8_c)
    if truth is not None:
        points = np.vstack([points, np.asarray(truth, dtype=np.float64)[None, :]])
    chi2_all = 2.0 * np.asarray(objective(points, stage(0)), dtype=np.float64).sum(axis=0)
    chi2_c = chi2_all[:nc[0] * nc[1]].reshape(nc)

    # 2. fine window: ±half width around the coarse minimum, widened to the coarse 3σ region
    i, j = np.unravel_index(np.argmin(chi2_c), nc)
    if window_temperature is None:
        window_temperature = max(_check_temperatures(temperature, marginal_temperatures))
    inside = (chi2_c - chi2_c.min()) / window_temperature <= LEVELS[-1]
    window = []
    for grid, centre, h, inside_axis, lo, hi in ((om_c, om_c[i], hw[0], inside.any(axis=1), o_lo, o_hi),
                                                 (s8_c, s8_c[j], hw[1], inside.any(axis=0), s_lo, s_hi)):
        step = grid[1] - grid[0]
        a = min(centre - h, grid[inside_axis].min() - step)
        b = max(centre + h, grid[inside_axis].max() + step)
        window.append((max(lo, a), min(hi, b)))

    # 3. fine grid, evaluated, then interpolated
    om_f, s8_f = np.linspace(*window[0], nf[0]), np.linspace(*window[1], nf[1])
    terms_f = np.asarray(objective(_grid_points(om_f, s8_f), stage(n_coarse * per)), dtype=np.float64)
    terms_f = terms_f.reshape(-1, *nf)
    om_i, s8_i = np.linspace(*window[0], ni[0]), np.linspace(*window[1], ni[1])
    chi2_f = 2.0 * terms_f.sum(axis=0)
    if interpolate_to is not None:
        chi2_f = _spline(om_f, s8_f, chi2_f, om_i, s8_i)
    ref = min(chi2_f.min(), chi2_c.min())
    truth_delta = None if truth is None else max(0.0, float(chi2_all[-1] - ref) / temperature)

    notes = list(meta.pop("notes", ()))
    k = np.unravel_index(np.argmin(chi2_f), chi2_f.shape)
    for idx, n, (a, b), (lo, hi), name in zip(k, chi2_f.shape, window, ((o_lo, o_hi), (s_lo, s_hi)),
                                              PARAM_NAMES):
        if (idx == 0 and a > lo) or (idx == n - 1 and b < hi):
            notes.append(f"the minimum lies on the edge of the fine window in {name}; "
                         "widen fine_half_width or the coarse grid")
    per_timestep = None
    if per_term:
        names = list(term_names or [f"L{t}" for t in range(terms_f.shape[0])])
        per_timestep = {}
        for name, tf in zip(names, terms_f):
            grid = 2.0 * tf if interpolate_to is None else _spline(om_f, s8_f, 2.0 * tf, om_i, s8_i)
            per_timestep[name] = grid - grid.min()

    coarse_post = Posterior.from_grid(om_c, s8_c, chi2_c, temperature=temperature, chi2_min=ref,
                                      marginal_temperatures=marginal_temperatures,
                                      method=meta.get("method", "vlb"), terms=meta.get("terms", ""),
                                      truth=truth, n_evaluations=n_coarse * evaluations_per_point)
    settings = {**meta.pop("settings", {}), "coarse": list(nc), "fine": list(nf), "fine_half_width": list(hw),
                "interpolate_to": None if interpolate_to is None else list(ni),
                "window": [list(w) for w in window]}
    return Posterior.from_grid(om_i, s8_i, chi2_f, temperature=temperature, chi2_min=ref,
                               marginal_temperatures=marginal_temperatures,
                               n_evaluations=(n_coarse + n_fine) * evaluations_per_point,
                               per_timestep=per_timestep, coarse=coarse_post, notes=tuple(notes),
                               settings=settings, truth_delta_chi2=truth_delta, **meta)


def check_truth(truth, param_ranges) -> tuple[float, float] | None:
    """``truth`` as a float pair inside the prior box, or None; ValueError naming the parameter."""
    if truth is None:
        return None
    try:
        om, s8 = (float(v) for v in truth)
    except (TypeError, ValueError):
        raise ValueError(f"truth must be (Omega_m, sigma_8), got {truth!r}") from None
    for name, v, (lo, hi) in zip(PARAM_NAMES, (om, s8), param_ranges):
        if not lo <= v <= hi:
            raise ValueError(f"truth {name}={v:g} is outside the prior range [{lo:g}, {hi:g}] of this model")
    return om, s8


def calibration_temperature(metadata: dict, terms: str, n_noise: int) -> tuple[float, tuple | None, str | None]:
    """(τ, (τ_Ωm, τ_σ8) or None, note) stored for these settings in metadata["calibration"].

    τ = 1 with a note when the folder has no calibration or it was fitted for other settings;
    the marginal temperatures are None when the calibration has none (older folders).
    """
    cal = (metadata or {}).get("calibration")
    if not isinstance(cal, dict) or "temperature" not in cal:
        return 1.0, None, "no calibration stored with these weights (run `explorer calibrate`): raw likelihood"
    if cal.get("terms") != terms or int(cal.get("n_noise", 1)) != int(n_noise):
        return 1.0, None, (f"the stored calibration is for terms={cal.get('terms')!r}, "
                           f"n_noise={cal.get('n_noise')}, not terms={terms!r}, n_noise={n_noise}: raw likelihood")
    marginal = cal.get("marginal_temperatures")
    try:
        taus = _check_temperatures(float(cal["temperature"]), None if marginal is None else
                                   tuple(float(marginal[name]) for name in PARAM_NAMES))
    except (ValueError, TypeError, KeyError):
        return 1.0, None, (f"stored calibration temperatures {cal['temperature']!r}, {marginal!r} "
                           "are not positive numbers: raw likelihood")
    return taus[0], None if marginal is None else taus[1:], None


def infer(loaded, field, *, kind: str = "auto", terms: str = DEFAULT_TERMS, n_noise: int = DEFAULT_N_NOISE,
          coarse=DEFAULT_COARSE, fine=DEFAULT_FINE, fine_half_width=DEFAULT_HALF_WIDTH,
          interpolate_to=DEFAULT_INTERPOLATE, calibrated: bool = True, temperature: float | None = None,
          window_temperature: float | None = None,
          per_timestep: bool = False, truth=None, seed: int | None = None, batch_size: int = DEFAULT_BATCH, bf16: bool = False,
          progress: Progress | None = None, cancel: Cancel | None = None) -> Posterior:
    """−2ΔlnL̂ of (Ω_m, σ_8) for one field from the VLB of a trained diffusion model.

    Parameters
    ----------
    loaded : :class:`explorer.model.LoadedModel` (model, schedule, normalisation, prior box).
    field : (H, W) Σ [(M_⊙/h)/(Mpc/h)²] or log10 Σ, H a multiple of the model resolution; it is
        block-averaged to the model's resolution by :func:`explorer.data.prepare_field` (a
        ``PreparedField`` at that resolution is used as is; a path is read with ``read_field``).
    kind : "auto" | "density" | "log10", how to read ``field``.
    terms : "vlb:K" (default: K log-spaced strata of the whole bound), "L0" (seed paper), "Lk", or
        "sum:K" (L_0 .. L_{K-1}); see :mod:`.vlb`.
    n_noise : fixed noise draws per term (common to all θ); seed : their seed (default: drawn from
        the field's values by :func:`.vlb.field_seed`, so each field has its own draws).
    coarse, fine, fine_half_width, interpolate_to : the grids (module docstring).
    calibrated : divide by the temperatures stored with the weights for these terms/n_noise: τ for
        the 2D surface, (τ_Ωm, τ_σ8) for the marginals when stored (``temperature`` overrides them
        all; without a stored calibration τ = 1 and a note says so).
    window_temperature : choose the fine window for this temperature instead (see :func:`scan`;
        ``explorer calibrate`` sets it for raw calibration runs).
    per_timestep : keep each term's raw 2ΔL_k grid in ``Posterior.per_timestep`` (times its weight
        for "vlb:K", so the grids add up to the total).
    truth : known (Ω_m, σ_8): stored for plots, and Δχ² is evaluated exactly there
        (``truth_delta_chi2``, one more point).
    batch_size, bf16 : network batch and bfloat16 autocast (off by default: its rounding makes
        the surface rough, see ``DEFAULT_*`` above).
    progress : ``progress(done, total)`` in network evaluations; cancel : ``cancel() -> bool``
        polled between batches, True raises :class:`InferenceCancelled`.
    """
    from explorer.data import PreparedField, prepare_field, read_field

    t0 = time.perf_counter()
    if isinstance(field, (str, bytes)) or hasattr(field, "__fspath__"):
        field = read_field(field)
    if isinstance(field, PreparedField) and field.log10.shape == (loaded.resolution,) * 2:
        log10, kind_used = field  # already at the model resolution (e.g. shared with the P(k) baseline)
    else:
        log10, kind_used = prepare_field(field, loaded.resolution, kind)
    x0 = loaded.normalization.encode(log10.astype(np.float64))
    seed = field_seed(log10) if seed is None else int(seed)
    timesteps, weights = term_weights(terms, loaded.schedule.T)
    truth = check_truth(truth, loaded.param_ranges)
    notes, marginal_taus = [], None
    if temperature is not None:
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        tau = float(temperature)
    elif calibrated:
        tau, marginal_taus, note = calibration_temperature(loaded.metadata, terms, n_noise)
        if note:
            notes.append(note)
    else:
        tau = 1.0

    def objective(theta, prog):
        return weights[:, None] * vlb_terms(loaded.model, loaded.schedule, x0, theta, timesteps, n_noise=n_noise,
                                            seed=seed, batch_size=batch_size, bf16=bf16, progress=prog,
                                            cancel=cancel)

    settings = {"n_noise": int(n_noise), "seed": int(seed), "bf16": bool(bf16), "kind": kind_used,
                "resolution": int(loaded.resolution), "timesteps": timesteps.tolist(), "weights": weights.tolist()}
    post = scan(objective, loaded.param_ranges, coarse=coarse, fine=fine, fine_half_width=fine_half_width,
                interpolate_to=interpolate_to, temperature=tau, marginal_temperatures=marginal_taus,
                window_temperature=window_temperature,
                evaluations_per_point=timesteps.size * int(n_noise), per_term=per_timestep,
                term_names=[f"L{t}" for t in timesteps], progress=progress, method="vlb", terms=terms,
                truth=truth, notes=notes, settings=settings)
    post.seconds = time.perf_counter() - t0
    return post
