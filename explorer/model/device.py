"""Where the model runs and in which precision.

``pick_device("auto")`` prefers CUDA, then Apple MPS, then the CPU. ``autocast(device)`` runs
matrix products in bfloat16 on the CPU and in bfloat16/float16 on CUDA; it does nothing when
disabled or on MPS. ``enabled=None`` ("auto") turns it on only where it is faster: on CUDA, and on
CPUs with native bfloat16 (AVX512-BF16 or AMX). Measured on a 2-core Xeon with AVX-512 but
neither: bf16 autocast made the U-Net forward about 2x *slower* than float32, hence "auto".
"""

from __future__ import annotations

import contextlib

import torch


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """The device to run on.

    Args:
        preference: "auto" (CUDA, then MPS, then CPU), or an explicit device such as "cpu",
            "cuda", "cuda:1", "mps", or a ``torch.device``.

    Raises:
        ValueError: the preference is not a device name, or names an unavailable device.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    if not isinstance(preference, str):
        raise ValueError(f"preference must be 'auto' or a device name, got {preference!r}")
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise ValueError(f"preference {preference!r} is not a device name (try 'auto', 'cpu', 'cuda', 'mps')") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"preference {preference!r}: CUDA is not available on this machine; use 'cpu' or 'auto'")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"preference {preference!r}: Apple MPS is not available on this machine; use 'cpu' or 'auto'")
    return device


def bf16_helps(device: str | torch.device) -> bool:
    """Whether bfloat16 autocast speeds the network up on ``device`` (CUDA, or CPU with AMX/AVX512-BF16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast(device: str | torch.device, enabled: bool | None = True):
    """A context manager for mixed precision on ``device``.

    CPU: ``torch.autocast("cpu", dtype=torch.bfloat16)``; CUDA: bfloat16 where supported, else
    float16; MPS or ``enabled=False``: a no-op. Outputs of autocast regions may be low-precision;
    callers cast back to float32. ``enabled=None`` means ``bf16_helps(device)``.
    """
    device = torch.device(device)
    if enabled is None:
        enabled = bf16_helps(device)
    if not enabled or device.type == "mps":
        return contextlib.nullcontext()
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()
