"""The particle-mesh stand-in: physics the simulator must get right, determinism, CMD output."""

import numpy as np
import pytest
import torch
from scipy.integrate import simpson

from explorer.data import load_cmd
from explorer.sim.cosmology import RHO_CRIT, Cosmology
from explorer.sim.fastpm import PMConfig, lattice, linear_field, lpt_displacements, run_pm
from explorer.sim.maps import cdm_maps, upsample_displacements
from explorer.sim.pm import cic_paint, cic_readout, gravity, wavevectors
from explorer.sim.sets import SetRecipe, generate, merge, simulate_one
from explorer.stats import structure_statistics

SMALL = PMConfig(n_particles=32, n_mesh=64, n_steps=10)


def test_growth_normalised_and_matter_dominated_limit():
    c = Cosmology(0.3, 0.8)
    assert c.growth(1.0)[0] == pytest.approx(1.0, abs=1e-12)
    # At early times ΛCDM is matter dominated: D ∝ a, so D(a)/a is constant.
    d = c.growth([0.01, 0.02])
    assert d[1] / d[0] == pytest.approx(2.0, rel=1e-3)
    # Einstein–de Sitter: D = a exactly, and G_p = a³E dD/da = a^{3/2}.
    eds = Cosmology(1.0, 0.8)
    assert eds.growth([0.25, 0.5]) == pytest.approx([0.25, 0.5], rel=1e-8)
    assert eds.momentum_growth(0.25)[0] == pytest.approx(0.25**1.5, rel=1e-8)
    # Independent implementation: colossus' growth factor (normalised to 1 at z = 0).
    from colossus.cosmology import cosmology

    ref = cosmology.Cosmology(name="t", flat=True, H0=67.11, Om0=0.3, Ob0=0.049, sigma8=0.8, ns=0.96,
                              relspecies=False, persistence="")
    for z in (0.5, 1.0, 3.0):
        assert c.growth(1 / (1 + z))[0] == pytest.approx(ref.growthFactor(z), rel=1e-4)


def test_linear_power_normalised_to_sigma8():
    """σ²(R = 8 Mpc/h) = ∫ dln k k³ P(k) W²(kR) / (2π²) with the spherical top-hat W = 3 (sin x − x cos x)/x³."""
    c = Cosmology(0.25, 0.85)
    lnk = np.linspace(np.log(1e-4), np.log(50.0), 20001)  # one vectorised P(k) call, not one per point
    k = np.exp(lnk)
    x = 8.0 * k
    w = 3 * (np.sin(x) - x * np.cos(x)) / x**3
    sigma2 = simpson(k**3 * c.linear_power(k) * w**2 / (2 * np.pi**2), x=lnk)
    assert np.sqrt(sigma2) == pytest.approx(0.85, rel=5e-3)
    # the normalisation scales P ∝ σ₈², at fixed shape
    assert Cosmology(0.25, 0.7).linear_power(k[::500]) == pytest.approx(c.linear_power(k[::500]) * (0.7 / 0.85) ** 2,
                                                                            rel=1e-6)


