"""`explorer sample` through the CLI registry, with a tiny model saved to tmp_path."""

import json

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.model.schedule import seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import save_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4)
    meta = {"schedule": seed_schedule_spec(12), "normalization": {"lo": 9.5, "hi": 15.5, "method": "minmax"},
            "sampler": {"method": "ddpm-strided", "steps": 3}}
    return save_model(tmp_path_factory.mktemp("model") / "weights", model, meta)


def run_sample(weights, out, *extra):
    return main(["sample", "--omega-m", "0.3", "--sigma-8", "0.8", "-n", "2", "--seed", "1",
                 "--weights", str(weights), "--out", str(out), "--no-bf16", *extra])


def test_sample_writes_maps_and_sidecar(weights, tmp_path, capsys):
    out = tmp_path / "maps.npy"
    assert run_sample(weights, out) == 0
    maps = np.load(out)
    assert maps.shape == (2, 16, 16) and maps.dtype == np.float32
    assert 9.5 <= maps.min() and maps.max() <= 15.5
    side = json.loads((tmp_path / "maps.json").read_text())
    assert side["omega_m"] == 0.3 and side["sigma_8"] == 0.8 and side["seed"] == 1
    assert (side["method"], side["steps"]) == ("ddpm-strided", 3)
    assert side["weights"] == str(weights.resolve()) and side["seconds"] >= 0
    assert "wrote" in capsys.readouterr().out
    assert run_sample(weights, tmp_path / "again.npy") == 0            # same seed, same maps
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), maps)


def test_sample_ddpm_and_method(weights, tmp_path):
    assert run_sample(weights, tmp_path / "paper.npy", "--ddpm") == 0
    assert json.loads((tmp_path / "paper.json").read_text())["steps"] == 12
    assert run_sample(weights, tmp_path / "ddim.npy", "--method", "ddim", "--steps", "3") == 0
    side = json.loads((tmp_path / "ddim.json").read_text())
    assert (side["method"], side["steps"]) == ("ddim", 3)


def test_sample_errors(weights, tmp_path, capsys):
    assert main(["sample", "--omega-m", "0.9", "--sigma-8", "0.8", "--weights", str(weights),
                 "--out", str(tmp_path / "x.npy")]) == 2
    assert "omega_m=0.9" in capsys.readouterr().err
    assert run_sample(tmp_path / "missing", tmp_path / "x.npy") == 2
    assert "explorer train" in capsys.readouterr().err
    assert run_sample(weights, tmp_path / "x.txt") == 2
    assert not (tmp_path / "x.npy").exists()
    with pytest.raises(SystemExit):
        run_sample(weights, tmp_path / "x.npy", "--ddpm", "--steps", "4")
