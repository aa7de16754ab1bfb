"""Drawing maps from the trained model: every sampler behind one function, ``sample``.

Methods (``SAMPLERS`` holds each one's default number of steps):

- ``"ddpm"``: ancestral sampling over all T steps, Ho et al. 2020 Algorithm 2 / eq. 11 with
  σ_t² = β̃_t, the mean taken as the posterior mean (eq. 7) of the clipped x̂_0.
- ``"ddpm-strided"``: the same on ``steps`` evenly spaced timesteps, with the schedule respaced
  as in Nichol & Dhariwal 2021 (``NoiseSchedule.respaced``); ``steps = T`` is exactly ``"ddpm"``.
- ``"ddim"``: diffusers ``DDIMScheduler`` (η = 0, deterministic, "trailing" timesteps; when
  T/steps rounds up, e.g. 60 of 1000, diffusers' last step lands on code t = 0, i.e. paper x_1,
  not x_0: a residual noise of σ = √(1 - ᾱ_1) = 0.01).
- ``"dpmsolver++"``: diffusers ``DPMSolverMultistepScheduler``, 2nd order, deterministic.
- ``"sde-dpmsolver++"``: its stochastic variant (noise from the seeded generator).
- ``"sde-dpmsolver++-karras"``: the same on the noise levels of Karras et al. 2022 (ρ = 7, dense at
  low noise; ``use_karras_sigmas``). Its last network call is at code t = 0, where the plain
  variant's evenly spaced timesteps stop at t ≈ T/steps and then jump to x̂_0: that last jump is a
  posterior mean, which removed up to 60 % of the small-scale power of our maps (measured).
- ``"sde-dpmsolver++-karras-gauss"``: the same Karras levels, but the levels above σ* are not run:
  x_t at the first level ≤ σ* is drawn from the Gaussian model of the data (a Gaussian random field
  with the training maps' power spectrum and mean at θ, :mod:`explorer.model.gaussian`, passed as
  ``gaussian_start``). With σ* = 3, 30 levels cost 14 network calls.
- ``"ddim-gauss"``: the same Gaussian start, then deterministic DDIM (η = 0) on ``steps`` Karras
  levels below σ*, one network call each, the last returning x̂_0 (:mod:`.distill`).
- ``"sde-translation"``: the few-call sampler (:mod:`.fewcall`): a translation-field start at σ* = 0.15
  (:mod:`.translation`, passed as ``translation_start``), then ``steps`` (default 4) first-order
  stochastic steps on Karras levels whose x̂_0 gets back the posterior variance a denoised mean lacks.
- ``"distilled"``: the same, on the levels a network made by ``explorer distill`` (progressive
  distillation, Salimans & Ho 2022) was trained for (its ``distillation.levels``).

Every method clips x̂_0 to ``clip`` (the data range in normalised units) at every step.

Randomness: all noise is drawn on the CPU from one ``torch.Generator`` (seeded from ``seed``) and
then moved to the device, so a seed gives the same noise on every device; same seed, θ, method
and steps give identical maps. The ``Emulator`` class is the user-facing entry point: it loads a
weights folder, validates θ against the prior box and returns log10 Σ maps.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from explorer.paths import resolve_weights

from .denoiser import Denoiser
from .device import pick_device
from .noise import GeneratorGroup, check_generator, randn
from .schedule import NoiseSchedule, spaced_timesteps
from .weights import WeightsError, load_model


from .samplers import GAUSSIAN_START_METHODS, SAMPLERS, TRANSLATION_START_METHODS, SamplerInfo  # noqa: E402,F401
from .distill import ddim_levels, distilled_levels, gaussian_start_x, karras_levels  # noqa: E402
from .fewcall import sample_translation  # noqa: E402

from explorer.params import PARAM_NAMES  # noqa: E402,F401  (re-exported)

Progress = Callable[[int, int], None]


def check_in_prior(theta, param_ranges) -> None:
    """Raise ValueError naming the parameter if any row of ``theta: (B, 2)`` is outside the box."""
    theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
    for j, (name, (lo, hi)) in enumerate(zip(PARAM_NAMES, param_ranges)):
        vals = theta[:, j]
        bad = vals[~((vals >= lo) & (vals <= hi))]  # also catches NaN
        if bad.size:
            raise ValueError(f"{name}={bad[0]:g} is outside the prior range [{lo:g}, {hi:g}] of this model")


def _noise(shape, generator, device: torch.device) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from ``generator`` (:func:`.noise.randn`), then moved to ``device``."""
    return randn(shape, generator).to(device)


