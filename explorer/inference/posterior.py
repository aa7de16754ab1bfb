"""The posterior on an (Ωₘ, σ₈) grid: Δχ², marginals, central intervals and estimates.

Conventions (DESIGN.md section 6), written once:

* −2 ln L̂(θ) = 2 Σ_j w_j L_{k_j}(θ) for the chosen VLB terms and weights (:mod:`.vlb`); on a grid
  Δχ²(θ) = [−2 ln L̂(θ) − min_grid(−2 ln L̂)] / τ, with τ the calibration temperature (1 = raw).
* Contours of the 2-parameter Δχ² at ``LEVELS`` = (2.30, 6.18, 11.83): 68.3/95.4/99.7 %.
* Marginals: p(θ) ∝ exp(−Δχ²/2) (flat prior inside the box) summed over the other axis and
  **normalised to sum 1** over the grid points (probability mass per grid point, not a density).
  A calibration may give each parameter its own temperature τ_i for its marginal (the VLB's
  overconfidence differs between Ωₘ and σ₈): p(θ_i) ∝ Σ_other exp(−raw/(2 τ_i)), while the
  2D Δχ² and its contours keep τ.
* 1D intervals are central (equal-tailed): each grid point carries its mass spread uniformly over
  its cell (edges half-way between points), the CDF is linear inside cells and inverted at
  (1 ∓ 0.683)/2 and (1 ∓ 0.954)/2. "max" is the marginal's maximum (parabola through the three
  highest points), "mean" and "std" its first two moments.

How the grid is searched and the likelihood evaluated is :mod:`.grid` (``scan``, ``infer``); this
module needs neither torch nor a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from .defaults import LEVELS, MASS_68, MASS_95, PARAM_NAMES

__all__ = ["LEVELS", "Posterior", "marginals", "interval", "intervals", "interval_68"]


def marginals(delta_chi2, scale=(1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """1D marginals of exp(−Δχ²/(2 s_i)) on a grid, each normalised to sum 1.

    ``delta_chi2: (n1, n2)`` -> ``(n1,)`` over axis 0 (Ωₘ), ``(n2,)`` over axis 1 (σ₈);
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


def grid_of(settings: dict) -> dict | None:
    """{"coarse": [n1, n2] or None, "fine": [n1, n2]} of the scan whose ``settings`` these are (coarse
    None when its fine grid was placed on a given window), or None where the settings do not say."""
    coarse, fine = settings.get("coarse"), settings.get("fine")
    window = bool(settings.get("window_given"))
    if fine is None or (coarse is None and not window):
        return None
    return {"coarse": None if window else [int(n) for n in coarse], "fine": [int(n) for n in fine]}


def grid_text(grid: dict | None) -> str:
    """"4×4 + 4×4" for {"coarse": [4, 4], "fine": [4, 4]} (:meth:`Posterior.grid_used`); the fine grid
    alone where there was no coarse scan; "" for None."""
    if not grid:
        return ""
    return " + ".join(f"{shape[0]}×{shape[1]}" for shape in (grid["coarse"], grid["fine"]) if shape)


@dataclass
class Posterior:
    """−2ΔlnL̂ on a (Ωₘ, σ₈) grid with its contours, marginals and estimates.

    The one return type of every likelihood in :mod:`explorer.inference` (VLB and P(k)).
    """

    omega_m: np.ndarray            # (n1,) grid of Ωₘ
    sigma_8: np.ndarray            # (n2,) grid of σ₈
    delta_chi2: np.ndarray         # (n1, n2) −2ΔlnL̂ / temperature, 0 at the best grid point
    marginal_omega_m: np.ndarray   # (n1,) exp(−Δχ²/2) summed over σ₈, sums to 1
    marginal_sigma_8: np.ndarray   # (n2,) exp(−Δχ²/2) summed over Ωₘ, sums to 1
    estimates: dict                # name -> {"max", "lo68", "hi68", "lo95", "hi95", "mean", "std"}
    method: str = "vlb"            # "vlb" (diffusion model) or "pk" (power-spectrum baseline)
    terms: str = ""                # which VLB terms ("L0", "sum:20") or the P(k) statistic
    levels: tuple = LEVELS         # Δχ² of the 1, 2, 3σ contours
    truth: tuple | None = None     # (Ωₘ, σ₈) when known
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
        """"τ = 5.5" or "τ = 5.5 (2D), marginals Ωₘ 7.1, σ₈ 4.2" for captions."""
        if self.marginal_temperatures is None:
            return f"τ = {self.temperature:.3g}"
        t1, t2 = self.marginal_temperatures
        return f"τ = {self.temperature:.3g} (2D), marginals Ωₘ {t1:.3g}, σ₈ {t2:.3g}"

    def held_out_label(self) -> str:
        """"on 50 held-out simulations these 68 % intervals held the truth 74 % (Ωₘ) and 73 % (σ₈) of the
        time" when the calibration measured it (``settings["held_out_coverage68"]``), else ""."""
        cov = self.settings.get("held_out_coverage68")
        if not cov:
            return ""
        text = (f"on {cov['n_fields']} held-out simulations these 68 % intervals held the truth "
                f"{100 * cov['omega_m']:.0f} % (Ωₘ) and {100 * cov['sigma_8']:.0f} % (σ₈) of the time")
        measured, used = cov.get("grid"), self.grid_used()
        # a fine grid placed on a given window (the fast result's) stands for the coarse-to-fine scan with
        # the same fine grid: measured on the 50 held-out fields, the two gave the same coverage
        differs = measured and used and (used["fine"] != measured["fine"]
                                         or (used["coarse"] is not None and used["coarse"] != measured["coarse"]))
        if differs:  # another grid: say which one the figures are for
            text += f", with the calibration's {grid_text(measured)} grid (this answer's: {grid_text(used)})"
        return text

    def grid_used(self) -> dict | None:
        """{"coarse": [n1, n2] or None, "fine": [n1, n2]} of the scan behind this posterior (:func:`grid_of`)."""
        return grid_of(self.settings)

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
