"""The sampling methods by name: their default step counts, stochasticity and one-line descriptions.

A plain table (no torch), so that `explorer sample --help` lists the methods without loading the
network code; :mod:`.sampling` implements them and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerInfo:
    """One sampling method: its default number of steps (None = all T) and whether it is stochastic."""

    name: str
    default_steps: int | None
    stochastic: bool
    description: str


SAMPLERS: dict[str, SamplerInfo] = {s.name: s for s in (
    SamplerInfo("ddpm", None, True, "ancestral DDPM over all T steps (paper mode)"),
    SamplerInfo("ddpm-strided", 250, True, "ancestral DDPM on a respaced subsequence of timesteps"),
    SamplerInfo("ddim", 50, False, "DDIM, eta = 0 (diffusers)"),
    SamplerInfo("dpmsolver++", 20, False, "DPM-Solver++ order 2 (diffusers)"),
    SamplerInfo("sde-dpmsolver++", 30, True, "stochastic DPM-Solver++ order 2 (diffusers)"),
    SamplerInfo("sde-dpmsolver++-karras", 30, True,
                "stochastic DPM-Solver++ order 2 on Karras noise levels (diffusers)"),
    SamplerInfo("sde-dpmsolver++-karras-gauss", 30, True,
                "Gaussian-field start at sigma*, then stochastic DPM-Solver++ on the Karras levels below it"),
    SamplerInfo("ddim-gauss", 8, False,
                "Gaussian-field start at sigma*, then DDIM (eta = 0) on `steps` Karras levels below it, one call each"),
    SamplerInfo("sde-translation", 4, True,
                "few-call: translation-field start at sigma* = 0.15, then `steps` stochastic steps that put back "
                "the posterior variance a denoised mean lacks (one call each)"),
    SamplerInfo("distilled", None, False,
                "a network made by `explorer distill`: DDIM from the Gaussian start on the levels it was trained for"),
)}

#: methods that start from the weights' Gaussian field at sigma* (``gaussian_start``)
GAUSSIAN_START_METHODS = tuple(name for name in SAMPLERS if name.endswith("-gauss") or name == "distilled")
#: methods that start from the weights' translation field (``translation_start``, ``explorer fit-start``)
TRANSLATION_START_METHODS = ("sde-translation",)
