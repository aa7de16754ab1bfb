"""The Denoiser: its algebra (ε̂, x̂₀, μ_θ for ε and v networks) and its map-mean model."""

import numpy as np
import pytest
import torch
from torch import nn
from types import SimpleNamespace

from explorer.data.transform import Normalization
from explorer.model.denoiser import Denoiser, MeanLevel
from explorer.model.schedule import NoiseSchedule, seed_betas
from test_model_unet import shift_error, tiny_unet

SCHEDULE = NoiseSchedule.from_betas(seed_betas(1000))


class Oracle(nn.Module):
    """Knows x₀ and returns the exact ε (or v) of any x_t = √ᾱ x₀ + √(1−ᾱ) ε."""

    def __init__(self, x0, prediction_type):
        super().__init__()
        self.x0, self.config = x0, SimpleNamespace(prediction_type=prediction_type)

    def forward(self, x, t, theta):
        ab = torch.tensor(SCHEDULE.alpha_bar, dtype=torch.float32)[t][:, None, None, None]
        eps = (x - ab.sqrt() * self.x0) / (1 - ab).sqrt()
        return eps if self.config.prediction_type == "epsilon" else ab.sqrt() * eps - (1 - ab).sqrt() * self.x0


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_algebra_recovers_x0_eps_and_the_posterior_mean(prediction_type):
    gen = torch.Generator().manual_seed(0)
    x0 = 0.3 * torch.randn(3, 1, 8, 8, generator=gen)
    eps = torch.randn(3, 1, 8, 8, generator=gen)
    t = torch.tensor([1, 300, 900])
    xt = SCHEDULE.q_sample(x0, t, eps)
    den = Denoiser(Oracle(x0, prediction_type), SCHEDULE, Normalization(10.0, 14.0))
    theta = torch.tensor([[0.3, 0.8]] * 3)
    torch.testing.assert_close(den.eps(xt, t, theta), eps, rtol=0, atol=2e-4)
    torch.testing.assert_close(den.x0(xt, t, theta), x0, rtol=0, atol=2e-3)
    torch.testing.assert_close(den.posterior_mean(xt, t, theta), SCHEDULE.q_posterior_mean(x0, xt, t),
                               rtol=0, atol=2e-3)
    assert den.x0(xt, t, theta, clip=(-0.1, 0.1)).abs().max() <= 0.1
    assert den.eps(xt.double(), t, theta).dtype == torch.float64  # the likelihood's algebra runs in float64
    assert den.decode(den.encode(torch.tensor([11.0, 13.5]))).tolist() == pytest.approx([11.0, 13.5])


def test_mean_level_gives_the_bayes_estimate_of_the_map_mean_noise():
    """With m ~ N(μ, s²) per map, the mean level's ε̄ estimate reaches the analytic posterior variance
    σ²_e ᾱ s² / (ᾱ s² + (1−ᾱ) σ²_e) (σ²_e = 1/HW), far below σ²_e (predicting 0) at high noise."""
    level = MeanLevel().double()
    mu, s = -0.3, 0.07
    with torch.no_grad():
        level.coef.zero_()
        level.coef[0] = mu
        level.log_s.copy_(torch.tensor([np.log(s), 0.0, 0.0]))
    gen = torch.Generator().manual_seed(1)
    n, side = 4000, 16
    var_e = 1.0 / side**2
    m = mu + s * torch.randn(n, generator=gen, dtype=torch.float64)
    structure = 0.5 * torch.randn(n, 1, side, side, generator=gen, dtype=torch.float64)
    structure -= structure.mean(dim=(-2, -1), keepdim=True)
    eps = torch.randn(n, 1, side, side, generator=gen, dtype=torch.float64)
    theta = torch.tensor([[0.3, 0.8]], dtype=torch.float64).expand(n, 2)
    for t in (400, 600, 800, 999):
        ab = float(SCHEDULE.alpha_bar[t])
        xt = ab**0.5 * (m[:, None, None, None] + structure) + (1 - ab) ** 0.5 * eps
        pred = level.eps_mean(xt, torch.full((n,), ab, dtype=torch.float32), theta).double()
        eps_bar = eps.mean(dim=(1, 2, 3))
        mse = (pred - eps_bar).pow(2).mean()
        # E[ε̄ | x̄_t] is linear in y = x̄_t − √ᾱ μ: the estimate's slope must be the regression slope.
        y = xt.mean(dim=(1, 2, 3)) - ab**0.5 * mu
        assert (pred / y).median().item() == pytest.approx(((eps_bar * y).sum() / (y * y).sum()).item(), rel=0.03)
        expected = var_e * ab * s**2 / (ab * s**2 + (1 - ab) * var_e)
        assert mse.item() == pytest.approx(expected, rel=0.1)
        if t == 999:
            assert mse.item() < 0.1 * var_e
    # The denoiser's output has exactly that mean, whatever the network's output mean was.
    den = Denoiser(tiny_unet().double(), SCHEDULE, mean_level=level)
    with torch.no_grad():
        out = den(xt[:3], torch.full((3,), 999), theta[:3])
        ab = torch.full((3,), float(SCHEDULE.alpha_bar[999]), dtype=torch.float32)
        expected_mean = level.eps_mean(xt[:3], ab, theta[:3])
    assert torch.allclose(out.mean(dim=(-2, -1)).flatten(), expected_mean.double(), atol=1e-6)
    assert shift_error(den, (8, -16)) < 1e-10  # the mean level keeps periodic-shift equivariance


