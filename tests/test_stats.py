"""Known-answer tests of explorer.stats: power spectrum, χ², histograms, 1P response, structure.

Every test is seeded and small (the file runs in a few seconds on 2 cores).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.sparse
import scipy.sparse.csgraph
import scipy.stats

from explorer.stats import (
    Response,
    connected_regions,
    histogram_bins,
    leave_one_out_chi2,
    pixel_histograms,
    power_spectrum,
    reduced_chi2,
    response_agreement,
    response_ratio,
    structure_statistics,
    z_scores,
)

BOX = 25.0  # Mpc/h


def smooth_maps(rng, shape, sigma_pix=2.0):
    """Periodic, spatially correlated Gaussian maps (B, H, W) with unit-ish variance."""
    noise = rng.standard_normal(shape)
    return scipy.ndimage.gaussian_filter(noise, (0, sigma_pix, sigma_pix), mode="wrap")


# ---------------------------------------------------------------------------------------------
# power spectrum
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [16, 32])
def test_power_spectrum_matches_powerbox(n):
    """Same maps, same bins: our estimator equals powerbox.get_power to rounding.

    powerbox's default Fourier convention (a, b) = (1, 1) gives FT(k) = (L/N)^2 Σ_x δ e^{-ik·x};
    get_power returns |FT|^2 / V^2 times V (vol_normalised_power=True), i.e. (L^2/N^4)|DFT|^2,
    our convention. ``dimensionless=False``: no division by the mean (for gridded input powerbox
    ignores it anyway, but a log field must never be divided by its mean). Its radial bins use
    np.digitize, edges[i-1] <= |k| < edges[i], so passing the edges (n + 1/2) k_f reproduces our
    bins. The raw (not mean-subtracted) map is passed: the mean only enters k = 0, which no bin
    holds. ``nthreads=1`` selects numpy's FFT.
    """
    import powerbox

    rng = np.random.default_rng(10 + n)
    maps = 12.0 + 0.3 * smooth_maps(rng, (3, n, n), sigma_pix=1.5)
    ps = power_spectrum(maps, box_size=BOX)
    k_f = 2 * np.pi / BOX
    edges = (np.arange(n // 2 + 1) + 0.5) * k_f
    np.testing.assert_allclose(ps.k_edges, edges, rtol=1e-14)
    for i in range(len(maps)):
        ref = powerbox.get_power(
            maps[i],
            BOX,
            bins=edges,
            vol_normalised_power=True,
            dimensionless=False,
            nthreads=1,
        )
        np.testing.assert_array_equal(ref.nsamples, ps.n_modes)
        np.testing.assert_allclose(ps.k, ref.bin_avg, rtol=1e-12)
        np.testing.assert_allclose(ps.power[i], ref.power, rtol=1e-10)


def test_white_noise_level():
    """Pixel variance σ² on an N² grid of side L has flat P = σ² (L/N)² in every bin."""
    rng = np.random.default_rng(1)
    n, sigma, n_maps = 32, 0.3, 200
    maps = sigma * rng.standard_normal((n_maps, n, n))
    ps = power_spectrum(maps, box_size=BOX)
    expected = sigma**2 * (BOX / n) ** 2
    ratio = ps.power.mean(axis=0) / expected  # (n_k,)
    # All modes: ~N²/2 · 200 independent exponential draws, standard error ~0.35%.
    assert abs(np.average(ratio, weights=ps.n_modes) - 1) < 0.02
    # Per bin: each bin averages n_modes/2 independent |δ|² per map (k and -k are one draw).
    z = (ratio - 1) * np.sqrt(n_maps * ps.n_modes / 2)
    assert np.all(np.abs(z) < 5), z


def test_recovers_power_law_amplitude():
    """A Gaussian random field drawn with P(k) = A (k / 1 h/Mpc)^-2 gives back A and the slope.

    Generation in our convention: w is unit white noise, W = DFT(w) has ⟨|W|²⟩ = N². Then
    F = W · sqrt(P(k) N² / L²) has ⟨|F|²⟩ L²/N⁴ = P(k), and δ = IDFT(F) is real because
    P(k) = P(-k). The expected binned value is P averaged over the modes of each bin (computed
    here independently on the full k plane, bin = round(|m|)).
    """
    rng = np.random.default_rng(2)
    n, n_maps, amplitude = 64, 64, 2.0  # amplitude in (Mpc/h)^2 at k = 1 h/Mpc
    m = np.fft.fftfreq(n, d=1.0 / n)
    m_abs = np.hypot(m[:, None], m[None, :])
    k = 2 * np.pi / BOX * m_abs
    p_model = np.zeros_like(k)
    p_model[k > 0] = amplitude * k[k > 0] ** -2.0
    white = np.fft.fft2(rng.standard_normal((n_maps, n, n)))
    maps = np.fft.ifft2(white * np.sqrt(p_model * n**2 / BOX**2)).real

    ps = power_spectrum(maps, box_size=BOX)
    bin_of_mode = np.rint(m_abs).astype(int).ravel()
    used = (bin_of_mode >= 1) & (bin_of_mode <= n // 2)
    expected = np.bincount(bin_of_mode[used], weights=p_model.ravel()[used])[1:]
    expected /= np.bincount(bin_of_mode[used])[1:]

    measured = ps.power.mean(axis=0)
    ratio = measured / expected
    assert abs(np.average(ratio, weights=ps.n_modes) - 1) < 0.02  # amplitude, ~0.3% error
    z = (ratio - 1) * np.sqrt(n_maps * ps.n_modes / 2)
    assert np.all(np.abs(z) < 5), z
    slope = np.polyfit(np.log(ps.k[3:]), np.log(measured[3:]), 1)[0]
    assert abs(slope + 2) < 0.05, slope


def test_power_spectrum_invariant_under_periodic_shift():
    rng = np.random.default_rng(3)
    maps = smooth_maps(rng, (2, 32, 32))
    shifted = np.roll(maps, shift=(5, -11), axis=(1, 2))
    np.testing.assert_allclose(
        power_spectrum(shifted).power, power_spectrum(maps).power, rtol=1e-10
    )


def test_power_spectrum_shapes_and_units():
    rng = np.random.default_rng(4)
    maps = rng.standard_normal((5, 32, 32)).astype(np.float32)
    ps = power_spectrum(maps, box_size=50.0)
    assert ps.k.shape == ps.n_modes.shape == (16,) and ps.power.shape == (5, 16)
    # Bin 1 holds |m| = 1 and |m| = sqrt(2) (4 modes each): mean |k| = (1 + sqrt(2))/2 k_f.
    k_f = 2 * np.pi / 50.0
    assert ps.n_modes[0] == 8 and ps.n_modes.dtype.kind == "i"
    assert ps.k[0] == pytest.approx((1 + np.sqrt(2)) / 2 * k_f, rel=1e-12)
    assert np.all(np.diff(ps.k) > 0) and ps.k[-1] < (16 + 0.5) * k_f
    # Every mode with |m| < N/2 + 1/2 is used once.
    m = np.fft.fftfreq(32, d=1 / 32)
    m_abs = np.hypot(m[:, None], m[None, :])
    assert ps.n_modes.sum() == np.sum((m_abs > 0) & (m_abs < 16.5))
    # float32 input is transformed in float64: identical to passing float64.
    np.testing.assert_array_equal(power_spectrum(maps.astype(np.float64), 50.0).power, ps.power)
    single = power_spectrum(maps[2], box_size=50.0)
    assert single.power.shape == (16,)
    np.testing.assert_allclose(single.power, ps.power[2], rtol=1e-12)
    # Parseval: Σ over all modes of P / L² is the pixel variance; binned modes miss only corners.
    total = np.sum(ps.power * ps.n_modes, axis=1) / 50.0**2
    assert np.all(total < maps.var(axis=(1, 2)))
    assert np.all(total > 0.7 * maps.var(axis=(1, 2)))


@pytest.mark.parametrize(
    ("maps", "kwargs", "message"),
    [
        (np.zeros((4, 31, 31)), {}, "even"),
        (np.zeros((4, 32, 16)), {}, "square"),
        (np.zeros((2, 2, 8, 8)), {}, "dimensions"),
        (np.full((8, 8), np.nan), {}, "NaN"),
        (np.zeros((8, 8)), {"box_size": 0.0}, "box_size"),
        (np.zeros((8, 8)), {"box_size": -25.0}, "box_size"),
    ],
)
def test_power_spectrum_rejects_bad_input(maps, kwargs, message):
    with pytest.raises(ValueError, match=message):
        power_spectrum(maps, **kwargs)


# ---------------------------------------------------------------------------------------------
# chi2
# ---------------------------------------------------------------------------------------------


def test_leave_one_out_chi2_known_answer():
    """⟨χ²_r⟩ of 15 Gaussian vectors, each against the other 14, is (1 + 1/14)(13/11) n_k/(n_k − 1).

    Per k: x_i − mean_others ~ N(0, σ²(1 + 1/14)), independent of the others' sample variance s²
    (ddof = 1, 13 degrees of freedom), and E[σ²/s²] = 13/11 (inverse χ² mean ν/(ν − 2)). Summing
    n_k independent bins and dividing by n_k − 1: 1.2762 for n_k = 128, the seed paper's 1.27.
    Monte Carlo standard error here ~0.0007; ddof = 0 would give 1.374 and dividing by n_k 1.266.
    """
    rng = np.random.default_rng(5)
    n_k = 128
    expected = (1 + 1 / 14) * (13 / 11) * n_k / (n_k - 1)
    assert expected == pytest.approx(1.2762, abs=1e-4)
    trials = rng.standard_normal((500, 15, n_k))
    floor = np.array([leave_one_out_chi2(t) for t in trials])  # (500, 15)
    assert floor.shape == (500, 15)
    assert floor.mean() == pytest.approx(expected, abs=0.004)


def test_reduced_chi2_known_answer():
    """Samples from the reference distribution score (1 + 1/M)(M − 1)/(M − 3) n_k/(n_k − 1).

    Derivation, per k bin with reference values r_1..r_M ~ N(μ, σ²) and an independent sample
    s ~ N(μ, σ²): s − r̄ ~ N(0, σ²(1 + 1/M)) is independent of the sample variance
    S² (ddof = 1), and (M − 1) S²/σ² ~ χ²_{M−1}, so E[σ²/S²] = (M − 1)/(M − 3). Hence
    E[(s − r̄)²/S²] = (1 + 1/M)(M − 1)/(M − 3); summing n_k independent bins and dividing by
    n_k − 1 gives the result. For M = 10, n_k = 8: 1.616 (ddof = 0 would give 1.796, dividing by
    n_k 1.414, dropping 1/M 1.469). Monte Carlo standard error here ~0.01.
    """
    rng = np.random.default_rng(6)
    n_k, m, n_trials = 8, 10, 2000
    expected = (1 + 1 / m) * (m - 1) / (m - 3) * n_k / (n_k - 1)
    reference = rng.standard_normal((n_trials, m, n_k))
    samples = rng.standard_normal((n_trials, 20, n_k))
    chi2 = np.array([reduced_chi2(s, r) for s, r in zip(samples, reference)])  # (trials, 20)
    assert chi2.shape == (n_trials, 20)
    assert chi2.mean() == pytest.approx(expected, abs=0.05)


def test_reduced_chi2_by_hand_and_shapes():
    reference = np.array([[1.0, 10.0], [3.0, 14.0], [2.0, 12.0]])  # mean (2, 12), σ (1, 2)
    power = np.array([[4.0, 12.0], [2.0, 16.0]])
    np.testing.assert_allclose(reduced_chi2(power, reference), [4.0, 4.0])
    assert reduced_chi2(power[0], reference).shape == ()
    # Leave-one-out of row 0 against rows 1, 2: mean (2.5, 13), σ (0.707, 1.414).
    expected_0 = ((1 - 2.5) ** 2 / 0.5 + (10 - 13) ** 2 / 2.0) / 1
    assert leave_one_out_chi2(reference)[0] == pytest.approx(expected_0)


def test_z_scores_are_welch_t_statistics():
    """z(k) is Welch's t statistic; for equal distributions it is ~N(0, 1) over k."""
    rng = np.random.default_rng(7)
    power = rng.normal(5.0, 1.0, size=(50, 2000))
    reference = rng.normal(5.0, 2.0, size=(40, 2000))
    z = z_scores(power, reference)
    welch = scipy.stats.ttest_ind(power, reference, axis=0, equal_var=False).statistic
    np.testing.assert_allclose(z, welch, rtol=1e-10)
    assert abs(z.mean()) < 0.1 and 0.93 < z.std() < 1.08
    shifted = z_scores(power + 0.5, reference)  # true z = 0.5 / sqrt(1/50 + 4/40) = 1.443
    assert shifted.mean() == pytest.approx(0.5 / np.sqrt(1 / 50 + 4 / 40), abs=0.1)


