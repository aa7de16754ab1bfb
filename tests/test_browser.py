"""The served app in a real Chromium: `panel serve explorer` against the tiny model and data sets.

Debian's Chromium is driven by playwright's sync API, launched by executable path (playwright
cannot download browsers here). One server and one browser serve the whole module; each test
leaves the page in a usable state for the next. Screenshots go to ``test-artifacts/``: look at
them. Skipped when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, wait_for_http

STATUS = "text=/map\\(s\\) at Ωₘ/"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (install Debian's chromium)"),
]


@pytest.fixture(scope="module")
def app_url(app_server):
    """The served app (``conftest.app_server``), once it answers."""
    wait_for_http(app_server, timeout=180.0)
    return app_server


@pytest.fixture(scope="module")
def browser_page(app_url, tmp_path_factory):
    """One Chromium page on the app, recording console errors and every request's host."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1500, "height": 1700})
        page = context.new_page()
        page.errors, page.requests = [], []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.requests.append(r.url))
        page.set_default_timeout(60_000)
        page.goto(app_url)
        page.wait_for_selector("text=/map\\(s\\) at Ωₘ.*sampled in/")
        try:
            yield page
        finally:
            context.close()


MODEL_COUNT_JS = """(name) => {
    let n = 0;
    for (const doc of Bokeh.documents) for (const m of doc.all_models) if (m.constructor.__name__ === name) n++;
    return n }"""


TITLES_JS = """() => {
    const out = [];
    for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.constructor.__name__ === 'Title' && m.text) out.push(m.text);
    return out }"""


def count_models(page, name: str) -> int:
    """Bokeh models of class ``name`` in the page's documents (Figure, MultiLine, ...)."""
    return page.evaluate(MODEL_COUNT_JS, name)


def status(page) -> str:
    return page.locator(STATUS).inner_text()


