"""VLB terms: Gaussian helpers, L_0 / L_t / L_T against direct numpy formulas, ε vs v prediction,
common random numbers (repeatable, smooth in θ), term choice, progress and cancel."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from explorer.inference import InferenceCancelled, prior_kl, term_timesteps, vlb_terms
from explorer.inference.likelihood import gaussian_log_likelihood, normal_kl
from explorer.inference.vlb import term_noise, term_weights
from explorer.model import Denoiser
from explorer.model.schedule import NoiseSchedule, seed_betas
from explorer.model.unet import ParamUNet

SCHEDULE = NoiseSchedule.from_betas(seed_betas(1000))


def den(network) -> Denoiser:
    """The network (real or analytic) as a Denoiser on the seed schedule."""
    return Denoiser(network, SCHEDULE)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class AnalyticDenoiser(nn.Module):
    """Predicts the noise that makes x̂₀(θ) = a(θ) P + b(θ) exactly, whatever x_t (ε or v output)."""

    def __init__(self, pattern, a, b, prediction_type="epsilon", schedule=SCHEDULE):
        super().__init__()
        self.config = SimpleNamespace(prediction_type=prediction_type)
        self.pattern = torch.as_tensor(pattern, dtype=torch.float64)
        self.a, self.b, self.schedule = a, b, schedule
        self.calls = []

    def forward(self, x, t, theta):
        self.calls.append((x.clone(), t.clone(), theta.clone()))
        x, theta = x.double(), theta.double()
        x0 = self.a(theta)[:, None, None, None] * self.pattern + self.b(theta)[:, None, None, None]
        ab = torch.tensor(self.schedule.alpha_bar)[t][:, None, None, None]
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        if self.config.prediction_type == "v_prediction":
            return ab.sqrt() * eps - (1 - ab).sqrt() * x0
        return eps


class ConstantEps(nn.Module):
    """ε̂ = c, a fixed map, for every input."""

    def __init__(self, c):
        super().__init__()
        self.config = SimpleNamespace(prediction_type="epsilon")
        self.c = torch.as_tensor(c, dtype=torch.float32)
        self.inputs = []

    def forward(self, x, t, theta):
        self.inputs.append((x.clone(), t.clone()))
        return self.c.expand(x.shape[0], 1, *self.c.shape).clone()


def tiny_unet():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                         attention_levels=1, norm_num_groups=4, attention_head_dim=8).eval()


def test_normal_kl_and_log_likelihood_closed_forms():
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 2, 5), rng.uniform(0.1, 2, 5)
    expected = np.log(np.sqrt(v2 / v1)) + (v1 + (m1 - m2) ** 2) / (2 * v2) - 0.5
    np.testing.assert_allclose(normal_kl(m1, np.log(v1), m2, np.log(v2)), expected, rtol=1e-12)
    np.testing.assert_allclose(normal_kl(m1, np.log(v1), m1, np.log(v1)), 0, atol=1e-14)
    kl_t = normal_kl(torch.tensor(m1), torch.tensor(np.log(v1)), torch.tensor(m2), torch.tensor(np.log(v2)))
    np.testing.assert_allclose(kl_t.numpy(), expected, rtol=1e-12)
    x = rng.normal(size=5)
    np.testing.assert_allclose(gaussian_log_likelihood(x, m1, np.log(v1)), norm.logpdf(x, m1, np.sqrt(v1)), rtol=1e-12)


def test_terms_match_direct_numpy_gaussians():
    """L_0 and L_t for one configuration of pixels, computed from Ho et al. eq. 4, 7 and 11 in numpy."""
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-0.8, 0.8, (4, 4))
    c = rng.normal(size=(4, 4))
    model = ConstantEps(c)
    ts = np.array([0, 5, 600])
    got = vlb_terms(den(model), x0, np.array([[0.3, 0.8]]), ts, seed=7)[:, 0]

    betas = seed_betas(1000)
    abar = np.cumprod(1 - betas)
    eps_hat = c.astype(np.float32).astype(np.float64)
    for row, t in zip(got, ts):
        noise = term_noise(7, t, 0, (4, 4))
        xt = np.sqrt(abar[t]) * x0 + np.sqrt(1 - abar[t]) * noise
        seen = [x[i, 0] for x, tt in model.inputs for i in range(len(tt)) if int(tt[i]) == t]
        np.testing.assert_allclose(seen[0].numpy(), xt, rtol=1e-6, atol=1e-6)  # the documented noise
        x0_hat = (xt - np.sqrt(1 - abar[t]) * eps_hat) / np.sqrt(abar[t])
        if t == 0:
            # μ_θ(x_1, 1) = x̂₀; −log N(x₀; μ, β₁) summed over pixels
            expected = np.sum(0.5 * np.log(2 * np.pi * betas[0]) + (x0 - x0_hat) ** 2 / (2 * betas[0]))
        else:
            abar_prev = abar[t - 1]
            var = betas[t] * (1 - abar_prev) / (1 - abar[t])
            c1 = np.sqrt(abar_prev) * betas[t] / (1 - abar[t])
            c2 = np.sqrt(1 - betas[t]) * (1 - abar_prev) / (1 - abar[t])
            mu_q, mu_p = c1 * x0 + c2 * xt, c1 * x0_hat + c2 * xt
            s_q = s_p = np.sqrt(var)
            expected = np.sum(np.log(s_p / s_q) + (s_q ** 2 + (mu_q - mu_p) ** 2) / (2 * s_p ** 2) - 0.5)
        np.testing.assert_allclose(row, expected, rtol=1e-9)


def test_prior_term_is_kl_to_standard_normal():
    x0 = np.zeros((3, 3))
    ab = SCHEDULE.alpha_bar[-1]
    assert prior_kl(SCHEDULE, x0) == pytest.approx(9 * 0.5 * (-np.log(1 - ab) + (1 - ab) - 1), rel=1e-12)
    assert prior_kl(SCHEDULE, np.ones((3, 3))) > prior_kl(SCHEDULE, x0)


def test_epsilon_and_v_prediction_give_the_same_terms():
    rng = np.random.default_rng(2)
    pattern = rng.normal(0, 0.3, (8, 8))
    x0 = 0.9 * pattern + 0.05
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.45, 0.95]])
    a, b = (lambda th: 3 * th[:, 0]), (lambda th: th[:, 1] - 0.75)
    ts = np.array([0, 3, 700])
    eps = vlb_terms(den(AnalyticDenoiser(pattern, a, b, "epsilon")), x0, theta, ts, n_noise=2)
    v = vlb_terms(den(AnalyticDenoiser(pattern, a, b, "v_prediction")), x0, theta, ts, n_noise=2)
    np.testing.assert_allclose(v, eps, rtol=1e-8, atol=1e-8)
    assert eps.shape == (3, 3)
    # the best θ of L_0 is the one whose x̂₀ reconstructs x₀ best (a = 0.9 at Ωₘ = 0.3)
    assert np.argmin(eps[0]) == 1


def test_common_random_numbers_make_the_grid_repeatable_and_smooth():
    model = tiny_unet()
    x0 = np.random.default_rng(3).normal(0, 0.3, (16, 16))
    theta = np.array([[0.3, 0.8], [0.3005, 0.8], [0.3, 0.8005]])
    ts = np.array([0, 1])
    a = vlb_terms(den(model), x0, theta, ts, seed=0)
    # Promised: same seed, same batch size, same machine -> the same numbers, bit for bit.
    np.testing.assert_array_equal(a, vlb_terms(den(model), x0, theta, ts, seed=0))
    # Another batch size (or another set of terms) may run other float32 kernels (oneDNN picks them
    # per batch shape and CPU): the network's output moves by a few float32 ulps (2^-24 ≈ 6e-8
    # relative; measured up to 7e-8 of the term on AMD EPYC), and the float64 term with it. 1e-6
    # allows ~16 ulps. What the likelihood needs is that this stays far below the change between
    # neighbouring θ, which carries the signal.
    b = vlb_terms(den(model), x0, theta, ts, seed=1)
    neighbour = np.abs(a[:, 1:] - a[:, :1]).max()
    other_draw = np.abs(b[:, 0] - a[:, 0]).min()
    assert neighbour < 0.01 * other_draw, (neighbour, other_draw)
    for other in (vlb_terms(den(model), x0, theta, ts, seed=0, batch_size=2),
                  vlb_terms(den(model), x0, theta, ts, seed=0, batch_size=1)):
        np.testing.assert_allclose(other, a, rtol=1e-6, atol=0)
        assert np.abs(other - a).max() < 0.01 * neighbour
    # a term's noise does not depend on the other terms requested (a wrong noise would move the
    # term by O(other_draw), 10^4 times the tolerance)
    alone = vlb_terms(den(model), x0, theta, np.array([1]), seed=0)[0]
    np.testing.assert_allclose(alone, a[1], rtol=1e-6, atol=0)
    # averaging draws: n_noise=2 is the mean of draw 0 and draw 1 ... of the same seed
    two = vlb_terms(den(model), x0, theta[:1], ts, seed=0, n_noise=2)
    assert np.all(np.isfinite(two)) and two.shape == (2, 1)


def test_term_choice_parsing():
    assert term_timesteps("L0", 1000).tolist() == [0]
    assert term_timesteps("L7", 1000).tolist() == [7]
    assert term_timesteps("sum:3", 1000).tolist() == [0, 1, 2]
    for bad in ("foo", "sum:0", "L1000", "sum:1001", "", 3, "vlb:0", "vlb:16"):
        with pytest.raises(ValueError, match="terms"):
            term_timesteps(bad, 1000)


def test_stratified_whole_bound_weights():
    # "vlb:K": K log-spaced strata of [1, T), the term at each stratum's geometric middle, weight =
    # stratum width; weights of the other choices are 1
    ts, w = term_weights("vlb:4", 1000)
    assert ts.tolist() == [2, 14, 75, 422] and w.tolist() == [5, 26, 146, 822]
    edges = np.concatenate([[1], np.cumsum(w) + 1])
    assert np.all((edges[:-1] <= ts) & (ts < edges[1:]))
    for K in (1, 2, 6, 15):
        ts, w = term_weights(f"vlb:{K}", 1000)
        assert ts.size == K and np.all(np.diff(ts) > 0) and ts.min() >= 1 and w.sum() == 999
    # a constant term is summed exactly over L_1 .. L_999; a term ∝ 1/k to within the stratum error
    k = np.arange(1, 1000)
    ts, w = term_weights("vlb:15", 1000)
    assert (w / ts).sum() == pytest.approx((1 / k).sum(), rel=0.1)
    assert term_weights("sum:3", 1000)[1].tolist() == [1, 1, 1]
    assert term_weights("L5", 1000)[1].tolist() == [1]


def test_bad_arguments_are_refused():
    model = ConstantEps(np.zeros((4, 4)))
    x0 = np.zeros((4, 4))
    with pytest.raises(ValueError, match="theta"):
        vlb_terms(den(model), x0, np.array([0.3, 0.8]), [0])
    with pytest.raises(ValueError, match="timesteps"):
        vlb_terms(den(model), x0, np.array([[0.3, 0.8]]), [1000])
    with pytest.raises(ValueError, match="x0"):
        vlb_terms(den(model), np.full((4, 4), np.nan), np.array([[0.3, 0.8]]), [0])
    with pytest.raises(ValueError, match="n_noise"):
        vlb_terms(den(model), x0, np.array([[0.3, 0.8]]), [0], n_noise=0)


def test_progress_and_cancel():
    model = ConstantEps(np.zeros((4, 4)))
    theta = np.tile([[0.3, 0.8]], (5, 1))
    seen = []
    vlb_terms(den(model), np.zeros((4, 4)), theta, [0, 1], n_noise=2, batch_size=3,
              progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (20, 20) and len(seen) == 7
    calls = iter([False, True])
    with pytest.raises(InferenceCancelled):
        vlb_terms(den(model), np.zeros((4, 4)), theta, [0], batch_size=2, cancel=lambda: next(calls))


def test_scale_weights_parse_and_weight_the_residual_per_fourier_mode():
    """"vlb:8/k4:0.7,5.5:0.5": the terms of vlb:8; every weight 1 gives the bound's own terms
    (Parseval); weight 0 above an edge gives the terms of the low-passed residual."""
    from explorer.inference.vlb import scale_weight_grid, split_scale_weights

    assert split_scale_weights("vlb:8/k4:0.7,5.5:0.5") == ("vlb:8", ((4.0, 0.7), (5.5, 0.5)))
    assert split_scale_weights("vlb:8") == ("vlb:8", ())
    assert term_weights("vlb:8/k4:0.7", 1000)[0].tolist() == term_weights("vlb:8", 1000)[0].tolist()
    for bad in ("vlb:8/k", "vlb:8/k4", "vlb:8/k5:1,4:0.5", "vlb:8/k0:1", "vlb:8/x4:1"):
        with pytest.raises(ValueError, match="terms"):
            split_scale_weights(bad)
    w = scale_weight_grid(16, ((1.0, 0.5), (2.0, 0.0)), box_size=25.0)  # k_f = 0.251 h/Mpc, k_Nyq = 2.01
    assert w[0, 0] == 1.0 and w[0, 3] == 1.0 and w[0, 4] == 0.5 and w[0, 8] == 0.0 and w[3, 3] == 0.5

    model = tiny_unet()
    x0 = np.random.default_rng(5).normal(0, 0.3, (16, 16))
    theta = np.array([[0.3, 0.8], [0.45, 0.65]])
    ts = np.array([0, 1, 40])
    plain = vlb_terms(den(model), x0, theta, ts, seed=2)
    ones = vlb_terms(den(model), x0, theta, ts, seed=2, scale_weights=((0.1, 1.0),))
    np.testing.assert_allclose(ones, plain, rtol=1e-9)
    low = vlb_terms(den(model), x0, theta, ts, seed=2, scale_weights=((1.0, 0.0),))
    # by hand for the KL term at code 40: residual μ̃ − μ_θ, low-passed to |k| <= 1 h/Mpc
    d = den(model)
    eps = term_noise(2, 40, 0, (16, 16))
    xt = torch.from_numpy(np.sqrt(SCHEDULE.alpha_bar[40]) * x0 + np.sqrt(1 - SCHEDULE.alpha_bar[40]) * eps)
    t = torch.full((2,), 40)
    with torch.no_grad():
        r = (SCHEDULE.q_posterior_mean(torch.from_numpy(x0).expand(2, 16, 16), xt.expand(2, 16, 16), t)
             - d.posterior_mean(xt.expand(2, 1, 16, 16), t, torch.from_numpy(theta))[:, 0]).numpy()
    keep = scale_weight_grid(16, ((1.0, 0.0),), 25.0)
    expected = (keep * np.abs(np.fft.fft2(r)) ** 2).sum(axis=(1, 2)) / 256 / (2 * SCHEDULE.posterior_variance[40])
    np.testing.assert_allclose(low[2], expected, rtol=1e-6)
    assert np.all(low < plain)  # less of the residual counted (L0 keeps its constant part)
