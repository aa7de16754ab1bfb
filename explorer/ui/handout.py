"""A printable page of a tab (issue #17, item 5, "a handout"): its maps, plots, parameters and a
plain-language explanation on one A4-landscape page, as PDF or PNG, for a teacher to hand out.

    fig = handout.emulate_page(result, reference, model="Maps from a 1.1 M-parameter network …")
    buf = handout.render(fig, "pdf")              # io.BytesIO, ready for a download button

Matplotlib's object-oriented API only (``Figure`` + ``FigureCanvasAgg``, never pyplot): pages are
drawn on the app's worker threads, several at once, and pyplot's global state is not thread-safe.
No panel either, so a notebook prints the same page as the app. Units as everywhere: maps are
log10 Σ [(M_⊙/h)/(Mpc/h)²] over the periodic 25 h⁻¹Mpc box, k in h/Mpc, P(k) in (Mpc/h)².

Layout: a page (``_page``) is a header (title; model and date), the explanation paragraph at the
bottom and, between them, the body, which gets the height the texts leave. Sizes are in inches
(``_frac`` converts), texts are wrapped with :mod:`textwrap` to the width they have, so none runs
off the page.
"""

from __future__ import annotations

import io
import textwrap
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

from explorer import BOX_SIZE
from explorer.params import PARAM_LABELS, PRIOR

from . import game_rules
from .game_rules import Outcome, Puzzle, Scoreboard
from .style import CMAP, CNN, GENERATED, GUESS, K_LABEL, P_LABEL, REFERENCE, map_clim

if TYPE_CHECKING:  # compute imports torch; a page only reads its results
    from explorer.inference.posterior import Posterior

    from . import compute

PAGE = (11.69, 8.27)       # A4 landscape, inches
MARGIN = 0.35              # inches around the texts
LEFT, RIGHT = MARGIN / PAGE[0], 1 - MARGIN / PAGE[0]
PNG_DPI = 150
FORMATS = ("pdf", "png")
TITLE_PT, TEXT_PT, SMALL_PT, TICK_PT = 15, 9.5, 8.5, 7.5
N_MAPS = 4                 # maps per row

MAP_LABEL = "log₁₀ Σ [(M⊙/h)/(Mpc/h)²]"  # a page has room for the units as the data set writes them
TRUTH = "red"
SYMBOL = PARAM_LABELS  # Ωₘ, σ₈
SIGMA_STYLES = ("-", "--", ":")
LEGEND = 0.95             # inches under a contour panel: its tick labels, axis label and legend
ROW = 0.26                # inches: the height of a table row


# ---- pages ---------------------------------------------------------------------------------------
def emulate_page(result: compute.Emulation, reference: np.ndarray | None, *, model: str = "",
                 note: str = "") -> Figure:
    """The Emulate tab: up to 4 generated and 4 reference maps ``reference (M, H, W)`` on the
    reference's colour scale, P(k) and pixel histograms (mean ± σ over maps), χ²ᵣ against its floor.

    ``model``: the network, in words (the app's header); ``note``: plain sentences added to the
    explanation, e.g. where the reference maps come from.
    """
    c = result.comparison
    title = f"Emulated maps at Ωₘ = {result.omega_m:.3f}, σ₈ = {result.sigma_8:.3f} (seed {result.seed})"
    fig, body = _page(title, model, _emulate_text(c.has_reference, note))
    left, (top, bottom) = _columns(fig, body)
    maps, titles = _titled(result.maps[:N_MAPS], "generated #{}")
    if reference is not None:
        rows = [(maps, titles), _titled(reference[:N_MAPS], "reference #{}")]
    else:  # two rows of two: larger maps in the room of the reference's row
        rows = [(maps[:2], titles[:2])] + ([(maps[2:], titles[2:])] if len(maps) > 2 else [])
    _map_grid(fig, left, rows, map_clim(reference if reference is not None else result.maps),
              _emulate_caption(result, reference))

    ax = fig.add_subplot(top, label="power")
    if c.has_reference:
        _band(ax, c.k, *_spread(c.power_ref), REFERENCE, "reference")
    _band(ax, c.k, *_spread(c.power), GENERATED, "generated")
    _style(ax, "P(k) of the maps (mean ± σ over maps)", K_LABEL, P_LABEL, log=True)
    ax = fig.add_subplot(bottom, label="histogram")
    if c.hist_ref is not None:
        _band(ax, c.hist_ref.centers, c.hist_ref.mean, c.hist_ref.std, REFERENCE, "reference", log=False)
    _band(ax, c.hist.centers, c.hist.mean, c.hist.std, GENERATED, "generated", log=False)
    _style(ax, "Pixel histograms (mean ± σ over maps)", MAP_LABEL, "probability density")
    return fig


