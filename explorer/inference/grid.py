"""Grid posterior over (Ωₘ, σ₈): a coarse scan of the prior, a fine grid around the minimum.

    post = infer(load_model(), np.load("field.npy"), truth=(0.3, 0.8))
    post.estimates["omega_m"]      # {"max", "lo68", "hi68", "lo95", "hi95", "mean", "std"}

The surface, its marginals and intervals (and their conventions) are :mod:`.posterior`; this module
searches the prior and evaluates the likelihood.

The search (``scan``): the whole prior on a ``coarse`` grid; the fine window is ±``fine_half_width``
around the coarse minimum (the seed paper's ±0.1), widened to cover every coarse point inside the
3σ contour (plus one coarse step) and clipped to the prior; ``fine`` grid points are evaluated
there and the surface is interpolated by a bicubic spline onto ``interpolate_to`` points (the
likelihood is a smooth function of θ thanks to common random numbers). Network evaluations:
(coarse points + fine points) × terms × noise draws.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from scipy.interpolate import RectBivariateSpline

from explorer.params import PARAM_LABELS

from .posterior import (Posterior, _check_temperatures, interval, interval_68, intervals,  # noqa: F401
                        marginals)  # (re-exported: the grid's posterior)
from .vlb import Cancel, InferenceCancelled, Progress, field_seed, split_scale_weights, term_weights, vlb_terms
from . import records, typicality

from .defaults import (DEFAULT_BATCH, DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_HALF_WIDTH, DEFAULT_INTERPOLATE,
                       DEFAULT_N_NOISE, DEFAULT_TERMS, LEVELS, MASS_68, MASS_95, PARAM_NAMES)

__all__ = ["LEVELS", "Posterior", "InferenceCancelled", "marginals", "interval", "intervals", "interval_68",
           "scan", "coarse_preview", "window_from", "infer"]


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


def spline(om, s8, values, om_new, s8_new) -> np.ndarray:
    """``values (len(om), len(s8))`` on a grid, interpolated onto ``om_new × s8_new`` (bicubic,
    through the points; lower order along an axis with fewer than 4 points)."""
    kx, ky = min(3, om.size - 1), min(3, s8.size - 1)
    return RectBivariateSpline(om, s8, values, kx=kx, ky=ky, s=0)(om_new, s8_new)


def scan(objective: Callable[[np.ndarray, Progress | None], np.ndarray], param_ranges, *, coarse=DEFAULT_COARSE,
         fine=DEFAULT_FINE, fine_half_width=DEFAULT_HALF_WIDTH, interpolate_to=DEFAULT_INTERPOLATE,
         temperature: float = 1.0, marginal_temperatures=None, window_temperature: float | None = None,
         evaluations_per_point: int = 0, per_term: bool = False,
         term_names=None, progress: Progress | None = None,
         on_coarse: Callable[[Posterior], None] | None = None, window=None, **meta) -> Posterior:
    """Coarse-to-fine grid search of ``objective`` over the prior box (module docstring).

    Parameters
    ----------
    objective : ``objective(theta (G, 2), progress) -> (K, G)`` −ln L̂ terms in nats, summed over
        the K terms; ``progress(done, total)`` reports within the call.
    param_ranges : ((Ωₘ lo, hi), (σ₈ lo, hi)).
    coarse, fine : evaluated points per axis; interpolate_to : output grid (None: the fine grid).
    temperature : τ, Δχ² = raw / τ; marginal_temperatures : (τ_Ωm, τ_σ8) of the marginals (None: τ).
    window_temperature : the temperature whose 3σ region the fine window must hold (default: the
        largest of τ, τ_Ωm, τ_σ8, so that no marginal is cut off by the window).
    evaluations_per_point : network evaluations per θ (for ``n_evaluations`` and progress).
    per_term : keep the raw 2ΔL of each term as ``per_timestep`` (names ``term_names``).
    on_coarse : called once, before the fine grid is evaluated, with a first look at the surface
        (:func:`coarse_preview`): the coarse scan interpolated over the whole prior.
    window : ((Ωₘ lo, hi), (σ₈ lo, hi)): the fine window given (e.g. :func:`window_from` another
        posterior of the same field): no coarse scan, no first look; ``coarse`` is ignored.
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
    if window is not None:
        return _scan_window(objective, window, (o_lo, o_hi), (s_lo, s_hi), nf, ni, temperature=temperature,
                            marginal_temperatures=marginal_temperatures, per=max(evaluations_per_point, 1),
                            per_term=per_term, term_names=term_names, progress=progress, **meta)
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
    if on_coarse is not None:
        on_coarse(coarse_preview(om_c, s8_c, chi2_c, interpolate_to or DEFAULT_INTERPOLATE, temperature=temperature,
                                 marginal_temperatures=marginal_temperatures,
                                 n_evaluations=n_coarse * evaluations_per_point, **meta))

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
        chi2_f = spline(om_f, s8_f, chi2_f, om_i, s8_i)
    ref = min(chi2_f.min(), chi2_c.min())
    truth_delta = None if truth is None else max(0.0, float(chi2_all[-1] - ref) / temperature)

    notes = list(meta.pop("notes", ())) + _edge_notes(chi2_f, window, ((o_lo, o_hi), (s_lo, s_hi)))
    per_timestep = _per_term_grids(terms_f, om_f, s8_f, om_i, s8_i, interpolate_to, term_names) if per_term else None

    coarse_post = Posterior.from_grid(om_c, s8_c, chi2_c, temperature=temperature, chi2_min=ref,
                                      marginal_temperatures=marginal_temperatures,
                                      method=meta.get("method", "vlb"), terms=meta.get("terms", ""),
                                      truth=truth, n_evaluations=n_coarse * evaluations_per_point)
    settings = {**meta.pop("settings", {}), "coarse": list(nc), "fine": list(nf), "fine_half_width": list(hw),
                "interpolate_to": None if interpolate_to is None else list(ni),
                "window": [list(w) for w in window], "chi2_min_raw": float(ref)}
    return Posterior.from_grid(om_i, s8_i, chi2_f, temperature=temperature, chi2_min=ref,
                               marginal_temperatures=marginal_temperatures,
                               n_evaluations=(n_coarse + n_fine) * evaluations_per_point,
                               per_timestep=per_timestep, coarse=coarse_post, notes=tuple(notes),
                               settings=settings, truth_delta_chi2=truth_delta, **meta)


