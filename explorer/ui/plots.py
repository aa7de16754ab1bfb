"""HoloViews figures shared by the tabs (Bokeh backend): maps, spectra, histograms, structure.

Every function takes results from ``compute`` (or plain arrays) and returns a HoloViews object;
none of them computes statistics. Units follow the core: maps are log10 Σ [(M_⊙/h)/(Mpc/h)²]
over a periodic 25 h⁻¹Mpc square, k in h/Mpc, P(k) in (Mpc/h)².
"""

from __future__ import annotations

import io
import warnings

import holoviews as hv
import numpy as np

from explorer import BOX_SIZE
from explorer.params import PARAM_LABELS

from .style import CMAP, GENERATED, K_LABEL, P_LABEL, REFERENCE, map_clim  # noqa: F401  (re-exported)

hv.extension("bokeh", logo=False)

MAP_LABEL = "log₁₀ Σ [h M⊙/Mpc²]"  # (M⊙/h)/(Mpc/h)² = h M⊙/Mpc²: short enough for a colour bar
#: toolbars right of the frame, shown while the mouse is over the plot (above it, they covered titles)
AUTOHIDE = {"plot.toolbar.autohide": True}


def map_image(m: np.ndarray, title: str = "", clim=None, colorbar: bool = True, size: int = 220) -> hv.Image:
    """One map ``(H, W)`` with physical axes (0–25 h⁻¹Mpc) and a log10 Σ colour bar."""
    clim = clim or map_clim(m)
    return hv.Image(np.asarray(m)[::-1], bounds=(0, 0, BOX_SIZE, BOX_SIZE),
                    kdims=["x", "y"], vdims=[hv.Dimension("log10_sigma", label=MAP_LABEL)]).opts(
        cmap=CMAP, clim=clim, colorbar=colorbar, title=title, xlabel="x [h⁻¹Mpc]", ylabel="y [h⁻¹Mpc]",
        frame_width=size, frame_height=size, toolbar="right", tools=["hover"], fontsize={"title": 10},
        backend_opts=AUTOHIDE,
        colorbar_opts={"title": MAP_LABEL if colorbar else ""},
    )


