"""bench/plot_coverage.py: pooling one bench_coverage report per noise replicate into the figure's
per-replicate coverage, and refusing reports that do not belong together."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def plot_coverage():
    sys.path.insert(0, str(BENCH))  # its prior_plot import
    try:
        spec = importlib.util.spec_from_file_location("plot_coverage", BENCH / "plot_coverage.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def report(replicate, in68_omega, terms="vlb:8/k4:0.5,5.5:0.25", maps=(7, 22, 37, 52)):
    """A bench_coverage.py --json report of one replicate: field i holds Ωₘ's truth iff in68_omega[i]."""
    rows = [{"row": "field", "map": m, "noise_replicate": replicate, "truth": [0.1 + 0.1 * i, 0.6 + 0.1 * i],
             "omega_m": {"z": 0.5 if inside else 2.5, "in68": inside}, "sigma_8": {"z": -0.2, "in68": True}}
            for i, (m, inside) in enumerate(zip(maps, in68_omega))]
    return {"terms": terms, "temperatures": {"2d": 2.6}, "n_fields": len(maps), "fields": rows}


def test_pooled_coverage_is_per_replicate_and_fields_stay_in_order(plot_coverage, tmp_path):
    # Replicates given out of order: replicate 0 holds the truth for 3 of 4 fields, replicate 1 for 1.
    fields, replicates = plot_coverage.pool([report(1, [False, False, True, False]), report(0, [True, True, True, False])])
    assert replicates == [0, 1]
    assert [r["noise_replicate"] for r in fields[7]] == [0, 1]
    assert plot_coverage.coverage68(fields, "omega_m").tolist() == [0.75, 0.25]
    assert plot_coverage.coverage68(fields, "sigma_8").tolist() == [1.0, 1.0]

    paths = []
    for r, flags in ((0, [True] * 4), (1, [False] * 4)):
        paths.append(tmp_path / f"r{r}.json")
        paths[-1].write_text(json.dumps(report(r, flags)))
    plot_coverage.main([*map(str, paths), "--out", str(tmp_path / "fig.png")])
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reports_that_do_not_belong_together_are_refused(plot_coverage):
    with pytest.raises(SystemExit, match="differ in 'terms'"):
        plot_coverage.pool([report(0, [True] * 4), report(1, [True] * 4, terms="vlb:8")])
    with pytest.raises(SystemExit, match="appears in two reports"):
        plot_coverage.pool([report(0, [True] * 4), report(0, [False] * 4)])
    short = report(1, [True] * 4)
    short["fields"] = short["fields"][:3]  # a run that stopped early
    with pytest.raises(SystemExit, match="every noise replicate"):
        plot_coverage.pool([report(0, [True] * 4), short])
