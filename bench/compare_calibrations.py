"""Calibrations side by side: the headline figures of several `explorer calibrate --json` reports.

    python bench/compare_calibrations.py runs/calib_small_vlb8.json runs/calib_mean_s8.json

Prints one JSON row per report, then nothing else: its weights and terms, the temperatures (τ for
the 2D contours, τ_Ωm and τ_σ8 for the marginals), and on the report's held-out evaluation fields
(`explorer calibrate` evaluates on fields it did not fit, ``evaluation``): the calibrated 68 %
coverage of Ωₘ, σ₈ and of the 2D region, the mean absolute relative error of the posterior mean and
the P(k) baseline's on the same fields with their ratio (as the report holds them), and the largest
|z| = |mean − truth|/std with its field (from the report's per-field rows). Reports of the same fields can be compared row
by row; the script refuses reports whose evaluation fields differ.
"""

import argparse
import json
from pathlib import Path

import numpy as np

PARAMS = ("omega_m", "sigma_8")


def headline(report: dict) -> dict:
    """The figures of one calibration report (module docstring)."""
    ev = report["evaluation"]
    fields = ev["fields"]
    row = {"weights": report.get("weights"), "terms": report.get("terms"), "n_noise": report.get("n_noise"),
           "tau": round(report["temperature"], 3),
           "tau_marginal": {p: round(report["marginal_temperatures"][p], 3) for p in PARAMS},
           "n_fields": len(fields)}
    truth = np.array([f["truth"] for f in fields], dtype=np.float64)
    for p, i in zip(PARAMS, (0, 1)):
        mean = np.array([f["vlb_calibrated"][p][0] for f in fields])
        std = np.array([f["vlb_calibrated"][p][1] for f in fields])
        z = (mean - truth[:, i]) / std
        worst = int(np.argmax(np.abs(z)))
        rel, pk_rel = ev["vlb_calibrated"][p]["rel_error"], ev["pk"][p]["rel_error"]
        row[p] = {"coverage68": ev["vlb_calibrated"][p]["coverage68"], "coverage95": ev["vlb_calibrated"][p]["coverage95"],
                  "rel_error": round(rel, 4), "pk_rel_error": round(pk_rel, 4), "ratio_to_pk": round(rel / pk_rel, 3),
                  "max_abs_z": round(float(abs(z[worst])), 2),
                  "worst_field": {"map": fields[worst]["map"], "truth": [round(t, 4) for t in fields[worst]["truth"]]}}
    row["coverage68_2d"] = round(ev["vlb_calibrated"]["coverage_2d_1sigma"], 3)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+", type=Path, help="`explorer calibrate --json` reports")
    args = p.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    maps = {json.dumps([f["map"] for f in r["evaluation"]["fields"]]) for r in reports}
    if len(maps) > 1:
        raise SystemExit("the reports were evaluated on different fields: not comparable row by row")
    for path, report in zip(args.reports, reports):
        print(json.dumps({"report": str(path), **headline(report)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