def map_row(maps, titles, clim, size: int = 150, gap: float = 4.0, cols: int = 4) -> hv.Overlay:
    """Maps in rows of ``cols`` in ONE figure (one colour bar): map i sits in column c = i mod cols,
    row r = i // cols, at x in [c (L + gap), c (L + gap) + L], rows stacked downwards.

    Each map keeps its physical axis labels (ticks 0, 10, 20 h⁻¹Mpc beside every map); one figure
    instead of one per map makes a redraw much cheaper in the browser. With ``size = 150`` four
    maps fit a 1280-pixel screen beside the controls.
    """
    L = BOX_SIZE
    n = max(len(maps), 1)
    ncols, nrows = min(n, cols), -(-n // cols)
    step, title_h = L + gap, 3.6
    row_h = L + title_h + gap
    top = nrows * row_h - gap

    def origin(i):
        return (i % cols) * step, top - title_h - (i // cols + 1) * L - (i // cols) * (title_h + gap)

    images, xticks, yticks = [], [], []
    for i, (m, title) in enumerate(zip(maps, titles)):
        x0, y0 = origin(i)
        images.append(hv.Image(np.asarray(m)[::-1], bounds=(x0, y0, x0 + L, y0 + L), kdims=["x", "y"],
                               vdims=[hv.Dimension("log10_sigma", label=MAP_LABEL)]).opts(
            cmap=CMAP, clim=clim, colorbar=i == len(maps) - 1, colorbar_opts={"title": MAP_LABEL},
            tools=["hover"]))
        if i < ncols:
            xticks += [(x0 + t, str(t)) for t in (0, 10, 20)]
        if i % cols == 0:
            yticks += [(y0 + t, str(t)) for t in (0, 10, 20)]
    positions = [origin(i) for i in range(len(maps))]
    labels = hv.Labels({"x": [x + L / 2 for x, _ in positions], "y": [y + L + 1.8 for _, y in positions],
                        "text": list(titles)}, ["x", "y"], "text").opts(text_font_size="10pt", text_color="black")
    return hv.Overlay(images + [labels]).opts(
        xticks=xticks, yticks=yticks, xlabel="x [h⁻¹Mpc]", ylabel="y [h⁻¹Mpc]",
        frame_width=int(size * (ncols * step - gap) / L), frame_height=int(size * top / L),
        xlim=(-0.5, ncols * step - gap + 0.5), ylim=(0, top), toolbar="right", show_grid=False,
        backend_opts=AUTOHIDE)


def _band(x, mean, std, color, label, log: bool = True, dash: str = "solid", y: str = "P"):
    lo = mean - std
    if log:  # a log axis cannot show non-positive lower edges
        lo = np.maximum(lo, mean * 1e-3)
    area = hv.Area((x, lo, mean + std), vdims=[y, f"{y}_hi"], label=label).opts(
        color=color, alpha=0.25, line_alpha=0)
    curve = hv.Curve((x, mean), vdims=[y], label=label).opts(color=color, line_width=2, line_dash=dash)
    return area * curve


def power_plot(k, power, power_ref=None, title="P(k): generated vs reference", width=380):
    """Mean ± σ bands of P(k) over maps, log axes."""
    overlay = _band(k, power.mean(0), power.std(0, ddof=1) if len(power) > 1 else 0 * k,
                    GENERATED, "generated")
    if power_ref is not None:
        overlay = _band(k, power_ref.mean(0), power_ref.std(0, ddof=1), REFERENCE, "reference") * overlay
    return overlay.opts(hv.opts.Curve(logx=True, logy=True), hv.opts.Area(logx=True, logy=True)).opts(
        title=title, xlabel=K_LABEL, ylabel=P_LABEL, frame_width=width, frame_height=260,
        legend_position="bottom_left", toolbar="right", backend_opts=AUTOHIDE)


def zscore_plot(k, z, width=380):
    """Per-k z-score of the generated mean P(k) against the reference mean (|z| < 2 shaded)."""
    span = hv.HSpan(-2, 2).opts(color="gray", alpha=0.15)
    zero = hv.HLine(0).opts(color="black", line_width=1)
    if z is None:
        return (span * zero).opts(title="z-score: needs ≥ 2 generated maps", frame_width=width,
                                  frame_height=140)
    curve = hv.Curve((k, z), K_LABEL, "z").opts(color=GENERATED, line_width=2, logx=True)
    return (span * zero * curve).opts(
        title="z-score of the mean P(k)", xlabel=K_LABEL, ylabel="z(k)", frame_width=width,
        frame_height=140, toolbar="right", backend_opts=AUTOHIDE)


def chi2_plot(chi2, chi2_floor, width=230):
    """χ²ᵣ of each generated map, beside the reference's leave-one-out values (the floor)."""
    gen = hv.Scatter((np.arange(1, len(chi2) + 1), chi2), "map", "χ²ᵣ", label="generated").opts(
        color=GENERATED, size=8, marker="circle")
    ref = hv.Scatter((np.linspace(1, max(len(chi2), 2), len(chi2_floor)), chi2_floor), "map", "χ²ᵣ",
                     label="reference, leave-one-out").opts(color=REFERENCE, size=5, marker="square",
                                                            alpha=0.7)
    floor = hv.HLine(float(np.mean(chi2_floor))).opts(color=REFERENCE, line_dash="dashed")
    return (ref * floor * gen).opts(
        title="χ²ᵣ per map vs floor",
        xlabel="generated map", ylabel="χ²ᵣ", logy=True, frame_width=width, frame_height=260,
        xticks=list(range(1, max(len(chi2), 2) + 1)), legend_position="bottom",
        toolbar="right", backend_opts=AUTOHIDE, fontsize={"title": 10})


def histogram_plot(hist, hist_ref=None, width=420):
    """Pixel histograms: mean ± σ envelope over maps, generated vs reference."""
    overlay = _band(hist.centers, hist.mean, hist.std, GENERATED, "generated", log=False, y="density")
    if hist_ref is not None:
        overlay = _band(hist_ref.centers, hist_ref.mean, hist_ref.std, REFERENCE, "reference", log=False,
                                y="density") * overlay
    return overlay.opts(title="Pixel histograms (mean ± σ over maps)", xlabel=MAP_LABEL,
                        ylabel="probability density", frame_width=width, frame_height=220,
                        legend_position="top_left", toolbar="right", backend_opts=AUTOHIDE)


def _census(structure, field, label, color, dash="solid"):
    values = np.asarray(getattr(structure, field), dtype=np.float64)  # (B, n_t); NaN: no region
    nu = structure.thresholds
    with warnings.catch_warnings():  # thresholds with no region in any map give NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
    return (hv.Curve((nu, mean), "ν", label=label).opts(color=color, line_dash=dash, line_width=2)
            * hv.ErrorBars((nu, mean, std), "ν", label=label).opts(color=color, line_width=2))


def structure_panels(structure, structure_ref=None, width=220) -> list:
    """Connected over-dense regions above μ + νσ: number, mean size and filaments, generated vs reference."""
    panels = []
    for field, ylabel in (("n_regions", "regions per map"), ("mean_size", "mean region size [pixels]"),
                          ("n_filaments", "filaments per map")):
        overlay = _census(structure, field, "generated", GENERATED)
        if structure_ref is not None:
            overlay = _census(structure_ref, field, "reference", REFERENCE) * overlay
        panels.append(overlay.opts(xlabel="threshold ν [σ above mean]", ylabel=ylabel, frame_width=width,
                                   frame_height=200, show_legend=field == "n_regions",
                                   toolbar="right", backend_opts=AUTOHIDE,
                                   title=ylabel.split(" [")[0], fontsize={"title": 10}))
    return panels


def _palette(n: int) -> list[str]:
    from bokeh.palettes import Viridis256

    return [Viridis256[int(i)] for i in np.linspace(0, 230, max(n, 1))]


def response_power_plot(resp, width=300):
    """P(k) at each value of the varied parameter: generated dashed, 1P reference solid (means)."""
    name = PARAM_LABELS[resp.param]
    colors = _palette(len(resp.values))
    overlay = hv.Overlay([])
    for i, (v, c) in enumerate(zip(resp.values, colors)):
        if resp.power_ref is not None:
            overlay *= hv.Curve((resp.k, resp.power_ref[i].mean(0)), K_LABEL, "P", label=f"{name}={v:g} 1P").opts(
                color=c, line_width=2)
        overlay *= hv.Curve((resp.k, resp.power[i].mean(0)), K_LABEL, "P", label=f"{name}={v:g} generated").opts(
            color=c, line_width=2, line_dash="dashed")
    return overlay.opts(hv.opts.Curve(logx=True, logy=True)).opts(
        title=f"P(k) for each {name} (dashed: generated, solid: 1P)", xlabel=K_LABEL, ylabel=P_LABEL,
        frame_width=width, frame_height=280, legend_position="right",
        toolbar="right", backend_opts=AUTOHIDE, fontsize={"legend": 8})


def response_ratio_plot(resp, width=300):
    """P(k; θ)/P(k; θ_fid), mean ± σ over seeds: generated dashed, 1P reference solid."""
    name = PARAM_LABELS[resp.param]
    colors = _palette(len(resp.values))
    overlay = hv.HLine(1.0).opts(color="gray", line_width=1)
    for i, (v, c) in enumerate(zip(resp.values, colors)):
        if resp.response_ref is not None:
            r = resp.response_ref
            overlay *= _band(resp.k, r.mean[i], np.nan_to_num(r.std[i]), c, f"{name}={v:g} 1P", y="ratio")
        g = resp.response
        overlay *= _band(resp.k, g.mean[i], np.nan_to_num(g.std[i]), c, f"{name}={v:g} generated", dash="dashed",
                         y="ratio")
    return overlay.opts(hv.opts.Curve(logx=True), hv.opts.Area(logx=True, alpha=0.12)).opts(
        title="Ratio to the fiducial P(k), ± σ over seeds", xlabel=K_LABEL,
        ylabel="P / P fiducial",
        frame_width=width, frame_height=280, show_legend=False, toolbar="right", backend_opts=AUTOHIDE)


def figure_html(obj, title: str) -> io.BytesIO:
    """A standalone HTML file of a HoloViews object or Panel layout, JS/CSS inline (works offline)."""
    buf = io.StringIO()
    if isinstance(obj, hv.core.Dimensioned):
        hv.save(obj, buf, backend="bokeh", fmt="html", resources="inline", title=title)
    else:
        obj.save(buf, resources="inline", title=title)
    return io.BytesIO(buf.getvalue().encode())