def response_page(resp: compute.ParameterResponse, *, model: str = "") -> Figure:
    """The Parameter-response tab: maps at the extreme and fiducial values (first seed), P(k) at each
    value (generated dashed, 1P reference solid) and the ratio P/P_fid with ±σ bands over seeds."""
    name, j = SYMBOL[resp.param], 0 if resp.param == "omega_m" else 1
    other, fixed = SYMBOL[("sigma_8", "omega_m")[j]], resp.fiducial[1 - j]
    title = (f"Response to {name}: {name} from {resp.values[0]:g} to {resp.values[-1]:g}, "
             f"{other} = {fixed:g} fixed ({resp.maps.shape[1]} seeds per value)")
    fig, body = _page(title, model, _response_text(name, other, fixed, resp.power_ref is not None))
    left, (top, bottom) = _columns(fig, body)
    picks = sorted({0, int(np.argmin(np.abs(resp.values - resp.fiducial[j]))), len(resp.values) - 1})
    rows = [([resp.maps[i, 0] for i in picks], [f"generated, {name} = {resp.values[i]:g}" for i in picks])]
    if resp.maps_ref is not None:
        rows.append(([resp.maps_ref[i, 0] for i in picks], [f"1P, {name} = {resp.values[i]:g}" for i in picks]))
    _map_grid(fig, left, rows, map_clim(np.stack(rows[-1][0])),
              "Generated maps share one seed, 1P simulations one set of initial conditions: "
              f"one cosmic web, reshaped by {name}.")

    colors = [colormaps["viridis"](f) for f in np.linspace(0, 0.85, len(resp.values))]
    ax_p, ax_r = fig.add_subplot(top, label="power"), fig.add_subplot(bottom, label="ratio")
    ax_r.axhline(1.0, color="0.5", lw=1)
    for i, color in enumerate(colors):
        if resp.power_ref is not None:
            ax_p.plot(resp.k, resp.power_ref[i].mean(0), color=color, lw=1.8)
            _band(ax_r, resp.k, resp.response_ref.mean[i], resp.response_ref.std[i], color, None, log=False)
        ax_p.plot(resp.k, resp.power[i].mean(0), color=color, lw=1.8, ls="--")
        _band(ax_r, resp.k, resp.response.mean[i], resp.response.std[i], color, None, log=False, dashed=True)
    handles = [Line2D([], [], color=c, lw=2, label=f"{name} = {v:g}") for v, c in zip(resp.values, colors)]
    handles.append(Line2D([], [], color="k", ls="--", label="generated"))
    if resp.power_ref is not None:
        handles.append(Line2D([], [], color="k", label="1P simulations"))
    _style(ax_p, f"P(k) at each {name} (mean over seeds)", K_LABEL, P_LABEL, log=True, handles=handles)
    _style(ax_r, "Ratio to the fiducial P(k), mean ± σ over seeds", K_LABEL, "P / P fiducial", log="x", legend=False)
    ax_r.ticklabel_format(axis="y", useOffset=False)
    return fig


def infer_page(inference: compute.Inference, *, model: str = "") -> Figure:
    """The Infer tab: the field, −2ΔlnL̂ with its 1/2/3σ contours (and the P(k) baseline's), the
    truth when known, both marginals, the estimates, the calibration temperature and the notes."""
    post, base = inference.posterior, inference.baseline
    title = f"What the diffusion model reads from “{inference.name}”: " + ", ".join(
        f"{SYMBOL[n]} = {post.estimates[n]['max']:.3f}" for n in SYMBOL)
    fig, body = _page(title, model, _infer_text(post, base is not None))
    left, rest = _body(fig, body).subgridspec(1, 2, width_ratios=(1, 2.4), wspace=0.12)
    rows = _estimate_rows(post, base, inference.cnn)
    main, _, lower = rest.subgridspec(3, 1, hspace=0, height_ratios=(
        body[1] - body[0] - _table_height(len(rows)) - 0.45, 0.45, _table_height(len(rows))))
    field = inference.field_log10
    _map_grid(fig, left, [([field], [f"“{inference.name}” ({field.shape[0]}² pixels)"])], map_clim(field),
              _infer_facts(post, getattr(inference, "network", "full")))
    middle, right = main.subgridspec(1, 2, width_ratios=(1.15, 1), wspace=0.45)
    _contour_panel(fig, middle, post, base, truth=post.truth, cnn=inference.cnn)
    for spec, name in zip(right.subgridspec(2, 1, hspace=0.85), SYMBOL):
        _marginal_panel(fig.add_subplot(spec, label=f"marginal {name}"), post, base, name, cnn=inference.cnn)
    _table(fig.add_subplot(lower, label="estimates"), ["", "Ωₘ: max [68 %]", "σ₈: max [68 %]"], rows)
    return fig


