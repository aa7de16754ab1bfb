"""bench/compare_calibrations.py: the headline figures of calibration reports (the largest z from the
per-field rows, the ratio to the P(k) baseline), and refusing reports of other fields."""

import json

import pytest

from conftest import load_bench


@pytest.fixture(scope="module")
def compare():
    return load_bench("compare_calibrations")


def report(maps, rows):
    """A calibrate report with fields ``maps``; rows: (truth, Ωₘ (mean, std), σ₈ (mean, std), Δχ², P(k) means)."""
    fields = [{"map": m, "truth": list(t), "vlb_calibrated": {"omega_m": list(om), "sigma_8": list(s8), "delta_chi2_truth": d},
               "pk": {"omega_m": [pk[0], 0.1], "sigma_8": [pk[1], 0.1]}} for m, (t, om, s8, d, pk) in zip(maps, rows)]
    stats = {"coverage68": 0.5, "coverage95": 1.0, "rel_error": 0.15}  # as explorer calibrate summarises the rows
    return {"weights": "w", "terms": "vlb:8", "n_noise": 1, "temperature": 2.5,
            "marginal_temperatures": {"omega_m": 3.0, "sigma_8": 2.0},
            "evaluation": {"fields": fields, "pk": {"omega_m": {"rel_error": 0.25}, "sigma_8": {"rel_error": 0.1}},
                           "vlb_calibrated": {"omega_m": stats, "sigma_8": stats, "coverage_2d_1sigma": 0.5}}}


ROWS = [((0.2, 0.8), (0.25, 0.01), (0.80, 0.05), 1.0, (0.3, 0.8)),   # Ωₘ z = +5
        ((0.4, 0.6), (0.38, 0.04), (0.66, 0.02), 3.0, (0.4, 0.9))]   # σ₈ z = +3


def test_headline_figures_come_from_the_fields(compare):
    row = compare.headline(report([7, 9], ROWS))
    assert row["tau"] == 2.5 and row["tau_marginal"] == {"omega_m": 3.0, "sigma_8": 2.0} and row["n_fields"] == 2
    om, s8 = row["omega_m"], row["sigma_8"]
    assert om["max_abs_z"] == 5.0 and om["worst_field"] == {"map": 7, "truth": [0.2, 0.8]}
    assert s8["max_abs_z"] == 3.0 and s8["worst_field"]["map"] == 9
    assert om["rel_error"] == pytest.approx((0.05 / 0.2 + 0.02 / 0.4) / 2, abs=1e-4)
    assert om["pk_rel_error"] == pytest.approx(0.25, abs=1e-4)  # (0.5 + 0) / 2
    assert om["ratio_to_pk"] == pytest.approx(0.15 / 0.25, abs=1e-3)
    assert row["coverage68_2d"] == 0.5  # Δχ² 1.0 inside the 68 % region (2.30), 3.0 outside


def test_reports_of_other_fields_are_refused(compare, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report([7, 9], ROWS)))
    b.write_text(json.dumps(report([7, 10], ROWS)))
    assert compare.main([str(a), str(a)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    with pytest.raises(SystemExit, match="different fields"):
        compare.main([str(a), str(b)])
