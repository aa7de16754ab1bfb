"""HoloViews figures of an ``explorer.inference.Posterior``: −2ΔlnL̂ image, contours, marginals.

Contours are drawn at ``posterior.levels`` (Δχ² = 2.30, 6.18, 11.83: 1, 2, 3σ for two
parameters); marginals are plotted as densities (mass per grid point / grid step) with their
central 68 % interval shaded.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
from holoviews.operation import contours

from .plots import AUTOHIDE
from .style import CNN, GENERATED, GUESS, REFERENCE

OM, S8 = hv.Dimension("omega_m", label="Ωₘ"), hv.Dimension("sigma_8", label="σ₈")
CHI2 = hv.Dimension("delta_chi2", label="−2ΔlnL̂")
SIGMA_DASH = ("solid", "dashed", "dotted")
BACKGROUND_ALPHA = 0.4  # the coarse scan under a refined window
WINDOW_EDGE = "#555555"  # the outline of the refined window
TERM_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _image(om, s8, delta) -> hv.Image:
    """Δχ² ``(n1, n2)`` on uniform grids as an image with x = Ωₘ, y = σ₈."""
    return hv.Image((om, s8, np.asarray(delta).T), kdims=[OM, S8], vdims=[CHI2])


def _background(post, clip: float, n: int = 51) -> hv.Image:
    """The coarse scan of the whole prior, interpolated like the first look (bicubic), drawn under
    the fine window in the same colours: without it the figure had a blank band wherever the P(k)
    contours or the CNN point widened the axes beyond the window. The first look (no ``coarse``)
    is its own background, so the figure keeps its structure when the refined surface replaces it."""
    from explorer.inference.grid import spline

    src = post.coarse if post.coarse is not None else post
    om, s8 = np.asarray(src.omega_m), np.asarray(src.sigma_8)
    grid_om, grid_s8 = np.linspace(om[0], om[-1], n), np.linspace(s8[0], s8[-1], n)
    values = spline(om, s8, src.delta_chi2, grid_om, grid_s8)
    return _image(grid_om, grid_s8, np.clip(values, 0.0, clip)).opts(cmap="viridis_r", clim=(0, clip),
                                                                     colorbar=False, tools=[])


def _contours(om, s8, delta, levels, color, width=2, label=None) -> hv.Overlay:
    """One line style per level (solid 1σ, dashed 2σ, dotted 3σ)."""
    out = hv.Overlay([])
    for level, dash in zip(levels, SIGMA_DASH):
        c = contours(_image(om, s8, delta), levels=[level], overlaid=False)
        out *= c.opts(color=color, line_width=width, line_dash=dash, show_legend=False)
    return out


def _cnn_cross(cnn) -> hv.Overlay:
    """The CNN estimate: a point with ±1σ bars along Ωₘ and σ₈."""
    (m1, s1), (m2, s2) = ((cnn[n]["mean"], cnn[n]["std"]) for n in ("omega_m", "sigma_8"))
    bars = hv.Segments([(m1 - s1, m2, m1 + s1, m2), (m1, m2 - s2, m1, m2 + s2)], [OM, S8, "x1", "y1"]).opts(
        color=CNN, line_width=2)
    return bars * hv.Points([(m1, m2)], [OM, S8], label="CNN ± 1σ").opts(marker="circle", size=10, color=CNN,
                                                                        line_color="white")


def posterior_plot(post, baseline=None, show_baseline: bool = True, show_terms: bool = False,
                   size: int = 360, name: str | None = None, guess=None, cnn=None) -> hv.Overlay:
    """−2ΔlnL̂ image of the fine window with 1/2/3σ contours, truth, optional P(k) and per-term contours;
    ``name``: the field's, first in the title (so a figure always says whose posterior it is);
    ``guess``: a player's (Ωₘ, σ₈), marked ◆ (the Guess-the-universe tab); ``cnn``: the CNN
    estimator's estimates, a point with ±1σ bars (shown with the baseline)."""
    clip = float(post.levels[-1]) * 2.5
    image = _image(post.omega_m, post.sigma_8, np.minimum(post.delta_chi2, clip)).opts(
        cmap="viridis_r", colorbar=True, clim=(0, clip), tools=["hover"],
        colorbar_opts={"title": "−2ΔlnL̂"})
    # Refined on a window: the coarse scan outside it is faded and the window outlined, so the seam where two
    # surfaces meet reads as what it is (after the fast preset, the background is even another network's
    # scan). The first look has the same layers (its outline is the frame), so the refined surface replaces
    # it in place.
    background = _background(post, clip).opts(alpha=BACKGROUND_ALPHA if post.coarse is not None else 1.0)
    edge = (post.omega_m[0], post.sigma_8[0], post.omega_m[-1], post.sigma_8[-1])
    image = image * hv.Bounds(tuple(map(float, edge))).opts(color=WINDOW_EDGE, line_width=1)
    overlay = background * image * _contours(post.omega_m, post.sigma_8, post.delta_chi2, post.levels, "white")
    if show_terms and post.per_timestep:
        for (name, grid), color in zip(sorted(post.per_timestep.items()), TERM_COLORS):
            overlay *= _contours(post.omega_m, post.sigma_8, grid, post.levels[:1], color, width=1.5)
    if show_baseline and baseline is not None:
        overlay *= _contours(baseline.omega_m, baseline.sigma_8, baseline.delta_chi2, baseline.levels,
                             REFERENCE, width=2)
    if show_baseline and cnn is not None:
        overlay *= _cnn_cross(cnn)
    best = (post.estimates["omega_m"]["max"], post.estimates["sigma_8"]["max"])
    overlay *= hv.Points([best], [OM, S8], label="maximum").opts(marker="x", size=14, color=GENERATED,
                                                                 line_width=3)
    if post.truth is not None:
        overlay *= hv.Points([tuple(post.truth)], [OM, S8], label="truth").opts(
            marker="star", size=18, color="red", line_color="white")
    if guess is not None:
        overlay *= hv.Points([tuple(guess)], [OM, S8], label="your guess").opts(
            marker="diamond", size=16, color=GUESS, line_color="white")
    title = "−2ΔlnL̂ and its 1σ, 2σ, 3σ contours"  # (line styles: the text under the figure)
    if name:
        title = f"{name.split(' (')[0]}: −2ΔlnL̂"  # the name is long: the contours are explained under it
    if post.settings.get("stage") == "coarse":  # the first look, drawn while the fine grid is computed
        title += " (coarse scan, refining …)"
    return overlay.opts(title=title, frame_width=size, frame_height=size, toolbar="right", backend_opts=AUTOHIDE,
                        legend_position="bottom_right", fontsize={"title": 10})


