"""Training loop: a few steps on a tiny synthetic CMD set, resume, export, validation. DDP (torchrun,
two CPU processes in lock-step) runs in tests/test_gpu_train.py."""

import json

import numpy as np
import pytest
import torch

from explorer.data import write_cmd
from explorer.model import load_model
from explorer.train import TrainConfig, build_data, diffusion_loss, timestep_weights, train

TINY = dict(resolution=16, channels=(8, 16, 16, 16), norm_groups=4, layers_per_block=1,
            attention_levels=1, batch_size=4, val_fraction=0.25, test_fraction=0.125,
            log_every=2, ckpt_every=2, lr=1e-3, warmup=1, bf16=False)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """8 simulations × 15 maps of 32² lognormal noise whose mean depends on Ωₘ."""
    folder = tmp_path_factory.mktemp("cmd")
    rng = np.random.default_rng(0)
    params = np.c_[rng.uniform(0.1, 0.5, 8), rng.uniform(0.6, 1.0, 8)]
    log10 = 10.5 + params[:, :1, None, None].repeat(15, 1) + 0.2 * rng.standard_normal((8, 15, 32, 32))
    write_cmd(folder, (10 ** log10.reshape(120, 32, 32)).astype(np.float32), params)
    return folder


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_diffusion_loss_weights_the_map_mean_mode():
    rng = torch.Generator().manual_seed(0)
    target = torch.randn(3, 1, 8, 8, generator=rng)
    wiggle = torch.randn(3, 1, 8, 8, generator=rng)
    wiggle -= wiggle.mean(dim=(-2, -1), keepdim=True)  # a mean-free error: the weight cannot matter
    plain = torch.mean(wiggle ** 2)
    assert diffusion_loss(target + wiggle, target, 100.0).item() == pytest.approx(plain.item(), rel=1e-6)
    offsets = torch.tensor([0.1, -0.2, 0.3]).view(3, 1, 1, 1)  # a constant error per map
    expected = plain + (1 + 100.0) * torch.mean(offsets ** 2)
    assert diffusion_loss(target + wiggle + offsets, target, 100.0).item() == pytest.approx(expected.item(), rel=1e-5)
    assert diffusion_loss(target + offsets, target, 0.0).item() == pytest.approx(torch.mean(offsets ** 2).item(), rel=1e-6)


