"""Batch inference throughput: one process against a local Dask cluster, side by side (issue #16 item 5).

    python bench/bench_batch.py --fields 6 --workers 2

The same ``--fields`` held-out maps (``assets/valid``, one per simulation) through ``explorer infer``'s
batch path, first with ``--workers 0`` (one field after another in this process, torch's default
threads), then on a local Dask cluster of ``--workers`` single-threaded processes (its start-up
included). Prints JSON: wall seconds, fields per minute and the mean seconds per field of each, their
ratio, and whether the two tables agree (largest relative difference of the VLB means).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from explorer.paths import resolve_assets, resolve_weights


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--fields", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)

    from explorer.inference.batch import collect, default_options, run_batch

    weights = resolve_weights(args.weights)
    specs = collect([resolve_assets() / "valid"], "one-per-sim")[:args.fields]
    options = default_options(weights)
    report = {"weights": str(weights), "fields": len(specs)}
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, workers in (("one_process", 0), (f"dask_{args.workers}_workers", args.workers)):
            t0 = time.perf_counter()
            summary = run_batch(specs, Path(tmp) / label, options, workers=workers, progress=False)
            wall = time.perf_counter() - t0
            with (Path(tmp) / label / "results.csv").open(newline="") as f:
                tables[label] = {r["id"]: r for r in csv.DictReader(f)}
            report[label] = {"wall_seconds": round(wall, 1), "fields_per_minute": round(60 * len(specs) / wall, 2),
                             "seconds_per_field_in_task": summary["seconds_per_field"], "failed": summary["failed"]}
            print(json.dumps({label: report[label]}), flush=True)
    a, b = tables.values()
    rel = [abs(float(a[i][c]) - float(b[i][c])) / abs(float(a[i][c]))
           for i in a for c in ("vlb_omega_m_mean", "vlb_sigma_8_mean")]
    names = list(tables)
    report["speedup"] = round(report[names[0]]["wall_seconds"] / report[names[1]]["wall_seconds"], 2)
    report["largest_relative_difference_of_vlb_means"] = float(np.max(rel))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