def _edge_notes(chi2_f, window, box) -> list[str]:
    """Notes when the surface's minimum lies on the fine window's edge (widen it) or the prior's."""
    notes = []
    k = np.unravel_index(np.argmin(chi2_f), chi2_f.shape)
    for idx, n, (a, b), (lo, hi), name in zip(k, chi2_f.shape, window, box, PARAM_NAMES):
        if (idx == 0 and a > lo) or (idx == n - 1 and b < hi):
            notes.append(f"the minimum lies on the edge of the fine window in {name}; "
                         "widen fine_half_width or the coarse grid")
        elif idx in (0, n - 1):  # the window reaches the prior's edge there
            edge = lo if idx == 0 else hi
            notes.append(f"the maximum of the likelihood lies on the prior's edge, {PARAM_LABELS[name]} = {edge:g}: "
                         f"this field prefers a value at or beyond the range the model knows "
                         f"[{lo:g}, {hi:g}]; the intervals there are cut by the prior")
    return notes


def _per_term_grids(terms_f, om_f, s8_f, om_i, s8_i, interpolate_to, term_names) -> dict:
    """Each term's raw 2ΔL on the output grid (interpolated like the total), 0 at its own minimum."""
    names = list(term_names or [f"L{t}" for t in range(terms_f.shape[0])])
    out = {}
    for name, tf in zip(names, terms_f):
        grid = 2.0 * tf if interpolate_to is None else spline(om_f, s8_f, 2.0 * tf, om_i, s8_i)
        out[name] = grid - grid.min()
    return out