def test_min_snr_weights_follow_hang_et_al():
    """min(SNR, γ)/SNR for ε and min(SNR, γ)/(SNR + 1) for v; per-map weights scale each map's loss."""
    from explorer.model.schedule import schedule_from_spec

    schedule = schedule_from_spec({"name": "linear", "T": 1000})
    t = torch.arange(0, 1000, 37)
    snr = schedule.alpha_bar[t.numpy()] / (1 - schedule.alpha_bar[t.numpy()])
    assert snr.max() > 5 > snr.min()  # both branches of the min are exercised
    eps = timestep_weights(schedule, t, "epsilon", "min-snr", gamma=5.0).numpy()
    v = timestep_weights(schedule, t, "v_prediction", "min-snr", gamma=5.0).numpy()
    np.testing.assert_allclose(eps, np.where(snr > 5, 5 / snr, 1.0), rtol=1e-6)
    np.testing.assert_allclose(v, np.minimum(snr, 5) / (snr + 1), rtol=1e-6)
    assert timestep_weights(schedule, t, "epsilon", "uniform") is None
    with pytest.raises(ValueError, match="loss weighting"):
        timestep_weights(schedule, t, "epsilon", "snr")
    target = torch.zeros(3, 1, 4, 4)
    pred = torch.ones(3, 1, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
    w = torch.tensor([1.0, 0.5, 0.0])
    assert diffusion_loss(pred, target, 0.0, w).item() == pytest.approx((1 * 1 + 0.5 * 4 + 0) / 3)


def test_cosine_learning_rate_decays_to_zero_at_max_steps():
    from explorer.train import _lr_at

    cfg = TrainConfig(lr=1e-3, warmup=10, max_steps=110, lr_decay="cosine")
    assert _lr_at(4, cfg) == pytest.approx(1e-3 * 0.5 * 0.5 * (1 + np.cos(np.pi * 4 / 110)))
    assert _lr_at(55, cfg) == pytest.approx(0.5e-3) and _lr_at(110, cfg) == pytest.approx(0.0, abs=1e-12)
    assert _lr_at(55, TrainConfig(lr=1e-3, warmup=10, max_steps=110)) == 1e-3  # constant: the default
    with pytest.raises(ValueError, match="lr_decay"):
        _lr_at(0, TrainConfig(lr_decay="step"))


def test_extra_data_joins_the_training_split_only(tiny_data, tmp_path):
    rng = np.random.default_rng(1)
    extra = tmp_path / "corners"
    theta = np.array([[0.11, 0.99], [0.49, 0.61]])
    write_cmd(extra, (10 ** (11.0 + 0.1 * rng.standard_normal((30, 32, 32)))).astype(np.float32), theta)
    base = dict(data=str(tiny_data), run_dir=str(tmp_path / "run"), **TINY)
    plain_train, plain_val, split, *_ = build_data(TrainConfig(**base))
    train_set, val_set, split2, *_ = build_data(TrainConfig(**base, extra_data=(str(extra),)))
    assert len(train_set) == len(plain_train) + 30 and split2.train.tolist() == split.train.tolist()
    np.testing.assert_array_equal(train_set.theta[-30:], np.repeat(theta, 15, axis=0))
    np.testing.assert_array_equal(train_set.log10_maps[:len(plain_train)], plain_train.log10_maps)
    np.testing.assert_array_equal(val_set.log10_maps, plain_val.log10_maps)  # validation: --data's alone
    small = tmp_path / "small"
    write_cmd(small, np.full((15, 16, 16), 1e11, np.float32), theta[:1])
    with pytest.raises(ValueError, match="same map size"):
        build_data(TrainConfig(**base, extra_data=(str(small),)))


def test_train_resume_and_export(tiny_data, tmp_path):
    cfg = TrainConfig(data=str(tiny_data), run_dir=str(tmp_path / "run"), max_steps=4, val_every=2,
                      val_cosmologies=1, val_maps=3, val_steps=3, **TINY)
    record = train(cfg, progress=False)
    assert record["step"] == 4 and record["best"] is not None
    run = tmp_path / "run"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log if "loss" in e]
    vals = [e["val"] for e in log if "val" in e]
    assert len(losses) == 2 and all(np.isfinite(losses)) and len(vals) == 2
    assert {"fidelity_loo", "pixel_std_ratio", "mean_offset"} <= set(vals[0])

    # The exported EMA weights load as a model and carry the data provenance and normalisation.
    last = load_model(run / "last")
    meta = last.metadata
    assert meta["training"]["steps"] == 4
    assert meta["data"]["n_sims"] == 8 and len(meta["data"]["val_sims"]) == 2
    assert set(meta["data"]["val_sims"]).isdisjoint(meta["data"]["test_sims"])
    # Normalisation: 0.01/99.99 percentiles of the *training* simulations' block-averaged log10 maps.
    train_sims = sorted(set(range(8)) - set(meta["data"]["val_sims"]) - set(meta["data"]["test_sims"]))
    lin = np.load(next(tiny_data.glob("Maps_*.npy"))).reshape(8, 15, 16, 2, 16, 2).astype(np.float64)
    log10 = np.log10(lin.mean(axis=(3, 5)))[train_sims]
    assert meta["normalization"]["lo"] == pytest.approx(np.percentile(log10, 0.01), rel=1e-6)
    assert meta["normalization"]["hi"] == pytest.approx(np.percentile(log10, 99.99), rel=1e-6)

    # Resume: the step counter continues from the checkpoint, and the EMA is the checkpoint's.
    ema_before = {k: v.clone() for k, v in last.state_dict().items()}  # network.*, mean_level.*
    record = train(TrainConfig(**{**cfg.__dict__, "max_steps": 6, "val_every": 0}), progress=False)
    assert record["step"] == 6
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 6
    assert set(state["ema"]) == set(ema_before)
    changed = [not torch.equal(ema_before[k], state["ema"][k]) for k in ema_before]
    assert any(changed)
    # the mean level's Ωₘ scale goes with its parameters: in the checkpoint's record and the export
    assert json.loads(state["record"])["mean_level_omega"] == "log" and load_model(run / "last").mean_level.omega == "log"
    # a checkpoint from before the log scale (its record has no mean_level_omega) resumes linear, as it trained
    old = json.loads(state["record"])
    del old["mean_level_omega"]
    torch.save({**state, "record": json.dumps(old)}, run / "checkpoint.pt")
    train(TrainConfig(**{**cfg.__dict__, "max_steps": 7, "val_every": 0}), progress=False)
    assert load_model(run / "last").mean_level.omega == "linear"