def _marginal_curve(grid, mass, color, label, dash="solid"):
    step = grid[1] - grid[0] if grid.size > 1 else 1.0
    return hv.Curve((grid, mass / step), label=label).opts(color=color, line_width=2, line_dash=dash)


def marginal_plot(post, name: str, baseline=None, show_baseline: bool = True, width: int = 300,
                  cnn=None) -> hv.Overlay:
    """Marginal density of ``name`` ("omega_m" or "sigma_8") with its 68 % interval and the truth."""
    dim = OM if name == "omega_m" else S8
    grid = getattr(post, name)
    est = post.estimates[name]
    overlay = hv.VSpan(est["lo68"], est["hi68"]).opts(color=GENERATED, alpha=0.15)
    overlay *= _marginal_curve(grid, getattr(post, f"marginal_{name}"), GENERATED, "diffusion model")
    overlay *= hv.VLine(est["max"]).opts(color=GENERATED, line_dash="dashed", line_width=1)
    if show_baseline and baseline is not None:
        overlay *= _marginal_curve(getattr(baseline, name), getattr(baseline, f"marginal_{name}"), REFERENCE,
                                   "P(k) baseline", dash="dashed")
    if show_baseline and cnn is not None:  # its Gaussian, as mass per grid step like the others
        m, s = cnn[name]["mean"], cnn[name]["std"]
        overlay *= hv.Curve((grid, np.exp(-0.5 * ((grid - m) / s) ** 2) / (np.sqrt(2 * np.pi) * s)),
                            label="CNN").opts(color=CNN, line_width=2, line_dash="dotted")
    if post.truth is not None:
        overlay *= hv.VLine(post.truth[0 if name == "omega_m" else 1]).opts(color="red", line_width=2)
    return overlay.opts(hv.opts.Curve(xlabel=dim.label, ylabel=f"p({dim.label})")).opts(
        title=f"{dim.label}: max {est['max']:.3f}, 68 % [{est['lo68']:.3f}, {est['hi68']:.3f}]",
        frame_width=width, frame_height=180, legend_position="top_right",
            toolbar="right", backend_opts=AUTOHIDE, show_legend=False)


def estimates_markdown(post, baseline=None, cnn=None) -> str:
    """Estimates as Markdown: maximum and 68 % intervals (the CNN: mean ± σ), truth and Δχ² at the
    truth when known."""
    rows = []
    for label, est in (("diffusion model (VLB)", post.estimates),
                       ("P(k) baseline", baseline.estimates if baseline is not None else None),
                       ("CNN estimator (mean)", cnn)):
        if est is None:
            continue
        cells = [f"{e['max']:.3f} [{e['lo68']:.3f}, {e['hi68']:.3f}]" for e in (est["omega_m"], est["sigma_8"])]
        rows.append(f"| {label} | {cells[0]} | {cells[1]} |")
    text = "| likelihood | Ωₘ, max [68 %] | σ₈, max [68 %] |\n|---|---|---|\n" + "\n".join(rows)
    if post.truth is not None:
        text += f"\n| truth | {post.truth[0]:.3f} | {post.truth[1]:.3f} |"
        d = post.delta_chi2_truth()
        if d is not None:
            inside = "inside" if d <= post.levels[0] else ("inside 2σ" if d <= post.levels[1] else "outside 2σ")
            text += f"\n\nΔχ² at the truth: {d:.2f} ({inside if inside != 'inside' else 'inside 1σ'})."
    text += (f"\n\n{post.n_evaluations} network evaluations in {post.seconds:.1f} s; terms {post.terms}, "
             f"temperature {post.temperature_label()}.")
    if post.held_out_label():
        text += f" Calibration check: {post.held_out_label()} (target 68 %)."
    if "typicality_z" in post.settings:
        text += (f" Typicality: z = {post.settings['typicality_z']:+.1f}, p = {post.settings['typicality_p']:.2g} "
                 "(how usual the field's fit is for simulated maps).")
    for note in post.notes:
        text += f"\n\n⚠ {note}"
    return text
