"""The classical baseline: a Gaussian likelihood of the binned log power spectrum.

Statistic: d = log10 P̄_b of a log10 Σ map, where P̄_b is the mode-weighted mean of
:func:`explorer.stats.power_spectrum` over a group b of its N/2 integer-|k| bins (``n_bins``
groups, logarithmically spaced in |k|).

Model (fitted on training simulations):

    d | θ ~ N(μ(θ), C),   μ_b(θ) = Σ_j c_jb φ_j(u),   u = 2(θ − lo)/(hi − lo) − 1 ∈ [−1, 1]²

with φ the monomials of total degree ≤ ``degree`` in u (least squares over all training maps),
C the covariance of the maps' residuals about μ (pooled over simulations), and the Hartlap factor
h = (n − p − 2)/(n − 1) (n independent samples, p bins) on the precision: C⁻¹ → h C⁻¹.
−2 ln L(θ) = (d − μ(θ))ᵀ h C⁻¹ (d − μ(θ)) (the θ-independent log det C is dropped).

Stored as ``weights/pk_baseline.json`` (a few kB): ``save`` / ``load``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.stats import power_spectrum

from explorer.model.gaussian import theta_monomials
from explorer.params import PRIOR

from .grid import check_truth, scan
from .posterior import Posterior

FORMAT = "explorer-pk-baseline/1"
FILENAME = "pk_baseline.json"


def _exponents(degree: int) -> list[tuple[int, int]]:
    return [(i, d - i) for d in range(degree + 1) for i in range(d, -1, -1)]


def _groups(n: int, n_bins: int) -> list[tuple[int, int]]:
    """|m| ranges [a, b) of the merged bins for an n x n map (bins |m| = 1 .. n/2)."""
    edges = np.unique(np.round(np.geomspace(1, n // 2 + 1, n_bins + 1)).astype(int))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


@dataclass
class PkBaseline:
    """Gaussian likelihood of binned log10 P(k) with a polynomial mean in θ (module docstring)."""

    resolution: int                 # map side the statistic is defined for
    box_size: float                 # Mpc/h
    groups: list                    # [(a, b)]: bin b merges the power-spectrum bins a <= |m| < b
    k: np.ndarray                   # (p,) h/Mpc, mode-weighted mean |k| of each merged bin
    param_ranges: tuple             # ((Ωₘ lo, hi), (σ₈ lo, hi)), scaling of u
    degree: int                     # total degree of the mean polynomial
    coef: np.ndarray                # (n_coef, p) polynomial coefficients of log10 P̄
    cov: np.ndarray                 # (p, p) residual covariance of log10 P̄
    hartlap: float                  # factor on the precision matrix
    n_maps: int                     # training maps
    n_independent: int              # independent samples used for the Hartlap factor

    # ---- the statistic and the model ------------------------------------------------------

    @staticmethod
    def _statistic(log10_maps, groups, box_size) -> tuple[np.ndarray, np.ndarray]:
        ps = power_spectrum(log10_maps, box_size=box_size)
        m = np.arange(1, ps.k.size + 1)
        w = np.stack([((m >= a) & (m < b)) * ps.n_modes for a, b in groups], axis=1).astype(float)  # (n_k, p)
        merged = (ps.power @ w) / w.sum(axis=0)
        k = (ps.k @ w) / w.sum(axis=0)
        return np.log10(merged), k

    def statistic(self, log10_maps) -> np.ndarray:
        """d of ``log10_maps: (N, r, r)`` or ``(r, r)`` log10 Σ -> ``(N, p)`` or ``(p,)``."""
        a = np.asarray(log10_maps, dtype=np.float64)
        if a.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"the P(k) baseline is fitted for {self.resolution}² maps, got shape {a.shape}; "
                             "bring the field to this resolution first (explorer.data.prepare_field)")
        return self._statistic(a, self.groups, self.box_size)[0]

    def _features(self, theta) -> np.ndarray:
        return theta_monomials(theta, self.param_ranges, self.degree, centred=True)

    def mean(self, theta) -> np.ndarray:
        """μ(θ) for ``theta: (G, 2)`` -> ``(G, p)`` log10 P̄."""
        return self._features(theta) @ self.coef

    def chi2(self, field_log10, theta) -> np.ndarray:
        """−2 ln L(θ) + const of one map ``(r, r)`` log10 Σ for ``theta: (G, 2)`` -> ``(G,)``."""
        r = self.statistic(field_log10)[None, :] - self.mean(theta)
        prec = self.hartlap * np.linalg.inv(self.cov)
        return np.einsum("gi,ij,gj->g", r, prec, r)

    # ---- fitting ---------------------------------------------------------------------------

    @classmethod
    def fit(cls, theta_per_map, log10_maps, *, n_bins: int = 8, degree: int = 3, box_size: float = 25.0,
            param_ranges=PRIOR, n_independent: int | None = None) -> "PkBaseline":
        """Fit the mean polynomial and the residual covariance.

        Parameters
        ----------
        theta_per_map : (N, 2) (Ωₘ, σ₈) of each map.
        log10_maps : (N, r, r) log10 Σ at the model resolution.
        n_bins : merged log-spaced bins (at most r/2).
        degree : total degree of the polynomial mean.
        n_independent : independent samples for the Hartlap factor (e.g. the number of
            simulations, since the 15 maps of one share large scales); default N.
        """
        theta = np.asarray(theta_per_map, dtype=np.float64)
        maps = np.asarray(log10_maps)
        if maps.ndim != 3 or maps.shape[1] != maps.shape[2]:
            raise ValueError(f"log10_maps must be (N, r, r), got shape {maps.shape}")
        if theta.shape != (maps.shape[0], 2):
            raise ValueError(f"theta_per_map must be ({maps.shape[0]}, 2), got {theta.shape}")
        r = maps.shape[-1]
        groups = _groups(r, n_bins)
        d, k = cls._statistic(maps, groups, box_size)
        ranges = tuple(tuple(float(v) for v in rr) for rr in param_ranges)
        model = cls(resolution=r, box_size=float(box_size), groups=groups, k=k, param_ranges=ranges,
                    degree=int(degree), coef=np.zeros((0, len(groups))), cov=np.eye(len(groups)),
                    hartlap=1.0, n_maps=int(maps.shape[0]), n_independent=int(n_independent or maps.shape[0]))
        phi = model._features(theta)
        n_coef, p = phi.shape[1], len(groups)
        n_eff = model.n_independent - n_coef + 1  # samples left after fitting the mean
        if n_eff <= p + 2 or maps.shape[0] <= n_coef + p:
            raise ValueError(f"{maps.shape[0]} maps ({model.n_independent} independent) are too few to fit "
                             f"{n_coef} polynomial coefficients and a {p} x {p} covariance")
        model.coef, *_ = np.linalg.lstsq(phi, d, rcond=None)
        resid = d - phi @ model.coef
        model.cov = resid.T @ resid / (maps.shape[0] - n_coef)
        model.hartlap = (n_eff - p - 2) / (n_eff - 1)
        return model

    # ---- posterior ---------------------------------------------------------------------------

    def posterior(self, field_log10, omega_m=None, sigma_8=None, *, truth=None, coarse=(41, 41),
                  fine=(61, 61), fine_half_width=(0.1, 0.1), temperature: float = 1.0) -> Posterior:
        """Δχ² of one map ``(r, r)`` log10 Σ.

        With grids ``omega_m (n1,)`` and ``sigma_8 (n2,)`` (e.g. a VLB Posterior's) it is evaluated
        exactly there; otherwise by the same coarse-to-fine scan as the VLB (cheap here).
        """
        import time

        t0 = time.perf_counter()
        truth = check_truth(truth, self.param_ranges)
        d_field = np.asarray(field_log10, dtype=np.float64)
        self.statistic(d_field)  # shape check
        meta = dict(method="pk", terms=f"log10 P(k), {len(self.groups)} bins", truth=truth,
                    settings={"k": self.k.tolist()})
        if (omega_m is None) != (sigma_8 is None):
            raise ValueError("give both omega_m and sigma_8 grids, or neither")
        if omega_m is not None:
            om, s8 = np.asarray(omega_m, float), np.asarray(sigma_8, float)
            theta = np.stack(np.meshgrid(om, s8, indexing="ij"), axis=-1).reshape(-1, 2)
            post = Posterior.from_grid(om, s8, self.chi2(d_field, theta).reshape(om.size, s8.size),
                                       temperature=temperature, **meta)
        else:
            post = scan(lambda theta, _progress: 0.5 * self.chi2(d_field, theta)[None, :], self.param_ranges,
                        coarse=coarse, fine=fine, fine_half_width=fine_half_width, interpolate_to=None,
                        temperature=temperature, **meta)
        post.seconds = time.perf_counter() - t0
        return post

    # ---- storage -----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"format": FORMAT, "resolution": self.resolution, "box_size": self.box_size,
                "groups": [list(g) for g in self.groups], "k": self.k.tolist(),
                "param_ranges": [list(r) for r in self.param_ranges], "degree": self.degree,
                "coef": self.coef.tolist(), "cov": self.cov.tolist(), "hartlap": self.hartlap,
                "n_maps": self.n_maps, "n_independent": self.n_independent}

    @classmethod
    def from_dict(cls, d: dict) -> "PkBaseline":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a P(k) baseline (format {FORMAT!r} expected)")
        try:
            out = cls(resolution=int(d["resolution"]), box_size=float(d["box_size"]),
                      groups=[tuple(int(v) for v in g) for g in d["groups"]], k=np.asarray(d["k"], float),
                      param_ranges=tuple(tuple(float(v) for v in r) for r in d["param_ranges"]),
                      degree=int(d["degree"]), coef=np.asarray(d["coef"], float), cov=np.asarray(d["cov"], float),
                      hartlap=float(d["hartlap"]), n_maps=int(d["n_maps"]), n_independent=int(d["n_independent"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed P(k) baseline: {type(err).__name__}: {err}") from None
        p = len(out.groups)
        if out.coef.shape != (len(_exponents(out.degree)), p) or out.cov.shape != (p, p):
            raise ValueError("malformed P(k) baseline: coefficient or covariance shape does not match the bins")
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically (temporary file, then rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(self.to_dict()) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PkBaseline":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"P(k) baseline not found: {path} (fit it with `explorer calibrate`)")
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err})") from None
        return cls.from_dict(d)
