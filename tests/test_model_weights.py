"""Weights folder: save → load round trip; missing, malformed or corrupt files raise WeightsError."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer.data.transform import Normalization
from explorer.model.schedule import seed_betas, seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.denoiser import Denoiser, MeanLevel
from explorer.model.schedule import schedule_from_spec
from explorer.model.weights import (CONFIG_FILE, METADATA_FILE, TENSORS_FILE, WeightsError, load_model, save_model,
                                    upgrade_weights)

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
    assert isinstance(loaded, Denoiser) and loaded.mean_level is None
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", TENSORS_FILE, METADATA_FILE]
    assert loaded.resolution == 16 and loaded.device == torch.device("cpu")
    assert loaded.param_ranges == ((0.1, 0.5), (0.6, 1.0))
    assert loaded.normalization == Normalization(9.42, 15.45, method="minmax")  # the stored dict, as an object
    assert loaded.normalization.to_dict() == METADATA["normalization"] and loaded.normalization.clip_range == (-1, 1)
    assert loaded.metadata["data"] == METADATA["data"] and loaded.metadata["prediction_type"] == "epsilon"
    np.testing.assert_array_equal(loaded.schedule.betas, seed_betas(20))
    assert all(m.padding_mode == "circular" for m in loaded.network.modules()
               if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1)
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    t, theta = torch.tensor([0, 19]), torch.tensor([[0.2, 0.7], [0.4, 0.9]])
    with torch.no_grad():
        assert torch.equal(model(x, t, theta), loaded(x, t, theta))


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


def with_mean_level() -> Denoiser:
    """The tiny network with a fitted map-mean model μ(θ) = 0.1 + 0.3 u − 0.2 v², s = 0.05."""
    den = Denoiser(tiny_unet(), schedule_from_spec(METADATA["schedule"]), Normalization(9.42, 15.45),
                   MeanLevel())
    theta = np.random.default_rng(0).uniform((0.1, 0.6), (0.5, 1.0), size=(200, 2))
    u, v = (theta[:, 0] - 0.1) / 0.4, (theta[:, 1] - 0.6) / 0.4
    den.mean_level.fit(theta, 0.1 + 0.3 * u - 0.2 * v ** 2 + 0.05 * np.random.default_rng(1).standard_normal(200),
                        scatter="constant")  # what the old layout could hold
    return den.eval()


def test_mean_level_travels_in_explorer_json_and_sets_the_output_mean(tmp_path):
    den = with_mean_level()
    folder = save_model(tmp_path / "w", den, {k: v for k, v in METADATA.items() if k != "normalization"})
    loaded = load_model(folder)
    assert json.loads((folder / METADATA_FILE).read_text())["mean_level"]["model"] == "quadratic-gaussian"
    assert "mean_head" not in json.loads((folder / CONFIG_FILE).read_text())  # the network knows no schedule
    for a, b in zip(den.mean_level.parameters(), loaded.mean_level.parameters()):
        assert torch.equal(a, b)  # float32 values written exactly
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    t, theta = torch.tensor([0, 19]), torch.tensor([[0.2, 0.7], [0.4, 0.9]])
    with torch.no_grad():
        out, net = loaded(x, t, theta), loaded.network(x, t, theta)
        assert torch.equal(den(x, t, theta), out)
        torch.testing.assert_close(out - out.mean(dim=(-2, -1), keepdim=True),
                                   net - net.mean(dim=(-2, -1), keepdim=True))  # only the k = 0 mode differs
        ab = torch.tensor(loaded.schedule.alpha_bar, dtype=torch.float32)[t]
        torch.testing.assert_close(out.mean(dim=(-3, -2, -1)), loaded.mean_level.eps_mean(x, ab, theta))


def old_layout(folder):
    """Rewrite a current folder the way weights were stored before the Denoiser: the mean level's
    tensors inside the network (``mean_coef``, ``mean_log_s``) and its schedule in config.json."""
    from safetensors.torch import load_file, save_file

    meta = json.loads((folder / METADATA_FILE).read_text())
    level = meta.pop("mean_level")
    config = json.loads((folder / CONFIG_FILE).read_text())
    config.update(mean_head=True, mean_schedule=meta["schedule"])
    tensors = load_file(folder / TENSORS_FILE)
    tensors.update(mean_coef=torch.tensor(level["coef"], dtype=torch.float32),
                   mean_log_s=torch.tensor(np.atleast_1d(level["log_s"])[0], dtype=torch.float32))  # one scatter, a scalar
    save_file(tensors, folder / TENSORS_FILE, metadata={"format": "pt"})
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    return tensors


def test_old_layout_is_refused_then_upgraded_once_without_changing_a_number(tmp_path):
    from explorer.cli import main

    den = with_mean_level()
    folder = save_model(tmp_path / "w", den, {k: v for k, v in METADATA.items() if k != "normalization"})
    old_tensors = old_layout(folder)
    with pytest.raises(WeightsError, match="explorer upgrade-weights"):
        load_model(folder)
    assert main(["upgrade-weights", str(folder)]) == 0
    loaded = load_model(folder)
    assert torch.equal(loaded.mean_level.coef, old_tensors["mean_coef"])
    assert torch.equal(loaded.mean_level.log_s[0], old_tensors["mean_log_s"])
    assert loaded.mean_level.log_s[1:].tolist() == [0.0, 0.0]  # the same s for every θ
    for name, tensor in loaded.network.state_dict().items():
        assert torch.equal(tensor, old_tensors[name]), name
    assert upgrade_weights(folder) is False  # already current: nothing to do

    old_layout(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["mean_schedule"] = seed_schedule_spec(30)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="schedule"):
        upgrade_weights(folder)
