"""Figures of the served app in a real browser; prints JSON.

    python bench/bench_app.py --weights weights                 # the shipped model, bundled assets
    python bench/bench_app.py --weights /tmp/tiny --reference /tmp/ref --examples /tmp/ex --repeats 3

Starts ``panel serve explorer`` (localhost, a free port) with the given weights and data, drives
Debian's Chromium with playwright and measures:

- ``start_to_first_render_s``: process start -> the first page shows sampled maps and every
  statistics figure (the model loads in the first session);
- ``first_visitor_s`` (with ``--visit-after S``): the first page, opened S seconds after the
  server started with no request before it: opening -> maps and statistics;
- ``page_to_first_render_s``: the same from opening the page on a warm server (a second session;
  its first maps are those the first session sampled, reused: the app's sample cache);
- ``slider_to_screen_s``: slider release -> new maps *and* statistics drawn (the figures' data in
  the browser changed and settled), median and all ``--repeats`` values. The slider releases
  run in the "fresh seed" mode, so every release samples new maps (the app reuses maps it has
  sampled with the same seed; ``releases_reused`` counts any release that did, and should be 0);
- ``slider_to_maps_s``: slider release -> the maps' image data in the browser last changed (the
  final maps drawn; statistics may still follow);
- ``preview_while_dragging``: a 4-second drag of the σ₈ slider: previews drawn per second, the
  first one's delay and the longest gap between two;
- ``pages_together``: ``--together`` pages opened at the same moment (a class arriving): seconds
  until each shows its maps and statistics, and how many showed reused maps;
- ``concurrent_sessions``: ``--concurrent`` sessions release a slider together: each one's
  release -> maps and -> statistics, and the worst maps time over the solo median; also each one's
  ``server_sampled_s``, the server's own request -> maps time from the status line;
- ``infer_drop_to_contours_s``: file dropped on the infer tab -> posterior contours of the first
  complete result drawn (the refined surface; with the tab's fast preset, the small network's);
  ``infer_drop_to_first_look_s``: -> the coarse scan's first look drawn; ``infer_drop_to_full_network_refined_s``:
  -> the full network's result that replaces the fast one (the page's own clocks, from just before the drop).

Also the server's resident memory after each phase (flat across repeated runs and sessions is the
goal, and back near its post-load level once every session has closed), every request that left
the machine (none: the app works offline) and the load average, since the machine may be shared. The figures include the browser's
own rendering; the CPU is shared between server and browser.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import free_port, stop_group, wait_for_http  # noqa: E402  (one copy of the server helpers)

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
N_FIGURES = 9  # maps, references, P(k), z-score, χ², histogram, 3 structure panels

#: An in-page watcher: the page's own clock stamps every change, so the measurement does not load
#: the browser (polling Playwright text selectors every 30 ms kept one of the two cores busy and
#: slowed the server's sampling by ~40 %). Every 25 ms it compares object identities only: the
#: status line's text, each data source's columns (image sources: the maps), and the preview's title.
WATCH_JS = """() => {
    const w = window.__watch = {release: null, statusT: null, mapsT: null, anyT: null, previews: []};
    const columns = (m) => Object.values(m.data).flatMap(  // in-place patches swap columns or images
        (v) => v && v.length && typeof v[0] === 'object' ? [v, ...Array.from(v)] : [v]);
    const changed = (a, b) => a.length !== b.length || a.some((v, i) => v !== b[i]);
    const mapsPrint = () => Array.from(w.images).map((source) => {  // the middle pixel of each map
        let x = source.data.image;
        while (x && typeof x !== 'number' && x.length) x = x[x.length >> 1];
        return x; }).join(',');
    const scan = () => {
        w.status = null; w.sources = []; w.images = new Set(); w.preview = null;
        for (const doc of Bokeh.documents) for (const m of doc.all_models) {
            const name = m.constructor.__name__;
            if (name === 'ColumnDataSource') w.sources.push([m, columns(m)]);
            else if (name === 'GlyphRenderer' && m.glyph.constructor.__name__ === 'Image') w.images.add(m.data_source);
            else if (typeof m.text === 'string' && m.text.includes('map(s) at')) w.status = m;
            else if (m.title && m.renderers && (m.title.text || '').startsWith('preview')) w.preview = m.title;
        }
        w.statusText = w.status ? w.status.text : '';
        w.maps = mapsPrint();
        w.previewText = w.preview ? w.preview.text : '';
        w.nModels = Bokeh.documents.reduce((n, d) => n + d.all_models.size, 0);
    };
    scan();
    document.addEventListener('pointerup', () => { w.release = performance.now(); }, true);
    clearInterval(window.__watchTimer);
    window.__watchTimer = setInterval(() => {
        const now = performance.now();
        if (Bokeh.documents.reduce((n, d) => n + d.all_models.size, 0) !== w.nModels) {  // figures rebuilt
            const maps = w.maps;
            w.anyT = now; scan();
            if (w.maps !== maps) w.mapsT = now;  // new map figures
        }
        if (w.status && w.status.text !== w.statusText) {
            w.statusText = w.status.text;
            if (w.statusText.includes('sampled in')) w.statusT = now;
        }
        for (const pair of w.sources) if (changed(columns(pair[0]), pair[1])) {
            pair[1] = columns(pair[0]); w.anyT = now;
        }
        const maps = mapsPrint();
        if (maps !== w.maps) { w.maps = maps; w.mapsT = now; w.anyT = now; }
        if (w.preview && w.preview.text !== w.previewText) { w.previewText = w.preview.text; w.previews.push(now); }
    }, 25);
    return true }"""
READ_JS = """() => { const w = window.__watch; return {release: w.release, statusT: w.statusT, mapsT: w.mapsT,
    anyT: w.anyT, previews: w.previews, now: performance.now(), statusText: w.statusText} }"""
PICK_JS = """(wanted) => {  // choose the entry of the likelihood-network menu whose label starts with wanted
    const label = (o) => String(Array.isArray(o) ? o[1] : o);
    for (const doc of Bokeh.documents) for (const m of doc.all_models) {
        if (!m.constructor.__name__.endsWith('Select') || !Array.isArray(m.options)
            || !m.options.some((o) => Array.isArray(o) && o[0] === 'full')) continue;  // values full, small
        const o = m.options.find((o) => label(o).startsWith(wanted));
        if (o === undefined) return null;
        m.value = Array.isArray(o) ? o[0] : o;
        return label(o);
    }
    return null }"""
COUNT_JS = """(name) => { let n = 0;
    for (const doc of Bokeh.documents) for (const m of doc.all_models) if (m.constructor.__name__ === name) n++;
    return n }"""
#: Stamps (page clock, ms after the call) when a status line naming ``prefix`` first reads "first
#: look" (the coarse scan drawn), "network evaluations in" (the first complete result: the fast one
#: with the fast preset) and, where that result said "Refining with the full network", the full
#: network's result that replaced it ("refined").
INFER_WATCH_JS = """(prefix) => { const w = window.__infer = {t0: performance.now(), first: null, final: null,
        refining: false, refined: null, done: false};
    clearInterval(window.__inferTimer);
    window.__inferTimer = setInterval(() => { const now = performance.now();
        for (const doc of Bokeh.documents) for (const m of doc.all_models) {
            if (typeof m.text !== 'string' || !m.text.includes(prefix)) continue;
            if (w.first === null && m.text.includes('first look')) w.first = now - w.t0;
            if (w.final === null && m.text.includes('network evaluations in')) w.final = now - w.t0;
            if (w.final !== null && m.text.includes('Refining with the full network')) w.refining = true;
            if (w.refining && w.refined === null && m.text.includes('network evaluations in')
                && m.text.includes('(full network')) w.refined = now - w.t0;
        }
        // done: refined, or a result that 3 s later has not said it is being refined
        w.done = w.refined !== null || (w.final !== null && !w.refining && now - w.t0 - w.final > 3000);
        if (w.done) clearInterval(window.__inferTimer); }, 50);
    return true }"""
STATUS = "text=/map\\(s\\) at Ωₘ/"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def wait_first_render(page, timeout_ms: int) -> None:
    page.wait_for_selector("text=/map\\(s\\) at Ωₘ.*sampled in/", timeout=timeout_ms)
    page.wait_for_function(f"() => ({COUNT_JS})('Figure') >= {N_FIGURES}", timeout=timeout_ms)


def watch(page) -> None:
    """Install the in-page watcher (:data:`WATCH_JS`); stamps start now."""
    page.evaluate(WATCH_JS)


def wait_settled(page, timeout: float, quiet: float = 0.5) -> tuple[float, float | None]:
    """After a slider release seen by :func:`watch`: (seconds from the release until the figures'
    data last changed, once the status line reported the new run and nothing changed for ``quiet``
    seconds; seconds until the maps' image data last changed by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(200)
        w = page.evaluate(READ_JS)
        if w["release"] is None or w["statusT"] is None or w["anyT"] is None:
            continue
        if w["now"] - max(w["anyT"], w["statusT"]) > quiet * 1000:
            maps = None if w["mapsT"] is None else (w["mapsT"] - w["release"]) / 1000
            return (max(w["anyT"], w["statusT"]) - w["release"]) / 1000, maps
    raise TimeoutError("the figures did not update")


def reused(page) -> bool:
    """Whether the page's status line says its maps were reused (the app's cache of sampled maps)."""
    return "reused" in page.locator(STATUS).inner_text()


def sampled_in(page) -> float | None:
    """The server's own seconds from the request to the maps ("sampled in 1.2 s" in the status line:
    waiting for the network included, drawing and the browser not), or None."""
    import re

    found = re.search(r"sampled in ([0-9.]+) s", page.locator(STATUS).inner_text())
    return float(found.group(1)) if found else None


def fresh_seeds(page) -> None:
    """Switch the page to the "fresh seed" mode: every slider change samples with a new seed, so
    no release is served from the app's cache of maps already sampled."""
    page.locator(".bk-btn", has_text="fresh seed").click()
    page.wait_for_timeout(1000)


def drag(page, index: int, dx: float) -> float:
    """Drag slider ``index`` by ``dx`` pixels; returns the monotonic time of the release."""
    box = page.locator(".noUi-handle").nth(index).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=4)
    page.mouse.up()
    return time.monotonic()