def test_chi2_errors():
    with pytest.raises(ValueError, match="k bins"):
        reduced_chi2(np.ones((2, 5)), np.ones((4, 6)))
    with pytest.raises(ValueError, match="zero scatter"):
        reduced_chi2(np.ones((2, 5)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="at least 3"):
        leave_one_out_chi2(np.random.default_rng(0).normal(size=(2, 5)))


# ---------------------------------------------------------------------------------------------
# histograms
# ---------------------------------------------------------------------------------------------


def test_pixel_histograms_integrate_to_one_and_match_numpy():
    rng = np.random.default_rng(8)
    true_maps = rng.normal(12.0, 0.3, size=(6, 32, 32))
    generated = rng.normal(12.2, 0.4, size=(4, 32, 32))
    edges = histogram_bins(true_maps, generated, n_bins=30)
    assert edges.shape == (31,)
    assert edges[0] == min(true_maps.min(), generated.min())
    assert edges[-1] == max(true_maps.max(), generated.max())

    hist = pixel_histograms(generated, edges)
    width = np.diff(edges)
    np.testing.assert_allclose((hist.density * width).sum(axis=1), 1.0, rtol=1e-12)
    for i, field in enumerate(generated):
        np.testing.assert_allclose(hist.density[i], np.histogram(field, edges, density=True)[0])
    np.testing.assert_allclose(hist.mean, hist.density.mean(axis=0))
    np.testing.assert_allclose(hist.std, hist.density.std(axis=0, ddof=1))
    np.testing.assert_allclose(hist.pixel_mean, generated.mean(axis=(1, 2)))
    np.testing.assert_allclose(hist.pixel_std, generated.std(axis=(1, 2)))
    np.testing.assert_allclose(hist.centers, 0.5 * (edges[1:] + edges[:-1]))
    assert hist.pixel_mean.mean() == pytest.approx(12.2, abs=0.02)

    # Edges that miss part of a map: the integral is the fraction of its pixels inside.
    narrow = pixel_histograms(generated[0], np.linspace(12.2, 20.0, 11))
    inside = np.mean(generated[0] >= 12.2)
    assert (narrow.density * np.diff(narrow.edges)).sum() == pytest.approx(inside)
    assert narrow.density.shape == (1, 10) and np.all(narrow.std == 0)


def test_histogram_errors():
    with pytest.raises(ValueError, match="n_bins"):
        histogram_bins(np.ones((2, 4, 4)), n_bins=0)
    with pytest.raises(ValueError, match="at least one"):
        histogram_bins()
    with pytest.raises(ValueError, match="increasing"):
        pixel_histograms(np.ones((4, 4)), [0.0, 2.0, 1.0])


# ---------------------------------------------------------------------------------------------
# 1P response
# ---------------------------------------------------------------------------------------------


def test_response_ratio_cancels_seed_variance():
    """With shared seeds a multiplicative response is recovered exactly from noisy spectra."""
    rng = np.random.default_rng(9)
    n_values, n_seeds, n_k = 3, 5, 16
    k = np.linspace(0.3, 8.0, n_k)
    fiducial = k**-2 * rng.lognormal(0.0, 0.5, size=(n_seeds, n_k))  # large seed scatter
    factor = 1.0 + np.array([-0.2, 0.1, 0.3])[:, None] * np.log(k)[None, :]  # (n_values, n_k)
    power = factor[:, None, :] * fiducial[None]
    resp = response_ratio(power, fiducial)
    assert resp.ratio.shape == (3, 5, 16) and resp.mean.shape == resp.std.shape == (3, 16)
    np.testing.assert_allclose(resp.mean, factor, rtol=1e-12)
    np.testing.assert_allclose(resp.std, 0.0, atol=1e-12)

    noisy = response_ratio(power * rng.lognormal(0.0, 0.05, size=power.shape), fiducial)
    np.testing.assert_allclose(noisy.std, noisy.ratio.std(axis=1, ddof=1))
    assert response_agreement(noisy, noisy) == 0.0
    with pytest.raises(ValueError, match="zero"):
        response_agreement(resp, resp)


def test_response_agreement_definition():
    shape = (2, 4)
    ref = Response(ratio=np.ones((2, 3, 4)), mean=np.ones(shape), std=np.full(shape, 0.3))
    gen = Response(ratio=np.ones((2, 3, 4)), mean=np.ones(shape) + 0.5, std=np.full(shape, 0.4))
    # Every (v, k) differs by 0.5 = one combined σ = sqrt(0.3² + 0.4²): A = 1 exactly.
    assert response_agreement(gen, ref) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="does not match"):
        response_agreement(gen, Response(ref.ratio, ref.mean[:1], ref.std[:1]))
    with pytest.raises(ValueError, match="positive"):
        response_ratio(np.ones((2, 3, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="does not match"):
        response_ratio(np.ones((2, 3, 4)), np.ones((2, 4)))


# ---------------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------------


def disk(shape, centre, radius):
    y, x = np.indices(shape)
    dy = (y - centre[0] + shape[0] / 2) % shape[0] - shape[0] / 2  # periodic distance
    dx = (x - centre[1] + shape[1] / 2) % shape[1] - shape[1] / 2
    return (dy**2 + dx**2) <= radius**2


def test_two_blobs_one_split_across_the_edge_are_two_regions():
    shape = (32, 32)
    field = np.zeros(shape)
    field[disk(shape, (10, 12), 3)] = 1.0
    field[disk(shape, (20, 0), 3)] = 1.0  # split across the left/right edge
    assert scipy.ndimage.label(field > 0.5)[1] == 3  # a non-periodic labelling sees 3
    regions = connected_regions(field, 0.5)
    assert regions.n_regions == 2
    assert regions.sizes.tolist() == [29, 29]
    assert set(np.unique(regions.labels)) == {0, 1, 2}

    corner = np.zeros(shape)
    corner[disk(shape, (0, 0), 4)] = 1.0  # four pieces, one in each corner
    assert connected_regions(corner, 0.5).n_regions == 1


def test_connected_regions_match_a_periodic_pixel_graph():
    """Independent check: connected components of the explicit 4-neighbour graph on the torus."""
    rng = np.random.default_rng(11)
    height, width = 24, 20
    for field in smooth_maps(rng, (3, height, width), sigma_pix=1.5):
        mask = field > 0.1
        index = np.arange(height * width).reshape(height, width)
        rows, cols = [], []
        for axis in (0, 1):
            neighbour = np.roll(index, -1, axis=axis)
            both = mask & np.roll(mask, -1, axis=axis)
            rows.append(index[both])
            cols.append(neighbour[both])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        graph = scipy.sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(index.size,) * 2)
        _, comp = scipy.sparse.csgraph.connected_components(graph, directed=False)
        comp = comp[mask.ravel()]
        expected_sizes = np.sort(np.unique(comp, return_counts=True)[1])[::-1]

        regions = connected_regions(field, 0.1)
        assert regions.n_regions == expected_sizes.size
        np.testing.assert_array_equal(regions.sizes, expected_sizes)
        np.testing.assert_array_equal(np.bincount(regions.labels.ravel())[1:], regions.sizes)


def test_bar_is_a_filament_and_disk_is_a_node():
    shape = (48, 48)
    field = np.zeros(shape)
    field[10:12, 4:20] = 1.0  # 16 x 2 bar: axis ratio exactly 8
    field[disk(shape, (32, 30), 5)] = 1.0
    stats = structure_statistics(field, thresholds=[1.0])
    assert stats.n_regions.tolist() == [2]
    assert stats.n_filaments.tolist() == [1] and stats.n_nodes.tolist() == [1]
    assert stats.area_fraction[0] == pytest.approx(np.mean(field > 0.5))

    # The elongation of an ℓ x w bar is ℓ / w exactly: 8 x 2 -> 4.
    bar = np.zeros(shape)
    bar[20:22, 30:38] = 1.0
    assert structure_statistics(bar, [1.0], filament_elongation=3.9).n_filaments[0] == 1
    assert structure_statistics(bar, [1.0], filament_elongation=4.1).n_filaments[0] == 0
    assert structure_statistics(bar, [1.0], min_filament_pixels=17).n_filaments[0] == 0


def test_shapes_are_unwrapped_across_the_edge():
    """A disk split by the edge is still a node and a split bar still a filament (not two halves
    a box apart, which would look elongated / be counted twice)."""
    shape = (40, 40)
    field = np.zeros(shape)
    field[disk(shape, (20, 39), 5)] = 1.0
    bar = np.zeros(shape)
    bar[0, np.arange(-6, 6) % 40] = 1.0
    bar[39, np.arange(-6, 6) % 40] = 1.0  # 12 x 2 bar through the corner
    stats = structure_statistics(np.stack([field, bar]), thresholds=[1.0])
    assert stats.n_regions[:, 0].tolist() == [1, 1]
    assert stats.n_nodes[:, 0].tolist() == [1, 0]
    assert stats.n_filaments[:, 0].tolist() == [0, 1]


def test_structure_statistics_invariant_under_periodic_shift():
    rng = np.random.default_rng(12)
    maps = smooth_maps(rng, (4, 48, 48), sigma_pix=1.5)
    thresholds = (0.5, 1.0, 2.0, 3.0)
    base = structure_statistics(maps, thresholds)
    rolled = structure_statistics(np.roll(maps, (7, 30), axis=(1, 2)), thresholds)
    assert base.n_regions.shape == (4, 4)
    for name in ("n_regions", "n_filaments", "n_nodes"):
        np.testing.assert_array_equal(getattr(rolled, name), getattr(base, name))
    np.testing.assert_array_equal(rolled.area_fraction, base.area_fraction)
    np.testing.assert_allclose(rolled.mean_size, base.mean_size)
    assert np.all(base.n_regions[:, 0] > 0) and np.all(np.diff(base.area_fraction, axis=1) < 0)
    assert base.n_filaments[:, 1].sum() > 0  # a smoothed random field has some elongated regions
    # Gaussian field: the fraction above 1σ is ≈ 1 − Φ(1) = 0.159.
    assert base.area_fraction[:, 1].mean() == pytest.approx(0.159, abs=0.04)


def test_structure_single_map_and_empty_threshold():
    rng = np.random.default_rng(13)
    field = smooth_maps(rng, (1, 32, 32))[0]
    stats = structure_statistics(field, thresholds=[1.0, 50.0])
    assert stats.n_regions.shape == (2,) and stats.n_regions[1] == 0
    assert np.isnan(stats.mean_size[1]) and stats.area_fraction[1] == 0.0
    regions = connected_regions(field, field.mean() + field.std())
    assert regions.n_regions == stats.n_regions[0]
    assert stats.mean_size[0] == pytest.approx(regions.sizes.mean())
    with pytest.raises(ValueError, match="field"):
        connected_regions(np.zeros((2, 4, 4)), 0.0)
    with pytest.raises(ValueError, match="thresholds"):
        structure_statistics(field, thresholds=[np.nan])
