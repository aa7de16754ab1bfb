"""Fidelity and 1P-response figures on synthetic Gaussian fields with a known power spectrum."""

import numpy as np
import pytest

from explorer.evaluate import fidelity, histogram_agreement, non_gaussianity, one_p_response

N = 32


def gaussian_maps(rng, n, amplitude=1.0, slope=-2.0, mean=11.0):
    """n periodic Gaussian fields with P(k) ∝ amplitude² k^slope, around `mean` (log10 Σ-like)."""
    kx = np.fft.fftfreq(N)[:, None]
    ky = np.fft.fftfreq(N)[None, :]
    k = np.sqrt(kx**2 + ky**2)
    k[0, 0] = np.inf
    white = np.fft.fft2(rng.standard_normal((n, N, N)))
    return mean + amplitude * 0.05 * np.real(np.fft.ifft2(white * k ** (slope / 2)))


def make_emulator(amplitude_of, rng_seed_offset=100, jitter=0.0):
    def emulate(om, s8, n, seed):
        maps = gaussian_maps(np.random.default_rng(seed + rng_seed_offset), n, amplitude_of(om, s8))
        if jitter:  # θ-specific noise, as in `maps` of the 1P test
            maps += gaussian_maps(np.random.default_rng(int(1e4 * om + 1e7 * s8)), n, jitter, mean=0.0)
        return maps
    return emulate


def test_perfect_emulator_scores_one_against_new_seeds_and_a_wrong_one_does_not():
    rng = np.random.default_rng(0)
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9], [0.25, 0.95]] * 3)
    amp = lambda om, s8: s8 / 0.8
    truth = np.stack([gaussian_maps(rng, 15, amp(*t)) for t in theta])
    twins = np.stack([gaussian_maps(rng, 15, amp(*t)) for t in theta])
    good = fidelity(make_emulator(amp), theta, truth, twins, n_generated=15)
    assert good.fidelity_newseed == pytest.approx(1.0, abs=0.15)
    # For independent maps: E χ²_r(new map) = (1 + 1/M)(M−1)/(M−3)·c and E χ²_r(LOO) =
    # (1 + 1/(M−1))(M−2)/(M−4)·c with c = n_k/(n_k − 1), M = 15: ratio 1.2444/1.2662 = 0.983.
    assert good.fidelity_loo == pytest.approx(0.983, abs=0.08)
    assert good.pixel_std_ratio == pytest.approx(1.0, abs=0.1)
    assert abs(good.mean_offset) < 0.01
    bad = fidelity(make_emulator(lambda om, s8: 1.3 * amp(om, s8)), theta, truth, twins, n_generated=15)
    assert bad.fidelity_newseed > 2.0
    assert bad.pixel_std_ratio == pytest.approx(1.3, abs=0.1)


def test_map_mean_scatter_flags_maps_whose_mean_levels_wander_while_pk_stays_right():
    rng = np.random.default_rng(3)
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9]])
    amp = lambda om, s8: s8 / 0.8
    level = lambda r, n, spread: r.normal(0.0, spread, (n, 1, 1))  # each map's own mean level
    truth = np.stack([gaussian_maps(rng, 15, amp(*t)) + level(rng, 15, 0.1) for t in theta])
    emulate = make_emulator(amp)

    def emulator(spread):
        def run(om, s8, n, seed):  # the mean level does not touch the (mean-free) P(k)
            return emulate(om, s8, n, seed) + level(np.random.default_rng(seed), n, spread)
        return run

    good = fidelity(emulator(0.1), theta, truth, n_generated=15)
    assert good.map_mean_scatter_ratio == pytest.approx(1.0, abs=0.35)
    bad = fidelity(emulator(0.5), theta, truth, n_generated=15)
    assert bad.fidelity_loo == pytest.approx(good.fidelity_loo, rel=1e-9)
    assert bad.map_mean_scatter_ratio > 3.0


def test_histogram_agreement_detects_a_shifted_mean():
    rng = np.random.default_rng(1)
    truth = gaussian_maps(rng, 30)
    same = histogram_agreement(gaussian_maps(rng, 30), truth)
    shifted = histogram_agreement(gaussian_maps(rng, 30, mean=11.05), truth)
    assert same["max_cdf_gap"] < 0.05 < shifted["max_cdf_gap"]


def test_non_gaussianity_tells_a_gaussian_field_from_its_exponential():
    # a Gaussian field has skewness and kurtosis 0; exp of it (a lognormal field, like a density)
    # is skewed and has more, smaller regions above 2σ; a power spectrum would not say so
    rng = np.random.default_rng(2)
    g = (gaussian_maps(rng, 40) - 11.0) * 20
    gauss, logn = non_gaussianity(g), non_gaussianity(np.exp(g))
    assert abs(gauss["skewness"]) < 0.15 and abs(gauss["kurtosis"]) < 0.3
    assert logn["skewness"] > 1.0 and logn["kurtosis"] > 1.0
    assert logn["regions_above_2sigma"] != gauss["regions_above_2sigma"]
    one = np.zeros((1, 16, 16))
    one[0, 2:4, 2:4] = one[0, 9:12, 9] = 1.0  # two separate blobs above the mean + 1σ
    assert non_gaussianity(one)["regions_above_1sigma"] == 2
    with pytest.raises(ValueError, match="maps"):
        non_gaussianity(np.zeros((16, 16)))


