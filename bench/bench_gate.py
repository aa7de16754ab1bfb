"""Sessions releasing their sliders together, without the browser: one sampling job after another (the
app before session 21) against the batching gate (``explorer.ui.batching``), side by side in one run.

    python bench/bench_gate.py --sessions 1 2 4 8 --repeats 3

Each "session" asks for ``--maps`` maps at its own (Ωₘ, σ₈) and seed with the default sampler and
gets its statistics (``compute.emulate`` without the cache, what a slider release runs on the
worker). All sessions' requests start together on their own threads; "serial" lets one job run at a
time (the old one-worker pool), "batched" lets them all in and the gate batches what waits.
Prints JSON: per mode and number of sessions, every session's seconds from the release to its
result, the median and worst over repeats, the worst as a multiple of the median solo time, and
whether the batched maps equal the serial ones (largest difference, dex).
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np


def release_together(emulator, thetas, seeds, n_maps, mode, gate, sampler=None):
    """Seconds from the common start to each session's result, and the maps, for one release."""
    from explorer.ui import compute

    sampler = compute.Sampler() if sampler is None else sampler
    one_at_a_time = threading.Lock()
    seconds, maps = [None] * len(thetas), [None] * len(thetas)
    start = time.perf_counter()

    def session(i):
        if mode == "serial":
            with one_at_a_time:
                r = compute.emulate(emulator, omega_m=thetas[i][0], sigma_8=thetas[i][1], n_maps=n_maps,
                                    seed=seeds[i], sampler=sampler, cache=None, batcher=None)
        else:
            r = compute.emulate(emulator, omega_m=thetas[i][0], sigma_8=thetas[i][1], n_maps=n_maps,
                                seed=seeds[i], sampler=sampler, cache=None, batcher=gate)
        seconds[i], maps[i] = time.perf_counter() - start, r.maps

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(thetas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seconds, maps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--maps", type=int, default=4, help="maps per session (the app's default 4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-maps", type=int, default=16, help="the gate's largest batch")
    p.add_argument("--sampler", default="default",
                   help="the sessions' sampler: default, few-call or a label of the app's menu (as --sampler of the app)")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args(argv)

    import torch

    from explorer.model.sampling import Emulator
    from explorer.ui.batching import BatchingSampler

    from explorer.ui import compute

    emulator = Emulator.from_folder(args.weights)
    sampler = compute.SAMPLER_CHOICES[compute.initial_sampler(compute.check_sampler_name(args.sampler),
                                                              compute.sampler_choices(emulator))]
    gate = BatchingSampler(args.max_maps)
    rng = np.random.default_rng(2026)
    # Warm-up on a thread that ends, as the app's start-up does: a thread that has run torch keeps an
    # OpenMP team, and with two teams alive on 2 cores GNU OpenMP shortens its spins and every
    # sampling on another thread took 0.85 s instead of 0.38 s (measured here; explorer/ui/context.py).
    warm = threading.Thread(target=emulator.sample, args=(0.3, 0.8),
                            kwargs=dict(n=args.maps, seed=0, method=sampler.method, steps=sampler.steps))
    warm.start()
    warm.join()
    report = {"device": str(emulator.loaded.device), "torch_threads": torch.get_num_threads(),
              "bf16": emulator.bf16, "maps_per_session": args.maps, "max_maps": args.max_maps,
              "sampler": emulator.resolve(sampler.method, sampler.steps, sampler.network), "modes": {}}
    solo = {}
    for sessions in args.sessions:
        for repeat in range(args.repeats):
            thetas = [tuple(rng.uniform([0.1, 0.6], [0.5, 1.0])) for _ in range(sessions)]
            seeds = [int(s) for s in rng.integers(0, 2**31 - 1, sessions)]
            got = {}
            for mode in ("serial", "batched") if repeat % 2 == 0 else ("batched", "serial"):  # interleaved
                seconds, maps = release_together(emulator, thetas, seeds, args.maps, mode, gate, sampler)
                got[mode] = maps
                entry = report["modes"].setdefault(mode, {}).setdefault(str(sessions), {"seconds": []})
                entry["seconds"].append([round(s, 3) for s in seconds])
            diff = max(float(np.abs(a - b).max()) for a, b in zip(got["serial"], got["batched"]))
            report["modes"]["batched"][str(sessions)].setdefault("max_diff_dex", []).append(diff)
            print(f"{sessions} session(s), repeat {repeat + 1}: serial worst "
                  f"{max(report['modes']['serial'][str(sessions)]['seconds'][-1]):.2f} s, batched worst "
                  f"{max(report['modes']['batched'][str(sessions)]['seconds'][-1]):.2f} s", flush=True)
    for mode, by_sessions in report["modes"].items():
        for sessions, entry in by_sessions.items():
            worst = [max(s) for s in entry["seconds"]]
            entry["median_s"] = float(np.median(np.concatenate(entry["seconds"])))
            entry["worst_s"] = [float(min(worst)), float(max(worst))]
            if sessions == "1":
                solo[mode] = entry["median_s"]
    for mode, by_sessions in report["modes"].items():
        base = solo.get(mode, solo.get("serial"))
        for entry in by_sessions.values():
            if base:
                entry["worst_over_solo"] = [round(w / base, 2) for w in entry["worst_s"]]
    report["batches"] = gate.history[-20:]
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
