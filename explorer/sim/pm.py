"""Particle-mesh gravity: cloud-in-cell mass assignment and FFT forces on a periodic mesh.

Conventions (written once here):
- A mesh of n³ cells covers the periodic box [0, L)³; positions are given in *grid units*
  u = x n / L ∈ [0, n), and cloud-in-cell (CIC) gives a particle at u the weights Π_d (1 − |u_d − i_d|) on the 8 cells i with |u_d − i_d| < 1.
- Fourier: δ̂(k) = Σ_x δ(x) e^{−i k·x} (torch.fft.rfftn), wavenumbers k = 2π m / L, m integer.
- Force: F̂ = −∇ψ with ∇²ψ = δ, i.e. F̂(k) = i k δ̂(k) / k² (F̂(0) = 0). The physical
  acceleration is (3/2) Ωₘ F̂ / a; the FastPM kick absorbs that factor (see `fastpm`).
"""

from __future__ import annotations

import math

import torch


def wavevectors(n: int, box_size: float, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
    """(kx, ky, kz) of an rfftn of an n³ mesh, broadcastable to (n, n, n//2+1), in h/Mpc."""
    kf = 2.0 * math.pi / box_size
    k_full = torch.fft.fftfreq(n, d=1.0 / n, device=device).to(dtype) * kf
    k_half = torch.fft.rfftfreq(n, d=1.0 / n, device=device).to(dtype) * kf
    return k_full.view(n, 1, 1), k_full.view(1, n, 1), k_half.view(1, 1, n // 2 + 1)


def cic_weights(positions: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat cell indices (P, 8) and weights (P, 8) of the CIC corners of positions (P, 3)."""
    base = torch.floor(positions)
    frac = positions - base
    base = base.long()
    cells = torch.stack([base % n, (base + 1) % n], dim=-1)  # (P, 3, 2)
    w = torch.stack([1.0 - frac, frac], dim=-1)  # (P, 3, 2)
    index = (cells[:, 0, :, None, None] * n + cells[:, 1, None, :, None]) * n + cells[:, 2, None, None, :]
    weight = w[:, 0, :, None, None] * w[:, 1, None, :, None] * w[:, 2, None, None, :]
    return index.reshape(-1, 8), weight.reshape(-1, 8)


def cic_paint(positions: torch.Tensor, n: int, mass: torch.Tensor | float = 1.0,
              corners: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Deposit particles on an n³ periodic mesh.

    positions: (P, 3) in grid units [0, n). mass: scalar or (P,). corners: precomputed
    `cic_weights(positions, n)`. Returns (n, n, n): the mass per cell, so that the mesh sums to
    the total mass exactly.
    """
    index, weight = corners if corners is not None else cic_weights(positions, n)
    if not isinstance(mass, float):
        mass = mass[:, None]
    mesh = torch.bincount(index.reshape(-1), weights=(weight * mass).reshape(-1), minlength=n**3)
    return mesh.to(positions.dtype).view(n, n, n)


def cic_readout(mesh: torch.Tensor, positions: torch.Tensor,
                corners: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Interpolate a mesh (n, n, n) or (n, n, n, C) at positions (P, 3) [grid units]: (P,) or (P, C)."""
    n = mesh.shape[0]
    index, weight = corners if corners is not None else cic_weights(positions, n)
    flat = mesh.reshape(n**3, -1)
    out = (flat.index_select(0, index.reshape(-1)) * weight.reshape(-1, 1)).view(*index.shape, -1).sum(1)
    return out if mesh.dim() == 4 else out[:, 0]


def gravity(positions: torch.Tensor, n_mesh: int, box_size: float) -> torch.Tensor:
    """F̂ = −∇ψ, ∇²ψ = δ, at the particles: (P, 3) in Mpc/h (positions (P, 3) in Mpc/h).

    δ is the CIC overdensity of equal-mass particles on an n_mesh³ mesh and the gradient the exact
    spectral i k. The CIC window is not deconvolved: with a force mesh twice as fine as the particle
    lattice its smoothing only acts below the inter-particle scale, and deconvolution would amplify
    the shot noise near the mesh's Nyquist frequency.
    """
    grid = positions * (n_mesh / box_size)
    corners = cic_weights(grid, n_mesh)
    counts = cic_paint(grid, n_mesh, corners=corners)
    delta = counts / counts.mean() - 1.0
    delta_k = torch.fft.rfftn(delta)
    kx, ky, kz = wavevectors(n_mesh, box_size, dtype=positions.dtype, device=positions.device)
    k2 = kx**2 + ky**2 + kz**2
    k2[0, 0, 0] = 1.0
    potential_k = delta_k / k2  # = −ψ̂
    potential_k[0, 0, 0] = 0.0
    components = [torch.fft.irfftn(1j * k * potential_k, s=(n_mesh,) * 3) for k in (kx, ky, kz)]
    return cic_readout(torch.stack(components, dim=-1), grid, corners=corners)