def test_one_p_response_agrees_for_the_right_response_and_not_for_a_flat_one():
    rng_seed = 7
    fid = (0.3, 0.8)
    theta = np.array([[om, 0.8] for om in (0.2, 0.25, 0.3, 0.35, 0.4)] +
                     [[0.3, s8] for s8 in (0.7, 0.75, 0.8, 0.85, 0.9)])
    amp = lambda om, s8: (s8 / 0.8) * (om / 0.3) ** 0.5
    # the reference set: one seed for every θ, as a 1P set, plus a little θ-specific noise so that
    # the ratios scatter between maps (as the non-linear response does in simulations)
    maps = np.stack([gaussian_maps(np.random.default_rng(rng_seed), 15, amp(*t))
                     + gaussian_maps(np.random.default_rng(i), 15, 0.1, mean=0.0) for i, t in enumerate(theta)])
    right = one_p_response(make_emulator(amp, jitter=0.1), theta, maps, fiducial=fid, n_generated=8)
    flat = one_p_response(make_emulator(lambda om, s8: 1.0, jitter=0.1), theta, maps, fiducial=fid,
                          n_generated=8)
    assert list(right.values["omega_m"]) == [0.2, 0.25, 0.3, 0.35, 0.4]
    # P ∝ amplitude² (+1% jitter): the mean ratio at σ₈ = 0.9 is ≈ (0.9/0.8)² at every k
    i = list(right.values["sigma_8"]).index(0.9)
    assert right.generated["sigma_8"].mean[i] == pytest.approx((0.9 / 0.8) ** 2, rel=0.05)
    assert right.reference["sigma_8"].mean[i] == pytest.approx((0.9 / 0.8) ** 2, rel=0.05)
    assert max(right.agreement.values()) < 0.3 * min(flat.agreement.values())


def test_over_seeds_reports_mean_spread_and_names_the_worst_cosmology():
    from explorer.evaluate import over_seeds

    rng = np.random.default_rng(5)
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.45, 0.95], [0.25, 0.65]])
    amp = lambda om, s8: s8 / 0.8
    truth = np.stack([gaussian_maps(rng, 15, amp(*t)) for t in theta])
    twins = np.stack([gaussian_maps(rng, 15, amp(*t)) for t in theta])
    # right everywhere but at the prior's corner (cosmology 2), where the amplitude is 40 % high
    wrong_at_corner = lambda om, s8: amp(om, s8) * (1.4 if om > 0.4 else 1.0)
    results = {s: fidelity(make_emulator(wrong_at_corner), theta, truth, twins, n_generated=15, seed=s)
               for s in (0, 100, 200)}
    out = over_seeds(results)
    assert out["seeds"] == [0, 100, 200]
    per_seed = [results[s].fidelity_newseed for s in (0, 100, 200)]
    fid = out["summary"]["fidelity_newseed"]
    assert fid["mean"] == pytest.approx(np.mean(per_seed)) and fid["std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert fid["std"] > 0 and fid["min"] <= fid["mean"] <= fid["max"]
    assert out["worst"]["fidelity_newseed"]["cosmology"] == 2
    assert out["worst"]["pixel_std_ratio"]["cosmology"] == 2
    assert out["worst"]["pixel_std_ratio"]["value"] == pytest.approx(1.4, abs=0.1)
    rows = out["per_cosmology"]
    assert len(rows) == 4 and len(rows[0]["fidelity_newseed_per_seed"]) == 3
    assert rows[2]["fidelity_newseed"] > 2 * max(rows[c]["fidelity_newseed"] for c in (0, 1, 3))
    # the right cosmologies score about what a new simulation does (one cosmology's ratio is noisy)
    assert np.mean([rows[c]["fidelity_newseed"] for c in (0, 1, 3)]) == pytest.approx(1.0, abs=0.25)
    with pytest.raises(ValueError, match="different cosmologies"):
        over_seeds({0: results[0], 1: fidelity(make_emulator(amp), theta[::-1], truth, twins, seed=1)})


@pytest.mark.filterwarnings("ignore:Degrees of freedom", "ignore:invalid value")  # one map: its map-mean scatter
def test_small_scale_scatter_flags_maps_whose_small_scales_vary_too_little():
    """Fixed-amplitude fields (every Fourier mode at k >= 2.5 h/Mpc with |w| = its rms over the maps, random phase)
    have the right mean P(k) and no map-to-map scatter there; a perfect emulator scores ≈ 1."""
    rng = np.random.default_rng(11)
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9], [0.25, 0.95]] * 3)
    amp = lambda om, s8: s8 / 0.8
    truth = np.stack([gaussian_maps(rng, 15, amp(*t)) for t in theta])
    good = fidelity(make_emulator(amp), theta, truth, n_generated=15)
    assert good.small_scale_scatter_ratio == pytest.approx(1.0, abs=0.2)

    f = np.fft.fftfreq(N, d=25.0 / N) * 2 * np.pi
    high = np.hypot(f[:, None], f[None, :]) >= 2.5 - 0.7 * 2 * np.pi / 25  # every mode of the bins at k >= 2.5

    def fixed(om, s8, n, seed):
        maps = gaussian_maps(np.random.default_rng(seed), n, amp(om, s8)) - 11.0
        w = np.fft.fft2(maps)
        rms = np.sqrt(np.mean(np.abs(w[:, high]) ** 2, axis=0))  # per mode, over the maps
        w[:, high] = rms * np.exp(1j * np.angle(w[:, high]))
        return 11.0 + np.real(np.fft.ifft2(w))

    bad = fidelity(fixed, theta, truth, n_generated=15)
    assert bad.small_scale_scatter_ratio < 0.3
    assert bad.pixel_std_ratio == pytest.approx(good.pixel_std_ratio, abs=0.1)  # the pixel σ does not see it
    rows = bad.per_cosmology
    assert all(r["small_scale_scatter_ratio"] < 0.5 for r in rows)
    one = fidelity(make_emulator(amp), theta[:2], truth[:2], n_generated=1)  # one map: no scatter to compare
    assert one.small_scale_scatter_ratio is None and "small_scale_scatter_ratio" not in one.per_cosmology[0]