def game_page(puzzle: Puzzle, outcome: Outcome, inference: compute.Inference | None,
              scoreboard: Scoreboard | None = None, *, model: str = "", ranges=PRIOR) -> Figure:
    """A revealed round of Guess the universe: the map, the guess against the truth, the models'
    contours with the truth ★ and the guess ◆ (when ``inference`` is given), the running score and
    the "why" (``game_rules.explain``). ``ranges``: the prior box the round was scored in."""
    om, s8 = outcome.truth
    title = f"Guess the universe, round {outcome.number}: Ωₘ = {om:.3f}, σ₈ = {s8:.3f} ({outcome.score} points)"
    fig, body = _page(title, model, _game_text(puzzle, outcome))
    left, middle, right = _body(fig, body).subgridspec(1, 3, width_ratios=(1, 1.15, 1.05), wspace=0.3)
    _map_grid(fig, left, [([puzzle.field], [f"round {outcome.number}: the map"])], map_clim(puzzle.field))
    _contour_panel(fig, middle, inference.posterior if inference is not None else None,
                   inference.baseline if inference is not None else None, truth=outcome.truth,
                   guess=outcome.guess, box=ranges)
    guess, models = right.subgridspec(2, 1, hspace=0.35)
    (e_om, e_s8), (w_om, w_s8) = outcome.error, outcome.error_widths
    _table(fig.add_subplot(guess, label="guess"), ["", "Ωₘ", "σ₈"], [
        ["truth ★", f"{om:.3f}", f"{s8:.3f}"], ["your guess ◆", *(f"{v:.3f}" for v in outcome.guess)],
        ["error", f"{e_om:+.3f}", f"{e_s8:+.3f}"], ["in prior widths", f"{w_om:+.2f}", f"{w_s8:+.2f}"]],
        title=f"Distance {outcome.distance:.2f} prior widths: {outcome.score} points")
    if inference is not None:
        _table(fig.add_subplot(models, label="models"), ["", "Ωₘ", "σ₈", "d", "score"],
               _score_rows(outcome, inference, ranges), title="The same map, read by the models",
               footer=_running_score(scoreboard))
    else:
        _text_panel(fig, models, "The models' reading of this map is not available.\n\n"
                    + _running_score(scoreboard))
    return fig