def _ancestral(den, theta, shape, timesteps, gen, device, bf16, clip, progress):
    """Algorithm 2 of Ho et al. on the kept code ``timesteps`` (all of 0..T-1 for plain DDPM)."""
    sched = den.schedule.respaced(timesteps)  # bit-identical to ``schedule`` when every step is kept
    x = _noise(shape, gen, device)                                   # 1: x_T ~ N(0, I)
    total = len(timesteps)
    for done, i in enumerate(reversed(range(total)), start=1):       # 2: for t = T, ..., 1
        idx = torch.full((shape[0],), i, dtype=torch.long, device=device)
        t_model = torch.full_like(idx, int(timesteps[i]))             # the network's own timestep
        eps = den.eps(x, t_model, theta, bf16)
        mean = sched.p_mean(x, idx, eps, clip=clip)                   # 4: μ_θ via clipped x̂_0 (eq. 7, 11)
        if i > 0:                                                     # 3: z ~ N(0, I) if t > 1, else 0
            x = mean + float(np.sqrt(sched.posterior_variance[i])) * _noise(shape, gen, device)
        else:
            x = mean
        if progress is not None:
            progress(done, total)
    return x


def _diffusers_scheduler(method: str, schedule: NoiseSchedule):
    """A fresh diffusers scheduler for ``method`` built on ``schedule.betas`` (``trained_betas``).

    Their own clipping is off: ``_diffusers_loop`` clips x̂_0 itself, for any (lo, hi).
    """
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=schedule.T, trained_betas=schedule.betas.tolist(),
                  prediction_type="epsilon")
    if method == "ddim":
        # "trailing" spacing starts at t = T-1, where x_T ~ N(0, I) holds (Lin et al. 2023).
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    base = method.removesuffix("-gauss")
    karras = base.endswith("-karras")
    return DPMSolverMultistepScheduler(**common, algorithm_type=base.removesuffix("-karras"), solver_order=2,
                                       thresholding=False, use_karras_sigmas=karras)


def _diffusers_loop(den, method, theta, shape, steps, gen, device, bf16, clip, progress, start=None):
    """Run a diffusers scheduler's ``set_timesteps`` / ``step`` loop from x_T ~ N(0, I), or with a
    Gaussian ``start`` from x_t = √ᾱ x₀^G + √(1−ᾱ) ε at the first level with σ ≤ σ* (module docstring).

    x̂_0 clipping: the scheduler is handed ε̃ = ε(x_t, clip(x̂_0)), the noise whose x̂_0 is the
    clipped one. For clip = (-1, 1) this is what DDIM's ``clip_sample=True,
    use_clipped_model_output=True`` and DPM-Solver++'s ``thresholding=True, sample_max_value=1``
    do (tested), and it also works for the asymmetric ranges of a percentile normalisation.
    """
    scheduler = _diffusers_scheduler(method, den.schedule)
    with warnings.catch_warnings():  # diffusers' own np.array(tensor) call under numpy 2
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        scheduler.set_timesteps(steps, device=device)
    first = 0
    if start is None:
        x = _noise(shape, gen, device) * scheduler.init_noise_sigma
    else:
        sigmas = scheduler.sigmas[:-1].cpu().numpy()  # one per timestep, decreasing
        below = sigmas <= start.sigma
        first = int(np.argmax(below)) if below.any() else len(sigmas) - 1
        ab = 1.0 / (1.0 + float(sigmas[first]) ** 2)  # the scheduler's own ᾱ at that level, σ² = (1−ᾱ)/ᾱ
        x = gaussian_start_x(start, theta, ab, shape, gen, device)
    timesteps = scheduler.timesteps[first:]
    total = len(timesteps)
    for done, t in enumerate(timesteps, start=1):
        t_batch = torch.full((shape[0],), int(t), dtype=torch.long, device=device)
        if clip is None:
            eps = den.eps(x, t_batch, theta, bf16)
        else:  # ε̃: the noise whose x̂_0 is the clipped one
            eps = den.schedule.eps_from_x0(x, t_batch, den.x0(x, t_batch, theta, bf16, clip))
        if method == "ddim":
            x = scheduler.step(eps, t, x, eta=0.0).prev_sample
        else:
            # the stochastic solvers' noise, drawn as diffusers' own randn_tensor would (CPU, float32),
            # but per request where ``gen`` is a GeneratorGroup
            noise = _noise(x.shape, gen, device) if method.startswith("sde-") else None
            x = scheduler.step(eps, t, x, variance_noise=noise).prev_sample
        if progress is not None:
            progress(done, total)
    return x


