"""Grid posterior: contour levels, marginals and intervals on an analytic Gaussian; the minimum of
infer() follows the truth (an analytic denoiser whose VLB is minimised at a chosen θ); JSON round
trip; temperature; progress, cancel and bad arguments."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import chi2
from torch import nn

from explorer.data.transform import Normalization
from explorer.inference import LEVELS, InferenceCancelled, Posterior, infer, interval_68, marginals
from explorer.inference.grid import DEFAULT_COARSE, DEFAULT_FINE, scan
from explorer.inference.vlb import field_seed, term_weights
from explorer.model.schedule import NoiseSchedule, seed_betas
from explorer.model import Denoiser

SCHEDULE = NoiseSchedule.from_betas(seed_betas(1000))
NORM = Normalization(9.0, 15.0)
MU, SIGMA, RHO = (0.3, 0.8), (0.03, 0.05), 0.6


def gaussian_chi2(om, s8, mu=MU, sigma=SIGMA, rho=RHO):
    x = (om[:, None] - mu[0]) / sigma[0]
    y = (s8[None, :] - mu[1]) / sigma[1]
    return (x ** 2 - 2 * rho * x * y + y ** 2) / (1 - rho ** 2)


def test_levels_are_chi2_quantiles_for_two_parameters():
    np.testing.assert_allclose(LEVELS, chi2.ppf([0.6827, 0.9545, 0.9973], df=2), atol=0.01)


def test_analytic_gaussian_marginals_intervals_and_contours():
    om = np.linspace(MU[0] - 7 * SIGMA[0], MU[0] + 7 * SIGMA[0], 281)
    s8 = np.linspace(MU[1] - 7 * SIGMA[1], MU[1] + 7 * SIGMA[1], 241)
    post = Posterior.from_grid(om, s8, gaussian_chi2(om, s8) + 123.0)  # constant offsets do not matter
    assert post.delta_chi2.min() == 0
    for m in (post.marginal_omega_m, post.marginal_sigma_8):
        assert m.sum() == pytest.approx(1.0)
    for name, mu, sigma in zip(("omega_m", "sigma_8"), MU, SIGMA):
        e = post.estimates[name]
        assert e["max"] == pytest.approx(mu, abs=0.01 * sigma)
        assert e["mean"] == pytest.approx(mu, abs=0.01 * sigma)
        assert e["std"] == pytest.approx(sigma, rel=0.01)  # the correlation does not narrow a marginal
        assert e["lo68"] == pytest.approx(mu - sigma, abs=0.02 * sigma)
        assert e["hi68"] == pytest.approx(mu + sigma, abs=0.02 * sigma)
        assert e["lo95"] == pytest.approx(mu - 2 * sigma, abs=0.03 * sigma)
        assert e["hi95"] == pytest.approx(mu + 2 * sigma, abs=0.03 * sigma)
    p = np.exp(-post.delta_chi2 / 2)
    p /= p.sum()
    for level, mass in zip(LEVELS, (0.6827, 0.9545, 0.9973)):
        assert p[post.delta_chi2 <= level].sum() == pytest.approx(mass, abs=0.005)
    # the tilted ellipse: at Ωₘ = μ + σ the σ₈ minimum moves by ρ σ₈
    i = np.argmin(np.abs(om - (MU[0] + SIGMA[0])))
    assert s8[np.argmin(post.delta_chi2[i])] == pytest.approx(MU[1] + RHO * SIGMA[1], abs=s8[1] - s8[0])


def test_marginals_and_interval_helpers():
    d = np.add.outer(np.arange(5.0) ** 2, np.zeros(3))
    m1, m2 = marginals(d)
    assert m1.shape == (5,) and m2.shape == (3,)
    np.testing.assert_allclose(m2, 1 / 3)
    np.testing.assert_allclose(m1, np.exp(-np.arange(5.0) ** 2 / 2) / np.exp(-np.arange(5.0) ** 2 / 2).sum())
    x = np.linspace(-6, 6, 1201)
    lo, hi = interval_68(x, np.exp(-x ** 2 / 2))
    assert lo == pytest.approx(-1, abs=0.01) and hi == pytest.approx(1, abs=0.01)
    with pytest.raises(ValueError):
        interval_68(x, -np.ones_like(x))
    with pytest.raises(ValueError):
        marginals(np.ones(3))


def test_temperature_widens_and_round_trip():
    om, s8 = np.linspace(0.1, 0.5, 81), np.linspace(0.6, 1.0, 81)
    post = Posterior.from_grid(om, s8, gaussian_chi2(om, s8, sigma=(0.02, 0.03), rho=0), truth=(0.31, 0.79),
                               coarse=Posterior.from_grid(om[::10], s8[::10], gaussian_chi2(om[::10], s8[::10])))
    hot = post.retempered(4.0)
    assert hot.temperature == 4.0
    assert hot.estimates["omega_m"]["std"] == pytest.approx(2 * post.estimates["omega_m"]["std"], rel=0.02)
    np.testing.assert_allclose(hot.delta_chi2 * 4, post.delta_chi2)
    np.testing.assert_allclose(hot.retempered(1.0).delta_chi2, post.delta_chi2)
    back = Posterior.from_dict(json.loads(json.dumps(post.to_dict())))
    np.testing.assert_array_equal(back.delta_chi2, post.delta_chi2)
    assert back.estimates == post.estimates and back.truth == post.truth and back.levels == LEVELS
    np.testing.assert_array_equal(back.coarse.delta_chi2, post.coarse.delta_chi2)
    # per-parameter temperatures: each marginal widens by √τ_i, the 2D surface by τ alone
    mixed = post.retempered(4.0, (9.0, 1.0))
    np.testing.assert_allclose(mixed.delta_chi2, hot.delta_chi2)
    assert mixed.estimates["omega_m"]["std"] == pytest.approx(3 * post.estimates["omega_m"]["std"], rel=0.02)
    assert mixed.estimates["sigma_8"]["std"] == pytest.approx(post.estimates["sigma_8"]["std"], rel=0.02)
    assert mixed.coarse.marginal_temperatures == (9.0, 1.0) and "Ωₘ 9" in mixed.temperature_label()
    assert Posterior.from_dict(json.loads(json.dumps(mixed.to_dict()))).estimates == mixed.estimates
    with pytest.raises(ValueError, match="positive"):
        post.retempered(4.0, (9.0, 0.0))
    # Δχ² at a point: this grid, then the coarse grid, then +inf
    assert post.delta_chi2_at(om[40], s8[40]) == pytest.approx(post.delta_chi2[40, 40])
    assert post.delta_chi2_truth() == pytest.approx((0.01 / 0.02) ** 2 + (0.01 / 0.03) ** 2, rel=0.05)
    assert post.delta_chi2_at(0.05, 0.8) == float("inf")


def test_fine_window_holds_the_widest_marginal():
    # a window chosen for τ = 1 cuts off a marginal retempered to τ_Ωm = 9 (std 3 x 0.015)
    def objective(theta, progress):
        return 0.5 * np.array([[gaussian_chi2(np.array([o]), np.array([s]), sigma=(0.015, 0.05), rho=0)[0, 0] for o, s in theta]])

    kw = dict(coarse=(9, 9), fine=(9, 9), interpolate_to=None, temperature=1.0, marginal_temperatures=(9.0, 1.0))
    box = ((0.1, 0.5), (0.6, 1.0))
    cut = scan(objective, box, window_temperature=1.0, **kw)
    wide = scan(objective, box, **kw)
    assert wide.settings["window"] == scan(objective, box, **{**kw, "window_temperature": 9.0}).settings["window"]
    (c_lo, c_hi), (w_lo, w_hi) = cut.settings["window"][0], wide.settings["window"][0]
    assert w_lo < c_lo and w_hi > c_hi
    assert wide.estimates["omega_m"]["std"] == pytest.approx(0.045, rel=0.03)
    assert cut.estimates["omega_m"]["std"] < 0.97 * wide.estimates["omega_m"]["std"]


def test_coarse_preview_comes_before_the_fine_grid_and_covers_the_prior():
    """on_coarse gets the coarse scan, interpolated over the whole box, before any fine point is
    evaluated; its minimum is near the truth to within a coarse step, and it is labelled."""
    calls = []

    def objective(theta, progress):
        calls.append(len(theta))
        return 0.5 * gaussian_chi2(theta[:, 0], theta[:, 1]).diagonal()[None, :]

    seen = []
    box = ((0.1, 0.5), (0.6, 1.0))
    post = scan(objective, box, coarse=(9, 9), fine=(9, 9), interpolate_to=(41, 41), temperature=2.0,
                on_coarse=lambda p: seen.append((list(calls), p)), method="vlb", truth=(0.31, 0.79))
    assert len(seen) == 1
    before, first = seen[0]
    assert before == [82]  # only the coarse points (and the truth) had been evaluated
    assert first.omega_m[[0, -1]].tolist() == [0.1, 0.5] and first.sigma_8[[0, -1]].tolist() == [0.6, 1.0]
    assert first.delta_chi2.shape == (41, 41) and first.settings["stage"] == "coarse"
    assert first.temperature == 2.0 and first.truth == (0.31, 0.79) and first.n_evaluations == 0
    assert any("coarse" in n for n in first.notes) and not any("coarse" in n for n in post.notes)
    step = (0.4 / 8, 0.4 / 8)
    for name, mu, h in zip(("omega_m", "sigma_8"), MU, step):
        assert abs(first.estimates[name]["max"] - mu) <= h
        assert abs(first.estimates[name]["mean"] - post.estimates[name]["mean"]) < h


def test_a_given_window_skips_the_coarse_scan_and_matches_the_full_scan():
    """scan(window=window_from(a wider posterior of the same field)): only the fine grid and the truth
    are evaluated, and the posterior equals the coarse-to-fine scan's."""
    from explorer.inference.grid import window_from

    calls = []

    def objective(theta, progress):
        calls.append(len(theta))
        return 0.5 * gaussian_chi2(theta[:, 0], theta[:, 1]).diagonal()[None, :]

    box = ((0.1, 0.5), (0.6, 1.0))
    kw = dict(fine=(9, 9), interpolate_to=(41, 41), temperature=2.0, evaluations_per_point=8, truth=(0.31, 0.79))
    full = scan(objective, box, coarse=(9, 9), **kw)
    wide = scan(objective, box, coarse=(9, 9), **{**kw, "temperature": 6.0})  # a faster, less sure estimate
    window = window_from(wide)
    for (lo, hi), mu, sd in zip(window, MU, SIGMA):  # its 3σ box (τ 6) holds this one's (τ 2)
        assert lo < mu - 3.4 * sd * 2 ** 0.5 and hi > mu + 3.4 * sd * 2 ** 0.5
    calls.clear()
    given = scan(objective, box, window=window, **kw)
    assert calls == [82] and given.n_evaluations == 82 * 8 and given.coarse is None  # the fine grid and the truth
    assert given.settings["window_given"] and given.settings["coarse"] is None
    for name in ("omega_m", "sigma_8"):
        assert given.estimates[name]["mean"] == pytest.approx(full.estimates[name]["mean"], abs=2e-3)
        assert given.estimates[name]["std"] == pytest.approx(full.estimates[name]["std"], rel=0.02)
    assert given.truth_delta_chi2 == pytest.approx(full.truth_delta_chi2, abs=0.02)
    with pytest.raises(ValueError, match="increasing ranges"):
        scan(objective, box, window=((0.4, 0.2), (0.6, 1.0)), **kw)


