"""bench/bench_term_weights.py: the local fits and the noise/field split of the score's spread that
the README's "Where the temperature comes from" rests on, against synthetic terms with known answers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_term_weights.py"
spec = importlib.util.spec_from_file_location("bench_term_weights", PATH)
btw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(btw)

RANGES = ((0.1, 0.5), (0.6, 1.0))


def test_stencil_stays_inside_the_prior_and_keeps_its_spacing():
    pts = btw.stencil((0.105, 0.99), np.array([0.025, 0.02]), RANGES)
    assert pts.shape == (9, 2)
    assert pts[:, 0].min() >= 0.1 - 1e-12 and pts[:, 1].max() <= 1.0 + 1e-12
    assert np.allclose(np.unique(np.round(np.diff(np.unique(pts[:, 0])), 12)), 0.025)
    assert np.allclose(btw.stencil((0.3, 0.8), np.array([0.025, 0.02]), RANGES)[4], (0.3, 0.8))  # centre = truth


def test_quadratic_fit_gives_gradient_and_hessian_at_the_truth_even_off_centre():
    """A known quadratic −ln L; the truth off the stencil's centre (an edge field): exact g and H there."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(2, 2))
    Hk = A @ A.T * 100 + np.diag([50.0, 20.0])
    c = np.array([0.31, 0.82])

    def f(th):
        d = th - c
        return 7.0 + np.einsum("ni,ij,nj->n", d, Hk, d) / 2 + d @ np.array([3.0, -2.0])

    truth = np.array([0.108, 0.75])
    pts = btw.stencil(truth, np.array([0.025, 0.025]), RANGES)
    assert not np.allclose(pts[4], truth)
    g, H = btw.quad_fit(pts, np.stack([f(pts), 2 * f(pts)]), truth)
    g_true = Hk @ (truth - c) + np.array([3.0, -2.0])
    assert np.allclose(g[0], g_true) and np.allclose(g[1], 2 * g_true)
    assert np.allclose(H[0], Hk) and np.allclose(H[1], 2 * Hk)


def _split(rng, n, H, field_cov, noise_cov):
    """Synthetic per-term fits of one replicate pair: K = 1, scores = field part (shared) + noise."""
    field = rng.multivariate_normal([0, 0], field_cov, n)
    g0 = field + rng.multivariate_normal([0, 0], noise_cov, n)
    g1 = field + rng.multivariate_normal([0, 0], noise_cov, n)
    keys = [f"f{i}" for i in range(n)]
    Hs = np.broadcast_to(H, (n, 1, 2, 2)).copy()
    return ({"g": g0[:, None], "H": Hs, "keys": keys, "truth": np.full((n, 2), 0.3)},
            {"g": g1[:, None], "H": Hs, "keys": keys, "truth": np.full((n, 2), 0.3)})


def test_decompose_recovers_the_noise_and_field_temperatures():
    """Honest likelihood: J = H (τ = 1). Here J_field = 3 H and J_noise = 1 H: τ total 4, noise 1, field 3,
    and the mean of two draws halves the noise part (3.5)."""
    rng = np.random.default_rng(0)
    H = np.array([[400.0, 120.0], [120.0, 900.0]])
    a, b = _split(rng, 20000, H, 3 * H, 1 * H)
    d0 = {"calibration": a, "evaluation": a}
    d1 = {"calibration": b, "evaluation": b}
    rows = btw.decompose(d0, d1, np.array([1.0]))["evaluation"]["local_temperature (omega_m, sigma_8)"]["vlb:8 (widths)"]
    assert np.allclose(rows["tau_total"], 4.0, rtol=0.05)
    assert np.allclose(rows["tau_noise"], 1.0, rtol=0.05)
    assert np.allclose(rows["tau_field"], 3.0, rtol=0.05)
    assert np.allclose(rows["tau_two_draws"], 3.5, rtol=0.05)
    assert np.allclose(rows["information_share"], 1.0)