def _start(method: str, given, own, needed: bool, name: str, how: str, size) -> object:
    """The start (Gaussian or translation field) a method samples from: ``given``, or the denoiser's ``own``
    for "auto"; ValueError where the method ``needed`` one and there is none, or it was fitted at another size."""
    start = own if isinstance(given, str) and given == "auto" else given
    if needed:
        if start is None:
            raise ValueError(f"method {method!r} needs a {name} ({how})")
        if (start.resolution, start.resolution) != tuple(int(v) for v in size):
            raise ValueError(f"the {name} was fitted at {start.resolution}², not {int(size[0])}x{int(size[1])}")
    return start


def _check_clip(clip, den):
    if isinstance(clip, str) and clip == "auto":
        return den.normalization.clip_range
    if clip is None:
        return None
    lo, hi = (float(c) for c in clip)
    if not lo < hi:
        raise ValueError(f"clip must be (lo, hi) with lo < hi, got {clip!r}")
    return lo, hi


@torch.inference_mode()
def sample(denoiser: Denoiser, theta, *, n: int | None = None, resolution: int | tuple[int, int] | None = None,
           seed: int | None = None, method: str = "ddpm", steps: int | None = None,
           device: str | torch.device | None = None, bf16: bool | None = None,
           clip: tuple[float, float] | str | None = "auto", progress: Progress | None = None,
           generator: torch.Generator | None = None, gaussian_start="auto", translation_start="auto") -> torch.Tensor:
    """Draw maps x_0 at parameters θ.

    Args:
        denoiser: the trained model (moved to ``device`` if given; run in eval mode, its mode restored).
        theta: ``(B, 2)`` physical (Ωₘ, σ₈), or ``(2,)`` repeated ``n`` times (n defaults to 1).
        n: number of maps; must equal B when theta is ``(B, 2)``.
        resolution: map side H = W, or (H, W); multiples of the model's down-sampling factor;
            None: the denoiser's resolution.
        seed: seeds a CPU ``torch.Generator`` for all noise. Give exactly one of seed/generator.
        generator: a CPU ``torch.Generator`` to draw from instead (advanced; it is advanced), or a
            :class:`~explorer.model.noise.GeneratorGroup`: each block of rows draws from its own
            generator what it would draw alone (several requests sampled as one batch).
        method: one of ``SAMPLERS``.
        steps: number of denoising steps; None = ``SAMPLERS[method].default_steps`` (T for ddpm).
        device: where to run; None = where the model is.
        bf16: run the network under ``autocast`` (bfloat16); None = only where that is faster
            (``device.bf16_helps``).
        clip: range x̂_0 is clipped to at every step, or None; "auto": the denoiser's
            ``normalization.clip_range`` (the data range).
        progress: called as ``progress(steps_done, total)`` after every step; it may raise to cancel.
        gaussian_start: the :class:`explorer.model.gaussian.GaussianStart` of the "-gauss" method
            (required there, ignored otherwise; "auto": the denoiser's); its resolution must be the
            maps'. With it, ``steps`` counts the Karras levels, and only those below its σ* cost a
            network call.
        translation_start: the :class:`explorer.model.translation.TranslationStart` of
            "sde-translation" (required there, ignored otherwise; "auto": the denoiser's).

    Returns:
        ``(B, H, W)`` float32 CPU tensor, maps in normalised units.
    """
    if method not in SAMPLERS:
        raise ValueError(f"method must be one of {sorted(SAMPLERS)}, got {method!r}")
    if (seed is None) == (generator is None):
        raise ValueError("give exactly one of seed= or generator= (randomness is explicit)")
    gen = generator if generator is not None else torch.Generator("cpu").manual_seed(int(seed))

    theta = torch.as_tensor(np.asarray(theta, dtype=np.float32))
    if theta.shape == (2,):
        theta = theta.expand(1 if n is None else int(n), 2)
    if theta.ndim != 2 or theta.shape[1] != 2 or theta.shape[0] < 1:
        raise ValueError(f"theta must have shape (2,) or (B, 2), got {tuple(theta.shape)}")
    if n is not None and int(n) != theta.shape[0]:
        raise ValueError(f"n={n} does not match theta with {theta.shape[0]} rows")
    check_generator(gen, theta.shape[0])
    if not isinstance(denoiser, Denoiser):
        raise ValueError(f"denoiser must be an explorer.model.Denoiser, got {type(denoiser).__name__}")
    check_in_prior(theta.numpy(), denoiser.param_ranges)

    resolution = denoiser.resolution if resolution is None else resolution
    h, w = (resolution, resolution) if np.ndim(resolution) == 0 else tuple(resolution)
    f = denoiser.downsampling_factor
    if int(h) != h or int(w) != w or h < f or w < f or h % f or w % f:
        raise ValueError(f"resolution must be a positive multiple of {f}, got {resolution!r}")
    shape = (theta.shape[0], 1, int(h), int(w))

    T = denoiser.schedule.T
    if method == "distilled":
        levels = distilled_levels(denoiser)
        if steps is not None and steps != len(levels):
            raise ValueError(f"this distilled network takes exactly {len(levels)} steps, got {steps!r}")
        steps = len(levels)
    steps = SAMPLERS[method].default_steps if steps is None else steps
    if method == "ddpm":
        if steps not in (None, T):
            raise ValueError(f"steps must be None or T={T} for method 'ddpm' (use 'ddpm-strided'), got {steps!r}")
        steps = T
    few = method in ("ddim-gauss", "distilled", "sde-translation")  # one call per level: one level is allowed
    if int(steps) != steps or not (1 if few else 2) <= steps <= T:
        raise ValueError(f"steps must be an integer in [{1 if few else 2}, {T}], got {steps!r}")
    clip = _check_clip(clip, denoiser)
    gaussian_start = _start(method, gaussian_start, denoiser.gaussian_start, method in GAUSSIAN_START_METHODS,
                            "gaussian_start", "fitted by `explorer calibrate` and stored in the weights' explorer.json; "
                            "use 'sde-dpmsolver++-karras' without one", (h, w))
    translation_start = _start(method, translation_start, denoiser.translation_start,
                               method in TRANSLATION_START_METHODS, "translation_start",
                               "fitted by `explorer fit-start` and stored in the weights' explorer.json", (h, w))

    device = denoiser.device if device is None else pick_device(device)
    was_training = denoiser.training
    denoiser.to(device).eval()
    theta = theta.to(device)
    try:
        if method in ("ddpm", "ddpm-strided"):
            x = _ancestral(denoiser, theta, shape, spaced_timesteps(T, int(steps)), gen, device, bf16, clip,
                           progress)
        elif method == "sde-translation":
            x = sample_translation(lambda x, t, th: denoiser.x0(x, t, th, bf16, clip), denoiser.schedule,
                                   translation_start, theta, shape, int(steps), gen, device, progress)
        elif few:
            if method == "ddim-gauss":
                levels = karras_levels(denoiser.schedule, int(steps), gaussian_start.sigma)
            ab = denoiser.schedule.alpha_bar[levels[0]]
            x = gaussian_start_x(gaussian_start, theta, ab, shape, gen, device)
            x = ddim_levels(denoiser, theta, x, levels, bf16, clip, progress)
        else:
            x = _diffusers_loop(denoiser, method, theta, shape, int(steps), gen, device, bf16, clip,
                                progress, gaussian_start if method.endswith("-gauss") else None)
    finally:
        denoiser.train(was_training)
    return x[:, 0].float().cpu()