def render(fig: Figure, fmt: str) -> io.BytesIO:
    """The page as a PDF or a PNG (``PNG_DPI`` dots per inch), rewound, e.g. for a download."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    buf = io.BytesIO()
    metadata = {"Title": fig.get_label(), "Creator": "explorer"} if fmt == "pdf" else None
    fig.savefig(buf, format=fmt, dpi=PNG_DPI, metadata=metadata)
    buf.seek(0)
    return buf


# ---- explanations (2–5 sentences, first-year student, correct for a cosmologist) ---------------------
def _maps_are(subject: str = "Each map") -> str:
    """The sentence that says what a map is (``subject``: "Each map", "The map")."""
    return (f"{subject} shows log₁₀ of the projected cold-dark-matter surface density Σ, in (M⊙/h)/(Mpc/h)², "
            "of a 5 h⁻¹Mpc-thick slice through a periodic box 25 h⁻¹Mpc (about 120 million light-years) across: "
            "bright knots are halos, where galaxies live, joined by filaments around dark voids.")


def _emulate_text(has_reference: bool, note: str) -> str:
    rows = ("The top row was generated by the diffusion model at the parameters in the title; the bottom row "
            "shows simulated maps of the same (or the nearest simulated) cosmology, each from its own random "
            "initial conditions, so the pattern of knots and voids differs but its statistics should not. "
            if has_reference else "No reference simulations were given: the plots show the generated maps alone. ")
    chi2 = ("The reduced χ²ᵣ compares each generated map's P(k) with the reference maps: a value near the "
            "leave-one-out floor (the reference maps against each other) means the generated maps are as "
            "typical as simulated ones." if has_reference else "")
    return (f"{_maps_are()} {rows}The power spectrum P(k) measures how strongly log₁₀ Σ fluctuates at each scale "
            "(large k = small scales), the histogram how often each value occurs; the shaded bands are the "
            f"spread (±σ) from map to map. {chi2} {_plain(note)}").strip()


def _response_text(name: str, other: str, fixed: float, has_reference: bool) -> str:
    solid = "; solid: the 1P simulations" if has_reference else ""
    return (f"{_maps_are()} Here only {name} changes ({other} stays at {fixed:g}) and every value starts from "
            f"the same random seed, so the differences are the effect of {name} alone, as in a CAMELS “1P” set "
            "of simulations, which share their initial conditions. Upper plot: the power spectrum P(k), how "
            "strongly log₁₀ Σ fluctuates at each scale (large k = small scales), at each value; lower plot: its "
            "ratio to the fiducial P(k), in which most of the seed's random (cosmic) variance cancels, so a "
            "curve above 1 means that this value makes the map fluctuate more at that scale. Dashed: generated "
            f"by the model{solid}; shaded: ±σ over seeds.")


def _infer_text(post: Posterior, has_baseline: bool) -> str:
    tau = (f"after dividing by a temperature τ = {post.temperature:.3g}, fitted on simulations the model never saw "
           "so that the 68 % contour holds the truth for 68 % of maps" if post.temperature != 1 else
           "uncalibrated (τ = 1), so the contours are likely too small")
    green = " the green ones are the classical P(k) method, for comparison;" if has_baseline else ""
    star = " The red star marks the true values." if post.truth is not None else ""
    return (f"{_maps_are('The map')} The diffusion model scores how well each pair (Ωₘ, σ₈) explains this map: "
            f"the middle panel shows −2ΔlnL̂, how much worse each pair does than the best one (bright = better), "
            f"{tau}. The white contours enclose 68, 95 and 99.7 % of the probability (solid, dashed, dotted);"
            f"{green} the × marks the most probable values.{star} On the right, the probability of each "
            "parameter alone (its marginal), with the central 68 % interval shaded.")


def _game_text(puzzle: Puzzle, outcome: Outcome) -> str:
    return (f"{_maps_are('The map')} This one is {_plain(puzzle.origin)}.\n"
            + "Why? " + " ".join(_plain(game_rules.explain(outcome)).split("\n\n")))


# ---- page layout -------------------------------------------------------------------------------------
def _page(title: str, model: str, explanation: str) -> tuple[Figure, tuple[float, float]]:
    """An A4-landscape page with its header and explanation; returns it and the body's (bottom, top)
    in inches, leaving room for the panels' titles above and their axis labels below."""
    fig = Figure(figsize=PAGE, label=title)
    FigureCanvasAgg(fig)
    width = (RIGHT - LEFT) * PAGE[0]
    y = PAGE[1] - MARGIN
    byline = " · ".join(filter(None, (model.strip(), f"{date.today():%Y-%m-%d}")))
    for text, size, style in ((title, TITLE_PT, dict(weight="bold")), (byline, SMALL_PT, dict(color="0.35"))):
        text = _wrap(text, width, size)
        fig.text(LEFT, y / PAGE[1], text, fontsize=size, va="top", **style)
        y -= _height(text, size) + 0.06
    text = _wrap(explanation, width, TEXT_PT)
    fig.text(LEFT, MARGIN / PAGE[1], text, fontsize=TEXT_PT, va="bottom", label="explanation")
    return fig, (MARGIN + _height(text, TEXT_PT) + 0.65, y - 0.4)


def _body(fig: Figure, body) -> SubplotSpec:
    """The body (bottom, top in inches) as one cell, inset on the left for the first y labels."""
    return fig.add_gridspec(1, 1, left=LEFT + 0.035, right=RIGHT, bottom=body[0] / PAGE[1],
                            top=body[1] / PAGE[1])[0]


