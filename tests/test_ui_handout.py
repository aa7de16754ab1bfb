"""The printable pages (``explorer.ui.handout``): each renders to one A4-landscape page (PNG or PDF),
says what it shows in Unicode, puts the contours where the likelihood peaks and the maps on the
reference's colour scale, and keeps every text on the page.

Inputs are cheap stand-ins: log-normal maps (``conftest.fake_density_maps``) compared with
``compute.compare_maps``, a Posterior whose −2 ln L̂ is a Gaussian bowl with a known minimum, and a
round of the game judged by ``game_rules.judge``. Each page is built and rendered once (a module
fixture): rendering is most of the time of this file.
"""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from matplotlib.contour import ContourSet
from matplotlib.text import Text
from PIL import Image

from conftest import fake_density_maps
from explorer.inference.posterior import Posterior
from explorer.params import PRIOR
from explorer.stats import power_spectrum, response_ratio
from explorer.ui import compute, game_rules, handout

CENTRE = (0.32, 0.78)   # minimum of the Gaussian bowl of the diffusion posterior
TRUTH = (0.30, 0.80)


def log_maps(theta, n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """(n, size, size) float32 log10 Σ maps at ``theta``."""
    return np.log10(fake_density_maps([theta], size, seed=seed)[:n])


def bowl(centre, width, truth=TRUTH, **meta) -> Posterior:
    """A Posterior whose −2 ln L̂ is a tilted Gaussian bowl around ``centre`` on a 41² grid of the prior."""
    om, s8 = np.linspace(0.1, 0.5, 41), np.linspace(0.6, 1.0, 41)
    x, y = (om[:, None] - centre[0]) / width[0], (s8[None, :] - centre[1]) / width[1]
    return Posterior.from_grid(om, s8, x**2 + y**2 + 0.6 * x * y, truth=truth, **meta)


@cache
def emulation(with_reference: bool) -> compute.Emulation:
    """4 maps at (0.3, 0.8), compared with ``REFERENCE`` (15 maps of the same cosmology) or alone."""
    maps = log_maps((0.3, 0.8), 4, seed=1)
    return compute.Emulation(0.3, 0.8, 0, maps, 1.0, compute.compare_maps(maps, REFERENCE if with_reference else None))


@cache
def parameter_response() -> compute.ParameterResponse:
    """σ₈ varied over three values around (0.3, 0.8), 3 seeds each, with a 1P-like reference.

    The stand-in maps' fluctuations scale as σ₈ around the same noise, so P(k)/P_fid = (σ₈ / 0.8)².
    """
    values = np.array([0.7, 0.8, 0.9])
    maps = np.stack([log_maps((0.3, v), 3, size=16, seed=3) for v in values])   # same seed: same noise
    ref = np.stack([log_maps((0.3, v), 5, size=16, seed=4) for v in values])
    k = power_spectrum(maps[0], box_size=25.0).k
    power = np.stack([power_spectrum(m, box_size=25.0).power for m in maps])
    power_ref = np.stack([power_spectrum(m, box_size=25.0).power for m in ref])
    return compute.ParameterResponse("sigma_8", values, (0.3, 0.8), k, maps, power, response_ratio(power, power[1]),
                                     ref, power_ref, response_ratio(power_ref, power_ref[1]))


@cache
def inference() -> compute.Inference:
    post = bowl(CENTRE, (0.03, 0.05), terms="vlb:8", n_evaluations=256, seconds=14.0, temperature=3.0,
                notes=("calibration for Ωₘ missing",))
    base = bowl((0.28, 0.83), (0.06, 0.08), method="pk")
    cnn = {n: {"mean": m, "std": s, "max": m, "lo68": m - s, "hi68": m + s, "lo95": m - 2 * s, "hi95": m + 2 * s}
           for n, m, s in (("omega_m", 0.312, 0.021), ("sigma_8", 0.845, 0.033))}
    return compute.Inference("example_1.npy", log_maps(TRUTH, 1)[0], "log10", post, base, cnn, network="small")


@cache
def game_round():
    puzzle = game_rules.Puzzle(2, "simulation", log_maps(TRUTH, 1, seed=5)[0], TRUTH,
                               "map 3 of 15 of simulation 7 of `assets/valid`")
    outcome = game_rules.judge(puzzle, (0.42, 0.7), PRIOR)
    board = game_rules.Scoreboard()
    board.add(game_rules.judge(game_rules.Puzzle(1, "emulated", puzzle.field, (0.2, 0.9), "x"), (0.25, 0.85), PRIOR))
    board.add(outcome)
    board.model_scores.update({1: 90, 2: 75})
    return puzzle, outcome, board


REFERENCE = log_maps((0.3, 0.8), 15, seed=2)
MODEL = "Maps from a 0.3 M-parameter network (2,000 training steps); likelihood from a 1.1 M-parameter network"


def build(name: str):
    """The page ``name`` with its stand-in inputs."""
    if name == "emulate":
        return handout.emulate_page(emulation(True), REFERENCE, model=MODEL,
                                    note="Reference: the 15 maps of simulation 12 of `assets/valid`, Ωₘ = 0.31.")
    if name == "emulate_alone":
        return handout.emulate_page(emulation(False), None, model=MODEL)
    if name == "response":
        return handout.response_page(parameter_response(), model=MODEL)
    if name == "infer":
        return handout.infer_page(inference(), model=MODEL)
    puzzle, outcome, board = game_round()
    if name == "game":
        return handout.game_page(puzzle, outcome, inference(), board, model=MODEL)
    return handout.game_page(puzzle, outcome, None, model=MODEL)  # "game_alone": before the models' reading


#: page -> the format it is rendered in: every page in one (a render is most of a test's time), each
#: page function in both but the response and infer pages (the same backend code as the others)
PAGES = {"emulate": "png", "emulate_alone": "pdf", "response": "pdf", "infer": "png", "game": "pdf",
         "game_alone": "png"}


@pytest.fixture(scope="module")
def pages():
    """name -> (figure, its render). Each figure is first set to the dpi its format lays out at (PDF:
    72 points per inch), so the text extents the tests read afterwards are those of the render."""
    out = {}
    for name, fmt in PAGES.items():
        fig = build(name)
        fig.set_dpi(handout.PNG_DPI if fmt == "png" else 72)
        out[name] = fig, handout.render(fig, fmt).getvalue()
    return out


def texts(fig) -> list[Text]:
    """Every visible non-empty text of a page but the tick labels: header, titles, axis labels,
    legends, captions, table cells."""
    ticks = {id(t) for ax in fig.axes for t in ax.get_xticklabels(which="both") + ax.get_yticklabels(which="both")}
    cells = [cell.get_text() for ax in fig.axes for table in ax.tables for cell in table.get_celld().values()]
    return [t for t in fig.findobj(Text) + cells
            if t.get_visible() and t.get_text().strip() and id(t) not in ticks]


def words(fig) -> str:
    """All the texts of a page in one string, whitespace (line breaks, no-break spaces) as single spaces."""
    return " ".join(" ".join(t.get_text() for t in texts(fig)).split())


def axes(fig, label: str):
    return next(ax for ax in fig.axes if ax.get_label() == label)


@pytest.mark.parametrize("name", PAGES)
def test_render_is_one_a4_landscape_page(pages, name):
    data = pages[name][1]
    if PAGES[name] == "png":
        image = Image.open(io.BytesIO(data))
        size, expected = image.size, [s * handout.PNG_DPI for s in handout.PAGE]
        assert image.format == "PNG"
    else:
        assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) == 1
        size = [float(v) for v in re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", data).groups()]
        expected = [s * 72 for s in handout.PAGE]  # points
    np.testing.assert_allclose(size, expected, atol=1)


def test_unknown_format_names_the_allowed_ones(pages):
    with pytest.raises(ValueError, match="pdf.*png.*'gif'"):
        handout.render(pages["infer"][0], "gif")


def test_pages_do_not_use_pyplot():
    """Pages are drawn on worker threads, concurrently: pyplot's global figure manager must stay out."""
    assert not re.search(r"^\s*(import|from)\s.*pyplot", Path(handout.__file__).read_text(), re.MULTILINE)


@pytest.mark.parametrize("name", PAGES)
def test_page_names_its_parameters_in_unicode(pages, name):
    fig = pages[name][0]
    joined = words(fig)
    assert "Ωₘ" in joined and "σ₈" in joined and MODEL in joined
    assert not any(bad in joined for bad in ("Ω_m", "σ_8", "Omega_m", "sigma_8", "omega_m", "**", "`"))
    assert "25 h⁻¹Mpc" in joined and "log₁₀ Σ" in joined  # the explanation says what a map is
    title = fig.texts[0].get_text()
    expected = {"emulate": "Ωₘ = 0.300, σ₈ = 0.800 (seed 0)", "emulate_alone": "Ωₘ = 0.300, σ₈ = 0.800",
                "response": "σ₈ from 0.7 to 0.9, Ωₘ = 0.3 fixed (3 seeds per value)", "infer": "example_1.npy",
                "game": "round 2: Ωₘ = 0.300, σ₈ = 0.800", "game_alone": "round 2"}[name]
    assert expected in title


@pytest.mark.parametrize("name", PAGES)
def test_nothing_leaves_the_page(pages, name):
    fig = pages[name][0]  # drawn by the PNG render: tick labels laid out
    page = fig.bbox.padded(1)  # display units (pixels at the figure's dpi)
    for text in texts(fig):
        box = text.get_window_extent()
        assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1), \
            f"{text.get_text()[:40]!r} runs off the page: {box}"
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:  # the tick labels drawn (those in view) and the axis labels
        for box in filter(None, (ax.xaxis.get_tightbbox(renderer), ax.yaxis.get_tightbbox(renderer))):
            assert page.contains(box.x0, box.y0) and page.contains(box.x1, box.y1), \
                f"an axis of {ax.get_label()!r} runs off the page: {box}"


