"""Few-call sampler (progressive distillation from the Gaussian start): the Karras levels, the DDIM
step's algebra, the student's target (one student step = two teacher steps), that training closes
the gap, and the "ddim-gauss"/"distilled" samplers with `explorer distill` end to end."""

import json

import numpy as np
import pytest
import torch

from explorer.model.denoiser import Denoiser
from explorer.model.distill import _a_s, _targets, ddim_step, distill, distill_loss, karras_levels
from explorer.model.gaussian import GaussianStart
from explorer.model.sampling import Emulator, sample
from explorer.model.schedule import NoiseSchedule, seed_betas, seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import load_model, save_model

N = 16
RANGES = ((0.1, 0.5), (0.6, 1.0))
SCHEDULE = NoiseSchedule.from_betas(seed_betas(1000))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sigma_of(t):
    ab = SCHEDULE.alpha_bar[np.asarray(t)]
    return np.sqrt((1 - ab) / ab)


def tiny_denoiser(seed=0) -> Denoiser:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = ParamUNet(sample_size=N, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4)
    return Denoiser(net, SCHEDULE).eval()


def test_karras_levels_span_sigma_star_to_the_last_timestep():
    for n in (4, 8, 16):
        levels = karras_levels(SCHEDULE, n, 3.0)
        assert len(levels) == n and levels[-1] == 0 and np.all(np.diff(levels) < 0)
        assert abs(np.log(sigma_of(levels[0]) / 3.0)) < 0.02  # the first level is the one at σ*
        # ρ = 7 spacing: σ^(1/7) is evenly spaced (up to the rounding to timesteps)
        root = sigma_of(levels) ** (1 / 7)
        assert np.allclose(np.diff(root), np.diff(root).mean(), atol=0.02)
    with pytest.raises(ValueError, match="do not fit"):
        karras_levels(SCHEDULE, 400, 0.05)


def test_ddim_step_with_the_true_x0_follows_the_forward_process():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 1, N, N, generator=g), torch.randn(3, 1, N, N, generator=g)
    t, t2, end = (torch.full((3,), v, dtype=torch.long) for v in (500, 100, -1))
    a, s = _a_s(SCHEDULE, t, "cpu")
    a2, s2 = _a_s(SCHEDULE, t2, "cpu")
    x = a * x0 + s * eps
    torch.testing.assert_close(ddim_step(x, x0, t, t2, SCHEDULE), a2 * x0 + s2 * eps, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ddim_step(x, x0, t, end, SCHEDULE), x0)
    assert float(_a_s(SCHEDULE, end, "cpu")[1].max()) == 0.0


def test_the_students_target_makes_one_step_land_on_two_teacher_steps():
    teacher = tiny_denoiser()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, N, N, generator=g)
    theta = torch.tensor([[0.3, 0.8]] * 4)
    t, t_mid, t_next = (torch.tensor(v) for v in ([600, 300, 40, 6], [400, 120, 20, 2], [300, 40, 6, -1]))
    target = _targets(teacher, x, theta, t, t_mid, t_next, clip=(-3.0, 3.0))
    x1 = ddim_step(x, teacher.x0(x, t, theta, False, (-3.0, 3.0)), t, t_mid, SCHEDULE)
    x2 = ddim_step(x1, teacher.x0(x1, t_mid, theta, False, (-3.0, 3.0)), t_mid, t_next, SCHEDULE)
    torch.testing.assert_close(ddim_step(x, target, t, t_next, SCHEDULE), x2, rtol=1e-4, atol=1e-4)


