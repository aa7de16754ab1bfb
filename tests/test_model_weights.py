"""Weights folder: save → load round trip; missing, malformed or corrupt files raise WeightsError."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer.data.transform import Normalization
from explorer.model.schedule import seed_betas, seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import (METADATA_FILE, TENSORS_FILE, LoadedModel, WeightsError, load_model,
                                    save_model)

METADATA = {
    "schedule": seed_schedule_spec(20),
    "normalization": {"lo": 9.42, "hi": 15.45, "method": "minmax"},
    "data": {"suite": "PM", "maps": "Maps_Mcdm_PM_LH_z=0.00.npy", "simulations": 4},
    "training": {"steps": 0, "cpu_hours": 0.0},
    "metrics": {"fidelity": None},
}


def tiny_unet() -> ParamUNet:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                         norm_num_groups=4).eval()


@pytest.fixture()
def folder(tmp_path):
    return save_model(tmp_path / "weights", tiny_unet(), METADATA)


def test_round_trip_identical_outputs(folder):
    model = tiny_unet()
    loaded = load_model(folder)
    assert isinstance(loaded, LoadedModel)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", TENSORS_FILE, METADATA_FILE]
    assert loaded.resolution == 16 and loaded.device == torch.device("cpu")
    assert loaded.param_ranges == ((0.1, 0.5), (0.6, 1.0))
    assert loaded.normalization == Normalization(9.42, 15.45, method="minmax")  # the stored dict, as an object
    assert loaded.normalization.to_dict() == METADATA["normalization"] and loaded.normalization.clip_range == (-1, 1)
    assert loaded.metadata["data"] == METADATA["data"] and loaded.metadata["prediction_type"] == "epsilon"
    np.testing.assert_array_equal(loaded.schedule.betas, seed_betas(20))
    assert all(m.padding_mode == "circular" for m in loaded.model.modules()
               if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1)
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    t, theta = torch.tensor([0, 19]), torch.tensor([[0.2, 0.7], [0.4, 0.9]])
    with torch.no_grad():
        assert torch.equal(model(x, t, theta), loaded.model(x, t, theta))


def test_truncated_safetensors(folder):
    path = folder / TENSORS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="explorer train"):
        load_model(folder)


def test_missing_metadata_and_folder(folder, tmp_path):
    (folder / METADATA_FILE).unlink()
    with pytest.raises(WeightsError, match=METADATA_FILE):
        load_model(folder)
    with pytest.raises(WeightsError, match="does not exist.*explorer train"):
        load_model(tmp_path / "nowhere")


def test_malformed_or_incomplete_metadata(folder):
    (folder / METADATA_FILE).write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_model(folder)
    (folder / METADATA_FILE).write_text(json.dumps({"schedule": seed_schedule_spec(20)}))
    with pytest.raises(WeightsError, match="normalization"):
        load_model(folder)


def test_weights_error_is_value_error_and_save_checks(tmp_path):
    assert issubclass(WeightsError, ValueError)
    with pytest.raises(ValueError, match="normalization"):
        save_model(tmp_path / "w", tiny_unet(), {"schedule": seed_schedule_spec(20)})
    with pytest.raises(ValueError, match="param_ranges"):
        save_model(tmp_path / "w", tiny_unet(), {**METADATA, "param_ranges": [[0, 1], [0, 1]]})


def test_the_shipped_model_and_the_app_use_the_one_prior_box():
    from explorer.model import read_metadata
    from explorer.params import PARAM_NAMES, PRIOR
    from explorer.ui.emulate import EmulateTab

    assert PARAM_NAMES == ("omega_m", "sigma_8")
    meta = read_metadata()  # the shipped weights
    assert [tuple(r) for r in meta["param_ranges"]] == [tuple(r) for r in PRIOR]
    assert EmulateTab.param.omega_m.bounds == PRIOR[0] and EmulateTab.param.sigma_8.bounds == PRIOR[1]