def slow_drag(page, index: int, dx: float, seconds: float, steps: int = 40) -> dict:
    """Drag slider ``index`` by ``dx`` pixels over ``seconds`` without releasing, counting the
    previews drawn meanwhile (the preview figure's title changes with each); then release."""
    box = page.locator(".noUi-handle").nth(index).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    watch(page)
    page.mouse.move(x, y)
    page.mouse.down()
    t0 = page.evaluate("() => performance.now()")
    for i in range(1, steps + 1):
        page.mouse.move(x + dx * i / steps, y)
        page.wait_for_timeout(1000 * seconds / steps)
    seen = [(t - t0) / 1000 for t in page.evaluate(READ_JS)["previews"]]
    page.mouse.up()
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    return {"drag_s": seconds, "previews": len(seen), "previews_per_s": round(len(seen) / seconds, 2),
            "first_preview_s": round(seen[0], 2) if seen else None,
            "longest_gap_s": round(max(gaps), 2) if gaps else None}


def concurrent_sliders(ctx, page, url: str, n: int, rounds: int, solo_maps: float | None, ms: int) -> dict:
    """``n`` sessions (``page`` and ``n - 1`` new pages) release a slider within ~0.2 s of each other,
    ``rounds`` times: each session's release -> maps and -> every statistic, and the worst ratio to
    the solo median release -> maps (the target: none waits more than 2x its solo latency)."""
    pages = [page]
    for _ in range(n - 1):
        other = ctx.new_page()
        other.goto(url, timeout=ms)
        wait_first_render(other, ms)
        pages.append(other)
    for p in pages:
        fresh_seeds(p)
    maps, screens, sampled, n_reused = [], [], [], 0
    for r in range(rounds):
        for p in pages:
            p.wait_for_timeout(300)
        for p in pages:
            watch(p)
        for i, p in enumerate(pages):
            p.bring_to_front()
            drag(p, 0, 30 if (r + i) % 2 == 0 else -30)
        for p in pages:
            settled, m = wait_settled(p, ms / 1000)
            screens.append(round(settled, 2))
            maps.append(None if m is None else round(m, 2))
            n_reused += reused(p)
            sampled.append(sampled_in(p))
    for p in pages[1:]:
        p.close()
    drawn = [m for m in maps if m is not None]
    return {"sessions": n, "rounds": rounds, "maps_s": maps, "screen_s": screens, "releases_reused": n_reused,
            "server_sampled_s": sampled,
            "worst_maps_s": max(drawn) if drawn else None,
            "worst_over_solo_maps": round(max(drawn) / solo_maps, 2) if drawn and solo_maps else None}