def test_distillation_closes_the_gap_between_one_student_and_two_teacher_steps():
    """A student started from other weights learns the teacher's two-step DDIM map at both of its
    levels (500 -> 50 through 200, and 50 -> x₀ through 0)."""
    teacher, student = tiny_denoiser(0), tiny_denoiser(1).train()
    levels = np.array([500, 200, 50, 0])
    g = torch.Generator().manual_seed(2)
    data = torch.tanh(torch.randn(64, 1, N, N, generator=g).cumsum(-1) / 4)  # smooth, correlated maps
    theta = torch.rand(64, 2, generator=g) * torch.tensor([0.4, 0.4]) + torch.tensor([0.1, 0.6])
    noise = torch.randn(16, 1, N, N, generator=torch.Generator().manual_seed(9))

    def gaps(model):
        out = []
        with torch.no_grad():
            for t0, tm, t1 in ((500, 200, 50), (50, 0, -1)):
                t0, tm, t1 = (torch.full((16,), v) for v in (t0, tm, t1))
                x = SCHEDULE.q_sample(data[:16], t0, noise)
                x_teacher = ddim_step(x, teacher.x0(x, t0, theta[:16]), t0, tm, SCHEDULE)
                x_teacher = ddim_step(x_teacher, teacher.x0(x_teacher, tm, theta[:16]), tm, t1, SCHEDULE)
                x_student = ddim_step(x, model.x0(x, t0, theta[:16]), t0, t1, SCHEDULE)
                out.append(float((x_student - x_teacher).pow(2).mean()))
        return np.array(out)

    before = gaps(student)
    opt = torch.optim.Adam(student.network.parameters(), lr=2e-3)
    for _ in range(40):
        i = torch.randint(0, 64, (8,), generator=g)
        loss = distill_loss(student, teacher, data[i], theta[i], levels, g, clip=None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = gaps(student.eval())
    assert np.all(after < 0.35 * before), (before, after)


def _folder_with_start(tmp_path, den, data_meta=None):
    rng = np.random.default_rng(0)
    theta = rng.uniform([0.1, 0.6], [0.5, 1.0], (300, 2))
    white = rng.standard_normal((300, N, N))
    maps = np.fft.ifft2(np.fft.fft2(white) * 0.3).real + (theta[:, :1, None] - 0.3)
    start = GaussianStart.fit(theta, maps, RANGES, sigma=3.0)
    meta = {"schedule": seed_schedule_spec(1000), "normalization": {"lo": 9.0, "hi": 15.0, "method": "minmax"},
            "sampler": {"method": "ddim-gauss", "steps": 4}, "gaussian_start": start.to_dict(),
            "data": data_meta or {}}
    return save_model(tmp_path / "teacher", den.network, meta)


def test_ddim_gauss_and_distilled_samplers_and_explorer_distill_end_to_end(tmp_path, tiny_reference):
    teacher_folder = _folder_with_start(tmp_path, tiny_denoiser(), {"split_seed": 0})
    teacher = load_model(teacher_folder)
    calls = []
    a = sample(teacher, [0.3, 0.8], n=2, seed=5, method="ddim-gauss", steps=4, progress=lambda i, n: calls.append(i))
    assert calls == [1, 2, 3, 4] and torch.isfinite(a).all()
    assert torch.equal(a, sample(teacher, [0.3, 0.8], n=2, seed=5, method="ddim-gauss", steps=4))
    assert not torch.equal(a, sample(teacher, [0.3, 0.8], n=2, seed=6, method="ddim-gauss", steps=4))
    with pytest.raises(ValueError, match="explorer distill"):
        sample(teacher, [0.3, 0.8], n=1, seed=0, method="distilled")

    out = tmp_path / "run"
    student_folder = distill(teacher_folder, tiny_reference, out, start_levels=4, final_levels=2, steps=3, batch=4)
    assert student_folder == out / "stage_2" / "student"
    meta = json.loads((student_folder / "explorer.json").read_text())
    levels = karras_levels(SCHEDULE, 4, 3.0)
    assert meta["distillation"]["levels"] == levels[::2].tolist()
    assert meta["distillation"]["teacher_levels"] == levels.tolist()
    assert meta["sampler"]["method"] == "distilled" and meta["gaussian_start"] == teacher.metadata["gaussian_start"]
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and np.isfinite(log[-1]["loss"])

    emu = Emulator.from_folder(student_folder, device="cpu", bf16=False)
    calls = []
    maps = emu.sample(0.3, 0.8, n=2, seed=1, progress=lambda i, n: calls.append(i))
    assert calls == [1, 2] and maps.shape == (2, N, N) and np.isfinite(maps).all()
    with pytest.raises(ValueError, match="exactly 2 steps"):
        emu.sample(0.3, 0.8, n=1, seed=1, steps=4)
    # as a sub-folder of the main weights ("fast"), it samples with its own levels unless told otherwise
    import shutil

    shutil.copytree(student_folder, teacher_folder / "fast")
    main = Emulator.from_folder(teacher_folder, device="cpu", bf16=False)
    assert main.resolve(None, None, "fast") == ("distilled", 2, "fast")
    assert main.resolve(None, None, None) == ("ddim-gauss", 4, "full")
    assert np.array_equal(main.sample(0.3, 0.8, n=2, seed=1, network="fast"), maps)
    with pytest.raises(ValueError, match="sub-folder"):
        main.sample(0.3, 0.8, n=1, seed=1, network="nowhere")
    # resumable: a second call finds the finished stage and does no more work
    before = (out / "log.jsonl").read_text()
    assert distill(teacher_folder, tiny_reference, out, start_levels=4, final_levels=2, steps=3) == student_folder
    assert (out / "log.jsonl").read_text() == before
