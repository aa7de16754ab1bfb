"""Flat ΛCDM background, linear growth and the linear matter power spectrum of the stand-in.

Units: lengths in Mpc/h, wavenumbers in h/Mpc, time in 1/H0 (so H0 = 1), scale factor a.

Background and growth (no radiation, flat):

    E(a)   = H(a)/H0 = sqrt(Ωₘ a⁻³ + 1 − Ωₘ)
    D₁(a) ∝ (5Ωₘ/2) E(a) ∫₀ᵃ da' / (a' E(a'))³,   normalised to D₁(1) = 1
    D₂(a) ≈ −(3/7) D₁(a)² Ωₘ(a)^(−1/143),          dD₂/da ≈ 2 Ωₘ(a)^(6/11) D₂ / a

The FastPM step factors (Feng et al. 2016, arXiv 1603.00476) use the momentum growth
G_p(a) = a³ E(a) dD₁/da: in the Zel'dovich regime x = q + D₁Ψ and p = a² dx/dt = G_p Ψ.

The linear P(k) at z = 0 is Eisenstein & Hu (1998, with baryon wiggles) from colossus,
normalised to σ₈; the transfer function depends on Ωₘ (and the fixed Ω_b, h, n_s) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.integrate import quad

#: CAMELS fixed parameters (Villaescusa-Navarro et al. 2022).
OMEGA_B = 0.049
HUBBLE = 0.6711
N_S = 0.9624
#: Critical density today in (M_⊙/h) / (Mpc/h)³.
RHO_CRIT = 2.775e11


@dataclass(frozen=True)
class Cosmology:
    """A flat ΛCDM cosmology of the CAMELS family, varied in Ωₘ and σ₈ only."""

    omega_m: float
    sigma_8: float
    omega_b: float = OMEGA_B
    h: float = HUBBLE
    n_s: float = N_S

    def __post_init__(self):
        if not self.omega_b < self.omega_m <= 1.0:
            raise ValueError(f"omega_m={self.omega_m} must lie in ({self.omega_b}, 1]")
        if not self.sigma_8 > 0:
            raise ValueError(f"sigma_8={self.sigma_8} must be positive")

    @property
    def omega_cdm(self) -> float:
        """Ω_cdm = Ωₘ − Ω_b: the CDM maps carry this fraction of the matter."""
        return self.omega_m - self.omega_b

    def efunc(self, a):
        """E(a) = H(a)/H0."""
        a = np.asarray(a, dtype=np.float64)
        return np.sqrt(self.omega_m / a**3 + 1.0 - self.omega_m)

    def omega_m_of_a(self, a):
        """Ωₘ(a) = Ωₘ a⁻³ / E(a)²."""
        a = np.asarray(a, dtype=np.float64)
        return self.omega_m / a**3 / self.efunc(a) ** 2

    def _growth_integral(self, a: float) -> float:
        return quad(lambda x: 1.0 / (x * self.efunc(x)) ** 3, 0.0, a, epsabs=0, epsrel=1e-10)[0]

    @cached_property
    def _growth_norm(self) -> float:
        return 2.5 * self.omega_m * self.efunc(1.0) * self._growth_integral(1.0)

    def growth(self, a) -> np.ndarray:
        """Linear growth D₁(a), normalised to 1 today."""
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        d = [2.5 * self.omega_m * self.efunc(x) * self._growth_integral(x) for x in a]
        return np.asarray(d) / self._growth_norm

    def growth_derivative(self, a) -> np.ndarray:
        """dD₁/da, from differentiating the integral form of D₁ (exact, no finite difference)."""
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        e = self.efunc(a)
        de_da = -1.5 * self.omega_m / a**4 / e
        integral = np.array([self._growth_integral(x) for x in a])
        return 2.5 * self.omega_m * (de_da * integral + e / (a * e) ** 3) / self._growth_norm

    def momentum_growth(self, a) -> np.ndarray:
        """G_p(a) = a³ E(a) dD₁/da (FastPM drift/kick factors)."""
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        return a**3 * self.efunc(a) * self.growth_derivative(a)

    def growth_2lpt(self, a) -> tuple[np.ndarray, np.ndarray]:
        """Second-order growth D₂(a) and dD₂/da (Bouchet et al. 1995 fits)."""
        a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        om = self.omega_m_of_a(a)
        d2 = -3.0 / 7.0 * self.growth(a) ** 2 * om ** (-1.0 / 143.0)
        return d2, 2.0 * om ** (6.0 / 11.0) * d2 / a

    def linear_power(self, k) -> np.ndarray:
        """Linear matter P(k) at z = 0 in (Mpc/h)³, k in h/Mpc (k ≤ 0 gives 0)."""
        from colossus.cosmology import cosmology as colossus_cosmology

        k = np.asarray(k, dtype=np.float64)
        cosmo = colossus_cosmology.Cosmology(
            name="explorer-stand-in", flat=True, H0=100.0 * self.h, Om0=self.omega_m,
            Ob0=self.omega_b, sigma8=self.sigma_8, ns=self.n_s, relspecies=False,
            persistence="", print_warnings=False,
        )
        out = np.zeros_like(k)
        positive = k > 0
        out[positive] = cosmo.matterPowerSpectrum(k[positive], z=0.0, model="eisenstein98")
        return out