def _scan_window(objective, window, om_box, s8_box, nf, ni, *, temperature, marginal_temperatures, per: int,
                 per_term: bool, term_names, progress, **meta) -> Posterior:
    """:func:`scan` on a given fine window (its ``window`` argument): the fine grid (and the truth) only."""
    try:
        window = [(max(lo, float(a)), min(hi, float(b))) for (a, b), (lo, hi) in zip(window, (om_box, s8_box))]
    except (TypeError, ValueError):
        raise ValueError(f"window must be ((Omega_m lo, hi), (sigma_8 lo, hi)), got {window!r}") from None
    if len(window) != 2 or any(not a < b for a, b in window):
        raise ValueError(f"window must be two increasing ranges inside the prior, got {window!r}")
    truth = meta.get("truth")
    om_f, s8_f = np.linspace(*window[0], nf[0]), np.linspace(*window[1], nf[1])
    points = _grid_points(om_f, s8_f)
    if truth is not None:
        points = np.vstack([points, np.asarray(truth, dtype=np.float64)[None, :]])
    total = points.shape[0] * per
    prog = None if progress is None else (lambda done, _tot: progress(done, total))
    terms_all = np.asarray(objective(points, prog), dtype=np.float64)
    chi2_all = 2.0 * terms_all.sum(axis=0)
    terms_f = terms_all[:, :nf[0] * nf[1]].reshape(-1, *nf)
    om_i, s8_i = np.linspace(*window[0], ni[0]), np.linspace(*window[1], ni[1])
    chi2_f = spline(om_f, s8_f, 2.0 * terms_f.sum(axis=0), om_i, s8_i)
    ref = min(chi2_f.min(), chi2_all[:nf[0] * nf[1]].min())  # (not the truth: as scan's coarse + fine)
    truth_delta = None if truth is None else max(0.0, float(chi2_all[-1] - ref) / temperature)
    notes = list(meta.pop("notes", ())) + _edge_notes(chi2_f, window, (om_box, s8_box))
    per_timestep = _per_term_grids(terms_f, om_f, s8_f, om_i, s8_i, ni, term_names) if per_term else None
    settings = {**meta.pop("settings", {}), "coarse": None, "fine": list(nf), "window_given": True,
                "interpolate_to": list(ni), "window": [list(w) for w in window], "chi2_min_raw": float(ref)}
    return Posterior.from_grid(om_i, s8_i, chi2_f, temperature=temperature, chi2_min=ref,
                               marginal_temperatures=marginal_temperatures, n_evaluations=total,
                               per_timestep=per_timestep, notes=tuple(notes), settings=settings,
                               truth_delta_chi2=truth_delta, **meta)


def window_from(post: Posterior, level: float = LEVELS[-1], pad: float = 0.25) -> tuple[tuple[float, float], ...]:
    """The fine window for another likelihood of the same field: the box around ``post``'s calibrated
    3σ region (Δχ² ≤ ``level`` at the largest of its temperatures), widened by ``pad`` of its width
    on each side and by at least one step of its grid (clipped to the prior by :func:`scan`)."""
    taus = [post.temperature, *(post.marginal_temperatures or ())]
    inside = post.delta_chi2 * post.temperature / max(taus) <= level
    out = []
    for grid, axis in ((post.omega_m, 1), (post.sigma_8, 0)):
        values = grid[inside.any(axis=axis)]
        step = float(grid[1] - grid[0])
        a, b = float(values.min()), float(values.max())
        margin = max(pad * (b - a), step)
        out.append((a - margin, b + margin))
    return tuple(out)


