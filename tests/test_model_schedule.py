"""Noise schedule: values at chosen t, q(x_t | x_0) moments, posterior against Gaussian conditioning."""

import math

import numpy as np
import pytest
import torch

from explorer.model.schedule import (NoiseSchedule, schedule_from_spec, seed_betas, seed_schedule_spec,
                                     spaced_timesteps)


def beta_by_formula(i: int, T: int = 1000) -> float:
    """β at code index i written out in plain Python: linear ramp, last half times a 1→3 ramp."""
    beta = 1e-4 + (0.01 - 1e-4) * i / (T - 1)
    half = T // 2
    if i >= T - half:
        beta *= 1.0 + 2.0 * (i - (T - half)) / (half - 1)
    return beta


@pytest.fixture(scope="module")
def sched():
    return NoiseSchedule.from_betas(seed_betas(1000))


def test_seed_betas_values(sched):
    assert sched.T == 1000
    assert sched.betas.dtype == np.float64
    assert sched.betas[0] == pytest.approx(1e-4, rel=1e-14)    # β_1
    assert sched.betas[-1] == pytest.approx(0.03, rel=1e-14)   # β_T
    for i in (0, 1, 498, 499, 500, 501, 750, 999):
        assert sched.betas[i] == pytest.approx(beta_by_formula(i), rel=1e-13)


def test_alpha_bar_T_from_formula(sched):
    alpha_bar_T = math.prod(1.0 - beta_by_formula(i) for i in range(1000))
    assert sched.alpha_bar[-1] == pytest.approx(alpha_bar_T, rel=1e-12)
    assert sched.alpha_bar[-1] == pytest.approx(9.08e-5, rel=1e-3)   # "ᾱ_T ≈ 9e-5" of DESIGN.md
    assert sched.alpha_bar_prev[0] == 1.0
    assert sched.posterior_variance[0] == 0.0                        # x_0 is known given x_1 and x_0
    assert np.all(np.isfinite(sched.posterior_log_variance_clipped))


def test_q_sample_moments(sched):
    gen = torch.Generator().manual_seed(0)
    n, t, x0 = 200_000, 300, 0.5
    x = torch.full((n, 1), x0, dtype=torch.float64)
    xt = sched.q_sample(x, torch.full((n,), t), torch.randn(n, 1, generator=gen, dtype=torch.float64))
    ab = sched.alpha_bar[t]
    se_mean = math.sqrt((1 - ab) / n)
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * x0, abs=5 * se_mean)
    assert xt.var().item() == pytest.approx(1 - ab, rel=5 * math.sqrt(2 / n))


@pytest.mark.parametrize("t", [0, 1, 10, 499, 500, 998, 999])
def test_posterior_matches_gaussian_conditioning(sched, t):
    """q(x_{t-1} | x_t, x_0) from the joint Gaussian of (x_{t-1}, x_t) given x_0, for a scalar."""
    x0, xt = 0.7, -0.3
    ab_prev, beta = (sched.alpha_bar[t - 1] if t > 0 else 1.0), sched.betas[t]
    var_prev = 1.0 - ab_prev                                   # Var(x_{t-1} | x_0)
    cov = math.sqrt(1.0 - beta) * var_prev                     # Cov(x_{t-1}, x_t | x_0)
    var_t = (1.0 - beta) * var_prev + beta                     # Var(x_t | x_0) = 1 - ᾱ_t
    mean = math.sqrt(ab_prev) * x0 + cov / var_t * (xt - math.sqrt(ab_prev * (1.0 - beta)) * x0)
    variance = var_prev - cov**2 / var_t
    tt = torch.tensor([t])
    got = sched.q_posterior_mean(torch.tensor([[x0]], dtype=torch.float64),
                                 torch.tensor([[xt]], dtype=torch.float64), tt)
    assert got.item() == pytest.approx(mean, rel=1e-10, abs=1e-12)
    assert sched.posterior_variance[t] == pytest.approx(variance, rel=1e-9, abs=1e-15)
    assert var_t == pytest.approx(1.0 - sched.alpha_bar[t], rel=1e-10)


def test_p_mean_is_eq_11_and_inversions(sched):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 1, 4, 4, generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn(3, 1, 4, 4, generator=gen, dtype=torch.float64)
    t = torch.tensor([0, 400, 999])
    xt = sched.q_sample(x0, t, eps)
    torch.testing.assert_close(sched.predict_x0(xt, t, eps), x0, rtol=0, atol=1e-9)
    b = torch.tensor(sched.betas[t.numpy()]).view(-1, 1, 1, 1)
    ab = torch.tensor(sched.alpha_bar[t.numpy()]).view(-1, 1, 1, 1)
    eq11 = (xt - b / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - b)
    torch.testing.assert_close(sched.p_mean(xt, t, eps), eq11, rtol=1e-9, atol=1e-9)
    v = sched.v_from(x0, eps, t)
    torch.testing.assert_close(sched.eps_from_v(xt, t, v), eps, rtol=0, atol=1e-9)
    clipped = sched.p_mean(xt, t, eps * 50, clip=(-1.0, 1.0))
    assert torch.isfinite(clipped).all()


def test_respacing(sched):
    same = sched.respaced(np.arange(1000))
    for name in ("betas", "alpha_bar", "posterior_variance", "posterior_mean_coef1", "posterior_mean_coef2"):
        np.testing.assert_array_equal(getattr(same, name), getattr(sched, name))
    kept = spaced_timesteps(1000, 10)
    assert kept[0] == 0 and kept[-1] == 999 and len(kept) == 10
    sub = sched.respaced(kept)
    np.testing.assert_allclose(sub.alpha_bar, sched.alpha_bar[kept], rtol=1e-12)


def test_spec_round_trip_and_errors():
    s = schedule_from_spec(seed_schedule_spec(1000))
    np.testing.assert_array_equal(s.betas, seed_betas(1000))
    with pytest.raises(ValueError, match="name"):
        schedule_from_spec({"name": "cosine-ish", "T": 10})
    with pytest.raises(ValueError, match="betas"):
        NoiseSchedule.from_betas([0.1, 1.5])
    with pytest.raises(ValueError, match="steps"):
        spaced_timesteps(100, 101)
    with pytest.raises(ValueError, match="T"):
        seed_betas(1)
