"""Slider releases served from the app's shared cache of sampled maps; prints JSON.

    python bench/bench_app_reuse.py --weights weights --pages 3 --rounds 4

Starts ``panel serve explorer`` with the given weights, opens ``--pages`` pages and, round after
round, moves each page's Ωₘ slider by +40 px (even rounds) or -40 px (odd rounds) in turn, in the
default "same seed" mode. The first page to reach a position samples; the later pages, and every
page once the positions repeat, get the same maps from the cache (``explorer.ui.compute.SampleCache``).
For each release: seconds to the maps and to every figure settled (``bench_app``'s in-page
watcher), the figures on the page, and whether the status line says "reused".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import (CHROMIUM_ARGS, COUNT_JS, N_FIGURES, REPO, drag, reused, wait_first_render,  # noqa: E402
                       wait_settled, watch)
from conftest import free_port, wait_for_http  # noqa: E402  (bench_app put tests/ on the path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(REPO / "weights"))
    p.add_argument("--pages", type=int, default=3)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}/explorer"
    env = {**os.environ, "EXPLORER_WEIGHTS": str(Path(args.weights).resolve())}
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "explorer", "--port", str(port), "--address",
                             "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ms = int(args.timeout * 1000)
    rows = []
    try:
        wait_for_http(url, proc, args.timeout)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=args.chromium, headless=True,
                                                        args=CHROMIUM_ARGS, viewport={"width": 1500, "height": 1700})
            pages = []
            for _ in range(args.pages):
                page = ctx.new_page()
                page.goto(url, timeout=ms)
                wait_first_render(page, ms)
                pages.append(page)
            for r in range(args.rounds):
                for k, page in enumerate(pages):
                    page.wait_for_timeout(800)
                    watch(page)
                    drag(page, 0, 40 if r % 2 == 0 else -40)
                    screen, maps = wait_settled(page, args.timeout)
                    rows.append({"round": r, "page": k, "maps_s": None if maps is None else round(maps, 2),
                                 "screen_s": round(screen, 2), "figures": page.evaluate(f"({COUNT_JS})('Figure')"),
                                 "reused": reused(page)})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            ctx.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    def summary(reused: bool) -> dict:
        sel = [r for r in rows if r["reused"] == reused]
        maps = [r["maps_s"] for r in sel if r["maps_s"] is not None]
        return {"releases": len(sel), "maps_s": [min(maps), statistics.median(maps), max(maps)] if maps else None,
                "screen_s": [min(r["screen_s"] for r in sel), statistics.median(r["screen_s"] for r in sel),
                             max(r["screen_s"] for r in sel)] if sel else None}

    print(json.dumps({"weights": args.weights, "pages": args.pages, "rounds": args.rounds,
                      "all_figures_shown": all(r["figures"] >= N_FIGURES for r in rows),
                      "reused": summary(True), "sampled": summary(False), "releases": rows,
                      "load_average_end": os.getloadavg()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
