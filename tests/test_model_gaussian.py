"""Gaussian start of the fast sampler: the fit recovers a known spectrum and mean (log-bias
corrected), draws have the spectrum they claim (|X|²/N² convention), JSON round trip, the sampler
starts at the first Karras level ≤ σ* and reproduces per seed, bad input is refused."""

import json

import numpy as np
import pytest
import torch

from explorer.model.gaussian import GaussianStart, ring_index, ring_power
from explorer.model.denoiser import Denoiser
from explorer.model.sampling import Emulator, _diffusers_scheduler, sample
from explorer.model.schedule import NoiseSchedule, seed_betas, seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import METADATA_FILE, WeightsError, load_model, save_model

RANGES = ((0.1, 0.5), (0.6, 1.0))
N = 16

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def true_spectrum(theta, rings):
    """A power law whose amplitude and slope depend on θ: S_n = A(θ) n^-β(θ)."""
    om, s8 = theta[:, :1], theta[:, 1:]
    return 2.0 * (s8 / 0.8) ** 2 * (om / 0.3) * rings[None, :] ** -(1.5 + om)


def gaussian_maps(theta, rng):
    r = ring_index(N)
    S = true_spectrum(theta, np.arange(1, r.max() + 1, dtype=float))[:, np.clip(r, 1, None) - 1]
    S[:, 0, 0] = 0
    white = rng.standard_normal((len(theta), N, N))
    field = np.fft.ifft2(np.fft.fft2(white) * np.sqrt(S)).real
    return field + (-0.3 + 0.5 * (theta[:, 0] - 0.3))[:, None, None] + 0.05 * rng.standard_normal(len(theta))[:, None, None]


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], (3000, 2))
    return GaussianStart.fit(theta, gaussian_maps(theta, rng), RANGES, sigma=1.0)


def test_ring_power_convention():
    x = np.random.default_rng(1).standard_normal((400, N, N))  # white noise of unit variance: S = 1
    p, count = ring_power(x)
    assert count.sum() == N * N and p.shape == (400, count.size)
    np.testing.assert_allclose(p[:, 1:].mean(axis=0), 1.0, rtol=0.1)
    assert p[:, 0].max() < 1e-20  # the mean is removed