def wait_for_new_status(page, old: str, timeout: float = 60.0) -> str:
    """Wait until the emulate status line shows a finished run different from ``old``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = status(page) if page.locator(STATUS).count() else ""
        if text != old and "sampled in" in text:
            return text
        page.wait_for_timeout(100)
    raise TimeoutError(f"status stayed {old!r}")


def open_tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).click()


def npy_file(path: Path, array) -> Path:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    path.write_bytes(buf.getvalue())
    return path


def remote_requests(page) -> list[str]:
    """Requests that left the machine (the app must work offline: everything served locally)."""
    return [u for u in page.requests if not u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:"))]


def test_page_loads_without_errors_or_remote_requests(browser_page):
    page = browser_page
    assert "4 map(s) at Ωₘ = 0.300, σ₈ = 0.800, seed 0" in status(page)
    # maps, references, P(k), z-score, χ², histogram and 3 structure panels
    page.wait_for_function(f"() => ({MODEL_COUNT_JS})('Figure') >= 9")
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "browser_emulate.png", full_page=True)
    assert page.errors == []
    assert remote_requests(page) == []  # everything is served locally: works offline
    # the model was loaded at server start by explorer/app_hooks.py (panel serve runs the hook file)
    assert "model loaded and warmed up in" in (ARTIFACTS / "server.log").read_text()


FIGURE_IDS_JS = """() => {
    const ids = [];
    for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.constructor.__name__ === 'Figure') ids.push(m.id);
    return ids.sort() }"""
PREVIEW_TITLE_JS = """() => {
    for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.title && m.renderers && (m.title.text || '').startsWith('preview')) return m.title.text;
    return null }"""


def test_slider_drag_previews_and_release_draws_new_maps_in_the_same_figures(browser_page):
    page = browser_page
    before, figures = status(page), page.evaluate(FIGURE_IDS_JS)
    assert page.evaluate(PREVIEW_TITLE_JS) == "preview: drag a slider"
    box = page.locator(".noUi-handle").nth(0).bounding_box()  # Ωₘ
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 7):  # a slow drag: the preview follows before the release
        page.mouse.move(x + 10 * i, y)
        page.wait_for_timeout(150)
    page.wait_for_function(f"() => ({PREVIEW_TITLE_JS})().startsWith('preview: Ωₘ')")
    assert "Ωₘ 0.300" not in page.evaluate(PREVIEW_TITLE_JS) and status(page) == before  # no full sampling yet
    page.mouse.up()
    after = wait_for_new_status(page, before)
    assert "Ωₘ = 0.300" not in after
    page.wait_for_timeout(500)
    # new data in the same Bokeh figures (a new reference's colour range included): nothing rebuilt
    assert page.evaluate(FIGURE_IDS_JS) == figures
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "browser_emulate_after_slider.png", full_page=True)
    assert page.errors == []


def test_response_tab_draws_generated_and_1p(browser_page):
    page = browser_page
    open_tab(page, "Parameter response")
    page.wait_for_selector("text=/seeds per value/")
    page.wait_for_timeout(1500)
    page.screenshot(path=ARTIFACTS / "browser_response.png", full_page=True)
    assert page.errors == []
    assert remote_requests(page) == []  # the lazily built tab's stylesheets too


def test_dropping_a_field_shows_contours_across_tab_switches(browser_page, tiny_examples):
    """A drop followed at once by a tab switch still reaches the server (tabs are rendered once, so
    the drop box keeps its files); the next drop is the field inferred, not the first one again."""
    page = browser_page
    open_tab(page, "Infer")
    page.locator("input[type=file]").set_input_files(str(tiny_examples / "field_1.npy"))
    open_tab(page, "Emulate")
    open_tab(page, "Infer")
    page.wait_for_selector("text=/field_1\\.npy.*network evaluations in/")
    page.wait_for_function(f"() => ({MODEL_COUNT_JS})('MultiLine') >= 3", timeout=30_000)  # 1, 2, 3σ contours
    # the coarse first look is replaced by the refined surface (the status line can come first)
    page.wait_for_function(f"() => ({TITLES_JS})().some(t => t.startsWith('field_1.npy: −2ΔlnL'))"
                           f" && !({TITLES_JS})().some(t => t.includes('refining'))", timeout=30_000)
    page.screenshot(path=ARTIFACTS / "browser_infer.png", full_page=True)
    page.locator("input[type=file]").set_input_files(str(tiny_examples / "field_0.npy"))
    page.wait_for_selector("text=/field_0\\.npy.*network evaluations in/")
    assert page.locator("text=/field_1\\.npy.*network evaluations in/").count() == 0  # replaced
    assert page.errors == [] and remote_requests(page) == []


def test_broken_file_shows_error_and_app_keeps_sampling(browser_page, tmp_path):
    page = browser_page
    open_tab(page, "Infer")
    bad = npy_file(tmp_path / "broken.npy", np.full((32, 32), np.nan))
    page.locator("input[type=file]").set_input_files(str(bad))
    page.wait_for_selector("text=Could not use")
    assert page.locator("text=/NaN\\/inf pixel/").count() >= 1
    page.screenshot(path=ARTIFACTS / "browser_infer_broken_file.png", full_page=True)

    open_tab(page, "Emulate")
    page.wait_for_selector("text=/seed 0: sampled in/")
    page.locator("button", has_text="new seed").click()
    page.wait_for_selector("text=/seed [1-9][0-9]*: sampled in/")  # a fresh sample with the new seed
    page.screenshot(path=ARTIFACTS / "browser_emulate_after_error.png", full_page=True)
    assert page.errors == []
    assert remote_requests(page) == []  # also none from the infer tab's file dropper


def test_guess_the_universe_round_trip(browser_page):
    page = browser_page
    open_tab(page, "Guess the universe")
    page.wait_for_selector("text=/set the sliders to your guess/")  # round 1 is drawn on first showing
    handle = page.locator(".noUi-handle:visible").nth(0)  # Ωₘ of the game (other tabs' sliders are hidden)
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 45, y, steps=4)
    page.mouse.up()
    page.locator("button", has_text="Reveal").click()
    page.wait_for_selector("text=/Round 1: \\d+ points/")
    table = page.locator("table", has_text="your guess").first.inner_text()
    rows = {line.split("\t")[0].strip(): line.split("\t")[1:] for line in table.splitlines() if "\t" in line}
    assert float(rows["your guess"][0]) < 0.3 and 0.1 <= float(rows["truth"][0]) <= 0.5  # the slider moved
    assert page.locator("text=/Score: \\d+/").count() >= 1
    page.screenshot(path=ARTIFACTS / "browser_game.png", full_page=True)
    assert page.errors == []
    # Back on the first tab for any later test
    open_tab(page, "Emulate")
    page.wait_for_selector(".bk-tab.bk-active >> text=Emulate")


OVERFLOW_JS = """() => {
    const width = document.documentElement.clientWidth, bad = [];
    const clipped = (el, r) => {  // an ancestor that hides overflow cuts el off on the left or right
        for (let a = el.parentNode; a; a = a.parentNode) {
            if (a instanceof ShadowRoot) a = a.host;
            if (a.nodeType !== 1) break;
            if (getComputedStyle(a).overflowX === 'visible') continue;
            const q = a.getBoundingClientRect();
            if (q.right < r.right - 2 || q.left > r.left + 2) return true;
        }
        return false;
    };
    const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
            if (el.shadowRoot) walk(el.shadowRoot);
            if (!el.checkVisibility()) continue;
            const r = el.getBoundingClientRect();
            const name = `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
            // a renderer's overlay div (bk-GlyphRenderer) spans its glyphs' extent, which the plot's canvas
            // clips (checked below): a line running past the frame at 1280 px made one stick out 10 px
            const overlay = el.classList.contains('bk-GlyphRenderer');
            if (!overlay && r.width > 0 && r.height > 0 && r.right > width + 1) bad.push(`${name} right=${Math.round(r.right)}`);
            if (el.tagName === 'CANVAS' && !el.classList.contains('bk-glyph') && clipped(el, r))
                bad.push(`${name} (${Math.round(r.width)} px wide) cut off by its container`);
        }
    };
    walk(document);
    return {width, scroll: document.documentElement.scrollWidth, bad: [...new Set(bad)].slice(0, 12)};
}"""


def overflow(page, tab: str, size) -> dict | None:
    """What sticks out to the right of ``tab`` at the current viewport (None: nothing); screenshots it
    at the laptop size and wherever something sticks out."""
    found, previous, deadline = None, {}, time.monotonic() + 10.0
    while found != previous and time.monotonic() < deadline:  # two equal measurements: layout settled
        previous = found
        page.wait_for_timeout(300)
        found = page.evaluate(OVERFLOW_JS)
    problem = found if found["scroll"] > found["width"] or found["bad"] else None
    if problem or size[0] <= 1280:
        page.screenshot(path=ARTIFACTS / f"browser_layout_{size[0]}_{tab.split()[0].lower()}.png")
    return problem


def test_every_tab_fits_a_projector_and_a_laptop_also_in_presenter_mode(browser_page):
    """Nothing sticks out to the right (no horizontal scrolling, nothing cut off) on any tab at
    1920x1080 and 1280x800, nor on the shown tab in presenter mode; its handout downloads."""
    page = browser_page
    tabs = ("Emulate", "Parameter response", "Infer", "Guess the universe")
    problems = {}
    try:
        for size in ((1920, 1080), (1280, 800)):
            page.set_viewport_size({"width": size[0], "height": size[1]})
            for tab in tabs:
                open_tab(page, tab)
                problems[f"{tab} at {size}"] = overflow(page, tab, size)
        # presenter mode on the last tab (the game, revealed by the round-trip test)
        base = page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
        page.locator("button", has_text="Presenter mode").click()
        page.wait_for_function("() => document.documentElement.style.fontSize !== ''")
        assert page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)") > base
        page.wait_for_timeout(1000)  # the figures are redrawn at the larger font scale
        problems["presenter mode"] = overflow(page, "presenter", (1280, 800))
        problems = {k: v for k, v in problems.items() if v is not None}
        (ARTIFACTS / "browser_layout.json").write_text(json.dumps(problems, ensure_ascii=False, indent=1))
        assert problems == {}
        with page.expect_download() as download:
            page.locator("button", has_text="Handout of this tab").click()
        name = download.value.suggested_filename
        assert name.startswith("guess_the_universe_seed") and name.endswith(".pdf")
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        page.locator("button", has_text="Presenter mode").click()
        page.wait_for_function("() => document.documentElement.style.fontSize === ''")
        assert page.errors == [] and remote_requests(page) == []
        assert "Traceback" not in (ARTIFACTS / "server.log").read_text()  # no callback failed on the server
    finally:
        page.set_viewport_size({"width": 1500, "height": 1700})
        open_tab(page, "Emulate")
