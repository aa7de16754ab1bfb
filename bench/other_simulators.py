"""The three estimators and the typicality check on fields from other simulators (issue #16 item 3).

    python bench/other_simulators.py                     # 10 cosmologies per simulator, ~12 min on 2 cores
    python bench/other_simulators.py --kinds 2lpt --n-sims 20

For each simulator of ``bench_gof.OTHER_SIMULATORS`` (2LPT without N-body steps; the PM code with
32³ particles on a 64³ mesh; the PM code with 3 steps), the first ``--n-sims`` cosmologies and
initial-condition seeds of ``assets/valid`` are simulated again, written as a CMD set
(``OUT/other_KIND/data``, 15 maps each) and run through the batch path of ``explorer infer``
(``--select one-per-sim``, resumable: ``OUT/other_KIND/out/results.csv``). Prints JSON per
simulator: bias, RMS relative error and 68 % coverage of each estimator, the typicality z at the
best fit (median, range, how many |z| > 3 and p < 0.01), and how many fields got any note (a prior
edge or atypical) — what a user would have been told.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench_gof import OTHER_SIMULATORS, other_simulator_maps
from predicted_vs_true import ESTIMATORS, arrays, load_rows, metrics


def write_set(kind: str, folder: Path, n_sims: int) -> None:
    from explorer.data import write_cmd
    from explorer.sim.sets import RECIPES

    if any(folder.glob("Maps_*.npy")):
        return  # written before (resume)
    recipe = RECIPES["valid"]
    theta = recipe.params()[:n_sims]
    maps = [10 ** other_simulator_maps(kind, t, recipe.sim_seed(i), 64, n_maps=15) for i, t in enumerate(theta)]
    write_cmd(folder, np.concatenate(maps).astype(np.float32), theta, suite="PM", set_name="LH")


def summary(table: Path) -> dict:
    rows = load_rows(table)
    ok = [r for r in rows if r["status"] == "ok"]
    z = np.array([float(r["vlb_typicality_z"]) for r in ok])
    p = np.array([float(r["vlb_typicality_p"]) for r in ok])
    out = {"n": len(ok), "typicality_z_median": round(float(np.median(z)), 2),
           "typicality_z_range": [round(float(z.min()), 2), round(float(z.max()), 2)],
           "flagged_at_abs_z_3": int((np.abs(z) > 3).sum()), "p_below_0.01": int((p < 0.01).sum()),
           "maximum_on_a_prior_edge": sum("prior's edge" in r["notes"] for r in ok),
           "any_note": sum(bool(r["notes"].strip()) for r in ok)}
    for est in ESTIMATORS:
        for par in ("omega_m", "sigma_8"):
            out[f"{est}_{par}"] = metrics(arrays(rows, est, par))  # bias, RMS rel. error, coverage, ...
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--kinds", nargs="+", default=["2lpt", "pm_32"], choices=OTHER_SIMULATORS)
    p.add_argument("--n-sims", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)

    from explorer.cli import main as explorer

    report = {}
    for kind in args.kinds:
        folder = args.out / f"other_{kind}"
        write_set(kind, folder / "data", args.n_sims)
        rc = explorer(["infer", str(folder / "data"), "--select", "one-per-sim", "--out", str(folder / "out"),
                       "--workers", str(args.workers)])
        if rc:
            return rc
        report[kind] = summary(folder / "out" / "results.csv")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