def test_fit_recovers_spectrum_and_mean(fitted):
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.45, 0.95]])
    rings = np.arange(1, ring_index(N).max() + 1, dtype=float)
    want = true_spectrum(theta, rings)
    got = np.stack([fitted.spectrum(theta)[:, 0, n] for n in range(1, N // 2)], axis=1)  # modes (0, n)
    # ring 1 holds 8 modes (4 independent): without the mean-of-log correction it comes out 12 % low
    np.testing.assert_allclose(got, want[:, :N // 2 - 1], rtol=0.08)
    np.testing.assert_allclose(fitted.mean(theta), -0.3 + 0.5 * (theta[:, 0] - 0.3), atol=0.01)
    assert fitted.mean_scatter == pytest.approx(0.05, rel=0.1)


def test_draws_have_the_fitted_spectrum_and_mean(fitted):
    theta = np.tile([[0.3, 0.8]], (600, 1))
    x = fitted.draw(theta, torch.Generator().manual_seed(0)).numpy()[:, 0]
    assert x.shape == (600, N, N) and x.dtype == np.float32
    p, _ = ring_power(x)
    want = fitted.spectrum(theta[:1])[0]
    for n in (1, 3, 6):
        np.testing.assert_allclose(p[:, n].mean(), want[0, n], rtol=0.1)
    assert x.mean() == pytest.approx(fitted.mean(theta[:1])[0], abs=0.01)
    assert x.mean(axis=(1, 2)).std() == pytest.approx(fitted.mean_scatter, rel=0.15)
    again = fitted.draw(theta[:2], torch.Generator().manual_seed(0)).numpy()[:, 0]
    other = fitted.draw(theta[:2], torch.Generator().manual_seed(1)).numpy()[:, 0]
    np.testing.assert_array_equal(again, fitted.draw(theta[:2], torch.Generator().manual_seed(0)).numpy()[:, 0])
    assert np.abs(again - other).max() > 0.1


def test_round_trip_and_bad_dicts(fitted):
    back = GaussianStart.from_dict(json.loads(json.dumps(fitted.to_dict())))
    theta = np.array([[0.25, 0.75]])
    np.testing.assert_array_equal(back.spectrum(theta), fitted.spectrum(theta))
    assert (back.sigma, back.mean_scatter, back.n_maps) == (fitted.sigma, fitted.mean_scatter, 3000)
    d = fitted.to_dict()
    for bad, match in (({**d, "log_spectrum_coef": [[1.0]]}, "shapes"), ({**d, "sigma": 0}, "sigma"),
                       ({k: v for k, v in d.items() if k != "mean_coef"}, "mean_coef"), ([], "object")):
        with pytest.raises(ValueError, match=match):
            GaussianStart.from_dict(bad)
    with pytest.raises(ValueError, match="at least"):
        GaussianStart.fit(np.zeros((5, 2)) + 0.3, np.zeros((5, N, N)), RANGES)


def test_map_mean_model_takes_omega_in_its_log():
    """A map's mean density is ∝ Ωₘ, so its mean log density is log10 Ωₘ plus a smooth term. With Ωₘ
    in its log (the default) the start's μ(θ) holds such a mean up to the prior's edges; the cubic in
    Ωₘ (weights before session 17) is off by > 0.008 there. Old dicts read as linear; the scale
    survives JSON; an unknown scale is refused."""
    rng = np.random.default_rng(3)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], (1500, 2))
    level = np.log10(theta[:, 0]) + 0.1 * (theta[:, 1] - 0.8) ** 2
    maps = level[:, None, None] + 0.01 * rng.standard_normal((1500, N, N))
    edge = np.array([[0.1, 0.95], [0.111, 0.953], [0.5, 0.6]])
    want = np.log10(edge[:, 0]) + 0.1 * (edge[:, 1] - 0.8) ** 2
    log = GaussianStart.fit(theta, maps, RANGES)
    lin = GaussianStart.fit(theta, maps, RANGES, mean_omega="linear")
    assert log.mean_omega == "log" and np.abs(log.mean(edge) - want).max() < 0.002
    assert np.abs(lin.mean(edge) - want).max() > 0.008
    assert log.mean_coef.shape == lin.mean_coef.shape == (10,)  # the same cubic, in another variable
    back = GaussianStart.from_dict(json.loads(json.dumps(log.to_dict())))
    assert back.mean_omega == "log"
    np.testing.assert_array_equal(back.mean(edge), log.mean(edge))
    np.testing.assert_array_equal(back.scatter(edge), log.scatter(edge))
    assert "mean_omega" not in lin.to_dict() and GaussianStart.from_dict(lin.to_dict()).mean_omega == "linear"
    with pytest.raises(ValueError, match="mean_omega"):
        GaussianStart.from_dict({**log.to_dict(), "mean_omega": "sqrt"})
    with pytest.raises(ValueError, match="mean_omega"):
        GaussianStart.fit(theta, maps, RANGES, mean_omega="sqrt")
    # the numpy and torch scalings agree (the denoiser's mean level uses the torch one)
    from explorer.model.denoiser import MeanLevel
    from explorer.model.gaussian import scaled_theta

    u = MeanLevel(RANGES, omega="log").scaled(torch.tensor(edge)).numpy()
    np.testing.assert_allclose(u, scaled_theta(edge, RANGES, "log"), atol=1e-6)  # its buffers are float32
    np.testing.assert_allclose(u[:, 0], np.log(edge[:, 0] / 0.1) / np.log(5.0), atol=1e-6)
    np.testing.assert_allclose(u[:, 1], (edge[:, 1] - 0.6) / 0.4, atol=1e-6)


@pytest.fixture(scope="module")
def model():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ParamUNet(sample_size=N, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                         norm_num_groups=4).eval()


def test_sampler_starts_at_the_first_level_below_sigma_star(model, fitted):
    schedule = NoiseSchedule.from_betas(seed_betas(1000))
    den = Denoiser(model, schedule)
    method = "sde-dpmsolver++-karras-gauss"
    sch = _diffusers_scheduler(method, schedule)
    sch.set_timesteps(30)
    sigmas = sch.sigmas[:-1].numpy()
    for sigma_star in (1.0, 5.0, 1e4):
        start = GaussianStart.from_dict({**fitted.to_dict(), "sigma": sigma_star})
        calls = []
        a = sample(den, [0.3, 0.8], n=2, resolution=N, seed=3, method=method, steps=30,
                   gaussian_start=start, progress=lambda i, n: calls.append(n))
        assert calls[-1] == (sigmas <= sigma_star).sum() == len(calls)
        b = sample(den, [0.3, 0.8], n=2, resolution=N, seed=3, method=method, steps=30,
                   gaussian_start=start)
        assert torch.equal(a, b) and torch.isfinite(a).all()
    assert calls[-1] == 30  # σ* above the largest level: every level runs
    with pytest.raises(ValueError, match="gaussian_start"):
        sample(den, [0.3, 0.8], n=1, resolution=N, seed=0, method=method, steps=30)
    with pytest.raises(ValueError, match="fitted at 16"):
        sample(den, [0.3, 0.8], n=1, resolution=32, seed=0, method=method, steps=30, gaussian_start=fitted)


def test_weights_carry_the_start(model, fitted, tmp_path):
    norm = {"lo": 9.0, "hi": 15.0, "method": "minmax"}
    meta = {"schedule": seed_schedule_spec(1000), "normalization": norm,
            "sampler": {"method": "sde-dpmsolver++-karras-gauss", "steps": 30}}
    with pytest.raises(ValueError, match="gaussian_start"):
        Emulator(load_model(save_model(tmp_path / "none", model, meta)))
    folder = save_model(tmp_path / "w", model, {**meta, "gaussian_start": fitted.to_dict()})
    emu = Emulator.from_folder(folder, device="cpu", bf16=False)
    calls = []
    maps = emu.sample(0.3, 0.8, n=2, seed=1, progress=lambda i, n: calls.append(n))
    assert maps.shape == (2, N, N) and calls[-1] < 30
    doc = json.loads((folder / METADATA_FILE).read_text())
    doc["gaussian_start"]["mean_coef"] = [0.0]
    (folder / METADATA_FILE).write_text(json.dumps(doc))
    with pytest.raises(WeightsError, match="explorer calibrate"):
        load_model(folder)


def test_start_draws_map_means_whose_scatter_follows_sigma8():
    """Map means scattering as s = exp(−3 + 0.6 v): the fitted start recovers s(θ) and draws with it;
    the constant fit keeps one s (the old model, still readable)."""
    rng = np.random.default_rng(3)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], (3000, 2))
    v = (theta[:, 1] - 0.6) / 0.4
    s_true = np.exp(-3.0 + 0.6 * v)
    maps = (0.2 * theta[:, 0] + s_true * rng.standard_normal(3000))[:, None, None] + 0.1 * rng.standard_normal((3000, 8, 8))
    start = GaussianStart.fit(theta, maps, RANGES, degree=1)
    np.testing.assert_allclose(start.scatter(theta), s_true, rtol=0.12)
    draws = start.draw(np.repeat([[0.3, 0.6], [0.3, 1.0]], 2000, axis=0), torch.Generator().manual_seed(0))
    means = draws.mean(dim=(1, 2, 3)).numpy()
    assert means[2000:].std() / means[:2000].std() == pytest.approx(np.exp(0.6), rel=0.12)
    again = GaussianStart.from_dict(json.loads(json.dumps(start.to_dict())))
    np.testing.assert_array_equal(again.scatter(theta[:5]), start.scatter(theta[:5]))
    old = GaussianStart.fit(theta, maps, RANGES, degree=1, scatter="constant")
    assert "mean_log_scatter" not in old.to_dict() and np.ptp(old.scatter(theta[:5])) == 0
