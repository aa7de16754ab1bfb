"""The forward (noising) process of the DDPM: β schedule, ᾱ, posterior q(x_{t-1} | x_t, x_0).

Conventions (Ho, Jain & Abbeel 2020, arXiv 2006.11239, "the paper"):

    timestep index   code t = 0 .. T-1   <->   paper t = 1 .. T      (so ``betas[0]`` = β_1)

    α_t = 1 - β_t,   ᾱ_t = Π_{s<=t} α_s,   ᾱ_prev[t] = ᾱ_{t-1} with ᾱ_prev[0] = 1  (paper ᾱ_0 = 1)

    q(x_t | x_0)          = N(√ᾱ_t x_0, (1 - ᾱ_t) I)                                   (eq. 4)
    q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I),
        μ̃_t = √ᾱ_{t-1} β_t / (1 - ᾱ_t) · x_0 + √α_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · x_t        (eq. 7)
        β̃_t = (1 - ᾱ_{t-1}) / (1 - ᾱ_t) · β_t                                         (eq. 7)
    x̂_0(x_t, ε) = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t,  ε(x_t, x_0) = (x_t - √ᾱ_t x_0) / √(1 - ᾱ_t)  (eq. 4)
    v = √ᾱ_t ε - √(1 - ᾱ_t) x_0   (Salimans & Ho 2022, v-prediction)

The schedule arrays are float64 numpy; the torch helpers gather them at a batch of timesteps
``t: (B,) long`` (code indices) and broadcast over the remaining axes of ``x: (B, ...)``,
computing in the dtype of ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def seed_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.01,
               late_factor: float = 3.0) -> np.ndarray:
    """The seed work's β schedule (Mudur et al. 2023): ``(T,) float64``.

    β = linspace(beta_start, beta_end, T), with the last T//2 values multiplied by
    linspace(1, late_factor, T//2); the defaults give β_1 = 1e-4 and β_T = 0.03.
    """
    if int(T) != T or T < 2:
        raise ValueError(f"T must be an integer >= 2, got {T!r}")
    T = int(T)
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    half = T // 2
    betas[T - half:] *= np.linspace(1.0, late_factor, half, dtype=np.float64)
    return betas


def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al.'s linear schedule, β = linspace(beta_start, beta_end, T): ``(T,) float64``."""
    if int(T) != T or T < 2:
        raise ValueError(f"T must be an integer >= 2, got {T!r}")
    return np.linspace(beta_start, beta_end, int(T), dtype=np.float64)


#: schedule name (as stored in a weights folder) -> function(T, **params) returning betas
SCHEDULES = {"seed": seed_betas, "linear": linear_betas}


def seed_schedule_spec(T: int = 1000) -> dict:
    """The JSON description of the seed schedule, as stored in ``explorer.json``."""
    return {"name": "seed", "T": int(T), "beta_start": 1e-4, "beta_end": 0.01, "late_factor": 3.0}


def schedule_from_spec(spec: dict) -> "NoiseSchedule":
    """Rebuild a schedule from its JSON description ``{"name": ..., "T": ..., **params}``."""
    if not isinstance(spec, dict) or "name" not in spec or "T" not in spec:
        raise ValueError(f"schedule spec must be a dict with 'name' and 'T', got {spec!r}")
    params = {k: v for k, v in spec.items() if k not in ("name", "T")}
    try:
        make = SCHEDULES[spec["name"]]
    except KeyError:
        raise ValueError(f"schedule name {spec['name']!r} unknown; known: {sorted(SCHEDULES)}") from None
    try:
        betas = make(spec["T"], **params)
    except TypeError as err:
        raise ValueError(f"schedule spec {spec!r} has bad parameters: {err}") from None
    return NoiseSchedule.from_betas(betas)


def spaced_timesteps(T: int, steps: int) -> np.ndarray:
    """``steps`` evenly spaced code timesteps from 0 to T-1 inclusive: ``(steps,) int64``.

    As Nichol & Dhariwal 2021 (``space_timesteps`` with one section): stride (T-1)/(steps-1),
    rounded; ``steps = T`` gives every timestep.
    """
    if int(steps) != steps or not 2 <= steps <= T:
        raise ValueError(f"steps must be an integer in [2, {T}], got {steps!r}")
    stride = (T - 1) / (steps - 1)
    return np.array([round(i * stride) for i in range(int(steps))], dtype=np.int64)


def _gather(arr: np.ndarray, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``arr[t]`` as a tensor of x's dtype/device shaped (B, 1, ..., 1) to broadcast over x."""
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    vals = torch.from_numpy(arr[t.detach().cpu().numpy().astype(np.int64)])
    return vals.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


@dataclass(frozen=True)
class NoiseSchedule:
    """Discrete DDPM schedule; every array is ``(T,) float64`` indexed by code timestep t.

    Build with :meth:`from_betas`. See the module docstring for the conventions.
    """

    betas: np.ndarray
    alphas: np.ndarray
    alpha_bar: np.ndarray
    alpha_bar_prev: np.ndarray
    posterior_variance: np.ndarray          # β̃_t (eq. 7); β̃ at code t = 0 is 0
    posterior_log_variance_clipped: np.ndarray  # log β̃_t with β̃_1 replaced by β̃_2 (finite)
    posterior_mean_coef1: np.ndarray        # multiplies x_0 in μ̃_t (eq. 7)
    posterior_mean_coef2: np.ndarray        # multiplies x_t in μ̃_t (eq. 7)

    @classmethod
    def from_betas(cls, betas) -> "NoiseSchedule":
        """Derive every array from ``betas: (T,)`` with 0 < β < 1 (computed in float64)."""
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size < 2:
            raise ValueError(f"betas must be a 1-D array of length >= 2, got shape {betas.shape}")
        if not np.all((betas > 0) & (betas < 1)):
            raise ValueError("betas must lie strictly between 0 and 1")
        alphas = 1.0 - betas
        alpha_bar = np.cumprod(alphas)
        alpha_bar_prev = np.append(1.0, alpha_bar[:-1])
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        arrays = dict(
            betas=betas, alphas=alphas, alpha_bar=alpha_bar, alpha_bar_prev=alpha_bar_prev,
            posterior_variance=posterior_variance,
            posterior_log_variance_clipped=np.log(np.append(posterior_variance[1], posterior_variance[1:])),
            posterior_mean_coef1=betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            posterior_mean_coef2=(1.0 - alpha_bar_prev) * np.sqrt(alphas) / (1.0 - alpha_bar),
        )
        for a in arrays.values():
            a.setflags(write=False)
        return cls(**arrays)

    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return int(self.betas.shape[0])

    def respaced(self, timesteps) -> "NoiseSchedule":
        """The schedule restricted to increasing code ``timesteps: (S,)`` (Nichol & Dhariwal 2021).

        New β'_i = 1 - ᾱ_{k_i} / ᾱ_{k_{i-1}} (ᾱ before the first kept step is 1), computed as
        1 - Π α over the gap so that ᾱ' equals ᾱ at the kept steps; a gap of one step keeps β
        itself, so respacing onto every timestep returns exactly the same arrays.
        """
        k = np.asarray(timesteps, dtype=np.int64)
        if k.ndim != 1 or k.size < 2 or np.any(np.diff(k) <= 0) or k[0] < 0 or k[-1] >= self.T:
            raise ValueError(f"timesteps must be strictly increasing code indices in [0, {self.T}), got {k}")
        starts = np.append(0, k[:-1] + 1)
        new_betas = np.array([
            self.betas[b] if a == b else 1.0 - np.prod(self.alphas[a:b + 1])
            for a, b in zip(starts, k)
        ])
        return NoiseSchedule.from_betas(new_betas)

    # ---- torch helpers; t: (B,) long code timesteps, x: (B, C, H, W) ------------------------

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε, a draw from q(x_t | x_0) (eq. 4). Shape of x0."""
        return (_gather(np.sqrt(self.alpha_bar), t, x0) * x0
                + _gather(np.sqrt(1.0 - self.alpha_bar), t, x0) * noise)

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x̂_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t (eq. 4 solved for x_0). Shape of xt."""
        return (_gather(np.sqrt(1.0 / self.alpha_bar), t, xt) * xt
                - _gather(np.sqrt(1.0 / self.alpha_bar - 1.0), t, xt) * eps)

    def eps_from_x0(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """ε = (x_t - √ᾱ_t x_0) / √(1 - ᾱ_t), the noise that makes ``x0`` the x̂_0 of x_t. Shape of xt."""
        return (xt - _gather(np.sqrt(self.alpha_bar), t, xt) * x0) / _gather(np.sqrt(1.0 - self.alpha_bar), t, xt)

    def q_posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """μ̃_t(x_t, x_0), the mean of q(x_{t-1} | x_t, x_0) (eq. 7). Shape of xt."""
        return (_gather(self.posterior_mean_coef1, t, xt) * x0
                + _gather(self.posterior_mean_coef2, t, xt) * xt)

    def p_mean(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
               clip: tuple[float, float] | None = None) -> torch.Tensor:
        """The model mean μ_θ(x_t, t) = μ̃_t(x_t, x̂_0(x_t, ε_θ)), x̂_0 optionally clipped to ``clip``.

        Without clipping this equals eq. 11, (x_t - β_t/√(1 - ᾱ_t) ε_θ) / √α_t. Shape of xt.
        """
        x0 = self.predict_x0(xt, t, eps)
        if clip is not None:
            x0 = x0.clamp(clip[0], clip[1])
        return self.q_posterior_mean(x0, xt, t)

    def v_from(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The v-prediction target v = √ᾱ_t ε - √(1 - ᾱ_t) x_0. Shape of x0."""
        return (_gather(np.sqrt(self.alpha_bar), t, x0) * eps
                - _gather(np.sqrt(1.0 - self.alpha_bar), t, x0) * x0)

    def eps_from_v(self, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """ε = √ᾱ_t v + √(1 - ᾱ_t) x_t, the noise implied by a v-prediction. Shape of xt."""
        return (_gather(np.sqrt(self.alpha_bar), t, xt) * v
                + _gather(np.sqrt(1.0 - self.alpha_bar), t, xt) * xt)