class Emulator:
    """Parameters -> log10 Σ maps from a weights folder.

    >>> emu = Emulator.from_folder("weights")
    >>> maps = emu.sample(0.3, 0.8, n=4, seed=0)   # (4, H, W) float32, log10 Σ [(M_⊙/h)/(Mpc/h)²]
    """

    def __init__(self, loaded: Denoiser, bf16: bool | None = None, small: Denoiser | None = None):
        self.loaded = loaded
        self.bf16 = bf16
        sampler = loaded.metadata.get("sampler") or {}
        method = sampler.get("method", "ddpm-strided")
        if method not in SAMPLERS:
            raise ValueError(f"sampler method {method!r} in the weights metadata is not one of {sorted(SAMPLERS)}")
        for methods, name, command in ((GAUSSIAN_START_METHODS, "gaussian_start", "calibrate"),
                                       (TRANSLATION_START_METHODS, "translation_start", "fit-start")):
            if method in methods and getattr(loaded, name) is None:
                raise ValueError(f"the weights' default sampler {method!r} needs metadata['{name}']; "
                                 f"run `explorer {command}` on the training data")
        self.default_method: str = method
        self.default_steps: int | None = sampler.get("steps", SAMPLERS[method].default_steps)
        #: x̂_0 clipping range in normalised units: the stored data range, else [-1, 1] (min-max)
        self.clip: tuple[float, float] = loaded.normalization.clip_range
        #: the networks this emulator can sample with: "full" (the one inference uses) and, when the
        #: weights name one in ``sampler.network``, a smaller "small" network trained on the same data
        self.networks: dict[str, Denoiser] = {"full": loaded}
        if small is not None:
            check_same_maps(loaded, small)
            self.networks["small"] = small
        self.default_network: str = "small" if small is not None else "full"
        self.folder: Path | None = None  # set by from_folder: other sub-folder networks load on request

    @classmethod
    def from_folder(cls, folder: str | Path | None = None, device: str | torch.device = "auto",
                    bf16: bool | None = None) -> "Emulator":
        """Load ``folder`` (raises WeightsError with instructions if it is missing or corrupt); None:
        ``$EXPLORER_WEIGHTS``, else the shipped weights (:func:`explorer.paths.resolve_weights`).

        If its ``explorer.json`` has ``sampler.network`` (a sub-folder name, e.g. "small"), that
        weights folder is loaded too and becomes the default network for sampling.
        """
        folder = resolve_weights(folder)
        loaded = load_model(folder, device=device)
        sub = (loaded.metadata.get("sampler") or {}).get("network")
        small = None
        if sub is not None:
            if not is_folder_name(sub):
                raise WeightsError(f"{Path(folder) / 'explorer.json'}: sampler.network must name a sub-folder, "
                                   f"got {sub!r}")
            small = load_model(Path(folder) / sub, device=device)
        emu = cls(loaded, bf16=bf16, small=small)
        emu.folder = Path(folder)
        return emu

    def resolve(self, method: str | None = None, steps: int | None = None,
                network: str | None = None) -> tuple[str, int | None, str]:
        """The (method, steps, network) a call with these arguments samples with: None network is
        :attr:`default_network`; None method is the weights' default, except on a network made by
        ``explorer distill``, which samples with its own levels ("distilled"); None steps is the
        weights' default for their default method, the distilled network's level count, else
        ``SAMPLERS[method].default_steps``."""
        network = self.default_network if network is None else network
        if method is None:
            own = (self.network(network).metadata.get("sampler") or {}).get("method")
            method = "distilled" if own == "distilled" else self.default_method
        if steps is None:
            if method == "distilled":
                steps = len(distilled_levels(self.network(network)))
            elif method == self.default_method:
                steps = self.default_steps
            else:
                steps = SAMPLERS[method].default_steps if method in SAMPLERS else None
        return method, steps, network

    def network(self, name: str) -> Denoiser:
        """The network ``name``: "full", "small", or another sub-folder of the weights folder holding
        a network for the same maps (e.g. "fast", a few-call network made by ``explorer distill``),
        loaded on first use."""
        sub = None if name in self.networks else network_folder(self.folder, name)
        if sub is not None:
            other = load_model(sub, device=self.loaded.device)
            check_same_maps(self.loaded, other)
            self.networks[name] = other
        if name not in self.networks:
            raise ValueError(f"network must be one of {sorted(self.networks)} (or a sub-folder of the weights "
                             f"holding one) for these weights, got {name!r}")
        return self.networks[name]

    @property
    def resolution(self) -> int:
        return self.loaded.resolution

    @property
    def param_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return self.loaded.param_ranges

    def sample(self, omega_m: float, sigma_8: float, n: int = 4, seed: int = 0, method: str | None = None,
               steps: int | None = None, progress: Progress | None = None, network: str | None = None) -> np.ndarray:
        """``n`` maps at (Ωₘ, σ₈): ``(n, H, W) float32`` log10 Σ [(M_⊙/h)/(Mpc/h)²].

        ``method``/``steps`` default to the weights' ``sampler`` entry (else ddpm-strided, 250);
        another method given without steps uses ``SAMPLERS[method].default_steps``.
        ``network``: "full" or "small" (:attr:`networks`; default :attr:`default_network`).
        ``progress(steps_done, total)`` is called after every step and may raise to cancel.
        """
        return self.sample_many([(omega_m, sigma_8, n, seed)], method=method, steps=steps, progress=progress,
                                network=network)[0]

    def check_request(self, omega_m: float, sigma_8: float, n: int, seed: int) -> tuple[float, float, int, int]:
        """One request of :meth:`sample_many` checked (ValueError naming what is wrong) and as plain numbers."""
        check_in_prior([[omega_m, sigma_8]], self.param_ranges)
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if int(seed) != seed:
            raise ValueError(f"seed must be an integer, got {seed!r}")
        return float(omega_m), float(sigma_8), int(n), int(seed)

    def sample_many(self, requests, method: str | None = None, steps: int | None = None,
                    progress: Progress | None = None, network: str | None = None) -> list[np.ndarray]:
        """Several requests ``(omega_m, sigma_8, n, seed)`` drawn as one batch of network calls: one
        ``(n, H, W) float32`` log10 Σ array per request.

        Each request draws its noise from its own seed in the order :meth:`sample` draws it
        (:class:`~explorer.model.noise.GeneratorGroup`), so its maps are the ones it gets alone, up to
        the floating-point rounding of a larger batch. One batch costs less than its requests one
        after another where the network is not compute-bound (the app's sessions moving sliders
        together, :mod:`explorer.ui.batching`)."""
        requests = [self.check_request(*r) for r in requests]
        if not requests:
            raise ValueError("sample_many needs at least one request")
        method, steps, network = self.resolve(method, steps, network)
        lm = self.network(network)
        theta = np.concatenate([np.tile([[om, s8]], (n, 1)) for om, s8, n, _ in requests])
        counts = [n for *_, n, _ in requests]
        generator = GeneratorGroup.from_seeds([seed for *_, seed in requests], counts)
        x = sample(lm, theta, generator=generator, method=method, steps=steps, device=lm.device, bf16=self.bf16,
                   clip=self.clip, progress=progress, gaussian_start=self.loaded.gaussian_start,
                   translation_start=self.loaded.translation_start)
        return np.split(lm.decode(x), np.cumsum(counts)[:-1])


def is_folder_name(name) -> bool:
    """True for a plain sub-folder name (no path separators, not "." or "..")."""
    return isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..")


def network_folder(folder, name) -> Path | None:
    """``folder / name`` if ``name`` is a plain sub-folder name and that sub-folder holds a network
    (an ``explorer.json``), else None."""
    if folder is None or not is_folder_name(name) or not (Path(folder) / name / "explorer.json").is_file():
        return None
    return Path(folder) / name


def check_same_maps(full: Denoiser, small: Denoiser) -> None:
    """A second network must describe the same maps: resolution, normalisation, prior box, T."""
    same = (full.resolution == small.resolution and full.param_ranges == small.param_ranges
            and (full.normalization.lo, full.normalization.hi) == (small.normalization.lo, small.normalization.hi)
            and full.schedule.T == small.schedule.T
            and np.allclose(full.schedule.betas, small.schedule.betas, rtol=0, atol=1e-12))
    if not same:
        raise WeightsError("the small network's weights folder was trained for other maps (resolution, "
                           "normalisation, prior box or noise schedule differ from the main weights)")
