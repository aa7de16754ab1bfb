"""The few-call sampler: its translation-field start recovers a known transform, and its posterior-variance
steps are exact for Gaussian data with an exact denoiser (and lose variance without the correction)."""

import numpy as np
import pytest
import torch
from scipy.special import ndtri
from scipy.stats import skew

from explorer.model.fewcall import posterior_variance_noise, sample_translation
from explorer.model.gaussian import GaussianStart, ring_power, theta_monomials
from explorer.model.schedule import NoiseSchedule, seed_betas
from explorer.model.translation import GAUSS_LEVELS, TranslationStart, cic_deposit, zeldovich_ranks

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RANGES = ((0.1, 0.5), (0.6, 1.0))
N = 32


def grf(rng, n_maps, spectrum):
    """Gaussian fields ``(n_maps, N, N)`` with ring spectrum ``spectrum (N, N)`` (unit white noise: S = 1)."""
    white = rng.normal(size=(n_maps, N, N))
    return np.fft.ifft2(np.fft.fft2(white) * np.sqrt(spectrum)).real


def power_law(slope=-2.0, amp=1.0):
    m = np.fft.fftfreq(N, 1.0 / N)
    k = np.hypot(m[:, None], m[None, :])
    s = amp * np.where(k > 0, np.maximum(k, 1.0) ** slope, 0.0)
    return s / s.mean()  # unit pixel variance


@pytest.fixture(scope="module")
def skewed_maps():
    """Maps x = T_θ(g) − ⟨·⟩ + m: g a unit-variance power-law field, T_θ(g) = a (e^{b g} − 1), with b
    growing with σ₈ (more skewed), a = 0.2, mean level m = 0.1 Ωₘ; 12 cosmologies × 6 maps."""
    rng = np.random.default_rng(3)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], (12, 2)).repeat(6, axis=0)
    g = grf(rng, len(theta), power_law())
    g /= g.std(axis=(1, 2), keepdims=True)
    b = 0.2 + (theta[:, 1] - 0.6)  # 0.2 … 0.6
    x = 0.2 * (np.exp(b[:, None, None] * g) - 1.0)
    x += (0.1 * theta[:, 0] - x.mean(axis=(1, 2)))[:, None, None]
    return theta, x, b


def test_translation_start_recovers_a_known_transform_and_spectrum(skewed_maps):
    theta, x, b = skewed_maps
    start = TranslationStart.fit(theta, x, RANGES, degree=1, sigma=0.2)
    # the fitted quantiles are the transform at the Gaussian levels (up to the pooled maps' own scatter)
    lo = np.array([[0.15, 0.65], [0.45, 0.95]])
    q = start.quantiles(lo)
    g = GAUSS_LEVELS[16:49]  # |g| ≤ 2, where 6 maps of 32² pin the quantiles down
    for row, (om, s8) in zip(q, lo):
        bb = 0.2 + (s8 - 0.6)
        truth = 0.2 * (np.exp(bb * g) - 1.0)
        truth -= 0.2 * (np.exp(bb ** 2 / 2) - 1.0)  # the map mean removed: E[a(e^{bg} − 1)]
        np.testing.assert_allclose(row[16:49], truth, atol=0.02)
    # drawn maps: the simulations' skewness (not a Gaussian's) and spectrum, and their mean level
    draws = start.draw(np.repeat(lo, 40, axis=0), torch.Generator().manual_seed(0))[:, 0].numpy()
    truth_maps = x[theta[:, 1] > 0.85]
    assert skew(draws[40:].ravel()) == pytest.approx(skew(truth_maps.ravel()), abs=0.25)
    assert skew(draws[40:].ravel()) > 0.8 and abs(skew(draws[:40].ravel())) < skew(draws[40:].ravel()) / 2
    got = ring_power(draws[40:])[0][:, 1:].mean(axis=0)  # rings 1 … R
    fit = GaussianStart.fit(theta, x, RANGES, degree=1)
    want = np.exp(theta_monomials(lo[1:], RANGES, 1) @ fit.log_spectrum_coef)[0]
    np.testing.assert_allclose(got[:12], want[:12], rtol=0.25)  # the spectrum correction's work
    np.testing.assert_allclose(draws.mean(axis=(1, 2)).reshape(2, 40).mean(axis=1), [0.015, 0.045], atol=0.01)