def test_table_texts_fit_their_cells(pages):
    for name in ("infer", "game"):
        fig = pages[name][0]
        cells = [cell for ax in fig.axes for table in ax.tables for cell in table.get_celld().values()]
        assert len(cells) >= 12
        for cell in cells:
            outer, inner = cell.get_window_extent(), cell.get_text().get_window_extent()
            assert outer.x0 <= inner.x0 and inner.x1 <= outer.x1, f"{cell.get_text().get_text()!r} is cut"


def test_emulate_maps_use_the_reference_colour_scale(pages):
    fig = pages["emulate"][0]
    images = [ax.images[0] for ax in fig.axes if ax.get_label().startswith("map ")]
    assert len(images) == 8  # 4 generated + 4 of the 15 reference maps
    expected = np.percentile(REFERENCE.astype(np.float64), [1, 99.9])
    for image in images:
        np.testing.assert_allclose(image.get_clim(), expected)
    c = emulation(True).comparison
    joined = words(fig)
    assert (f"Mean χ²ᵣ of the generated maps' P(k): {np.mean(c.chi2):.3g}; cosmic-variance floor (reference maps, "
            f"leave-one-out): {np.mean(c.chi2_floor):.3g}") in joined
    assert "Shown: the 4 generated maps and 4 of the 15 reference maps" in joined
    assert "simulation 12 of assets/valid, Ωₘ = 0.31" in joined  # the note, in Unicode, without Markdown
    assert axes(fig, "power").get_legend_handles_labels()[1] == ["reference", "generated"]