def _columns(fig: Figure, body) -> tuple[SubplotSpec, tuple[SubplotSpec, SubplotSpec]]:
    """The body split into a map grid on the left and two plots stacked on the right."""
    left, right = _body(fig, body).subgridspec(1, 2, width_ratios=(1.25, 1), wspace=0.2)
    top, bottom = right.subgridspec(2, 1, hspace=0.55)
    return left, (top, bottom)


def _frac(x: float, y: float, width: float, height: float) -> list[float]:
    """An axes rectangle given in inches from the page's lower left corner, in figure fractions."""
    return [x / PAGE[0], y / PAGE[1], width / PAGE[0], height / PAGE[1]]


def _wrap(text: str, width_in: float, size: float) -> str:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``size`` points (line breaks kept)."""
    chars = max(20, int(width_in * 72 / (0.56 * size)))  # DejaVu Sans averages ~0.5 em per character
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _height(text: str, size: float) -> float:
    """Height of ``text`` in inches (matplotlib's line spacing, 1.2)."""
    return (text.count("\n") + 1) * 1.2 * size / 72


def _plain(text: str) -> str:
    """A text of the app (Markdown) as printed: no ** or ` marks."""
    return text.replace("**", "").replace("`", "")


# ---- panels ------------------------------------------------------------------------------------------
def _titled(maps: np.ndarray, title: str) -> tuple[list[np.ndarray], list[str]]:
    """A row of ``_map_grid``: the maps ``(n, H, W)`` and their titles, ``title`` numbered from 1."""
    return list(maps), [title.format(i + 1) for i in range(len(maps))]


def _map_grid(fig: Figure, spec: SubplotSpec, rows, clim, caption: str = "") -> None:
    """Rows ``[(maps [(H, W)], titles)]`` of square maps from the top left of ``spec``, as large as
    it allows, on one colour scale, with its bar and a ``caption`` under them."""
    box = spec.get_position(fig)
    x0, top, width = box.x0 * PAGE[0], box.y1 * PAGE[1], box.width * PAGE[0]
    n_cols, n_rows = max(len(maps) for maps, _ in rows), len(rows)
    caption = _wrap(caption, width, SMALL_PT) if caption else ""
    gap, between, under, bar = 0.14, 0.42, 0.5, 0.12   # inches: between maps, rows, over the bar, its height
    below = under + bar + 0.45 + (_height(caption, SMALL_PT) + 0.1 if caption else 0)  # bar, its label, caption
    size = min((width - (n_cols - 1) * gap) / n_cols, (box.height * PAGE[1] - below - (n_rows - 1) * between) / n_rows)
    left, x0 = x0, x0 + (width - n_cols * size - (n_cols - 1) * gap) / 2  # centred when the height limits
    for r, (maps, titles) in enumerate(rows):
        y = top - (r + 1) * size - r * between
        for i, (m, title) in enumerate(zip(maps, titles)):
            ax = fig.add_axes(_frac(x0 + i * (size + gap), y, size, size), label=f"map {r} {i}")
            image = _map(ax, m, clim, title, xlabel=r == n_rows - 1, ylabel=i == 0)
    y -= under + bar
    cax = fig.add_axes(_frac(x0, y, n_cols * size + (n_cols - 1) * gap, bar), label="colour bar")
    colorbar = fig.colorbar(image, cax=cax, orientation="horizontal")
    colorbar.set_label(MAP_LABEL, fontsize=SMALL_PT)
    colorbar.ax.tick_params(labelsize=TICK_PT)
    if caption:
        fig.text(left / PAGE[0], (y - 0.45) / PAGE[1], caption, fontsize=SMALL_PT, va="top")


def _map(ax, field: np.ndarray, clim, title: str, xlabel: bool = True, ylabel: bool = True):
    """One map ``(H, W)`` log10 Σ over the box (0–25 h⁻¹Mpc), row 0 at the bottom as in the app."""
    image = ax.imshow(field, origin="lower", extent=(0, BOX_SIZE, 0, BOX_SIZE), cmap=CMAP, vmin=clim[0],
                      vmax=clim[1], interpolation="antialiased")
    ax.set_title(title, fontsize=SMALL_PT)
    ax.set_xticks([0, 10, 20])
    ax.set_yticks([0, 10, 20])
    ax.tick_params(labelsize=TICK_PT, labelbottom=xlabel, labelleft=ylabel)
    if xlabel:
        ax.set_xlabel("x [h⁻¹Mpc]", fontsize=TICK_PT)
    if ylabel:
        ax.set_ylabel("y [h⁻¹Mpc]", fontsize=TICK_PT)
    return image


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample σ over axis 0 of ``values (n, m)`` (σ = 0 for one row)."""
    std = values.std(0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])
    return values.mean(0), std


def _band(ax, x, mean, std, color, label, log: bool = True, dashed: bool = False) -> None:
    """A mean curve and its ±σ band (σ NaN: no band); on a log axis the band stays above 0."""
    std = np.nan_to_num(std)
    lo = np.maximum(mean - std, mean * 1e-3) if log else mean - std
    ax.fill_between(x, lo, mean + std, color=color, alpha=0.2, lw=0)
    ax.plot(x, mean, color=color, lw=1.8, ls="--" if dashed else "-", label=label)


def _style(ax, title, xlabel, ylabel, log: bool | str = False, legend: bool = True, handles=None) -> None:
    """Title, labels and ticks of a plot; ``log``: True (both axes), "x" or False; a legend of its
    labelled lines (or ``handles``)."""
    if log:
        ax.set_xscale("log")  # k: plain numbers at 1, 2, 5 × 10ⁿ (minor labels overlap on short ranges)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    if log is True:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=TEXT_PT)
    ax.set_xlabel(xlabel, fontsize=SMALL_PT)
    ax.set_ylabel(ylabel, fontsize=SMALL_PT)
    ax.tick_params(which="both", labelsize=TICK_PT)
    if legend:
        ax.legend(handles=handles, fontsize=TICK_PT, ncol=2 if handles and len(handles) > 4 else 1, frameon=False)


def _emulate_caption(result: compute.Emulation, reference: np.ndarray | None) -> str:
    """Which maps are shown, and the mean χ²ᵣ against its floor when there is a reference."""
    c, n = result.comparison, len(result.maps)
    shown = f"{min(n, N_MAPS)} of the {n} generated maps" if n > N_MAPS else f"the {n} generated map{'s' * (n > 1)}"
    if reference is None or not c.has_reference:
        return f"Shown: {shown}; no reference maps, so the plots show the generated maps' own statistics."
    gen, floor = float(np.mean(c.chi2)), float(np.mean(c.chi2_floor))
    return (f"Shown: {shown} and {min(len(reference), N_MAPS)} of the {len(reference)} reference maps; the plots "
            f"use all of them. Mean χ²ᵣ of the generated maps' P(k): {gen:.3g}; cosmic-variance floor "
            f"(reference maps, leave-one-out): {floor:.3g}; ratio {gen / floor:.3g}.")


def _contour_panel(fig: Figure, spec: SubplotSpec, post: Posterior | None, baseline: Posterior | None, *,
                   truth=None, guess=None, box=None, cnn=None) -> None:
    """−2ΔlnL̂ with 1/2/3σ contours (white), the baseline's 1/2σ (green), the maximum ×, the truth ★ and
    the guess ◆, the CNN's mean ± σ (``cnn``: its estimates), and the legend in the bottom ``LEGEND`` inches of ``spec``; over
    ``box = ((lo, hi), (lo, hi))``, else the posterior's grid."""
    height = spec.get_position(fig).height * PAGE[1]
    ax = fig.add_subplot(spec.subgridspec(2, 1, height_ratios=(height - LEGEND, LEGEND), hspace=0)[0], label="contours")
    handles = []
    if post is not None:
        clip = 2.5 * float(post.levels[-1])
        mesh = ax.pcolormesh(post.omega_m, post.sigma_8, np.minimum(post.delta_chi2, clip).T, cmap="viridis_r",
                             shading="auto", vmin=0, vmax=clip)
        bar = fig.colorbar(mesh, cax=ax.inset_axes([1.03, 0, 0.04, 1]))
        bar.set_label("−2ΔlnL̂ (clipped)", fontsize=SMALL_PT)
        bar.ax.tick_params(labelsize=TICK_PT)
        ax.contour(post.omega_m, post.sigma_8, post.delta_chi2.T, levels=list(post.levels), colors="white",
                   linestyles=SIGMA_STYLES, linewidths=1.5)
        ax.plot(*_maximum(post), marker="x", color=GENERATED, ms=10, mew=2.5, ls="none", label="maximum")
        handles += [Line2D([], [], color="white", lw=1.5, label="diffusion 1/2/3σ"),
                    Line2D([], [], marker="x", color=GENERATED, mew=2.5, ls="none", label="most probable")]
    if baseline is not None:
        ax.contour(baseline.omega_m, baseline.sigma_8, baseline.delta_chi2.T, levels=list(baseline.levels[:2]),
                   colors=REFERENCE, linestyles=SIGMA_STYLES[:2], linewidths=1.5)
        handles.append(Line2D([], [], color=REFERENCE, lw=1.5, label="P(k) 1/2σ"))
    if cnn is not None:
        ax.errorbar(cnn["omega_m"]["mean"], cnn["sigma_8"]["mean"], xerr=cnn["omega_m"]["std"],
                    yerr=cnn["sigma_8"]["std"], marker="o", color=CNN, mec="white", ms=7, capsize=3, ls="none")
        handles.append(Line2D([], [], marker="o", color=CNN, mec="white", ls="none", label="CNN ± 1σ"))
    for point, marker, color, size, label in ((truth, "*", TRUTH, 16, "truth"), (guess, "D", GUESS, 9, "guess")):
        if point is not None:
            ax.plot(*point, marker=marker, color=color, ms=size, mec="white", ls="none", label=label)
            handles.append(Line2D([], [], marker=marker, color=color, mec="white", ls="none", label=label))
    box = box or [_span(getattr(post, n), None if truth is None else truth[j]) for j, n in enumerate(SYMBOL)]
    ax.set(xlim=box[0], ylim=box[1])
    if post is None:
        ax.grid(alpha=0.3)
    title = "−2ΔlnL̂ and its contours" if post is not None else "Your guess ◆ and the truth ★"
    _style(ax, title, "Ωₘ", "σ₈", legend=False)
    below = 0.45 / (ax.get_position().height * PAGE[1])  # under the tick labels and the axis label
    legend = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -below), ncol=3, fontsize=TICK_PT,
                       facecolor="0.35", edgecolor="none", framealpha=1, columnspacing=1.0)
    for text in legend.get_texts():
        text.set_color("white")