def test_round_trip_and_errors(skewed_maps):
    theta, x, _ = skewed_maps
    start = TranslationStart.fit(theta, x, RANGES, degree=1, sigma=0.2, iterations=0)
    back = TranslationStart.from_dict(start.to_dict())
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    torch.testing.assert_close(back.draw([[0.3, 0.8]], gen()), start.draw([[0.3, 0.8]], gen()), rtol=0, atol=0)
    bad = start.to_dict()
    bad["quantile_coef"] = bad["quantile_coef"][:2]
    with pytest.raises(ValueError, match="quantile_coef has shape"):
        TranslationStart.from_dict(bad)
    with pytest.raises(ValueError, match="gauss_levels"):
        TranslationStart.from_dict({**start.to_dict(), "gauss_levels": [-3, 3, 65]})
    with pytest.raises(ValueError, match="lacks"):
        TranslationStart.from_dict({"sigma": 1})
    with pytest.raises(ValueError, match="distinct cosmologies"):
        TranslationStart.fit(np.tile([[0.3, 0.8]], (20, 1)), x[:20], RANGES, degree=1)


def test_cloud_in_cell_conserves_mass_and_wraps_around():
    n = 8
    at_centre = cic_deposit(np.array([[2.5, 5.5]]), n)
    assert at_centre[2, 5] == pytest.approx(1.0) and at_centre.sum() == pytest.approx(1.0)
    corner = cic_deposit(np.array([[0.0, 0.0]]), n)  # shared by the 4 pixels around the periodic corner
    for i, j in ((0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1)):
        assert corner[i, j] == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    cloud = cic_deposit(rng.uniform(0, n, (1000, 2)), n)
    assert cloud.sum() == pytest.approx(1000.0) and cloud.min() >= 0
    x_shift = cic_deposit(np.array([[2.75, 5.5]]), n)  # a quarter pixel up in i: 3/4 stays, 1/4 to i + 1
    assert x_shift[2, 5] == pytest.approx(0.75) and x_shift[3, 5] == pytest.approx(0.25)


def test_zeldovich_start_moves_mass_into_the_dense_regions_and_keeps_the_one_point_distribution(skewed_maps):
    spectrum = np.broadcast_to(power_law(), (3, N, N))
    white = np.random.default_rng(1).normal(size=(3, N, N))
    g_k = np.fft.fft2(white) * np.sqrt(spectrum)
    g = np.fft.ifft2(g_k).real
    small = zeldovich_ranks(g_k, spectrum, 0.05)
    large = zeldovich_ranks(g_k, spectrum, 3.0)
    gauss = ndtri((np.arange(N * N) + 0.5) / N ** 2)
    for field in (small, large):  # the Gaussianised ranks: exactly the normal quantiles in every map
        for m in field:
            np.testing.assert_allclose(np.sort(m.ravel()), gauss)
    # small displacements give back the linear field (particles flow towards high g: a sign error gives −1);
    # large ones rearrange it (shell crossing)
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]  # noqa: E731
    assert all(corr(a, b) > 0.9 for a, b in zip(small, g))
    assert all(0.2 < corr(a, b) < corr(c, b) for a, b, c in zip(large, g, small))
    # through a start: its pixel values are those of the translation field's transform, whatever the seed
    theta, x, _ = skewed_maps
    base = TranslationStart.fit(theta, x, RANGES, degree=1, sigma=0.2, iterations=0)
    za = TranslationStart.from_dict({**base.to_dict(), "displacement": 2.0})
    assert za.displacement == 2.0 and TranslationStart.from_dict(za.to_dict()).displacement == 2.0
    a, b = (za.draw([[0.3, 0.9]], torch.Generator().manual_seed(s))[0, 0].double().numpy() for s in (0, 1))
    np.testing.assert_allclose(np.sort((a - a.mean()).ravel()), np.sort((b - b.mean()).ravel()), atol=1e-5)
    again = za.draw([[0.3, 0.9]], torch.Generator().manual_seed(0))[0, 0].double().numpy()
    np.testing.assert_array_equal(a, again)
    plain = base.draw([[0.3, 0.9]], torch.Generator().manual_seed(0))[0, 0].double().numpy()
    assert not np.allclose(a, plain) and corr(a, plain) > 0.2  # same white noise, other arrangement
    legacy = base.to_dict()
    del legacy["displacement"]
    assert TranslationStart.from_dict(legacy).displacement == 0.0  # weights written before the option
    with pytest.raises(ValueError, match="displacement"):
        TranslationStart.from_dict({**base.to_dict(), "displacement": -1.0})


def gaussian_setup(gain):
    """An exact denoiser for Gaussian maps with spectrum S, and a start on the identity transform."""
    spectrum = power_law(-1.0) * 0.04
    start = _IdentityStart(_Exact(spectrum), sigma=0.15, variance_gain=gain)
    schedule = NoiseSchedule.from_betas(seed_betas(1000))
    ab = torch.tensor(np.array(schedule.alpha_bar))
    s = torch.as_tensor(spectrum)

    def x0_fn(x, t, theta):  # E[x₀ | x_t] per mode: S/(S + σ²) · x_t/√ᾱ
        a = ab[t].sqrt()[:, None, None, None]
        sig2 = ((1 - ab[t]) / ab[t])[:, None, None, None]
        y = torch.fft.fft2(x.double() / a)
        return torch.fft.ifft2(y * s / (s + sig2)).real.float()

    return schedule, start, x0_fn, spectrum


