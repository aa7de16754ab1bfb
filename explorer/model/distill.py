"""A few-call sampler: progressive distillation of DDIM from the Gaussian start (issue #15 item 1).

    explorer distill --weights weights/small --data data/train --out runs/distill   # resumable

Method: progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling
of Diffusion Models", ICLR, arXiv 2202.00512), started where the project's fast sampler starts: a
Gaussian field at σ* (``gaussian_start``) noised to the first level, then deterministic DDIM
(η = 0) on ``K`` noise levels, the last step returning x̂₀. One network call per level.

- **Levels.** ``karras_levels``: K timesteps whose σ_t = √((1 − ᾱ_t)/ᾱ_t) follow Karras et al.
  (2022)'s ρ = 7 spacing from σ* down to the smallest σ of the schedule (so each is a timestep the
  network was trained at).
- **Stage.** A teacher with 2K levels, a student (initialised as the teacher) with the K levels
  ``teacher[::2]``. Student level i spans teacher levels 2i → 2i + 2 (the end, x₀, after the last).
  For a training map x₀ at random level t = L_i, x_t = √ᾱ x₀ + √(1−ᾱ) ε; the teacher takes two
  DDIM steps (x̂₀ clipped to the data range, as in sampling) to x''; the student's target x̃₀ is
  the x̂₀ whose one DDIM step from x_t lands on x'':
  x̃₀ = (x'' − (s''/s) x_t) / (a'' − s'' a / s), with a = √ᾱ, s = √(1−ᾱ) at t and t'' (a = 1,
  s = 0 at the end). Loss: max(SNR, 1) · |x̂₀(student) − x̃₀|² (truncated-SNR weighting, ibid.).
  The EMA of the student is the next stage's teacher.
- **Map mean.** The denoiser's mean level gives every call its map-mean mode analytically, so the
  student learns the mean-free part only.

The run folder keeps ``stage_K/checkpoint.pt`` and ``stage_K/student`` (a complete weights folder:
the teacher's folder with the student's tensors and ``sampler = {"method": "distilled", "steps": K}``
and ``distillation.levels``). ``explorer sample --weights RUN/stage_4/student`` samples with it.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from .noise import randn

KARRAS_RHO = 7.0


def karras_levels(schedule, n: int, sigma_max: float, rho: float = KARRAS_RHO) -> np.ndarray:
    """``n`` distinct code timesteps, decreasing, with σ_t on Karras' ρ-spacing from σ_max to σ_min.

    σ_min is the schedule's smallest σ (t = 0); each Karras σ is mapped to the timestep with the
    nearest log σ; where the low end crowds several onto one timestep, they move up to the next
    free ones (so the levels stay distinct and the first stays at σ_max).
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    ab = np.asarray(schedule.alpha_bar, dtype=np.float64)
    sig = np.sqrt((1.0 - ab) / ab)
    sigma_max = min(float(sigma_max), float(sig[-1]))
    top = int(np.argmin(np.abs(np.log(sig) - np.log(sigma_max))))
    ramp = np.linspace(0.0, 1.0, int(n))
    lo, hi = sig[0] ** (1 / rho), sigma_max ** (1 / rho)
    target = (hi + ramp * (lo - hi)) ** rho
    levels = [int(np.argmin(np.abs(np.log(sig) - np.log(s)))) for s in target]
    for i in range(len(levels) - 2, -1, -1):  # from the low end up: strictly decreasing
        levels[i] = max(levels[i], levels[i + 1] + 1)
    if levels[0] > top:
        raise ValueError(f"{n} levels do not fit below σ = {sigma_max:g} in this schedule")
    return np.asarray(levels, dtype=np.int64)