def test_a_maximum_on_the_prior_edge_is_said_plainly():
    box = ((0.1, 0.5), (0.6, 1.0))
    kw = dict(coarse=(9, 9), fine=(9, 9), interpolate_to=None)

    def at(mu):
        return lambda theta, progress: 0.5 * np.array([[gaussian_chi2(np.array([o]), np.array([s]), mu=mu,
                                                                      sigma=(0.03, 0.03), rho=0)[0, 0]
                                                        for o, s in theta]])

    inside = scan(at((0.3, 0.8)), box, **kw)
    assert not any("prior's edge" in n for n in inside.notes)
    beyond = scan(at((0.56, 0.8)), box, **kw)  # the field prefers Ωₘ above the box
    edge = [n for n in beyond.notes if "prior's edge" in n]
    assert len(edge) == 1 and "Ωₘ = 0.5" in edge[0]
    low = scan(at((0.3, 0.55)), box, **kw)
    assert any("σ₈ = 0.6" in n for n in low.notes)


# ---- infer() with an analytic denoiser ---------------------------------------------------------

PATTERN = np.random.default_rng(0).normal(0, 0.3, (16, 16))
PATTERN -= PATTERN.mean()
S_OM, S_S8 = 0.02, 0.03  # the posterior widths the denoiser below implies
K_A = np.sqrt(SCHEDULE.betas[0] / (PATTERN ** 2).sum()) / S_OM
K_B = np.sqrt(SCHEDULE.betas[0] / PATTERN.size) / S_S8