def test_normalization_from_another_folder_lets_the_network_sit_beside_it(tiny_data, tmp_path):
    """A network trained on other maps (a re-simulated or larger set) with --normalization-from FOLDER
    normalises as FOLDER's does, so it attaches beside it; without it the fitted range differs and
    attaching fails. A folder of another kind of normalisation, or none, is refused by name."""
    from explorer.model.attach import attach_network
    from explorer.model.weights import WeightsError

    base = dict(max_steps=2, val_every=0, **TINY)
    train(TrainConfig(data=str(tiny_data), run_dir=str(tmp_path / "main"), **base), progress=False)
    main = tmp_path / "main" / "last"
    rng = np.random.default_rng(3)  # other maps: 0.3 dex brighter, so a fitted range would differ
    other = tmp_path / "other"
    params = np.c_[rng.uniform(0.1, 0.5, 8), rng.uniform(0.6, 1.0, 8)]
    write_cmd(other, (10 ** (10.8 + 0.2 * rng.standard_normal((120, 32, 32)))).astype(np.float32), params)

    train(TrainConfig(data=str(other), run_dir=str(tmp_path / "fitted"), **base), progress=False)
    with pytest.raises(WeightsError, match="other maps"):
        attach_network(main, tmp_path / "fitted" / "last", "fitted")
    train(TrainConfig(data=str(other), run_dir=str(tmp_path / "given"), normalization_from=str(main), **base),
          progress=False)
    given, reference = load_model(tmp_path / "given" / "last"), load_model(main)
    assert (given.normalization.lo, given.normalization.hi) == (reference.normalization.lo, reference.normalization.hi)
    assert given.metadata["train_config"]["normalization_from"] == str(main)
    attach_network(main, tmp_path / "given" / "last", "given")  # no error: the same maps

    with pytest.raises(ValueError, match="not a weights folder"):
        build_data(TrainConfig(data=str(other), normalization_from=str(tmp_path), **TINY))
    with pytest.raises(ValueError, match="'minmax'"):
        build_data(TrainConfig(data=str(other), normalization_from=str(main), normalization="minmax", **TINY))


def test_a_warm_start_continues_the_ema_warm_up(tiny_data, tmp_path, monkeypatch):
    """The EMA decay (1 + n)/(10 + n) counts every step of the weights, not only this run's."""
    import explorer.train as training

    base = dict(data=str(tiny_data), val_every=0, **TINY)
    train(TrainConfig(run_dir=str(tmp_path / "first"), max_steps=3, **base), progress=False)
    decays = []
    real = training._ema_update
    monkeypatch.setattr(training, "_ema_update", lambda ema, model, decay: (decays.append(decay), real(ema, model, decay)))
    train(TrainConfig(run_dir=str(tmp_path / "warm"), max_steps=2, init=str(tmp_path / "first" / "last"), **base),
          progress=False)
    assert decays == pytest.approx([(2 + 3) / (11 + 3), (2 + 4) / (11 + 4)])


def test_warm_start_adds_a_mean_level_fitted_to_the_training_maps(tiny_data, tmp_path):
    base = dict(data=str(tiny_data), max_steps=2, val_every=0, **TINY)
    train(TrainConfig(run_dir=str(tmp_path / "plain"), mean_head=False, **base), progress=False)
    plain = load_model(tmp_path / "plain" / "last")
    assert plain.mean_level is None and "mean_level" not in plain.metadata
    train(TrainConfig(run_dir=str(tmp_path / "head"), init=str(tmp_path / "plain" / "last"), **base), progress=False)
    head = load_model(tmp_path / "head" / "last")
    assert head.mean_level is not None and head.metadata["mean_level"]["model"] == "quadratic-gaussian"
    assert head.metadata["mean_level"]["omega"] == "log"  # a new mean level takes Ωₘ in its log
    assert head.metadata["schedule"] == plain.metadata["schedule"]
    # The tiny maps' mean level is 10.5 + Ωₘ (+ noise): μ(θ) must follow each simulation's maps.
    lo, hi = head.normalization.lo, head.normalization.hi
    lin = np.load(next(tiny_data.glob("Maps_*.npy"))).reshape(8, 15, 16, 2, 16, 2).astype(np.float64)
    sim_means = (2 * (np.log10(lin.mean(axis=(3, 5))) - lo) / (hi - lo) - 1).mean(axis=(1, 2, 3))
    theta = np.loadtxt(next(tiny_data.glob("params_*.txt")))[:, :2]
    mu, s = head.mean_prior(torch.tensor(theta, dtype=torch.float32))
    meta = head.metadata["data"]
    train_sims = sorted(set(range(8)) - set(meta["val_sims"]) - set(meta["test_sims"]))
    assert np.abs(mu.detach().numpy() - sim_means)[train_sims].max() < 0.02 and s.max().item() < 0.05
    assert np.ptp(sim_means) > 0.3  # Ωₘ moves the level a lot: the check above has teeth
    # Every U-Net weight came from the plain model (the EMA moved them only slightly in 2 steps).
    a, b = plain.network.state_dict(), head.network.state_dict()
    assert set(a) == set(b) and max((a[k] - b[k]).abs().max().item() for k in a) < 0.05


@pytest.mark.slow
def test_training_reduces_the_loss(tiny_data, tmp_path):
    """Enough steps on the tiny set to see ε-prediction learn (loss of a random net ≈ 1)."""
    cfg = TrainConfig(data=str(tiny_data), run_dir=str(tmp_path / "run"), max_steps=40, val_every=0,
                      **{**TINY, "log_every": 10})
    train(cfg, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in log]
    assert losses[-1] < 0.8 * losses[0]
