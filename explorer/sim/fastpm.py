"""FastPM-style N-body run: Gaussian initial field, 2LPT initial conditions, kick-drift-kick.

Steps (Feng et al. 2016, arXiv 1603.00476; 2LPT after Crocce, Pueblas & Scoccimarro 2006):

1. White noise w on the n_p³ particle lattice (numpy, seeded) → linear overdensity at z = 0,
   δ̂(k) = ŵ(k) √(P(k) / V_cell) with V_cell = (L/n_p)³ (so that ⟨|δ̂|²⟩ = n_p⁶ P / V).
2. 2LPT displacements: Ψ₁ = −∇φ₁, ∇²φ₁ = δ;  Ψ₂ = ∇φ₂, ∇²φ₂ = Σ_{i<j} (φ₁,ᵢᵢ φ₁,ⱼⱼ − φ₁,ᵢⱼ²);
   x = q + D₁Ψ₁ + D₂Ψ₂ and p = a³E (dD₁/da Ψ₁ + dD₂/da Ψ₂) at a₀.
3. Kick-drift-kick with growth-corrected factors, momentum p = a² dx/dt (H0 = 1, Mpc/h):
   drift  x ← x + p (D₁(a₁) − D₁(a₀)) / G_p(a_½)
   kick   p ← p + F̂ (G_p(a₁) − G_p(a₀)) / D₁(a_F)
   where F̂ = −∇ψ, ∇²ψ = δ (`pm.gravity`) is evaluated at a_F. Since the acceleration is
   (3/2)Ωₘ F̂/a and G_f = a E dG_p/da = (3/2)Ωₘ D₁/a, the factor is ΔG_p / G_f · (3/2)Ωₘ/a =
   ΔG_p / D₁. Both factors are exact for the Zel'dovich solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.sim.cosmology import Cosmology
from explorer.sim.pm import gravity, wavevectors


@dataclass(frozen=True)
class PMConfig:
    """Numerical settings of one stand-in simulation."""

    box_size: float = 25.0  # periodic box side, Mpc/h (CAMELS)
    n_particles: int = 64  # particles per side (lattice)
    n_mesh: int = 128  # force mesh cells per side
    a_start: float = 0.1  # scale factor of the 2LPT initial conditions
    n_steps: int = 10  # kick-drift-kick steps, linear in a from a_start to 1

    def __post_init__(self):
        for name in ("n_particles", "n_mesh", "n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive integer")
        if not 0 < self.a_start < 1:
            raise ValueError(f"a_start={self.a_start} must lie in (0, 1)")


def linear_field(cosmo: Cosmology, n: int, box_size: float, seed: int, device="cpu") -> torch.Tensor:
    """Gaussian linear overdensity at z = 0 on an n³ lattice, rfftn coefficients (n, n, n//2+1).

    The white noise comes from numpy's PCG64 with `seed`, so a seed gives the same field on every
    platform and device; the same seed at two cosmologies gives the same phases (as in CAMELS 1P
    sets). The FFT runs on `device`.
    """
    noise = np.random.default_rng(seed).standard_normal((n, n, n)).astype(np.float32)
    kx, ky, kz = wavevectors(n, box_size, dtype=torch.float64)
    k = torch.sqrt(kx**2 + ky**2 + kz**2)
    cell_volume = (box_size / n) ** 3
    amplitude = torch.from_numpy(np.sqrt(cosmo.linear_power(k.numpy()) / cell_volume)).to(torch.float32)
    return torch.fft.rfftn(torch.from_numpy(noise).to(device)) * amplitude.to(device)


def lpt_displacements(delta_k: torch.Tensor, box_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """First- and second-order displacement fields Ψ₁, Ψ₂: each (3, n, n, n) in Mpc/h."""
    n = delta_k.shape[0]
    kx, ky, kz = wavevectors(n, box_size, device=delta_k.device)
    ks = (kx, ky, kz)
    k2 = kx**2 + ky**2 + kz**2
    k2[0, 0, 0] = 1.0
    shape = (n,) * 3
    psi1 = torch.stack([torch.fft.irfftn(1j * k * delta_k / k2, s=shape) for k in ks])
    # φ₁,ᵢⱼ(k) = k_i k_j δ̂ / k² (φ̂₁ = −δ̂/k²)
    hess = {(i, j): torch.fft.irfftn(ks[i] * ks[j] * delta_k / k2, s=shape)
            for i in range(3) for j in range(i, 3)}
    source = (hess[0, 0] * hess[1, 1] + hess[0, 0] * hess[2, 2] + hess[1, 1] * hess[2, 2]
              - hess[0, 1] ** 2 - hess[0, 2] ** 2 - hess[1, 2] ** 2)
    source_k = torch.fft.rfftn(source)
    phi2_k = -source_k / k2
    phi2_k[0, 0, 0] = 0.0
    psi2 = torch.stack([torch.fft.irfftn(1j * k * phi2_k, s=shape) for k in ks])
    return psi1, psi2


def lattice(n: int, box_size: float, device="cpu") -> torch.Tensor:
    """Unperturbed positions q of an n³ lattice: (n³, 3) in Mpc/h, in C order of (i, j, l)."""
    axis = torch.arange(n, dtype=torch.float32, device=device) * (box_size / n)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"))
    return grid.reshape(3, -1).T.contiguous()


def run_pm(cosmo: Cosmology, seed: int, config: PMConfig = PMConfig(), device="cpu") -> torch.Tensor:
    """Evolve one realisation to z = 0 and return the particle displacements s = x − q.

    Returns (3, n_p, n_p, n_p) float32 in Mpc/h on `device` (where every step runs: "cuda" on a GPU),
    on the Lagrangian lattice of `lattice`, wrapped to [−L/2, L/2) — a smooth periodic field wherever
    streams have not crossed.
    """
    n, box = config.n_particles, config.box_size
    delta_k = linear_field(cosmo, n, box, seed, device)
    psi1, psi2 = (p.reshape(3, -1).T for p in lpt_displacements(delta_k, box))
    q = lattice(n, box, device)

    a_steps = np.linspace(config.a_start, 1.0, config.n_steps + 1)
    a0 = a_steps[0]
    d1, d2 = float(cosmo.growth(a0)[0]), float(cosmo.growth_2lpt(a0)[0][0])  # plain floats: any device
    dd1, dd2 = float(cosmo.growth_derivative(a0)[0]), float(cosmo.growth_2lpt(a0)[1][0])
    a3e = float(a0**3 * cosmo.efunc(a0))
    x = q + d1 * psi1 + d2 * psi2
    p = a3e * (dd1 * psi1 + dd2 * psi2)

    def kick(p, force, a_from, a_to, a_force):
        gp = cosmo.momentum_growth([a_from, a_to])
        return p + force * float((gp[1] - gp[0]) / cosmo.growth(a_force)[0])

    def drift(x, p, a_from, a_to):
        a_half = 0.5 * (a_from + a_to)
        d = cosmo.growth([a_from, a_to])
        return x + p * float((d[1] - d[0]) / cosmo.momentum_growth(a_half)[0])

    force = gravity(torch.remainder(x, box), config.n_mesh, box)
    for a_from, a_to in zip(a_steps[:-1], a_steps[1:]):
        a_half = 0.5 * (a_from + a_to)
        p = kick(p, force, a_from, a_half, a_from)
        x = drift(x, p, a_from, a_to)
        force = gravity(torch.remainder(x, box), config.n_mesh, box)
        p = kick(p, force, a_half, a_to, a_to)

    s = torch.remainder(x - q + 0.5 * box, box) - 0.5 * box
    return s.T.reshape(3, n, n, n).contiguous()