def _span(grid: np.ndarray, point: float | None) -> tuple[float, float]:
    """The range of ``grid``, widened to show ``point`` (e.g. a truth outside the scanned window)."""
    lo, hi = float(grid[0]), float(grid[-1])
    if point is None or lo <= point <= hi:
        return lo, hi
    pad = 0.05 * (max(hi, point) - min(lo, point))
    return min(lo, point - pad), max(hi, point + pad)


def _maximum(post: Posterior) -> tuple[float, float]:
    """(Ωₘ, σ₈) of the marginals' maxima, the point the app marks and scores."""
    return post.estimates["omega_m"]["max"], post.estimates["sigma_8"]["max"]


def _marginal_panel(ax, post: Posterior, baseline: Posterior | None, name: str, cnn=None) -> None:
    """The marginal density of ``name`` with its 68 % interval shaded, the baseline's, the CNN's
    Gaussian and the truth."""
    est, j = post.estimates[name], 0 if name == "omega_m" else 1
    ax.axvspan(est["lo68"], est["hi68"], color=GENERATED, alpha=0.15, lw=0)
    for p, color, ls, label in ((post, GENERATED, "-", "diffusion"), (baseline, REFERENCE, "--", "P(k)")):
        if p is not None:
            grid = getattr(p, name)
            ax.plot(grid, getattr(p, f"marginal_{name}") / np.gradient(grid), color=color, ls=ls, lw=1.8,
                    label=label)
    if cnn is not None:
        grid = getattr(post, name)
        m, s = cnn[name]["mean"], cnn[name]["std"]
        ax.plot(grid, np.exp(-0.5 * ((grid - m) / s) ** 2) / (np.sqrt(2 * np.pi) * s), color=CNN, ls=":", lw=1.8,
                label="CNN")
    ax.axvline(est["max"], color=GENERATED, ls="--", lw=1)
    if post.truth is not None:
        ax.axvline(post.truth[j], color=TRUTH, lw=1.5, label="truth")
    ax.set_xlim(_span(getattr(post, name), None if post.truth is None else post.truth[j]))
    ax.set_ylim(bottom=0)
    sym = SYMBOL[name]
    _style(ax, f"{sym}: max {est['max']:.3f}, 68 % [{est['lo68']:.3f}, {est['hi68']:.3f}]", sym, f"p({sym})",
           legend=j == 0)