def amplitude(theta):
    return 1.0 + K_A * (theta[..., 0] - 0.3)


def offset(theta):
    return K_B * (theta[..., 1] - 0.8)


class AnalyticDenoiser(nn.Module):
    """ε̂ making x̂₀(θ) = a(θ) P + b(θ): L_0(θ) = Σ (x₀ − x̂₀(θ))²/(2β₁) + const, so a field
    a(θ*) P + b(θ*) has −2ΔlnL = (Ωₘ − Ωₘ*)²/S_OM² + (σ₈ − σ₈*)²/S_S8²."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(prediction_type="epsilon")

    def forward(self, x, t, theta):
        x, theta = x.double(), theta.double()
        x0 = amplitude(theta)[:, None, None, None] * torch.tensor(PATTERN) + offset(theta)[:, None, None, None]
        ab = torch.tensor(SCHEDULE.alpha_bar)[t][:, None, None, None]
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt()


def loaded(metadata=None, resolution=16):
    return Denoiser(AnalyticDenoiser(), SCHEDULE, NORM, metadata={**(metadata or {}), "resolution": resolution})


def field_at(om, s8):
    x0 = amplitude(np.array([om, s8])) * PATTERN + offset(np.array([om, s8]))
    return (x0 + 1) / 2 * (NORM.hi - NORM.lo) + NORM.lo  # log10 Σ


def test_infer_minimum_moves_with_the_truth():
    posts = [infer(loaded(), field_at(om, s8), kind="log10", truth=(om, s8), terms="L0", n_noise=1)
             for om, s8 in ((0.22, 0.72), (0.38, 0.9))]
    lo, hi = posts
    assert lo.estimates["omega_m"]["max"] < hi.estimates["omega_m"]["max"]
    assert lo.estimates["sigma_8"]["max"] < hi.estimates["sigma_8"]["max"]
    for post in posts:
        for j, (name, s) in enumerate((("omega_m", S_OM), ("sigma_8", S_S8))):
            e = post.estimates[name]
            assert e["max"] == pytest.approx(post.truth[j], abs=0.1 * s)
            assert e["std"] == pytest.approx(s, rel=0.1)
            assert e["lo68"] < post.truth[j] < e["hi68"]
        assert post.truth_delta_chi2 == pytest.approx(0, abs=0.05)
        assert post.n_evaluations == DEFAULT_COARSE[0] * DEFAULT_COARSE[1] + 1 + DEFAULT_FINE[0] * DEFAULT_FINE[1]
        assert post.coarse is not None and post.coarse.omega_m.size == DEFAULT_COARSE[0]
        assert post.method == "vlb" and post.terms == "L0" and post.temperature == 1.0
        assert any("no calibration" in n for n in post.notes)


def test_infer_uses_the_stored_temperature_for_matching_settings():
    cal = {"calibration": {"temperature": 4.0, "terms": "L0", "n_noise": 1}}
    f = field_at(0.3, 0.8)
    post = infer(loaded(cal), f, kind="log10", terms="L0", n_noise=1)
    assert post.temperature == 4.0 and not post.notes
    assert post.estimates["omega_m"]["std"] == pytest.approx(2 * S_OM, rel=0.1)
    assert infer(loaded(cal), f, kind="log10", terms="L0", n_noise=1, calibrated=False).temperature == 1.0
    other = infer(loaded(cal), f, kind="log10", terms="L0", n_noise=2, coarse=(3, 3), fine=(3, 3))
    assert other.temperature == 1.0 and "n_noise" in other.notes[0]
    default = infer(loaded(cal), f, kind="log10", coarse=(3, 3), fine=(3, 3))  # other terms
    assert default.temperature == 1.0 and "terms" in default.notes[0]
    # stored marginal temperatures set the marginals; the 2D surface keeps τ
    cal["calibration"]["marginal_temperatures"] = {"omega_m": 9.0, "sigma_8": 1.0}
    mixed = infer(loaded(cal), f, kind="log10", terms="L0", n_noise=1)
    np.testing.assert_allclose(mixed.delta_chi2, post.delta_chi2)
    assert mixed.estimates["omega_m"]["std"] == pytest.approx(3 * S_OM, rel=0.1)
    assert mixed.estimates["sigma_8"]["std"] == pytest.approx(S_S8, rel=0.1)
    cal["calibration"]["marginal_temperatures"] = {"omega_m": -1.0, "sigma_8": 1.0}
    broken = infer(loaded(cal), f, kind="log10", terms="L0", n_noise=1, coarse=(3, 3), fine=(3, 3))
    assert broken.temperature == 1.0 and "not positive" in broken.notes[0]


def test_stratified_bound_weights_each_term_by_its_stratum():
    # the analytic denoiser gives x̂₀(θ) exactly at every t, so 2 L_k(θ) = c1_k² / β̃_k Σ (x̂₀(θ) − x₀)²
    # (c1 the posterior-mean coefficient of x₀); "vlb:3" must weight each by its stratum width
    star, other = (0.3, 0.8), (0.35, 0.75)
    post = infer(loaded(), field_at(*star), kind="log10", terms="vlb:3", n_noise=1, coarse=(5, 5),
                 fine=(3, 3), truth=other)
    x0 = lambda th: amplitude(np.array(th)) * PATTERN + offset(np.array(th))
    ts, w = term_weights("vlb:3", SCHEDULE.T)
    c = SCHEDULE.posterior_mean_coef1[ts] ** 2 / SCHEDULE.posterior_variance[ts]
    expected = (w * c).sum() * ((x0(other) - x0(star)) ** 2).sum()
    assert post.truth_delta_chi2 == pytest.approx(expected, rel=1e-4)  # float32 network input
    assert post.settings["weights"] == w.tolist() and post.n_evaluations == 3 * (25 + 1 + 9)


def test_infer_progress_cancel_and_per_timestep():
    f = field_at(0.3, 0.8)
    seen = []
    first = []
    post = infer(loaded(), f, kind="log10", terms="sum:2", n_noise=1, coarse=(3, 3), fine=(4, 4),
                 interpolate_to=None, per_timestep=True, progress=lambda d, t: seen.append((d, t)),
                 on_coarse=lambda p: first.append((seen[-1], p)))
    assert seen[-1] == (2 * (9 + 16), 2 * (9 + 16)) == (post.n_evaluations,) * 2
    assert [done for done, _ in first] == [(2 * 9, 2 * (9 + 16))]  # after the coarse points, once
    assert first[0][1].n_evaluations == 2 * 9 and first[0][1].terms == "sum:2"
    assert set(post.per_timestep) == {"L0", "L1"} and post.per_timestep["L0"].shape == (4, 4)
    with pytest.raises(InferenceCancelled):
        infer(loaded(), f, kind="log10", cancel=lambda: True)


class BiasedDenoiser(AnalyticDenoiser):
    """The analytic denoiser plus a θ-dependent error times x_t: its terms depend on the noise draw."""

    def forward(self, x, t, theta):
        return super().forward(x, t, theta) + 0.05 * theta.double()[:, :1, None, None] * x.double()


def test_noise_seed_is_the_fields_own_by_default():
    lm = loaded()
    lm.network = BiasedDenoiser()
    kw = dict(kind="log10", terms="vlb:2", coarse=(3, 3), fine=(4, 4), interpolate_to=None)
    f, g = field_at(0.3, 0.8), field_at(0.35, 0.75)
    a, again = infer(lm, f, **kw), infer(lm, f, **kw)
    assert a.settings["seed"] == field_seed(f) != field_seed(g) == infer(lm, g, **kw).settings["seed"]
    assert 0 <= field_seed(f) < 2 ** 63 and field_seed(f) == field_seed(f.astype(np.float64).copy())
    np.testing.assert_array_equal(a.delta_chi2, again.delta_chi2)  # same field: same draws
    explicit = infer(lm, f, seed=field_seed(f), **kw)
    np.testing.assert_array_equal(a.delta_chi2, explicit.delta_chi2)
    other = infer(lm, f, seed=field_seed(f) + 1, **kw)  # another draw moves the surface
    assert other.settings["seed"] == field_seed(f) + 1
    assert np.abs(other.delta_chi2 - a.delta_chi2).max() > 1e-3


@pytest.mark.parametrize("kwargs, match", [
    ({"truth": (0.6, 0.8)}, "omega_m"),
    ({"truth": (0.3, 0.5)}, "sigma_8"),
    ({"terms": "L-1"}, "terms"),
    ({"coarse": (2, 9)}, "coarse"),
    ({"temperature": 0.0}, "temperature"),
])
def test_infer_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        infer(loaded(), field_at(0.3, 0.8), kind="log10", **kwargs)


def test_infer_refuses_a_field_smaller_than_the_model():
    with pytest.raises(ValueError, match="smaller"):
        infer(loaded(resolution=32), field_at(0.3, 0.8), kind="log10")