class _Exact:
    """The data's spectrum S on every mode, as :meth:`GaussianStart.spectrum` gives it."""

    def __init__(self, spectrum):
        self.s = spectrum

    def spectrum(self, theta):
        return np.broadcast_to(self.s, (len(np.atleast_2d(theta)), N, N)).copy()


class _IdentityStart:
    """x₀ ~ N(0, S): what a translation start with the identity transform draws."""

    def __init__(self, base, sigma, variance_gain):
        self.base, self.sigma, self.variance_gain, self.modulation, self.resolution = base, sigma, variance_gain, 0.0, N

    def draw(self, theta, generator):
        from explorer.model.noise import randn
        white = randn((len(theta), N, N), generator, torch.float64).numpy()
        return torch.from_numpy(np.fft.ifft2(np.fft.fft2(white) * np.sqrt(self.base.s)).real[:, None]).float()


@pytest.mark.parametrize("steps", [2, 4])
def test_posterior_variance_steps_are_exact_for_gaussian_data(steps):
    """With an exact denoiser of Gaussian maps, 2 or 4 big steps with γ = 1 give maps with the data's
    spectrum; without the correction (γ = 0) the same steps lose a measurable part of it."""
    theta = torch.tensor([[0.3, 0.8]] * 64)
    power = {}
    for gain in (1.0, 0.0):
        schedule, start, x0_fn, spectrum = gaussian_setup(gain)
        x = sample_translation(x0_fn, schedule, start, theta, (64, 1, N, N), steps, torch.Generator().manual_seed(1),
                               "cpu")
        power[gain] = np.abs(np.fft.fft2(x[:, 0].double().numpy())) ** 2 / N ** 2
    sel = spectrum > 0
    ratio = {g: power[g].mean(axis=0)[sel].sum() / spectrum[sel].sum() for g in power}
    assert ratio[1.0] == pytest.approx(1.0, abs=0.04)
    assert ratio[0.0] < 0.9  # (0.78 with 4 steps: a denoised mean is smoother than a sample)
    high = sel & (spectrum < np.quantile(spectrum[sel], 0.25))  # the smallest scales
    assert power[1.0].mean(axis=0)[high].sum() / spectrum[high].sum() == pytest.approx(1.0, abs=0.08)


def test_posterior_variance_noise_has_the_posterior_spectrum():
    spectrum = np.broadcast_to(power_law(-1.5) * 0.05, (256, N, N))
    xi = posterior_variance_noise(spectrum, 0.1, torch.Generator().manual_seed(0), gain=0.5)
    want = 0.5 * spectrum[0] * 0.01 / (spectrum[0] + 0.01)
    got = (np.abs(np.fft.fft2(xi)) ** 2 / N ** 2).mean(axis=0)
    np.testing.assert_allclose(got.sum(), want.sum(), rtol=0.03)
    plain = posterior_variance_noise(spectrum[:4], 0.1, torch.Generator().manual_seed(1), gain=0.5)
    shaped = posterior_variance_noise(spectrum[:4], 0.1, torch.Generator().manual_seed(1), gain=0.5,
                                      shape=np.full((4, N, N), 3.0))
    np.testing.assert_allclose(shaped, plain, rtol=0, atol=1e-12)  # a constant shape is normalised away


def test_the_start_is_matched_to_what_the_sampler_makes_of_it(skewed_maps):
    """A 'sampler' that removes 30 % of the power on large scales: after matching, its output has the
    maps' own spectrum there (before: 0.7 of it), and the start itself carries the extra power."""
    theta, x, _ = skewed_maps
    start = TranslationStart.fit(theta, x, RANGES, degree=1, sigma=0.2)
    m = np.fft.fftfreq(N, 1.0 / N)
    damp = np.where(np.hypot(m[:, None], m[None, :]) < 6, np.sqrt(0.7), 1.0)

    def sampler(candidate, th, generator):
        drawn = candidate.draw(th, generator)[:, 0].numpy().astype(np.float64)
        return np.fft.ifft2(np.fft.fft2(drawn) * damp).real

    many = np.repeat(theta, 8, axis=0)  # 576 output maps per round
    matched, ratios = start.matched_to_sampler(sampler, many, iterations=3)
    assert len(ratios) == 3 and ratios[0].shape == (start.base.log_spectrum_coef.shape[1],)
    np.testing.assert_allclose(ratios[0][:5], 0.7, atol=0.06)  # rings 1-5: the sampler's loss, measured
    np.testing.assert_allclose(ratios[0][7:14], 1.0, atol=0.06)  # rings 7-13 untouched
    np.testing.assert_allclose(ratios[1][:5], 1.0, atol=0.1)  # after one correction (the transform
    np.testing.assert_allclose(ratios[2][:5], 1.0, atol=0.06)  # is not linear: a small overshoot)
    centre = theta.mean(axis=0, keepdims=True)
    boost = matched.g_spectrum(centre)[0] / start.g_spectrum(centre)[0]
    assert boost[1, 1] == pytest.approx(1 / 0.7, rel=0.15) and boost[10, 3] == pytest.approx(1.0, abs=0.15)


