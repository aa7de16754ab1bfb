"""The diffusion model core: periodic conditional U-Net, noise schedule, samplers, weights I/O.

    from explorer.model import Emulator
    maps = Emulator.from_folder("weights").sample(0.3, 0.8, n=4, seed=0)   # (4, H, W) log10 Σ

Modules: ``schedule`` (β, ᾱ, q/p helpers; the timestep convention), ``unet`` (``ParamUNet``, the
network), ``denoiser`` (``Denoiser``: network + schedule + normalisation + prior + map-mean model, and
ε̂, x̂₀, μ_θ, encode/decode written once),
``sampling`` (``sample``, ``SAMPLERS``, ``Emulator``), ``gaussian`` (``GaussianStart``, the Gaussian-field
start of the fast sampler), ``weights`` (``save_model``/``load_model``),
``device`` (``pick_device``, ``autocast``), ``command`` (`explorer sample`).
Names are imported lazily so that ``import explorer.model`` does not load torch or diffusers.
"""

from __future__ import annotations

from explorer._lazy import lazy_exports

_EXPORTS = {
    "NoiseSchedule": "schedule", "seed_betas": "schedule", "linear_betas": "schedule",
    "seed_schedule_spec": "schedule", "schedule_from_spec": "schedule", "spaced_timesteps": "schedule",
    "ParamUNet": "unet", "make_circular": "unet",
    "pick_device": "device", "autocast": "device", "bf16_helps": "device",
    "save_model": "weights", "load_model": "weights", "read_metadata": "weights",
    "WeightsError": "weights", "upgrade_weights": "weights",
    "Denoiser": "denoiser", "MeanLevel": "denoiser",
    "sample": "sampling", "SAMPLERS": "sampling", "SamplerInfo": "sampling", "Emulator": "sampling",
    "check_in_prior": "sampling",
    "GaussianStart": "gaussian",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
