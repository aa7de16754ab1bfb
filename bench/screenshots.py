"""Screenshots of the four tabs with the shipped weights and bundled assets: assets/screenshots/*.png.

    python bench/screenshots.py            # needs Debian's chromium at /usr/bin/chromium
    python bench/screenshots.py game       # only some of: emulate response infer game presenter

Starts `panel serve explorer` on localhost, waits for the first sampled maps, then opens the
Parameter response tab and runs the Infer tab on a bundled example field (slow on a 2-core CPU;
``infer_first_look.png`` is its coarse first look, ``infer_fast.png`` the fast preset's result while
the full network refines it, ``infer.png`` the full network's result).
The Guess-the-universe tab is taken at 1280×800 (a laptop screen): round 1 of game seed 17, one
slider moved, revealed, after the models' contours are drawn. ``presenter``: the Emulate tab at
1280×800 in presenter mode, and its one-click handout as PNG (``handout_emulate.png``). PNGs above
300 kB are stored with a 256-colour palette.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_group, wait_for_http  # noqa: E402
from test_browser import open_tab  # noqa: E402

from playwright.sync_api import sync_playwright  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "screenshots"
TABS = ("emulate", "response", "infer", "game", "presenter")
MAX_BYTES = 300_000


def save(page, name: str, full_page: bool = True) -> None:
    """``page`` as OUT/name.png, palette-compressed when the plain PNG is larger than MAX_BYTES."""
    path = OUT / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    compress(path)


def compress(path: Path) -> None:
    if path.stat().st_size > MAX_BYTES:
        from PIL import Image

        Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def open_app(browser, url: str, viewport: dict):
    """A page on the app with its first maps sampled and the intro dismissed."""
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.wait_for_selector("text=/sampled in/", timeout=300_000)
    page.get_by_role("button", name="Got it").click()
    return page


def three_tabs(browser, url: str, tabs) -> None:
    page = open_app(browser, url, {"width": 1500, "height": 1700})
    page.wait_for_timeout(3000)
    if "emulate" in tabs:
        save(page, "emulate")
    if "response" in tabs:
        open_tab(page, "Parameter response")
        page.wait_for_selector("text=/seeds per value/", timeout=600_000)
        page.wait_for_timeout(8000)  # the last figures reach a 2-core browser seconds after the text
        save(page, "response")
    if "infer" in tabs:
        open_tab(page, "Infer")
        page.get_by_role("button", name="Infer from the example").click()
        page.wait_for_selector("text=/first look from the coarse scan/", timeout=300_000)
        page.wait_for_timeout(500)  # the fast preset's fine grid takes only ~2 s more
        save(page, "infer_first_look")  # the coarse scan's surface while the fine grid is computed
        # the fast preset's result (then refined by the full network), or the full network's alone
        page.wait_for_selector("text=/Refining with the full network|network evaluations in .*\\(full network/",
                               timeout=300_000)
        if page.locator("text=/Refining with the full network/").count():
            page.wait_for_timeout(1500)
            save(page, "infer_fast")
            page.wait_for_selector("text=/network evaluations in .*\\(full network/", timeout=300_000)
        page.wait_for_timeout(3000)
        save(page, "infer")
    page.close()


def game(browser, url: str) -> None:
    page = open_app(browser, url, {"width": 1280, "height": 800})
    open_tab(page, "Guess the universe")
    page.wait_for_selector("text=/set the sliders to your guess/", timeout=60_000)
    seed = page.locator("input.bk-input:visible").first  # the game seed
    seed.fill("17")
    seed.press("Enter")
    page.wait_for_selector("text=/Round 1: set the sliders/", timeout=60_000)
    page.wait_for_timeout(1000)
    handle = page.locator(".noUi-handle:visible").nth(1)  # σ₈
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y, steps=4)
    page.mouse.up()
    page.get_by_role("button", name="Reveal").click()
    page.wait_for_selector("text=/read by the diffusion model/", timeout=300_000)
    page.wait_for_timeout(3000)
    save(page, "game")
    page.close()


def presenter(browser, url: str) -> None:
    page = open_app(browser, url, {"width": 1280, "height": 800})
    page.locator("button", has_text="Presenter mode").click()
    page.wait_for_timeout(4000)  # figures redrawn at the larger font scale
    save(page, "presenter", full_page=False)  # what a projector shows
    page.locator("button", has_text="PNG").click()
    with page.expect_download(timeout=120_000) as download:
        page.locator("button", has_text="Handout of this tab").click()
    path = OUT / "handout_emulate.png"
    download.value.save_as(path)
    compress(path)
    page.close()


def main(tabs=TABS):
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    import tempfile

    proc = start_server({}, port, Path(tempfile.gettempdir()) / "explorer-screenshots-server.log")
    try:
        url = f"http://127.0.0.1:{port}/explorer"
        wait_for_http(url, proc, timeout=180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            if set(tabs) & {"emulate", "response", "infer"}:
                three_tabs(browser, url, tabs)
            if "game" in tabs:
                game(browser, url)
            if "presenter" in tabs:
                presenter(browser, url)
            browser.close()
    finally:
        stop_group(proc)


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(TABS)
    unknown = set(wanted) - set(TABS)
    if unknown:
        sys.exit(f"unknown tab(s) {sorted(unknown)}; choose from {TABS}")
    start = time.time()
    main(wanted)
    print(f"screenshots in {OUT} ({time.time() - start:.0f} s)")