def test_fit_start_command_writes_a_start_the_emulator_samples_with(tiny_weights, tiny_reference, tmp_path):
    """`explorer fit-start` stores the start (and its record) in the weights; the emulator then samples
    `sde-translation` reproducibly, offers it only with a start, and a broken start names its fix."""
    import json
    import shutil

    from explorer.cli import main
    from explorer.model.sampling import Emulator
    from explorer.model.weights import WeightsError

    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    with pytest.raises(ValueError, match="translation_start"):
        Emulator.from_folder(folder, device="cpu", bf16=False).sample(0.3, 0.8, n=1, method="sde-translation")
    assert main(["fit-start", "--weights", str(folder), "--data", str(tiny_reference), "--degree", "1",
                 "--match-iterations", "1"]) == 0
    emu = Emulator.from_folder(folder, device="cpu", bf16=False)
    record = emu.loaded.metadata["translation_start_fit"]
    assert record["degree"] == 1 and record["maps"] % 15 == 0 and len(record["output_over_model_power_at_mean_theta"]) == 1
    a, b = (emu.sample(0.3, 0.8, n=2, seed=5, method="sde-translation") for _ in range(2))
    assert a.shape == (2, 16, 16) and np.isfinite(a).all() and np.array_equal(a, b)
    assert not np.array_equal(a, emu.sample(0.3, 0.8, n=2, seed=6, method="sde-translation"))
    # the figure of bench/plot_fewcall.py, drawn from these weights (both samplers, P(k) ratios, histograms)
    from conftest import load_bench

    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "valid").symlink_to(tiny_reference)
    png = tmp_path / "fewcall.png"
    assert load_bench("plot_fewcall").main(["--weights", str(folder), "--assets", str(tmp_path / "assets"),
                                            "--cosmologies", "0", "2", "--out", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000
    # bench/tune_fewcall.py (the start's choices are made with it, on held-out training simulations)
    tune = load_bench("tune_fewcall")
    maps = np.random.default_rng(0).normal(size=(3, 16, 16))
    assert all(r == pytest.approx(1.0) for r in tune.band_ratios(maps, maps).values())
    assert all(r == pytest.approx(4.0) for r in tune.band_ratios(2 * maps, maps).values())  # P ∝ amplitude²
    # regions above μ + 1σ by size: 3 single pixels (two touch at a corner only: 4-connected), 2, 10, and 30
    # pixels joined across the periodic edge
    drawn = np.zeros((16, 16))
    drawn[6, 6] = drawn[7, 7] = drawn[8, 9] = 1
    drawn[3, 3:5], drawn[10:12, 0:5], drawn[0:6, 13:16], drawn[0:6, 0:2] = 1, 1, 1, 1
    assert tune.region_sizes(np.stack([drawn, drawn.T])) == {"1": 3.0, "2": 1.0, "3-5": 0.0, "6-20": 1.0, "21+": 1.0}
    report = tmp_path / "tune.json"
    assert tune.main(["--data", str(tiny_reference), "--weights", str(folder), str(folder), "--seeds", "0", "1",
                      "--n-generated", "2", "--json", str(report)]) == 0
    tuned = json.loads(report.read_text())
    assert tuned["held_out_sims"] and tuned["simulations"]["regions_above_1sigma"] > 0
    (row,) = tuned["weights"].values()  # the same folder twice: one row
    assert row["fidelity_loo"]["mean"] > 0 and len(row["fidelity_loo"]["per_seed"]) == 2
    assert all(np.isfinite(v) and v > 0 for v in row["power_ratio"].values())
    meta = json.loads((folder / "explorer.json").read_text())
    meta["translation_start"]["quantile_coef"] = [[0.0]]
    (folder / "explorer.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="fit-start"):
        Emulator.from_folder(folder, device="cpu")