def pages_together(ctx, url: str, n: int, ms: int) -> dict:
    """A class opening the app at once: ``n`` pages requested within a fraction of a second on the
    warm server; seconds from the first request until each shows its maps and statistics."""
    t0 = time.monotonic()
    pages = []
    for _ in range(n):
        page = ctx.new_page()
        page.goto(url, timeout=ms, wait_until="commit")
        pages.append(page)
    times = []
    for page in pages:  # in the order opened; each wait ends when that page has rendered
        wait_first_render(page, ms)
        times.append(round(time.monotonic() - t0, 2))
    n_reused = sum(reused(page) for page in pages)
    for page in pages:
        page.close()
    return {"pages": n, "to_first_render_s": times, "worst_s": max(times), "pages_reused": n_reused}


def default_field(examples: Path) -> Path | None:
    index = examples / "examples.json"
    if not index.is_file():
        return None
    entries = json.loads(index.read_text())
    return examples / entries[0]["file"] if entries else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(REPO / "weights"))
    p.add_argument("--reference", default=None, help="CMD directory (default: the app's, assets/valid)")
    p.add_argument("--onep", default=None)
    p.add_argument("--examples", default=None)
    p.add_argument("--field", default=None, help="field to drop on the infer tab (default: first example)")
    p.add_argument("--repeats", type=int, default=5, help="slider moves")
    p.add_argument("--sessions", type=int, default=2, help="extra sessions opened and closed")
    p.add_argument("--concurrent", type=int, default=4,
                   help="sessions releasing a slider together (0: skip), --repeats rounds")
    p.add_argument("--visit-after", type=float, default=0.0,
                   help="the first page is opened this many seconds after the server started, with no "
                        "request before it (first_visitor_s: its wait); 0: as soon as the server answers")
    p.add_argument("--together", type=int, default=0,
                   help="pages opened at once on the warm server (a class arriving); 0: skip")
    p.add_argument("--infers", type=int, default=2, help="times the field is dropped on the infer tab")
    p.add_argument("--infer-network", default=None, choices=("full", "small"),
                   help="pick this likelihood network on the Infer tab before the drops (default: the tab's)")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--serve-args", nargs="*", default=[],
                   help="more `panel serve` options, e.g. --serve-args=--num-procs=2 (one string per option)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds allowed for each phase")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright

    env = {**os.environ, "EXPLORER_WEIGHTS": str(Path(args.weights).resolve())}
    for name in ("reference", "onep", "examples"):
        if getattr(args, name):
            env[f"EXPLORER_{name.upper()}"] = str(Path(getattr(args, name)).resolve())
    examples = Path(args.examples) if args.examples else REPO / "assets" / "examples"
    field = Path(args.field) if args.field else default_field(examples)
    port = free_port()
    url = f"http://127.0.0.1:{port}/explorer"
    out: dict = {"weights": args.weights, "url_port": port, "repeats": args.repeats, "serve_args": args.serve_args,
                 "load_average_start": os.getloadavg()}
    ms = int(args.timeout * 1000)

    t_start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "explorer", "--port", str(port),
                             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
                             *args.serve_args],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        if args.visit_after > 0:  # nothing asks the server anything before the first visitor
            time.sleep(max(0.0, args.visit_after - (time.monotonic() - t_start)))
        else:
            wait_for_http(url, proc, args.timeout)
            out["start_to_http_ready_s"] = round(time.monotonic() - t_start, 2)
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=args.chromium, headless=True,
                                                        args=CHROMIUM_ARGS, viewport={"width": 1500, "height": 1700})
            errors: list[str] = []
            requests: list[str] = []
            page = ctx.new_page()
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            ctx.on("request", lambda r: requests.append(r.url))
            t_visit = time.monotonic()
            page.goto(url, timeout=ms)
            wait_first_render(page, ms)
            out["start_to_first_render_s"] = round(time.monotonic() - t_start, 2)
            if args.visit_after > 0:
                out["first_visitor_s"] = round(time.monotonic() - t_visit, 2)
            out["status_first"] = page.locator(STATUS).inner_text()
            out["rss_mb_after_first_render"] = rss_mb(proc.pid)

            sessions, rss, slider_rss = [], [], []
            for _ in range(args.sessions):  # a warm server: what every later visitor waits for
                other = ctx.new_page()
                t = time.monotonic()
                other.goto(url, timeout=ms)
                wait_first_render(other, ms)
                sessions.append(round(time.monotonic() - t, 2))
                other.close()
                page.wait_for_timeout(1000)  # let the server drop the closed session
                rss.append(rss_mb(proc.pid))
            out["page_to_first_render_s"] = {"median": statistics.median(sessions) if sessions else None,
                                             "all": sessions}
            out["rss_mb_after_each_extra_session"] = rss
            if args.together > 0:
                page.wait_for_timeout(1000)
                out["pages_together"] = pages_together(ctx, url, args.together, ms)

            times, map_times, n_reused = [], [], 0
            fresh_seeds(page)
            for i in range(args.repeats):
                page.wait_for_timeout(1000)
                watch(page)
                drag(page, 0, 40 if i % 2 == 0 else -40)
                settled, maps = wait_settled(page, args.timeout)
                times.append(round(settled, 2))
                map_times.append(None if maps is None else round(maps, 2))
                n_reused += reused(page)
                slider_rss.append(rss_mb(proc.pid))
            out["releases_reused"] = n_reused
            out["slider_to_screen_s"] = {"median": statistics.median(times), "all": times}
            drawn = [t for t in map_times if t is not None]
            out["slider_to_maps_s"] = {"median": statistics.median(drawn) if drawn else None, "all": map_times}
            out["rss_mb_after_each_slider"] = slider_rss
            page.wait_for_timeout(1000)
            out["preview_while_dragging"] = slow_drag(page, 1, 60, 4.0)
            wait_settled(page, args.timeout)
            out["status_last"] = page.locator(STATUS).inner_text()
            if args.concurrent > 1:
                out["concurrent_sessions"] = concurrent_sliders(ctx, page, url, args.concurrent, args.repeats,
                                                                out["slider_to_maps_s"]["median"], ms)

            if field is not None and field.is_file() and args.infers > 0:
                page.locator(".bk-tab", has_text="Infer").click()
                page.wait_for_selector("input[type=file]", state="attached", timeout=ms)
                if args.infer_network:
                    out["infer_network"] = page.evaluate(PICK_JS, f"{args.infer_network} network")
                    if out["infer_network"] is None:
                        raise RuntimeError(f"no {args.infer_network!r} entry in the Infer tab's network menu")
                    page.wait_for_timeout(500)
                drops, first_looks, refines, infer_rss = [], [], [], []
                for i in range(args.infers):  # the same field under a new name each time (a new drop)
                    with tempfile.TemporaryDirectory() as tmp:
                        dropped = Path(tmp) / f"drop{i}_{field.name}"
                        dropped.write_bytes(field.read_bytes())
                        page.evaluate(INFER_WATCH_JS, f"drop{i}_")
                        t = time.monotonic()
                        page.locator("input[type=file]").set_input_files(str(dropped))
                        page.wait_for_selector(f"text=/drop{i}_.*(network evaluations in|Could not use|failed)/",
                                               timeout=ms)
                    page.wait_for_function(f"() => ({COUNT_JS})('MultiLine') >= 3", timeout=ms)
                    drops.append(round(time.monotonic() - t, 2))
                    first = page.evaluate("() => window.__infer.first")
                    first_looks.append(None if first is None else round(first / 1000, 2))
                    # with the fast preset the full network refines the result in place: wait for it
                    # (the next drop would cancel it) and stamp it
                    page.wait_for_function("() => window.__infer.done", timeout=ms)
                    refined = page.evaluate("() => window.__infer.refined")
                    refines.append(None if refined is None else round(refined / 1000, 2))
                    infer_rss.append(rss_mb(proc.pid))
                out["infer_drop_to_contours_s"] = {"median": statistics.median(drops), "all": drops}
                done = [f for f in refines if f is not None]
                out["infer_drop_to_full_network_refined_s"] = {"median": statistics.median(done) if done else None,
                                                               "all": refines}
                shown = [f for f in first_looks if f is not None]
                out["infer_drop_to_first_look_s"] = {"median": statistics.median(shown) if shown else None,
                                                     "all": first_looks}
                out["infer_field"] = str(field)
                out["infer_status"] = page.locator("text=/network evaluations in/").first.inner_text()
                out["rss_mb_after_each_infer"] = infer_rss
            else:
                out["infer_drop_to_contours_s"] = None
                out["infer_note"] = "no field: pass --field or --examples with an examples.json"
            for tab in ("Parameter response", "Emulate", "Infer", "Emulate"):  # every tab, twice switched
                page.locator(".bk-tab", has_text=tab).click()
                page.wait_for_timeout(1500)
            out["console_errors"] = errors
            out["remote_requests"] = [u for u in requests if not u.startswith(
                ("http://127.0.0.1", "ws://127.0.0.1", "blob:", "data:"))]  # must be empty: works offline
            ctx.close()
            time.sleep(40)  # Bokeh destroys a closed session after 15 s, checking every 17 s
            out["rss_mb_after_all_sessions_closed"] = rss_mb(proc.pid)
    finally:
        stop_group(proc)
    out["load_average_end"] = os.getloadavg()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
