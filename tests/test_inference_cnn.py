"""The CNN estimator: its loss is smallest at the true moments, its prediction does not depend on
how the map is turned, its folder round-trips (and refuses what is not one), its calibration makes
±σ cover 68 %, and training on maps whose mean and contrast encode (Ωₘ, σ₈) recovers them."""

import json

import numpy as np
import pytest
import torch

from conftest import fake_density_maps
from explorer.data import write_cmd
from explorer.data.transform import Normalization, dihedral
from explorer.inference.cnn import CnnEstimator, MomentNet, calibration_scale, find_cnn, moment_loss
from explorer.inference.cnn_train import train_cnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_estimator(seed=0):
    torch.manual_seed(seed)
    return CnnEstimator(MomentNet(16, (4, 8), hidden=8).eval(), Normalization(10.0, 14.0))


def test_moment_loss_is_smallest_at_the_mean_and_standard_deviation():
    rng = np.random.default_rng(0)
    u = torch.as_tensor(rng.normal([0.3, 0.6], [0.05, 0.1], size=(4000, 2)))
    mean, sd = u.mean(0), u.std(0)
    best = moment_loss(mean.expand_as(u), sd.expand_as(u), u)
    for dmu, fsig in (([0.05, 0], 1.0), ([0, -0.1], 1.0), ([0, 0], 1.5), ([0, 0], 0.6)):
        worse = moment_loss((mean + torch.tensor(dmu)).expand_as(u), (fsig * sd).expand_as(u), u)
        assert worse > best + 0.05


def test_prediction_ignores_rotations_and_flips_and_uses_the_calibration():
    est = small_estimator()
    field = np.log10(fake_density_maps([(0.3, 0.8)], 16, seed=5)[0])
    mean, std = est.predict(field)
    for k in range(1, 8):  # the 8 transforms are averaged: any of them gives the same answer
        m, s = est.predict(dihedral(field, k))
        np.testing.assert_allclose(m, mean, rtol=1e-5)
        np.testing.assert_allclose(s, std, rtol=1e-5)
    single, _ = est.predict(dihedral(field, 1), augment=False)
    assert not np.allclose(single, mean, rtol=1e-5)  # the network alone is not invariant
    est.sigma_scale = (2.0, 0.5)
    _, scaled = est.predict(field)
    np.testing.assert_allclose(scaled, std * [2.0, 0.5], rtol=1e-6)
    e = est.estimate(field)
    assert e["omega_m"]["hi68"] - e["omega_m"]["lo68"] == pytest.approx(2 * scaled[0], rel=1e-6)
    with pytest.raises(ValueError, match="16, 16"):
        est.predict(np.zeros((32, 32)))


def test_folder_round_trip_and_bad_folders(tmp_path):
    est = small_estimator()
    est.sigma_scale = (1.5, 1.2)
    est.save(tmp_path / "cnn")
    assert find_cnn(tmp_path) == tmp_path / "cnn"
    back = CnnEstimator.load(tmp_path / "cnn")
    field = np.log10(fake_density_maps([(0.2, 0.9)], 16, seed=6)[0])
    np.testing.assert_allclose(back.predict(field), est.predict(field), rtol=1e-6)
    assert back.sigma_scale == (1.5, 1.2)
    cfg = json.loads((tmp_path / "cnn" / "config.json").read_text())
    (tmp_path / "cnn" / "config.json").write_text(json.dumps({**cfg, "format": "something else"}))
    with pytest.raises(ValueError, match="not a CNN estimator"):
        CnnEstimator.load(tmp_path / "cnn")
    (tmp_path / "cnn" / "config.json").write_text(json.dumps({**cfg, "network": {**cfg["network"], "widths": [4, 16]}}))
    with pytest.raises(ValueError, match="cannot be read"):
        CnnEstimator.load(tmp_path / "cnn")
    (tmp_path / "cnn" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="train-cnn"):
        CnnEstimator.load(tmp_path / "cnn")
    assert find_cnn(tmp_path / "nowhere") is None


def test_calibration_scale_restores_68_percent():
    rng = np.random.default_rng(1)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], size=(5000, 2))
    true_sd = np.array([0.02, 0.05])
    mean = theta + rng.normal(size=theta.shape) * true_sd
    reported = np.broadcast_to(true_sd / [2.0, 0.5], theta.shape)  # over- then under-confident
    s = calibration_scale(mean, reported, theta)
    np.testing.assert_allclose(s, [2.0, 0.5], rtol=0.05)
    assert np.mean(np.abs(mean - theta) <= s * reported, axis=0) == pytest.approx([0.683, 0.683], abs=0.002)


@pytest.mark.slow
def test_training_recovers_parameters_encoded_in_the_maps(tmp_path):
    rng = np.random.default_rng(2)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], size=(40, 2))
    write_cmd(tmp_path / "data", fake_density_maps(theta, 16, seed=7), theta, suite="PM", set_name="LH")
    logs = []
    est = train_cnn(tmp_path / "data", tmp_path / "cnn", resolution=16, fractions=(0.8, 0.1, 0.1), steps=200,
                    batch=32, lr=3e-3, widths=(8, 16), val_every=100, seed=0, progress=False, log=logs.append)
    assert len(logs) == 3 and json.loads(logs[-1])["saved"] == str(tmp_path / "cnn")
    m = est.info["metrics"]["calibration"]
    # the fake maps' mean is 11 + 2 Ωₘ and their log contrast 0.35 σ₈: both readable from one map
    assert m["rms_rel_error"][0] < 0.15 and m["rms_rel_error"][1] < 0.08, m
    assert m["coverage68_calibrated"] == pytest.approx([0.683, 0.683], abs=0.05)
    card = (tmp_path / "cnn" / "README.md").read_text()
    assert "moment network" in card.lower() and "200 steps" in card
    loaded = CnnEstimator.load(tmp_path / "cnn")
    assert loaded.sigma_scale == pytest.approx(est.sigma_scale)


def test_recomputed_batch_norm_statistics_are_the_training_maps_averages():
    from explorer.inference.cnn_train import recompute_batch_norm

    torch.manual_seed(3)
    est = CnnEstimator(MomentNet(16, (4, 8), hidden=8, dropout=0.0, norm="batch"), Normalization(10.0, 14.0))
    maps = np.log10(fake_density_maps([(0.3, 0.8), (0.4, 0.9)], 16, seed=8)).astype(np.float32)
    x = est.normalization.encode(torch.from_numpy(maps))[:, None]
    est.network.eval()
    with torch.no_grad():
        stale = est.network(x)[0]  # running statistics at their initial 0 and 1
        est.network.train()
        batch_mode = est.network(x)[0]  # this batch's own statistics (what training sees)
    assert not torch.allclose(stale, batch_mode, atol=1e-3)
    recompute_batch_norm(est, maps, batch=30)
    with torch.no_grad():  # averages over all 30 maps: as if the whole set were one batch
        after = est.network(x)[0]
    assert not est.network.training
    first = [m for m in est.network.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    conv = est.network.features[0]
    with torch.no_grad():
        pre = conv(x)
    torch.testing.assert_close(first.running_mean, pre.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    # later layers see the transformed inputs of each dihedral copy, so only the first is exact; the
    # output is close to the batch-statistics output of the same maps
    torch.testing.assert_close(after, batch_mode, rtol=0.05, atol=0.02)