def _estimate_rows(post: Posterior, baseline: Posterior | None, cnn=None) -> list[list[str]]:
    ests = (("diffusion model", post.estimates), ("P(k) baseline", baseline.estimates if baseline else None),
            ("CNN (mean ± σ)", cnn))
    rows = [[label] + [f"{e[n]['max']:.3f} [{e[n]['lo68']:.3f}, {e[n]['hi68']:.3f}]" for n in SYMBOL]
            for label, e in ests if e is not None]
    if post.truth is not None:
        rows.append(["truth"] + [f"{v:.3f}" for v in post.truth])
    return rows


def _infer_facts(post: Posterior, network: str = "full") -> str:
    """The numbers behind the contours: Δχ² at the truth, the network and terms, the temperature τ and
    the notes."""
    lines = []
    at_truth = post.delta_chi2_truth()
    if at_truth is not None and np.isfinite(at_truth):
        lines.append(f"Δχ² at the truth: {at_truth:.2f} (1σ contour: {post.levels[0]:.2f}).")
    elif at_truth is not None:
        lines.append("The truth lies outside the scanned window.")
    lines.append(f"Likelihood: the {network} network, {post.terms or post.method}, {post.n_evaluations} network "
                 f"evaluations in {post.seconds:.0f} s.")
    lines.append(f"Calibration: {_plain(post.temperature_label())}"
                 + (f"; {_plain(post.held_out_label())}." if post.held_out_label() else "."))
    lines += [f"⚠ {_plain(note)}" for note in post.notes]
    return "\n".join(lines)


