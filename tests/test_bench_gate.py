"""bench/bench_gate.py on tiny weights: it runs, batches the sessions that wait, and the batched maps
are the one-at-a-time maps (the benchmark's own check, which must hold for its figures to mean anything)."""

import json

import pytest

from conftest import load_bench

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_gate_benchmark_on_tiny_weights(tiny_weights, tmp_path):
    bench = load_bench("bench_gate")
    out = tmp_path / "gate.json"
    assert bench.main(["--weights", str(tiny_weights), "--sessions", "1", "3", "--repeats", "1",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["modes"]) == {"serial", "batched"}
    three = report["modes"]["batched"]["3"]
    assert len(three["seconds"][0]) == 3 and three["max_diff_dex"] == [pytest.approx(0.0, abs=1e-4)]
    # every request was sampled once: how they were grouped depends on timing (tests/test_ui_batching.py
    # holds a batch to test the grouping itself)
    assert sum(requests for requests, _ in report["batches"]) == 1 + 3
    assert report["modes"]["serial"]["1"]["worst_over_solo"][0] == pytest.approx(1.0, abs=0.5)
