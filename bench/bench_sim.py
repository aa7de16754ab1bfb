"""Benchmark of the stand-in simulator and the power spectrum; prints JSON.

    python bench/bench_sim.py [--repeats 3] [--threads 2]

Figures: seconds per simulation (15 maps, production settings: 64³ particles, 128³ mesh,
10 steps, 2× displacement upsampling, maps at 64²), and seconds per 1000 power spectra at 64² and
256². Medians of `--repeats` runs.
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from explorer.sim.sets import simulate_one
from explorer.stats import power_spectrum


def median_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    out = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "torch_threads": args.threads, "repeats": args.repeats}
    seeds = iter(range(1000, 2000))
    out["seconds_per_simulation"] = median_time(lambda: simulate_one(0.3, 0.8, next(seeds), 64), args.repeats)
    for n in (64, 256):
        maps = rng.standard_normal((1000, n, n))
        out[f"seconds_per_1000_power_spectra_{n}"] = median_time(lambda: power_spectrum(maps), args.repeats)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
