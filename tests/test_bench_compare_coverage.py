"""bench/compare_coverage.py: paired, field-by-field comparison of bench_coverage.py reports (the shift
of each posterior mean in units of the reference's std, the std ratio, coverage and error from the rows),
and refusing reports of other fields."""

import json

import pytest

from conftest import load_bench


@pytest.fixture(scope="module")
def compare():
    return load_bench("compare_coverage")


def report(rows, **settings):
    """rows: (map, replicate, truth, Ωₘ (mean, std), σ₈ (mean, std)) -> a bench_coverage.py --json report."""
    fields = []
    for m, r, truth, om, s8 in rows:
        row = {"row": "field", "map": m, "noise_replicate": r, "truth": list(truth)}
        for name, (mean, std), t in (("omega_m", om, truth[0]), ("sigma_8", s8, truth[1])):
            row[name] = {"mean": mean, "std": std, "z": (mean - t) / std, "in68": abs(mean - t) <= std}
        fields.append(row)
    return {"network": None, "terms": "vlb:8", "coarse": [4, 4], "fine": [4, 4], "n_evaluations": 264,
            "seconds_per_field": {"median": 10.0}, **settings, "fields": fields}


REFERENCE = report([(1, 0, (0.3, 0.8), (0.30, 0.05), (0.80, 0.02)),
                    (2, 0, (0.2, 0.7), (0.25, 0.02), (0.70, 0.04)),
                    (1, 1, (0.3, 0.8), (0.32, 0.05), (0.81, 0.02))])


def test_paired_shift_and_std_ratio_per_replicate(compare):
    other = report([(1, 0, (0.3, 0.8), (0.31, 0.10), (0.80, 0.02)),   # Ωₘ moved 0.2 reference stds, std 2x
                    (2, 0, (0.2, 0.7), (0.25, 0.02), (0.74, 0.05)),   # σ₈ moved 1 reference std
                    (1, 1, (0.3, 0.8), (0.32, 0.05), (0.81, 0.02))], coarse=[3, 3], n_evaluations=152)
    rows = compare.compare(REFERENCE, other)
    assert [r["noise_replicate"] for r in rows] == [0, 1] and rows[0]["n_fields"] == 2
    om, s8 = rows[0]["omega_m"], rows[0]["sigma_8"]
    assert om["shift_over_std"]["max_abs"] == pytest.approx(0.2) and om["shift_over_std"]["worst_map"] == 1
    assert om["std_ratio"]["max"] == pytest.approx(2.0) and om["std_ratio"]["min"] == pytest.approx(1.0)
    assert s8["shift_over_std"]["max_abs"] == pytest.approx(1.0) and s8["shift_over_std"]["worst_map"] == 2
    # coverage and error from the rows: field 2's σ₈ is 0.04 off with std 0.05 (inside), field 1's Ωₘ 0.01
    assert s8["std_ratio"]["max"] == pytest.approx(1.25)
    assert s8["coverage68"] == 1.0 and om["rel_error"] == pytest.approx((0.01 / 0.3 + 0.05 / 0.2) / 2, abs=1e-4)
    assert rows[0]["coarse"] == [3, 3] and rows[0]["n_evaluations"] == 152
    assert rows[1]["omega_m"]["shift_over_std"]["max_abs"] == 0.0  # replicate 1 is unchanged


def test_the_reference_against_itself_moves_nothing(compare):
    for row in compare.compare(REFERENCE, REFERENCE):
        for name in ("omega_m", "sigma_8"):
            assert row[name]["shift_over_std"]["max_abs"] == 0.0 and row[name]["std_ratio"]["median"] == 1.0


def test_reports_of_other_fields_are_refused(compare, tmp_path):
    other = report([(7, 0, (0.3, 0.8), (0.30, 0.05), (0.80, 0.02))])
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(REFERENCE))
    b.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="not in the reference"):
        compare.main([str(a), str(b)])
    (tmp_path / "c.json").write_text(json.dumps({"vlb_calibrated": {}}))
    with pytest.raises(SystemExit, match="no per-field rows"):
        compare.main([str(a), str(tmp_path / "c.json")])
