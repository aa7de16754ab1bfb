"""P(k) baseline: recovers θ from Gaussian random fields whose power depends on θ in a known way;
honest coverage; save -> load round trip; bad input refused."""

import json

import numpy as np
import pytest

from explorer.inference import PkBaseline

N = 32


def gaussian_fields(theta, seed):
    """(n, N, N) log10-like maps: 12 + a Gaussian field with P(k) ∝ σ₈² (k/k₀)^(−1 − 4(Ωₘ − 0.3))."""
    theta = np.atleast_2d(theta)
    rng = np.random.default_rng(seed)
    m = np.hypot(*np.meshgrid(np.fft.fftfreq(N) * N, np.arange(N // 2 + 1), indexing="ij"))
    m[0, 0] = 1.0
    out = np.empty((len(theta), N, N))
    for i, (om, s8) in enumerate(theta):
        amp = 0.2 * s8 * (m / 4.0) ** (0.5 * (-1 - 4 * (om - 0.3)))
        white = np.fft.rfft2(rng.normal(size=(N, N)))
        out[i] = 12 + np.fft.irfft2(white * amp, s=(N, N))
    return out


@pytest.fixture(scope="module")
def baseline():
    rng = np.random.default_rng(0)
    theta = np.column_stack([rng.uniform(0.1, 0.5, 1500), rng.uniform(0.6, 1.0, 1500)])
    return PkBaseline.fit(theta, gaussian_fields(theta, 1), n_bins=8, degree=3)


def test_recovers_theta_with_honest_intervals(baseline):
    truths = [(0.2, 0.7), (0.4, 0.9)]
    posts = [baseline.posterior(gaussian_fields(t, 10 + i)[0], truth=t) for i, t in enumerate(truths)]
    assert posts[0].estimates["omega_m"]["mean"] < posts[1].estimates["omega_m"]["mean"]
    assert posts[0].estimates["sigma_8"]["mean"] < posts[1].estimates["sigma_8"]["mean"]
    assert posts[0].method == "pk" and posts[0].n_evaluations == 0
    # coverage of the 68% intervals over 60 fields at random θ (binomial σ ≈ 6%)
    rng = np.random.default_rng(5)
    theta = np.column_stack([rng.uniform(0.15, 0.45, 60), rng.uniform(0.65, 0.95, 60)])
    fields = gaussian_fields(theta, 99)
    inside, z = [], []
    for f, t in zip(fields, theta):
        e = baseline.posterior(f, truth=tuple(t)).estimates
        inside.append([e[n]["lo68"] <= v <= e[n]["hi68"] for n, v in zip(("omega_m", "sigma_8"), t)])
        z.append([(e[n]["mean"] - v) / e[n]["std"] for n, v in zip(("omega_m", "sigma_8"), t)])
    coverage = np.mean(inside, axis=0)
    assert np.all((coverage > 0.5) & (coverage < 0.86)), coverage
    assert np.all(np.abs(np.mean(z, axis=0)) < 0.5)


def test_on_a_given_grid_and_round_trip(baseline, tmp_path):
    field = gaussian_fields((0.3, 0.8), 3)[0]
    om, s8 = np.linspace(0.2, 0.4, 21), np.linspace(0.7, 0.9, 31)
    post = baseline.posterior(field, om, s8)
    assert post.delta_chi2.shape == (21, 31) and post.delta_chi2.min() == 0
    path = baseline.save(tmp_path / "pk_baseline.json")
    assert path.stat().st_size < 20_000
    again = PkBaseline.load(path)
    np.testing.assert_allclose(again.posterior(field, om, s8).delta_chi2, post.delta_chi2, atol=1e-9)
    assert 0.9 < again.hartlap < 1


def test_bad_input_refused(baseline, tmp_path):
    with pytest.raises(ValueError, match="32"):
        baseline.posterior(np.full((16, 16), 12.0))
    with pytest.raises(ValueError, match="both"):
        baseline.posterior(gaussian_fields((0.3, 0.8), 3)[0], omega_m=np.linspace(0.2, 0.4, 5))
    with pytest.raises(ValueError, match="too few"):
        PkBaseline.fit(np.full((12, 2), 0.3), gaussian_fields(np.full((12, 2), 0.5), 0))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a P\\(k\\) baseline"):
        PkBaseline.load(bad)
    with pytest.raises(FileNotFoundError):
        PkBaseline.load(tmp_path / "missing.json")