def _score_rows(outcome: Outcome, inference: compute.Inference, ranges) -> list[list[str]]:
    """You, the diffusion model's and the baseline's best pair: values, distance to the truth, score."""
    rows = [("you", outcome.guess), ("diffusion model", _maximum(inference.posterior))]
    if inference.baseline is not None:
        rows.append(("P(k) baseline", _maximum(inference.baseline)))
    out = []
    for who, point in rows:
        d = game_rules.distance(point, outcome.truth, ranges)
        out.append([who, f"{point[0]:.3f}", f"{point[1]:.3f}", f"{d:.2f}", str(game_rules.score(d))])
    return out


def _running_score(board: Scoreboard | None) -> str:
    if board is None or not board.rounds:
        return ""
    text = f"Running score: {board.total} after {board.rounds} round{'s' * (board.rounds > 1)} (mean {board.mean:.0f})"
    if board.model_scores:
        text += f"; the diffusion model: {board.model_total} on {len(board.model_scores)}"
    return text + "."


def _table_height(n_rows: int) -> float:
    return ROW * (n_rows + 1)


def _table(ax, header: list[str], rows: list[list[str]], title: str = "", footer: str = "") -> None:
    """A small table at the top of ``ax`` (columns as wide as their texts), a title above and a footer below."""
    ax.axis("off")
    height = min(1.0, _table_height(len(rows)) / (ax.get_position().height * PAGE[1]))
    chars = [(max(len(row[c]) for row in [header] + rows) + 3) * (1.2 if c == 0 else 1)  # the first is bold
             for c in range(len(header))]
    table = ax.table(cellText=rows, colLabels=header, cellLoc="center", bbox=(0, 1 - height, 1, height),
                     colWidths=[n / sum(chars) for n in chars])
    table.auto_set_font_size(False)
    table.set_fontsize(SMALL_PT)
    for (r, c), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if r == 0 or c == 0:
            cell.set_text_props(weight="bold")
    if title:
        ax.set_title(title, fontsize=TEXT_PT)
    if footer:
        width = ax.get_position().width * PAGE[0]
        ax.text(0, 1 - height - 0.06, _wrap(footer, width, SMALL_PT), fontsize=SMALL_PT, va="top",
                transform=ax.transAxes)


def _text_panel(fig: Figure, spec: SubplotSpec, text: str) -> None:
    """``text`` wrapped to the width of ``spec``, from its top left corner."""
    ax = fig.add_subplot(spec, label="text")
    ax.axis("off")
    ax.text(0, 1, _wrap(text, ax.get_position().width * PAGE[0], SMALL_PT), fontsize=SMALL_PT, va="top",
            transform=ax.transAxes)