def test_local_estimate_is_one_newton_step_and_calibration_uses_the_68_percent_quantile():
    H = np.array([[200.0, 0.0], [0.0, 50.0]])
    g = np.array([[20.0, -5.0], [-40.0, 10.0], [0.0, 0.0]])
    split = {"g": g[:, None], "H": np.broadcast_to(H, (3, 1, 2, 2)).copy(), "truth": np.full((3, 2), 0.3)}
    delta, cov, chi2, ok = btw.local(split, np.array([1.0]))
    assert ok.all()
    assert np.allclose(delta, [[-0.1, 0.1], [0.2, -0.2], [0, 0]])
    assert np.allclose(chi2, [20**2 / 200 + 25 / 50, 1600 / 200 + 100 / 50, 0])
    cal = btw.calibrate_local(split, np.array([1.0]))
    assert cal["tau"] == pytest.approx(np.quantile(chi2, 0.6827) / 2.30)
    # scaling every weight by c divides τ by c, and leaves the estimate alone
    cal2 = btw.calibrate_local(split, np.array([2.0]))
    assert cal2["tau"] == pytest.approx(2 * cal["tau"])
    assert np.allclose(btw.local(split, np.array([2.0]))[0], delta)


def test_fourier_masks_keep_the_modes_below_the_cut():
    """A mode with 3 wavelengths across the 25 Mpc/h box has k = 3 · 2π/25 = 0.754 h/Mpc."""
    n = 16
    x = np.arange(n) * 25.0 / n
    wave = np.cos(2 * np.pi * 3 * x / 25.0)[None, :] * np.ones((n, 1))
    power = np.abs(np.fft.fft2(wave)) ** 2 / n**2
    masks = btw.fourier_masks(n, [0.7, 0.8, np.inf])
    assert masks[-1].all() and masks[0].sum() < masks[1].sum() < n * n
    kept = [(power * m).sum() / (wave**2).sum() for m in masks]
    assert kept == pytest.approx([0.0, 1.0, 1.0], abs=1e-12)  # Parseval: all of it or none


def test_band_weights_rebuild_the_terms_from_the_cuts(tmp_path):
    """Weights 1 on every band give the uncut terms; 1 on the first band only, the lowest cut."""
    rng = np.random.default_rng(4)
    Lc = np.cumsum(rng.uniform(0, 1, (3, 2, 9)), axis=0)  # cuts at 1, 2, inf: growing with k_max
    theta = btw.stencil((0.3, 0.8), np.array([0.025, 0.025]), RANGES)
    arrays = {"timesteps": np.array([1, 3]), "widths": np.array([1.0, 4.0]), "k_max": np.array([1.0, 2.0, np.inf])}
    for split in ("calibration", "evaluation"):
        arrays.update({f"{split}__0__L": Lc[-1], f"{split}__0__Lc": Lc, f"{split}__0__theta": theta,
                       f"{split}__0__truth": np.array([0.3, 0.8])})
    np.savez(tmp_path / "t.npz", **arrays)
    full, low = btw.load(tmp_path / "t.npz"), btw.load(tmp_path / "t.npz", cut=0)
    assert np.allclose(btw.load(tmp_path / "t.npz", band_weights=[1, 1, 1])["evaluation"]["g"], full["evaluation"]["g"])
    assert np.allclose(btw.load(tmp_path / "t.npz", band_weights=[1, 0, 0])["evaluation"]["g"], low["evaluation"]["g"])
    half = btw.load(tmp_path / "t.npz", band_weights=[1, 1, 0.5])["evaluation"]["H"]
    mid = btw.load(tmp_path / "t.npz", cut=1)["evaluation"]["H"]
    assert np.allclose(half, (mid + full["evaluation"]["H"]) / 2)
    with pytest.raises(ValueError, match="3 weights"):
        btw.load(tmp_path / "t.npz", band_weights=[1, 1])