def test_emulate_without_reference_shows_the_generated_maps_alone(pages):
    fig = pages["emulate_alone"][0]
    images = [ax.images[0] for ax in fig.axes if ax.get_label().startswith("map ")]
    maps = emulation(False).maps
    assert len(images) == 4
    np.testing.assert_allclose(images[0].get_clim(), np.percentile(maps.astype(np.float64), [1, 99.9]))
    assert axes(fig, "power").get_legend_handles_labels()[1] == ["generated"]
    assert "Shown: the 4 generated maps; no reference maps" in words(fig)


def test_infer_contours_centre_on_the_likelihood_minimum(pages):
    fig = pages["infer"][0]
    ax = axes(fig, "contours")
    diffusion = [c for c in ax.collections if isinstance(c, ContourSet)][0]
    one_sigma = diffusion.get_paths()[0].vertices  # the Δχ² = 2.30 ellipse
    np.testing.assert_allclose(one_sigma.mean(0), CENTRE, atol=0.005)
    best = next(line for line in ax.lines if line.get_label() == "maximum")
    np.testing.assert_allclose([best.get_xdata()[0], best.get_ydata()[0]], CENTRE, atol=0.005)
    truth = next(line for line in ax.lines if line.get_label() == "truth")
    assert (truth.get_xdata()[0], truth.get_ydata()[0]) == TRUTH
    assert len([c for c in ax.collections if isinstance(c, ContourSet)]) == 2  # and the P(k) baseline's
    joined = words(fig)
    assert "P(k) baseline" in joined and "τ = 3" in joined and "⚠ calibration for Ωₘ missing" in joined
    assert "Likelihood: the small network, vlb:8, 256 network evaluations" in joined  # which network read it
    assert "CNN (mean ± σ)" in joined and "0.312 [0.291, 0.333]" in joined  # its row: mean [mean ∓ σ]
    cnn = next(line for line in ax.lines if line.get_marker() == "o")  # the CNN's point, with its bars
    assert (cnn.get_xdata()[0], cnn.get_ydata()[0]) == (0.312, 0.845)
    assert "CNN" in axes(fig, "marginal omega_m").get_legend_handles_labels()[1]