def coarse_preview(om_c, s8_c, chi2_c, shape, *, temperature: float = 1.0, marginal_temperatures=None,
                   **meta) -> Posterior:
    """A first look at the surface from the coarse scan alone: ``chi2_c`` on the coarse grid,
    interpolated by the same bicubic spline onto ``shape`` points over the whole prior.

    Its contours are only as good as a few points per axis allow (a narrow posterior shows as a
    blob around the best coarse point); ``settings["stage"]`` is "coarse" and a note says so.
    """
    om, s8 = np.linspace(om_c[0], om_c[-1], shape[0]), np.linspace(s8_c[0], s8_c[-1], shape[1])
    chi2 = spline(om_c, s8_c, chi2_c, om, s8)
    notes = (f"first look: the coarse scan of the prior ({om_c.size}×{s8_c.size} points), being refined",)
    meta = {k: v for k, v in meta.items() if k not in ("notes", "settings")}
    return Posterior.from_grid(om, s8, chi2, temperature=temperature, marginal_temperatures=marginal_temperatures,
                               notes=notes, settings={"stage": "coarse"}, **meta)


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
    """(τ, (τ_Ωm, τ_σ8) or None, note) stored for these settings (metadata["calibration"], or one
    of the other terms' calibrations kept beside it, :mod:`.records`).

    τ = 1 with a note when the folder has no calibration or none for these settings; the marginal
    temperatures are None when the calibration has none (older folders).
    """
    cal = records.for_terms(metadata, "calibration", terms, n_noise)
    if cal is None:
        known = records.stored_terms(metadata, "calibration")
        if not known:
            return 1.0, None, "no calibration stored with these weights (run `explorer calibrate`): raw likelihood"
        return 1.0, None, (f"the stored calibrations are for terms={', '.join(known)}, "
                           f"not terms={terms!r}, n_noise={n_noise}: raw likelihood")
    if "temperature" not in cal:
        return 1.0, None, "the stored calibration has no temperature (run `explorer calibrate`): raw likelihood"
    marginal = cal.get("marginal_temperatures")
    try:
        taus = _check_temperatures(float(cal["temperature"]), None if marginal is None else
                                   tuple(float(marginal[name]) for name in PARAM_NAMES))
    except (ValueError, TypeError, KeyError):
        return 1.0, None, (f"stored calibration temperatures {cal['temperature']!r}, {marginal!r} "
                           "are not positive numbers: raw likelihood")
    return taus[0], None if marginal is None else taus[1:], None


def calibrated_for_fast_preset(metadata: dict) -> bool:
    """Whether a network's ``metadata`` hold a usable calibration for the fast preset's terms
    (``defaults.FAST_TERMS``): only then may it answer first (the app) or place a fine window (the CLI)."""
    from .defaults import FAST_TERMS

    return calibration_temperature(metadata, FAST_TERMS, DEFAULT_N_NOISE)[2] is None


def held_out_coverage(metadata: dict, terms: str, n_noise: int) -> dict | None:
    """{"omega_m": c, "sigma_8": c, "n_fields": n[, "grid": {"coarse": [..], "fine": [..]}]}: how often
    the calibrated 68 % intervals of these settings held the truth on ``explorer calibrate``'s held-out
    fields (stored with the calibration, with the grid it scanned where recorded), or None when the
    folder has no such measurement."""
    cal = records.for_terms(metadata, "calibration", terms, n_noise) or {}
    evaluation = cal.get("evaluation") or {}
    measured = evaluation.get("vlb_calibrated") or {}
    try:
        out = {**{name: float(measured[name]["coverage68"]) for name in PARAM_NAMES},
               "n_fields": int(measured["n_fields"])}
    except (KeyError, TypeError, ValueError):
        return None
    grid = evaluation.get("grid")
    if isinstance(grid, dict) and all(isinstance(grid.get(k), list) and len(grid[k]) == 2 for k in ("coarse", "fine")):
        out["grid"] = {k: [int(n) for n in grid[k]] for k in ("coarse", "fine")}
    return out