def test_mean_level_fit_recovers_a_quadratic_and_its_scatter():
    level = MeanLevel()
    rng = torch.Generator().manual_seed(2)
    theta = torch.stack([0.1 + 0.4 * torch.rand(3000, generator=rng), 0.6 + 0.4 * torch.rand(3000, generator=rng)], 1)
    u = (theta - torch.tensor([0.1, 0.6])) / 0.4
    truth = 0.2 * u[:, 0] - 0.1 * u[:, 1] + 0.3 * u[:, 0] ** 2 - 0.5
    means = truth + 0.05 * torch.randn(3000, generator=rng)
    fit = level.fit(theta.numpy(), means.numpy(), scatter="constant")
    assert fit["s_range"] == pytest.approx([0.05, 0.05], rel=0.05)
    mu, s = level(theta)
    assert (mu.double() - truth.double()).abs().max().item() < 0.01
    assert s.std().item() < 1e-6 and s.mean().item() == pytest.approx(0.05, rel=0.05)
    assert MeanLevel.from_dict(level.to_dict()).to_dict() == level.to_dict()
    with pytest.raises(ValueError, match="N >= 7"):
        level.fit(theta[:5].numpy(), means[:5].numpy())
    with pytest.raises(ValueError, match="6 finite coef"):
        MeanLevel.from_dict({**level.to_dict(), "coef": [0.0] * 5})
    with pytest.raises(ValueError, match="epsilon"):
        Denoiser(tiny_unet(prediction_type="v_prediction"), SCHEDULE, mean_level=MeanLevel())


def test_mean_level_with_omega_in_its_log_holds_log10_omega_to_the_prior_edge():
    """Mean log density = log10 Ωₘ + a smooth term (mass conservation): the quadratic in ln Ωₘ holds it
    at the prior's low-Ωₘ edge and corner, the quadratic in Ωₘ (weights before session 17) is off by
    > 0.01 there; ``omega`` travels in the JSON (absent: linear, as old weights are); bad scales refused."""
    rng = np.random.default_rng(7)
    theta = rng.uniform((0.1, 0.6), (0.5, 1.0), size=(3000, 2))
    truth = 0.5 * np.log10(theta[:, 0]) - 0.2 * (theta[:, 1] - 0.6) ** 2
    means = truth + 0.01 * rng.standard_normal(3000)
    log, lin = MeanLevel(omega="log"), MeanLevel()
    log.fit(theta, means, scatter="constant")
    lin.fit(theta, means, scatter="constant")
    edge = np.array([[0.1, 0.95], [0.111, 0.953], [0.5, 0.6], [0.3, 0.8]])
    want = 0.5 * np.log10(edge[:, 0]) - 0.2 * (edge[:, 1] - 0.6) ** 2
    with torch.no_grad():
        mu_log = log(torch.tensor(edge, dtype=torch.float32))[0].double().numpy()
        mu_lin = lin(torch.tensor(edge, dtype=torch.float32))[0].double().numpy()
    assert np.abs(mu_log - want).max() < 0.003
    assert np.abs(mu_lin - want).max() > 0.01
    d = log.to_dict()
    assert d["omega"] == "log" and MeanLevel.from_dict(d).omega == "log" and MeanLevel.from_dict(d).to_dict() == d
    assert "omega" not in lin.to_dict() and MeanLevel.from_dict(lin.to_dict()).omega == "linear"
    with pytest.raises(ValueError, match="omega"):
        MeanLevel.from_dict({**d, "omega": "sqrt"})
    with pytest.raises(ValueError, match="omega"):
        MeanLevel(omega="sqrt")


def test_mean_level_fit_recovers_a_scatter_that_grows_with_sigma8():
    """log s = −3.2 + 0.1 u + 0.6 v (the measured trend is ≈ +0.48 v): the maximum-likelihood fit
    recovers it, and a constant-s fit cannot (its s is the average, wrong at both ends)."""
    rng = np.random.default_rng(5)
    theta = rng.uniform((0.1, 0.6), (0.5, 1.0), size=(6000, 2))
    u, v = (theta[:, 0] - 0.1) / 0.4, (theta[:, 1] - 0.6) / 0.4
    s_true = np.exp(-3.2 + 0.1 * u + 0.6 * v)
    means = -0.4 + 0.5 * u - 0.1 * v + s_true * rng.standard_normal(6000)
    level = MeanLevel()
    fit = level.fit(theta, means)
    assert fit["log_s"] == pytest.approx([-3.2, 0.1, 0.6], abs=0.06)
    with torch.no_grad():
        _, s = level(torch.tensor(theta, dtype=torch.float32))
    assert np.abs(s.numpy() / s_true - 1).max() < 0.08
    constant = MeanLevel()
    constant.fit(theta, means, scatter="constant")
    corner = torch.tensor([[0.3, 1.0], [0.3, 0.6]], dtype=torch.float32)
    with torch.no_grad():
        (_, s_theta), (_, s_const) = level(corner), constant(corner)
    assert (s_theta[0] / s_theta[1]).item() == pytest.approx(np.exp(0.6), rel=0.1)
    assert s_const[0].item() == s_const[1].item()
    # weights from before store one number: read as that constant scatter
    old = MeanLevel.from_dict({"model": "quadratic-gaussian", "coef": [0.0] * 6, "log_s": -2.5})
    assert old.log_s.tolist() == [-2.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="scatter"):
        level.fit(theta, means, scatter="quadratic")