def test_initial_field_has_target_power():
    """⟨|δ̂|²⟩ V / n⁶ = P(k): the Gaussian field's amplitude, averaged over shells and seeds."""
    c, n, box = Cosmology(0.3, 0.8), 32, 25.0
    kx, ky, kz = wavevectors(n, box, torch.float64)
    k = torch.sqrt(kx**2 + ky**2 + kz**2).expand(n, n, n // 2 + 1)
    shell = (k > 1.5) & (k < 3.0)
    measured = np.mean([float((linear_field(c, n, box, s).abs() ** 2)[shell].mean()) for s in range(4)])
    expected = float(np.mean(c.linear_power(k[shell].numpy()))) * n**6 / box**3
    assert measured == pytest.approx(expected, rel=0.05)


def test_cic_paint_conserves_mass_and_readout_interpolates_linear_fields():
    rng = np.random.default_rng(0)
    pos = torch.from_numpy(rng.uniform(0, 16, (500, 3))).double()
    mass = torch.from_numpy(rng.uniform(1, 2, 500)).double()
    mesh = cic_paint(pos, 16, mass)
    assert float(mesh.sum()) == pytest.approx(float(mass.sum()), rel=1e-12)
    # CIC readout of a field linear in x (away from the periodic wrap) is exact.
    x = torch.arange(16, dtype=torch.float64)
    field = (2.0 * x + 1.0).view(16, 1, 1).expand(16, 16, 16).contiguous()
    inner = torch.tensor([[3.25, 7.5, 9.9], [10.75, 0.1, 15.2]], dtype=torch.float64)
    assert cic_readout(field, inner).numpy() == pytest.approx([7.5, 22.5])


def test_gravity_is_periodic_and_attractive():
    """Two particles near opposite faces attract each other through the periodic boundary."""
    box = 25.0
    pos = torch.tensor([[1.0, 12.5, 12.5], [24.0, 12.5, 12.5]], dtype=torch.float64)
    f = gravity(pos, 32, box)
    assert f[0, 0] < 0 < f[1, 0]  # the first is pulled towards −x, i.e. across x = 0
    assert float(f[0, 0]) == pytest.approx(-float(f[1, 0]), rel=1e-6)  # Newton's third law
    assert abs(float(f[0, 1])) < 1e-6 * abs(float(f[0, 0]))


def test_lpt_displacement_is_equivariant_to_periodic_shifts():
    c, n, box = Cosmology(0.3, 0.8), 16, 25.0
    delta = torch.fft.irfftn(linear_field(c, n, box, 3), s=(n,) * 3)
    shifted = torch.roll(delta, shifts=(5, -3), dims=(0, 2))
    psi1, psi2 = lpt_displacements(torch.fft.rfftn(delta), box)
    psi1s, psi2s = lpt_displacements(torch.fft.rfftn(shifted), box)
    assert torch.allclose(torch.roll(psi1, (5, -3), dims=(1, 3)), psi1s, atol=1e-5)
    assert torch.allclose(torch.roll(psi2, (5, -3), dims=(1, 3)), psi2s, atol=1e-5)
    # First order: δ = −∇·Ψ₁ in Fourier space (except on the Nyquist planes, where i k δ̂ has no
    # real-field representation: those modes of Ψ are lost, as in every grid IC code).
    kx, ky, kz = wavevectors(n, box)
    div = sum(1j * k * torch.fft.rfftn(p) for k, p in zip((kx, ky, kz), psi1))
    dk = torch.fft.rfftn(delta)
    dk[0, 0, 0] = 0
    inner = (slice(None), slice(None), slice(0, n // 2))
    keep = torch.ones(n, dtype=torch.bool)
    keep[n // 2] = False
    assert torch.allclose(-div[keep][:, keep][inner], dk[keep][:, keep][inner], atol=1e-4 * float(dk.abs().max()))


def _displacement_growth(cosmo, seed, config):
    """Projection of the final displacement on the linear Ψ₁, per |k| bin (1 in linear theory)."""
    n, box = config.n_particles, config.box_size
    psi1, _ = lpt_displacements(linear_field(cosmo, n, box, seed), box)
    s = run_pm(cosmo, seed, config)
    sk, pk = (torch.fft.rfftn(v.double(), dim=(1, 2, 3)) for v in (s, psi1))
    kx, ky, kz = wavevectors(n, box, torch.float64)
    b = torch.round(torch.sqrt(kx**2 + ky**2 + kz**2) / (2 * np.pi / box)).long().expand(sk.shape[1:])
    num = torch.bincount(b.reshape(-1), (sk * pk.conj()).real.sum(0).reshape(-1))
    den = torch.bincount(b.reshape(-1), (pk.abs() ** 2).sum(0).reshape(-1))
    return (num / den).numpy()


def test_large_scale_modes_grow_as_linear_theory():
    """The growth-corrected KDK factors make the largest modes follow D(a) exactly."""
    growth = _displacement_growth(Cosmology(0.3, 0.8), 11, SMALL)
    assert growth[1] == pytest.approx(1.0, abs=0.05)
    assert growth[2] == pytest.approx(1.0, abs=0.1)


def _density_power(cosmo, seed, config):
    n, box = config.n_particles, config.box_size
    pos = torch.remainder(lattice(n, box) + run_pm(cosmo, seed, config).reshape(3, -1).T, box)
    mesh = cic_paint(pos * (n / box), n).double()
    dk = torch.fft.rfftn(mesh / mesh.mean() - 1)
    kx, ky, kz = wavevectors(n, box, torch.float64)
    b = torch.round(torch.sqrt(kx**2 + ky**2 + kz**2) / (2 * np.pi / box)).long().expand(dk.shape)
    p = torch.bincount(b.reshape(-1), (dk.abs() ** 2).reshape(-1)) / torch.bincount(b.reshape(-1))
    return p.numpy()


def test_large_scale_power_scales_as_sigma8_squared():
    p_lo = _density_power(Cosmology(0.3, 0.7), 5, SMALL)
    p_hi = _density_power(Cosmology(0.3, 0.9), 5, SMALL)
    expected = (0.9 / 0.7) ** 2
    assert p_hi[1] / p_lo[1] == pytest.approx(expected, rel=0.12)
    # On small scales non-linear growth makes the ratio larger than linear theory.
    assert p_hi[12] / p_lo[12] > p_hi[1] / p_lo[1]


def test_same_seed_same_maps_and_new_seed_new_maps():
    a = simulate_one(0.3, 0.8, seed=3, map_size=64, pm=SMALL)
    b = simulate_one(0.3, 0.8, seed=3, map_size=64, pm=SMALL)
    c = simulate_one(0.3, 0.8, seed=4, map_size=64, pm=SMALL)
    assert a.shape == (15, 64, 64) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a, c, rtol=0.1)


@pytest.fixture(scope="module")
def default_maps():
    """One simulation with the production settings (64³ particles, 128³ mesh), maps at 64²."""
    cosmo = Cosmology(0.3, 0.8)
    maps = cdm_maps(run_pm(cosmo, 2024), cosmo).double()
    return cosmo, maps


def test_maps_conserve_cdm_mass_per_axis(default_maps):
    cosmo, maps = default_maps
    total = cosmo.omega_cdm * RHO_CRIT * 25.0**3
    pixel_area = (25.0 / maps.shape[-1]) ** 2
    for axis in range(3):
        assert float(maps[5 * axis: 5 * axis + 5].sum()) * pixel_area == pytest.approx(total, rel=1e-5)
    assert float(maps.min()) > 0  # strictly positive, as CAMELS maps


def test_maps_look_like_a_cosmic_web(default_maps):
    """Voids, halos and filaments: a skewed, mostly under-dense field with elongated structures."""
    _, maps = default_maps
    lin = maps.reshape(15, 64, 2, 64, 2).mean(axis=(2, 4)).numpy()
    delta = lin / lin.mean(axis=(1, 2), keepdims=True) - 1
    assert np.mean(delta < 0) > 0.6  # most of the area is under-dense (voids)
    assert np.percentile(delta, 99.9) > 10  # halos are 10× denser than the mean
    log = np.log10(lin)
    s = structure_statistics(log, thresholds=(1.0,))
    assert s.n_filaments.sum() >= 15  # filaments in most maps
    # Blobs (lognormal-like) would give almost no elongated regions above 1σ.
    rng = np.random.default_rng(0)
    blobs = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((15, 64, 64)))
                                 * np.exp(-np.add.outer(np.fft.fftfreq(64) ** 2, np.fft.fftfreq(64) ** 2) * 400)))
    assert structure_statistics(blobs, thresholds=(1.0,)).n_filaments.sum() < s.n_filaments.sum() / 2


def test_upsampling_keeps_the_smooth_displacement_field():
    n = 16
    q = torch.arange(n) * (2 * np.pi / n)
    s = torch.sin(q).view(1, n, 1, 1).expand(3, n, n, n).contiguous()
    up = upsample_displacements(s, 2)
    fine = torch.sin(torch.arange(2 * n) * (np.pi / n)).view(2 * n, 1, 1)
    assert torch.allclose(up[0], fine.expand(2 * n, 2 * n, 2 * n), atol=1e-5)


def test_lh_set_shards_merge_into_a_loadable_cmd_set(tmp_path):
    recipe = SetRecipe("t", "LH", 4, seed=9, map_size=32, pm=PMConfig(n_particles=16, n_mesh=32, n_steps=3))
    theta = recipe.params()
    # Latin hypercube: one point per stratum in each parameter, all inside the prior.
    assert sorted(np.floor((theta[:, 0] - 0.1) / 0.1).astype(int)) == [0, 1, 2, 3]
    assert sorted(np.floor((theta[:, 1] - 0.6) / 0.1).astype(int)) == [0, 1, 2, 3]
    generate(recipe, tmp_path / "a", shard=(1, 2), progress=False)
    generate(recipe, tmp_path / "a", shard=(0, 2), progress=False)
    generate(recipe, tmp_path / "b", progress=False)
    maps_path, params_path = merge(recipe, tmp_path / "a")
    cmd = load_cmd(maps_path, params_path)
    assert cmd.maps.shape == (60, 32, 32) and cmd.suite == "PM" and cmd.set_name == "LH"
    assert np.allclose(cmd.theta, theta)
    whole = load_cmd(*merge(recipe, tmp_path / "b"))
    assert np.array_equal(np.asarray(cmd.maps), np.asarray(whole.maps))


def test_merge_refuses_an_incomplete_set(tmp_path):
    recipe = SetRecipe("t", "LH", 3, seed=9, map_size=32, pm=PMConfig(n_particles=16, n_mesh=32, n_steps=2))
    generate(recipe, tmp_path, shard=(0, 2), progress=False)
    with pytest.raises(FileNotFoundError, match="1 of 3 simulations"):
        merge(recipe, tmp_path)


def test_one_p_set_varies_one_parameter_with_fixed_seed():
    from explorer.sim.sets import RECIPES

    recipe = RECIPES["onep"]
    theta = recipe.params()
    assert np.allclose(theta[:5, 1], 0.8) and np.allclose(theta[:5, 0], [0.2, 0.25, 0.3, 0.35, 0.4])
    assert np.allclose(theta[5:, 0], 0.3) and np.allclose(theta[5:, 1], [0.7, 0.75, 0.8, 0.85, 0.9])
    assert len({recipe.sim_seed(i) for i in range(10)}) == 1
    assert len({RECIPES["train"].sim_seed(i) for i in range(50)}) == 50


def test_cli_recipe_names_are_the_recipes():
    from explorer.sim.command import RECIPE_NAMES
    from explorer.sim.sets import RECIPES

    assert sorted(RECIPE_NAMES) == sorted(RECIPES)


def test_corner_recipe_fills_each_corner_box_of_the_prior():
    from explorer.sim.sets import OMEGA_M_RANGE, RECIPES, SIGMA_8_RANGE

    theta = RECIPES["corners"].params()
    assert theta.shape == (80, 2) and len(np.unique(theta, axis=0)) == 80
    (o_lo, o_hi), (s_lo, s_hi) = OMEGA_M_RANGE, SIGMA_8_RANGE
    om_low, s8_low = theta[:, 0] <= o_lo + 0.25 * (o_hi - o_lo), theta[:, 1] <= s_lo + 0.25 * (s_hi - s_lo)
    om_high, s8_high = theta[:, 0] >= o_hi - 0.25 * (o_hi - o_lo), theta[:, 1] >= s_hi - 0.25 * (s_hi - s_lo)
    for a in (om_low, om_high):
        for b in (s8_low, s8_high):
            assert (a & b).sum() == 20
    assert RECIPES["corners"].sim_seed(0) not in {RECIPES[n].sim_seed(0) for n in ("train", "valid", "twins")}
