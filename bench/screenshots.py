"""Screenshots of the three tabs with the shipped weights and bundled assets: assets/screenshots/*.png.

    python bench/screenshots.py            # needs Debian's chromium at /usr/bin/chromium

Starts `panel serve explorer` on localhost, waits for the first sampled maps, then opens the
Parameter response tab and runs the Infer tab on a bundled example field (slow on a 2-core CPU).
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_browser import (CHROMIUM, CHROMIUM_ARGS, free_port, open_tab, start_server,  # noqa: E402
                          stop_server, wait_for_http)

from playwright.sync_api import sync_playwright  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "screenshots"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    import tempfile

    proc = start_server({}, port, Path(tempfile.gettempdir()) / "explorer-screenshots-server.log")
    try:
        url = f"http://127.0.0.1:{port}/explorer"
        wait_for_http(url, proc, timeout=180)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 1700})
            page.goto(url)
            page.wait_for_selector("text=/sampled in/", timeout=300_000)
            page.wait_for_timeout(3000)
            page.screenshot(path=OUT / "emulate.png", full_page=True)
            open_tab(page, "Parameter response")
            page.wait_for_selector("text=/seeds per value/", timeout=600_000)
            page.wait_for_timeout(3000)
            page.screenshot(path=OUT / "response.png", full_page=True)
            open_tab(page, "Infer")
            page.get_by_role("button", name="Infer from the example").click()
            page.wait_for_selector("text=/network evaluations in/", timeout=300_000)
            page.wait_for_timeout(3000)
            page.screenshot(path=OUT / "infer.png", full_page=True)
            browser.close()
    finally:
        stop_server(proc)


if __name__ == "__main__":
    start = time.time()
    main()
    print(f"screenshots in {OUT} ({time.time() - start:.0f} s)")