def test_game_page_shows_the_guess_the_score_and_why(pages):
    fig = pages["game"][0]
    puzzle, outcome, board = game_round()
    joined = words(fig)
    assert f"{outcome.score} points" in joined and "0.420" in joined and "+0.30" in joined  # guess, error widths
    assert f"Running score: {board.total} after 2 rounds" in joined and "simulation 7" in joined
    assert "Why? Ωₘ is lower than you guessed" in joined  # game_rules.explain, in Unicode
    labels = [line.get_label() for line in axes(fig, "contours").lines]
    assert "truth" in labels and "guess" in labels and "maximum" in labels
    assert axes(fig, "contours").get_xlim() == PRIOR[0]
    alone = pages["game_alone"][0]
    assert "not available" in words(alone)
    assert [line.get_label() for line in axes(alone, "contours").lines] == ["truth", "guess"]


def test_response_page_draws_each_value_and_its_ratio(pages):
    fig = pages["response"][0]
    legend = [t.get_text() for t in axes(fig, "power").get_legend().get_texts()]
    assert legend == ["σ₈ = 0.7", "σ₈ = 0.8", "σ₈ = 0.9", "generated", "1P simulations"]
    assert len(axes(fig, "power").lines) == 6  # generated and 1P mean per value
    ratio = axes(fig, "ratio").lines  # the line at 1, then per value: 1P, generated
    for i, value in enumerate((0.7, 0.8, 0.9)):
        for line in ratio[1 + 2 * i: 3 + 2 * i]:
            np.testing.assert_allclose(line.get_ydata(), (value / 0.8) ** 2, rtol=1e-4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_label().startswith("map ")]
    assert titles == ["generated, σ₈ = 0.7", "generated, σ₈ = 0.8", "generated, σ₈ = 0.9",
                      "1P, σ₈ = 0.7", "1P, σ₈ = 0.8", "1P, σ₈ = 0.9"]
