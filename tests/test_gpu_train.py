"""bench/gpu_train.sh: the one-command GPU training, run on the CPU with tiny settings (issue #14 item 4).

Every phase runs (simulate, train both networks from the shipped weights, the full one on two DDP
processes through torchrun, assemble, evaluate side by side, figures) without the app's packages: panel, holoviews, bokeh, dask and astropy are made
unimportable, as on a GPU node that only has PyTorch's image. The run itself starts in the
background before the tests are collected (``conftest.start_gpu_train``, ``conftest.tiny_gpu_train``) and this test checks what it wrote.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tiny_run_writes_weights_evaluation_and_figures_without_the_app_packages(tiny_gpu_train):
    from explorer.model import load_model
    from explorer.model.weights import read_metadata

    out, done = tiny_gpu_train()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for phase in ("simulate", "train", "assemble", "evaluate", "figures"):
        assert f"[{phase}] done" in done.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["environment"]["device"] == "cpu"
    assert set(summary["phases"]) == {"simulate", "train", "assemble", "evaluate", "figures"}
    assert summary["phases"]["simulate"]["simulations"] == 22
    from explorer.data import find_cmd, load_cmd
    from explorer.sim.sets import RECIPES

    cmd = load_cmd(*find_cmd(out / "data"))
    assert cmd.n_sims == 22  # the train recipe's first 22 cosmologies
    np.testing.assert_allclose(cmd.theta, RECIPES["train"].params()[:22], rtol=1e-5)

    # The full network ran on 2 DDP processes (torchrun, gloo on the CPU) in lock-step: one log line
    # per step, from rank 0 only, and rank 0's checkpoint.
    assert "torch.distributed.run" in (out / "runs" / "full" / "command.txt").read_text()
    log = [json.loads(x) for x in (out / "runs" / "full" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1]
    import torch

    assert torch.load(out / "runs" / "full" / "checkpoint.pt", weights_only=True)["step"] == 1

    # Both networks warm-started from the shipped weights and took their one step.
    shipped = load_model(ROOT / "weights")
    for name, init in (("full", ROOT / "weights"), ("small", ROOT / "weights" / "small")):
        record = read_metadata(out / "runs" / name / "last")["training"]
        assert record["steps_this_run"] == 1
        assert Path(record["warm_start_from"]) == init
        assert record["steps"] == read_metadata(init)["training"]["steps"] + 1

    # The assembled folder: the new full network, the small one attached as the sampling default,
    # the shipped sampler and CNN, a Gaussian start and P(k) baseline fitted on the simulated set.
    new = load_model(out / "weights")
    assert new.network.config.block_out_channels == shipped.network.config.block_out_channels
    # It is the run's export, and that run took a step (its raw weights moved; after one step the
    # EMA, whose decay warm-up continues from the shipped 3,191 steps, moves by ~1e-9 only).
    trained = load_model(out / "runs" / "full" / "last").network.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in new.network.state_dict().items())
    raw = torch.load(out / "runs" / "full" / "checkpoint.pt", weights_only=True)["model"]
    moved = [k for k, v in shipped.network.state_dict().items() if not torch.equal(v, raw[f"network.{k}"])]
    assert len(moved) > len(trained) // 2, "the full network took no training step"
    meta = read_metadata(out / "weights")
    shipped_sampler = read_metadata(ROOT / "weights")["sampler"]
    assert meta["sampler"] == shipped_sampler
    assert read_metadata(out / "weights" / "small")["gaussian_start"] == meta["gaussian_start"]
    assert "calibration" not in meta  # the likelihood is not recalibrated, and the card says so
    assert "not calibrated" in (out / "weights" / "GPU_TRAINING.md").read_text()
    assert (out / "weights" / "cnn" / "config.json").exists()
    assert (out / "weights" / "pk_baseline.json").exists()

    # Evaluated side by side with the same seeds; figures are PNG files.
    for name in ("shipped", "new"):
        result = json.loads((out / f"eval_{name}.json").read_text())
        assert result["seeds"] == [0] and result["n_cosmologies"] == 2
        assert np.isfinite(summary["evaluation"][name]["fidelity_loo"]["mean"])
    assert json.loads((out / "eval_shipped.json").read_text())["weights"] == str(ROOT / "weights")
    for png in ("train_loss.png", "fidelity.png"):
        assert (out / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_usage_error_without_an_output_folder():
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_train.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr
