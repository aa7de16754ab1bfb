"""Samplers on a tiny random model: seeds reproduce, strided-at-T is DDPM, θ checks, Emulator."""

import copy

import numpy as np
import pytest
import torch

from explorer.model.device import autocast, pick_device
from explorer.model.gaussian import GaussianStart
from explorer.model.translation import TranslationStart
from explorer.model.noise import GeneratorGroup
from explorer.data.transform import Normalization
from explorer.model.denoiser import Denoiser
from explorer.model.sampling import SAMPLERS, Emulator, sample
from explorer.model.schedule import NoiseSchedule, seed_betas, seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import save_model

T = 20


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule.from_betas(seed_betas(T))


@pytest.fixture(scope="module")
def model(schedule):
    """A tiny random network as a Denoiser on a T = 20 schedule, normalisation [-1, 1]."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4)
    return Denoiser(net, schedule).eval()


def setup(model, method, **kw):
    """(model, keyword arguments) for a 4-step run of ``method`` on the tiny model."""
    kw["steps"] = None if method == "ddpm" else 4
    if method == "distilled":  # a network made by `explorer distill` knows its levels
        model = copy.copy(model)
        model.metadata = {**model.metadata, "distillation": {"levels": [15, 8, 3, 0]}}
    if method.endswith("-gauss") or method == "distilled":  # a Gaussian start whose σ* lies above every level: all 4 run
        kw.setdefault("gaussian_start", GaussianStart.fit(
            np.random.default_rng(0).uniform([0.1, 0.6], [0.5, 1.0], (40, 2)),
            np.random.default_rng(1).normal(0, 0.3, (40, 16, 16)), ((0.1, 0.5), (0.6, 1.0)), sigma=1e6, degree=1))
    if method == "sde-translation":  # a translation start whose σ* lies above every level: all 4 run
        kw.setdefault("translation_start", TranslationStart.fit(
            np.random.default_rng(0).uniform([0.1, 0.6], [0.5, 1.0], (40, 2)),
            np.random.default_rng(1).normal(0, 0.3, (40, 16, 16)), ((0.1, 0.5), (0.6, 1.0)), sigma=1e6, degree=1,
            iterations=1))
    return model, dict(resolution=16, method=method, bf16=False, **kw)


def draw(model, schedule, seed, method, **kw):
    model, kw = setup(model, method, **kw)
    return sample(model, [0.3, 0.8], n=2, seed=seed, **kw)


@pytest.mark.parametrize("method", sorted(SAMPLERS))
def test_seed_reproduces(model, schedule, method):
    a, b, c = (draw(model, schedule, s, method) for s in (1, 1, 2))
    assert a.shape == (2, 16, 16) and a.dtype == torch.float32 and a.device.type == "cpu"
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


@pytest.mark.parametrize("method", sorted(SAMPLERS))
def test_a_generator_group_gives_each_request_its_own_maps(model, schedule, method):
    """Requests sampled as one batch (a GeneratorGroup: each block of rows draws from its own seed) get
    the maps each gets alone, with every sampler; a group of one is exactly ``seed=``. Noise drawn from
    one generator for the whole batch, or in another order, would fail this."""
    model, kw = setup(model, method)
    theta = np.array([[0.3, 0.8], [0.3, 0.8], [0.45, 0.65]])
    group = GeneratorGroup.from_seeds([1, 2], [2, 1])
    together = sample(model, theta, generator=group, **kw)
    alone = torch.cat([sample(model, theta[:2], seed=1, **kw), sample(model, theta[2:], seed=2, **kw)])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)
    assert (together[:2] - sample(model, theta[:2], seed=2, **kw)).abs().max() > 1e-3  # the seed matters
    torch.testing.assert_close(sample(model, theta[:2], generator=GeneratorGroup.from_seeds([1], [2]), **kw),
                               alone[:2], rtol=0, atol=0)
    with pytest.raises(ValueError, match="covers 3 rows, the batch has 2"):
        sample(model, theta[:2], generator=group, **kw)


def test_generator_group_checks():
    with pytest.raises(ValueError, match="one positive row count per generator"):
        GeneratorGroup.from_seeds([1, 2], [2])
    with pytest.raises(ValueError, match="one positive row count per generator"):
        GeneratorGroup.from_seeds([1], [0])
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        GeneratorGroup((1,), (2,))


def test_strided_with_all_steps_is_ddpm(model, schedule):
    full = draw(model, schedule, 5, "ddpm")
    strided = sample(model, [0.3, 0.8], n=2, resolution=16, seed=5, method="ddpm-strided",
                     steps=T, bf16=False)
    assert torch.equal(full, strided)
    assert full.abs().max() <= 1.0   # the last step returns the clipped x̂_0 (μ̃_1 = x̂_0)


def test_bf16_reproduces_and_batch_theta(model, schedule):
    theta = [[0.2, 0.7], [0.4, 0.9]]
    a = sample(model, theta, resolution=16, seed=0, method="ddpm-strided", steps=3)
    b = sample(model, theta, resolution=16, seed=0, method="ddpm-strided", steps=3)
    assert a.shape == (2, 16, 16) and torch.equal(a, b)


def test_progress_called_and_can_cancel(model, schedule):
    calls = []
    draw(model, schedule, 0, "dpmsolver++", progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]

    def cancel(i, n):
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        draw(model, schedule, 0, "ddpm-strided", progress=cancel)


def test_argument_errors(model, schedule):
    with pytest.raises(ValueError, match="omega_m=0.6.*0.1, 0.5"):
        sample(model, [0.6, 0.8], n=1, resolution=16, seed=0)
    with pytest.raises(ValueError, match="sigma_8"):
        sample(model, [[0.3, 0.8], [0.3, float("nan")]], resolution=16, seed=0)
    with pytest.raises(ValueError, match="n=3"):
        sample(model, [[0.3, 0.8], [0.3, 0.8]], n=3, resolution=16, seed=0)
    with pytest.raises(ValueError, match="seed"):
        sample(model, [0.3, 0.8], resolution=16)
    with pytest.raises(ValueError, match="method"):
        sample(model, [0.3, 0.8], resolution=16, seed=0, method="euler")
    with pytest.raises(ValueError, match="steps"):
        sample(model, [0.3, 0.8], resolution=16, seed=0, method="ddpm", steps=5)
    with pytest.raises(ValueError, match="resolution"):
        sample(model, [0.3, 0.8], resolution=12, seed=0)
    with pytest.raises(ValueError, match="clip"):
        sample(model, [0.3, 0.8], resolution=16, seed=0, method="ddim", steps=3, clip=(1, 0))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("method", ["ddim", "dpmsolver++"])
def test_clipping_matches_diffusers_flags(model, schedule, method):
    """Our x̂_0 clipping (ε recomputed from the clipped x̂_0) equals diffusers' own for [-1, 1]."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=T, trained_betas=schedule.betas.tolist())
    if method == "ddim":
        sch = DDIMScheduler(**common, clip_sample=True, clip_sample_range=1.0, timestep_spacing="trailing")
        step = lambda eps, t, x: sch.step(eps, t, x, eta=0.0, use_clipped_model_output=True).prev_sample
    else:
        sch = DPMSolverMultistepScheduler(**common, solver_order=2, thresholding=True, sample_max_value=1.0)
        step = lambda eps, t, x: sch.step(eps, t, x).prev_sample
    sch.set_timesteps(4)
    theta = torch.tensor([[0.3, 0.8]] * 2)
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for t in sch.timesteps:
            x = step(model.eps(x, torch.full((2,), int(t)), theta), t, x)
    ours = draw(model, schedule, 3, method)
    torch.testing.assert_close(ours, x[:, 0], rtol=0, atol=1e-4)
    unclipped = draw(model, schedule, 3, method, clip=None)
    assert (unclipped - ours).abs().max() > 1e-2   # clipping was active on this random model
    shifted = draw(model, schedule, 3, method, clip=(-0.5, 2.0))   # asymmetric ranges work too
    assert shifted.min() >= -0.5 - 1e-4 and shifted.max() <= 2.0 + 1e-4   # last step returns clip(x̂_0)


def test_emulator(model, tmp_path):
    norm = {"lo": 9.42, "hi": 15.45, "method": "minmax"}
    folder = save_model(tmp_path / "w", model.network, {"schedule": seed_schedule_spec(T), "normalization": norm,
                                                "sampler": {"method": "ddpm-strided", "steps": 3}})
    emu = Emulator.from_folder(folder, device="cpu", bf16=False)
    assert (emu.default_method, emu.default_steps, emu.resolution) == ("ddpm-strided", 3, 16)
    maps = emu.sample(0.3, 0.8, n=2, seed=7)
    assert maps.shape == (2, 16, 16) and maps.dtype == np.float32
    x = sample(emu.loaded, [0.3, 0.8], n=2, resolution=16, seed=7, method="ddpm-strided",
               steps=3, bf16=False)
    np.testing.assert_array_equal(maps, emu.loaded.decode(x))
    assert emu.loaded.normalization == Normalization.from_dict(norm)
    assert 9.42 <= maps.min() and maps.max() <= 15.45
    with pytest.raises(ValueError, match=r"sigma_8=1.2 is outside the prior range \[0.6, 1\]"):
        emu.sample(0.3, 1.2)
    with pytest.raises(ValueError, match="omega_m"):
        emu.sample(0.05, 0.8)
    # a percentile normalisation stores its own x̂_0 clipping range, which the emulator uses
    wide = {**norm, "method": "percentile", "clip": [-1.5, 1.25]}
    folder = save_model(tmp_path / "p", model.network, {"schedule": seed_schedule_spec(T), "normalization": wide})
    emu = Emulator.from_folder(folder, device="cpu", bf16=False)
    assert emu.clip == (-1.5, 1.25) and (emu.default_method, emu.default_steps) == ("ddpm-strided", 250)
    maps = emu.sample(0.3, 0.8, n=1, seed=0, method="ddim", steps=4)  # 4 divides T: ends at x_0
    assert emu.loaded.decode(np.array(-1.5)) - 1e-3 <= maps.min() and maps.max() <= emu.loaded.decode(np.array(1.25)) + 1e-3


def test_emulator_samples_several_requests_as_one_batch(model, tmp_path):
    norm = {"lo": 9.42, "hi": 15.45, "method": "minmax"}
    folder = save_model(tmp_path / "w", model.network, {"schedule": seed_schedule_spec(T), "normalization": norm,
                                                "sampler": {"method": "sde-dpmsolver++", "steps": 4}})
    emu = Emulator.from_folder(folder, device="cpu", bf16=False)
    requests = [(0.3, 0.8, 2, 7), (0.2, 0.7, 1, 8), (0.3, 0.8, 3, 9)]
    together = emu.sample_many(requests)
    assert [m.shape for m in together] == [(2, 16, 16), (1, 16, 16), (3, 16, 16)]
    for maps, r in zip(together, requests):
        np.testing.assert_allclose(maps, emu.sample(*r), rtol=0, atol=1e-4)  # dex: rounding of a larger batch
    steps = []
    emu.sample_many(requests[:2], progress=lambda done, total: steps.append((done, total)))
    assert steps[-1][0] == steps[-1][1] == len(steps)  # one network batch, not one run per request
    with pytest.raises(ValueError, match="sigma_8=1.2 is outside"):
        emu.sample_many([(0.3, 0.8, 1, 0), (0.3, 1.2, 1, 0)])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        emu.check_request(0.3, 0.8, 0, 1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        emu.check_request(0.3, 0.8, 1, 1.5)
    with pytest.raises(ValueError, match="at least one request"):
        emu.sample_many([])


def test_decode_and_device(model):
    den = Denoiser(model.network, model.schedule, Normalization(10.0, 14.0))
    np.testing.assert_allclose(den.decode(torch.tensor([-1.0, 0.0, 1.0])), [10, 12, 14])
    np.testing.assert_allclose(den.encode(np.array([10.0, 12.0, 14.0])), [-1, 0, 1])
    assert pick_device("cpu") == torch.device("cpu")
    assert isinstance(pick_device("auto"), torch.device)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="preference"):
        pick_device("tpu-please")
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("cpu"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast("cpu", enabled=False):
        assert (a @ b).dtype == torch.float32


def test_karras_variant_ends_at_the_lowest_noise_and_is_denser_there():
    """The plain DPM-Solver++ stops calling the network at t ≈ T/steps and jumps to x̂_0 (a
    posterior mean: smooth maps); the Karras variant's last call is at t = 0."""
    from explorer.model.sampling import _diffusers_scheduler
    from explorer.model.schedule import schedule_from_spec, seed_schedule_spec

    schedule = schedule_from_spec(seed_schedule_spec(1000))

    plain, karras = (_diffusers_scheduler(m, schedule) for m in ("sde-dpmsolver++", "sde-dpmsolver++-karras"))
    for sch in (plain, karras):
        sch.set_timesteps(30)
    t_plain, t_karras = plain.timesteps.numpy(), karras.timesteps.numpy()
    assert len(t_karras) == 30 and t_karras[-1] == 0 and t_plain[-1] >= 30
    assert t_karras[0] >= 990  # still starts where x_T ~ N(0, I)
    assert (t_karras < 100).sum() >= 3 * (t_plain < 100).sum() >= 6
    assert karras.config.algorithm_type == "sde-dpmsolver++" and karras.config.use_karras_sigmas