def _a_s(schedule, t: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(√ᾱ_t, √(1−ᾱ_t)) per sample, shape (B, 1, 1, 1); t = −1 means the end (1, 0)."""
    ab = torch.as_tensor(np.r_[schedule.alpha_bar, 1.0], dtype=torch.float32, device=device)
    a_bar = ab[torch.where(t < 0, torch.full_like(t, len(ab) - 1), t)]
    return a_bar.sqrt()[:, None, None, None], (1.0 - a_bar).clamp_min(0).sqrt()[:, None, None, None]


def ddim_step(x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, schedule) -> torch.Tensor:
    """One DDIM (η = 0) step from level ``t`` to ``t_next`` (−1: the end, x₀) given x̂₀ (per sample)."""
    a2, s2 = _a_s(schedule, t_next, x.device)
    return a2 * x0 + s2 * schedule.eps_from_x0(x, t, x0)


def ddim_levels(den, theta: torch.Tensor, x: torch.Tensor, levels, bf16=None, clip=None, progress=None) -> torch.Tensor:
    """Deterministic DDIM from x at ``levels[0]`` through every level; the last step returns x̂₀."""
    b = x.shape[0]
    levels = [int(t) for t in levels]
    for i, t in enumerate(levels):
        tt = torch.full((b,), t, dtype=torch.long, device=x.device)
        nxt = torch.full((b,), levels[i + 1] if i + 1 < len(levels) else -1, dtype=torch.long, device=x.device)
        x = ddim_step(x, den.x0(x, tt, theta, bf16, clip), tt, nxt, den.schedule)
        if progress is not None:
            progress(i + 1, len(levels))
    return x


def gaussian_start_x(start, theta: torch.Tensor, alpha_bar: float, shape, gen: torch.Generator,
                     device) -> torch.Tensor:
    """x_t = √ᾱ x₀^G + √(1−ᾱ) ε at the level with ``alpha_bar``, x₀^G from the Gaussian start (drawn
    first, then ε, both from the CPU ``gen``, or per row block of a ``GeneratorGroup``): the first state of every
    Gaussian-start sampler."""
    ab = float(alpha_bar)
    x0 = start.draw(theta.cpu().numpy(), gen).to(device)
    noise = randn(shape, gen).to(device)
    return ab ** 0.5 * x0 + (1.0 - ab) ** 0.5 * noise


def distilled_levels(den) -> np.ndarray:
    """The levels a distilled network was trained for (its ``distillation.levels``)."""
    levels = (den.metadata.get("distillation") or {}).get("levels")
    if not levels:
        raise ValueError("method 'distilled' needs a network made by `explorer distill` (metadata "
                         "'distillation.levels'); these weights have none")
    out = np.asarray(levels, dtype=np.int64)
    if out.ndim != 1 or out.size < 1 or out.min() < 0 or out.max() >= den.schedule.T or np.any(np.diff(out) >= 0):
        raise ValueError(f"distillation.levels must be strictly decreasing timesteps in [0, {den.schedule.T}), "
                         f"got {levels!r}")
    return out


# ---------------------------------------------------------------------------------------------- training
def _targets(teacher, x, theta, t, t_mid, t_next, clip):
    """The student's x̂₀ target for one step t -> t_next spanning two teacher DDIM steps (module docstring)."""
    sched = teacher.schedule
    x1 = ddim_step(x, teacher.x0(x, t, theta, False, clip), t, t_mid, sched)
    x2 = ddim_step(x1, teacher.x0(x1, t_mid, theta, False, clip), t_mid, t_next, sched)
    a, s = _a_s(sched, t, x.device)
    a2, s2 = _a_s(sched, t_next, x.device)
    return (x2 - (s2 / s) * x) / (a2 - s2 * a / s)


def distill_loss(student, teacher, x0, theta, teacher_levels, gen, clip) -> torch.Tensor:
    """max(SNR, 1)-weighted |x̂₀(student) − x̃₀|² at a random student level per map."""
    k = len(teacher_levels) // 2
    lv = torch.as_tensor(np.r_[teacher_levels, -1], dtype=torch.long, device=x0.device)
    i = torch.randint(0, k, (x0.shape[0],), generator=gen).to(x0.device)
    t, t_mid, t_next = lv[2 * i], lv[2 * i + 1], lv[2 * i + 2]
    x = student.schedule.q_sample(x0, t, torch.randn(x0.shape, generator=gen).to(x0.device))
    with torch.no_grad():
        target = _targets(teacher, x, theta, t, t_mid, t_next, clip)
    eps = student(x, t, theta)  # with gradient (Denoiser.forward: network + analytic map mean)
    x0_hat = student.schedule.predict_x0(x, t, eps)
    a, s = _a_s(student.schedule, t, x0.device)
    weight = torch.clamp(a ** 2 / s ** 2, min=1.0)
    return (weight * (x0_hat - target) ** 2).mean()


def _stage(teacher, teacher_levels, data, folder: Path, steps: int, batch: int, lr: float, seed: int,
           ema_decay: float, max_minutes, log) -> tuple[object, bool]:
    """Train one student (resumable from ``folder/checkpoint.pt``); returns (EMA student, finished)."""
    folder.mkdir(parents=True, exist_ok=True)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    ema = copy.deepcopy(teacher).eval().requires_grad_(False)
    opt = torch.optim.AdamW(student.network.parameters(), lr=lr)
    ckpt, step = folder / "checkpoint.pt", 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        student.load_state_dict(state["student"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    clip = teacher.normalization.clip_range
    teacher.eval().requires_grad_(False)
    start, losses = time.perf_counter(), []
    loader = iter(())
    while step < steps:
        try:
            x0, theta = next(loader)
        except StopIteration:
            loader = iter(torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True,
                                                      generator=torch.Generator().manual_seed(seed + step)))
            x0, theta = next(loader)
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 50)
        loss = distill_loss(student, teacher, x0, theta, teacher_levels, gen, clip)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.network.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, ps in zip(ema.network.parameters(), student.network.parameters()):
                pe.lerp_(ps, 1.0 - min(ema_decay, (1 + step) / (10 + step)))
        step += 1
        losses.append(loss.item())
        if step % 25 == 0 or step == steps:
            log({"stage": len(teacher_levels) // 2, "step": step, "loss": float(np.mean(losses)),
                 "seconds": round(time.perf_counter() - start, 1)})
            losses = []
        out_of_time = max_minutes and time.perf_counter() - start > 60 * max_minutes
        if step % 200 == 0 or step == steps or out_of_time:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"student": student.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                        "step": step}, tmp)
            os.replace(tmp, ckpt)
        if out_of_time:
            return ema, False
    return ema, True


