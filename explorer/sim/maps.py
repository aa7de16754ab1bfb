"""From particle displacements to CAMELS CMD "Mcdm" maps.

1. The displacement field s(q) of the n_p³ lattice is Fourier-interpolated to an (f·n_p)³ lattice
   (zero-padding of its spectrum): f³ times more tracers of 1/f³ the mass, which removes the grid
   pattern a 64³ lattice otherwise leaves in voids (DESIGN.md section 4).
2. The tracers are split into `n_slabs` slabs of L/n_slabs along each axis and deposited with 2D
   cloud-in-cell on a map_size² mesh: 3 axes × 5 slabs = 15 maps per simulation, map index
   = axis · n_slabs + slab, the two remaining axes in increasing order as (row, column).
3. Each tracer carries the CDM mass M = Ω_cdm ρ_crit L³ / N_tracers; a pixel holds
   Σ = (mass in the pixel) / (pixel area) in (M_⊙/h)/(Mpc/h)², the CAMELS Mcdm unit.
"""

from __future__ import annotations

import torch

from explorer.sim.cosmology import RHO_CRIT, Cosmology
from explorer.sim.fastpm import lattice


def upsample_displacements(s: torch.Tensor, factor: int) -> torch.Tensor:
    """Fourier-interpolate displacements (3, n, n, n) to (3, fn, fn, fn); factor 1 is a no-op."""
    if factor == 1:
        return s
    n = s.shape[-1]
    m = factor * n
    h = n // 2
    s_k = torch.fft.rfftn(s, dim=(1, 2, 3))
    # Drop the Nyquist planes: they have no unique sign on the finer lattice.
    s_k[:, h] = 0
    s_k[:, :, h] = 0
    s_k[..., h] = 0
    big = torch.zeros((3, m, m, m // 2 + 1), dtype=s_k.dtype, device=s_k.device)
    for rows_src, rows_dst in ((slice(0, h), slice(0, h)), (slice(h, n), slice(m - h, m))):
        for cols_src, cols_dst in ((slice(0, h), slice(0, h)), (slice(h, n), slice(m - h, m))):
            big[:, rows_dst, cols_dst, : h + 1] = s_k[:, rows_src, cols_src, : h + 1]
    return torch.fft.irfftn(big, s=(m, m, m), dim=(1, 2, 3)) * factor**3


def paint_slab_maps(positions: torch.Tensor, box_size: float, map_size: int, n_slabs: int,
                    tracer_mass: float) -> torch.Tensor:
    """Project tracers (P, 3) [Mpc/h] into (3·n_slabs, map_size, map_size) Σ maps (float64)."""
    n = map_size
    pixel_area = (box_size / n) ** 2
    maps = []
    for axis in range(3):
        rows, cols = [d for d in range(3) if d != axis]
        slab = torch.clamp((positions[:, axis] * (n_slabs / box_size)).long(), max=n_slabs - 1)
        u = positions[:, rows] * (n / box_size)
        v = positions[:, cols] * (n / box_size)
        iu, iv = torch.floor(u), torch.floor(v)
        fu, fv = (u - iu).double(), (v - iv).double()
        iu, iv = iu.long() % n, iv.long() % n
        row0 = slab * (n * n) + iu * n
        row1 = slab * (n * n) + ((iu + 1) % n) * n
        iv1 = (iv + 1) % n
        index = torch.cat([row0 + iv, row0 + iv1, row1 + iv, row1 + iv1])
        weight = torch.cat([(1 - fu) * (1 - fv), (1 - fu) * fv, fu * (1 - fv), fu * fv])
        mesh = torch.bincount(index, weights=weight, minlength=n_slabs * n * n)
        maps.append(mesh.view(n_slabs, n, n))
    return torch.cat(maps) * (tracer_mass / pixel_area)


def cdm_maps(displacements: torch.Tensor, cosmo: Cosmology, box_size: float = 25.0,
             map_size: int = 128, n_slabs: int = 5, upsample: int = 2,
             fill_empty: bool = True) -> torch.Tensor:
    """CMD-style CDM surface-density maps of one simulation.

    displacements: (3, n, n, n) Mpc/h from `fastpm.run_pm`. Returns (3·n_slabs, map_size,
    map_size) float32 Σ_cdm in (M_⊙/h)/(Mpc/h)²; each axis' maps together hold the total CDM mass.

    A pixel that no tracer reached (a few per 10⁵ at 128² in the deepest voids; none at 64² in
    our tests) would make log10 Σ = −∞. With `fill_empty` it gets the smallest non-zero Σ of its
    map, so that the maps are strictly positive as real CAMELS maps are; the mass this adds is
    below 1e-6 of the total.
    """
    s = upsample_displacements(displacements, upsample)
    n = s.shape[-1]
    positions = torch.remainder(lattice(n, box_size, s.device) + s.reshape(3, -1).T, box_size)
    tracer_mass = cosmo.omega_cdm * RHO_CRIT * box_size**3 / n**3
    maps = paint_slab_maps(positions, box_size, map_size, n_slabs, tracer_mass)
    if fill_empty:
        smallest = torch.where(maps > 0, maps, torch.inf).amin(dim=(1, 2), keepdim=True)
        maps = torch.where(maps > 0, maps, smallest)
    return maps.float()
