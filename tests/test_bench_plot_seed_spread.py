"""bench/plot_seed_spread.py: reads bench_emulator reports by network, and its band is the spread of the
networks labelled "training seed" (mean and sample std of their per-seed means)."""

import json

import numpy as np
import pytest

from conftest import load_bench


def report(path, networks):
    fidelity = {f"sde-dpmsolver++-karras-gauss:30@{name}": {"summary": {
        key: {"per_seed": dict(zip(("0", "1000", "2000"), values))} for key, values in metrics.items()}}
        for name, metrics in networks.items()}
    path.write_text(json.dumps({"fidelity": fidelity}))
    return path


def test_seed_spread_plot(tmp_path, capsys):
    bench = load_bench("plot_seed_spread")
    a = report(tmp_path / "a.json", {"s0": {"fidelity_newseed": [0.7, 0.8, 0.9], "fidelity_loo": [1.0, 1.1, 1.2]},
                                     "s1": {"fidelity_newseed": [0.9, 1.0, 1.1], "fidelity_loo": [1.2, 1.3, 1.4]}})
    b = report(tmp_path / "b.json", {"big": {"fidelity_newseed": [2.0, 2.0, 2.0], "fidelity_loo": [3.0, 3.0, 3.0]}})
    out = tmp_path / "spread.png"
    assert bench.main(["--out", str(out), f"training seed 0={a}:s0", f"training seed 1={a}:s1", f"other={b}:big"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert out.stat().st_size > 10_000
    assert summary["fidelity_newseed"]["training_seeds_mean"] == pytest.approx(0.9)  # "other" not in the band
    assert summary["fidelity_newseed"]["training_seeds_std"] == pytest.approx(np.std([0.8, 1.0], ddof=1), abs=1e-4)
    assert summary["networks"]["other"]["fidelity_loo"] == [3.0, 3.0, 3.0]
    with pytest.raises(SystemExit, match="no single configuration"):
        bench.main(["--out", str(out), f"x={a}:missing"])