def _save_student(ema, teacher_folder: Path, folder: Path, levels, teacher_levels, record: dict) -> None:
    from explorer.model.weights import METADATA_FILE, save_model

    meta = json.loads((teacher_folder / METADATA_FILE).read_text())
    meta.pop("metrics", None)
    meta["sampler"] = {"method": "distilled", "steps": int(len(levels)),
                       "note": "progressive distillation of DDIM from the Gaussian start (explorer distill)"}
    meta["distillation"] = {"levels": [int(t) for t in levels], "teacher_levels": [int(t) for t in teacher_levels],
                            "teacher": str(teacher_folder), **record}
    ema.metadata = meta  # replaces the teacher's (its sampler, metrics, distillation) as a whole
    save_model(folder, ema)


def distill(weights, data, out, *, start_levels: int = 16, final_levels: int = 4, steps: int = 1500,
            batch: int = 16, lr: float = 1e-4, ema_decay: float = 0.995, seed: int = 0,
            max_minutes: float | None = None, threads: int | None = None) -> Path:
    """Distil ``weights`` (a folder with a Gaussian start) stage by stage from ``start_levels`` DDIM
    levels down to ``final_levels``; returns the last student's folder. Resumable (module docstring)."""
    from explorer.model import load_model
    from explorer.train import build_data
    from explorer.train_config import TrainConfig

    if threads:
        torch.set_num_threads(threads)
    weights, out = Path(weights), Path(out)
    teacher = load_model(weights)
    if teacher.gaussian_start is None:
        raise ValueError(f"{weights} has no gaussian_start: run `explorer calibrate --start-only` first")
    n = int(start_levels)
    if n < 2 or final_levels < 1 or n & (n - 1) or final_levels & (final_levels - 1) or final_levels >= n:
        raise ValueError(f"start_levels ({start_levels}) and final_levels ({final_levels}) must be powers of two, "
                         "start > final")
    info = teacher.metadata.get("data") or {}
    cfg = TrainConfig(data=str(data), resolution=teacher.resolution, split_seed=int(info.get("split_seed", 0)))
    train_set, *_ = build_data(cfg)
    train_set.normalization = teacher.normalization
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.jsonl", "a")

    def log(entry):
        log_file.write(json.dumps(entry) + "\n")
        log_file.flush()
        print(f"distill {entry['stage']} levels: step {entry['step']}/{steps} loss {entry['loss']:.5f} "
              f"({entry['seconds']:.0f} s)", flush=True)

    levels = karras_levels(teacher.schedule, n, teacher.gaussian_start.sigma)
    teacher_folder = weights
    try:
        while n > final_levels:
            k = n // 2
            student_levels = levels[::2]
            folder = out / f"stage_{k}"
            if not (folder / "student" / "explorer.json").exists():
                ema, done = _stage(teacher, levels, train_set, folder, steps, batch, lr, seed + k, ema_decay,
                                   max_minutes, log)
                if not done:
                    print(f"stopped after {max_minutes} min in stage {k}; rerun to resume")
                    return folder
                _save_student(ema, teacher_folder, folder / "student", student_levels, levels,
                              {"stage_steps": steps, "batch": batch, "lr": lr, "ema_decay": ema_decay})
            teacher, teacher_folder = load_model(folder / "student"), folder / "student"
            levels, n = student_levels, k
    finally:
        log_file.close()
    return out / f"stage_{final_levels}" / "student"