def infer(loaded, field, *, kind: str = "auto", terms: str = DEFAULT_TERMS, n_noise: int = DEFAULT_N_NOISE,
          coarse=DEFAULT_COARSE, fine=DEFAULT_FINE, fine_half_width=DEFAULT_HALF_WIDTH,
          interpolate_to=DEFAULT_INTERPOLATE, calibrated: bool = True, temperature: float | None = None,
          window_temperature: float | None = None,
          per_timestep: bool = False, truth=None, seed: int | None = None, batch_size: int = DEFAULT_BATCH, bf16: bool = False,
          progress: Progress | None = None, cancel: Cancel | None = None,
          on_coarse: Callable[[Posterior], None] | None = None, window=None) -> Posterior:
    """−2ΔlnL̂ of (Ωₘ, σ₈) for one field from the VLB of a trained diffusion model.

    Parameters
    ----------
    loaded : :class:`explorer.model.Denoiser` (network, schedule, normalisation, prior box).
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
    truth : known (Ωₘ, σ₈): stored for plots, and Δχ² is evaluated exactly there
        (``truth_delta_chi2``, one more point).
    batch_size, bf16 : network batch and bfloat16 autocast (off by default: its rounding makes
        the surface rough, see ``DEFAULT_*`` above).
    progress : ``progress(done, total)`` in network evaluations; cancel : ``cancel() -> bool``
        polled between batches, True raises :class:`InferenceCancelled`.
    on_coarse : ``on_coarse(posterior)`` once the coarse scan is done, with a first look at the
        surface (:func:`coarse_preview`), e.g. to draw it while the fine grid is evaluated.
    window : the fine window given, e.g. ``window_from(a faster posterior of the same field)``: no
        coarse scan (see :func:`scan`).
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
    scale_weights = split_scale_weights(terms)[1]
    truth = check_truth(truth, loaded.param_ranges)
    notes, marginal_taus, held_out = [], None, None
    if temperature is not None:
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        tau = float(temperature)
    elif calibrated:
        tau, marginal_taus, note = calibration_temperature(loaded.metadata, terms, n_noise)
        if note:
            notes.append(note)
        held_out = held_out_coverage(loaded.metadata, terms, n_noise) if not note else None
    else:
        tau = 1.0

    def objective(theta, prog):
        return weights[:, None] * vlb_terms(loaded, x0, theta, timesteps, n_noise=n_noise,
                                            seed=seed, batch_size=batch_size, bf16=bf16, progress=prog,
                                            cancel=cancel, scale_weights=scale_weights)

    settings = {"n_noise": int(n_noise), "seed": int(seed), "bf16": bool(bf16), "kind": kind_used,
                "resolution": int(loaded.resolution), "timesteps": timesteps.tolist(), "weights": weights.tolist()}
    if held_out is not None:  # what these calibrated intervals did on fields never trained or calibrated on
        settings["held_out_coverage68"] = held_out
    post = scan(objective, loaded.param_ranges, coarse=coarse, fine=fine, fine_half_width=fine_half_width,
                interpolate_to=interpolate_to, temperature=tau, marginal_temperatures=marginal_taus,
                window_temperature=window_temperature,
                evaluations_per_point=timesteps.size * int(n_noise), per_term=per_timestep,
                term_names=[f"L{t}" for t in timesteps], progress=progress, on_coarse=on_coarse, window=window,
                method="vlb",
                terms=terms, truth=truth, notes=notes, settings=settings)
    typical = typicality.reference(loaded.metadata, terms, n_noise)
    if typical is not None:  # how typical the field is, from the best fit's bound (no extra call)
        best = np.unravel_index(np.argmin(post.delta_chi2), post.delta_chi2.shape)
        z = typicality.z_score(post.settings["chi2_min_raw"] / 2, (post.omega_m[best[0]], post.sigma_8[best[1]]),
                               typical)
        post.settings["typicality_z"] = round(z, 2)
        post.settings["typicality_p"] = round(typicality.p_value(z, typical), 4)
        warning = typicality.note(z)
        if warning:
            post.notes = (*post.notes, warning)
    post.seconds = time.perf_counter() - t0
    return post
