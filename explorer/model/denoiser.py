"""The denoiser: one trained model with every fact needed to use it, and its algebra written once.

A :class:`Denoiser` owns

- ``network``: the periodic conditional U-Net (:class:`~explorer.model.unet.ParamUNet`), which
  maps ``(x_t, t, θ)`` to its prediction and knows nothing about the noise schedule;
- ``schedule``: the :class:`~explorer.model.schedule.NoiseSchedule` it was trained with;
- ``prediction_type`` ("epsilon" or "v_prediction") and the prior box ``param_ranges``, read from
  the network's config;
- ``normalization``: the :class:`~explorer.data.Normalization` between log10 Σ and the network's
  units, x = 2 (log10 Σ − lo)/(hi − lo) − 1, with the x̂₀ clipping range of the samplers;
- ``mean_level``: optionally, the Gaussian model of each map's mean level given θ
  (:class:`MeanLevel`), which replaces the network's k = 0 output mode.

and offers, in one place, ε̂(x_t, t, θ), x̂₀ (eq. 4 of Ho et al. 2020 solved for x₀), the model's
posterior mean μ_θ = μ̃_t(x_t, x̂₀) (eq. 7), and ``encode``/``decode``. The samplers, the VLB terms,
training and calibration all call it. A weights folder (``explorer.model.weights``) rebuilds it.

The mean level (why it exists): the k = 0 mode of the output, each map's mean ε̄, has weight 1/(HW)
in the loss and must pass a ~1 % signal through every GroupNorm; plain U-Nets then leave ε̄
unpredicted at high noise, which sets each sampled map's mean level almost at random (measured:
±1.5 dex, against a true spread of 0.15 dex). With a Gaussian prior m ~ N(μ(θ), s²) for the map's
mean m (normalised units), the Bayes estimate of ε̄ is exact:

    x̄_t = √ᾱ_t m + √(1−ᾱ_t) ε̄,   ε̄ ~ N(0, σ²_e),  σ²_e = 1/(HW)
    E[ε̄ | x̄_t, θ] = √(1−ᾱ_t) σ²_e / (ᾱ_t s² + (1−ᾱ_t) σ²_e) · (x̄_t − √ᾱ_t μ(θ))

with μ(θ) a quadratic in the scaled θ (Ωₘ in its log: the mean density is ∝ Ωₘ) and log s(θ) linear
in it, both learned (initialised by a fit to the training maps, :meth:`MeanLevel.fit`). The network's
own output mean is removed and this put in.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explorer.data.transform import Normalization
from explorer.params import PRIOR

from .device import autocast
from .gaussian import OMEGA_SCALES, fit_log_scatter
from .schedule import NoiseSchedule


class MeanLevel(nn.Module):
    """Gaussian prior of a map's mean level given θ: m ~ N(μ(θ), s(θ)²), normalised units.

    μ(θ) = coef · [1, u, v, u², uv, v²] and log s(θ) = log_s · [1, u, v], with (u, v) θ scaled to
    [0, 1] over ``param_ranges``: Ωₘ in its log with ``omega="log"`` (u = ln(Ωₘ/lo)/ln(hi/lo),
    :func:`explorer.model.gaussian.scaled_theta`; the mean linear density is ∝ Ωₘ, and at the
    prior's low-Ωₘ edge a quadratic in Ωₘ put μ 0.07 dex too high), linearly otherwise (weights
    before session 17). Why s depends on θ: the mean of a thin slab scatters more when
    structure is stronger; on the 750 maps of assets/valid the scatter around μ(θ) grows from 0.049
    (σ₈ < 0.7) to 0.079 (σ₈ > 0.9) normalised units, with no trend in Ωₘ (README, model card).
    Weights from before store one scatter (``log_s`` a number), read as log_s = [that, 0, 0].
    Stored in ``explorer.json`` as :meth:`to_dict`.
    """

    def __init__(self, param_ranges=PRIOR, omega: str = "linear"):
        super().__init__()
        ranges = [tuple(float(v) for v in r) for r in param_ranges]
        if len(ranges) != 2 or any(len(r) != 2 or not r[0] < r[1] for r in ranges):
            raise ValueError(f"param_ranges must be two (lo, hi) pairs with lo < hi, got {param_ranges!r}")
        if omega not in OMEGA_SCALES:
            raise ValueError(f"omega must be one of {OMEGA_SCALES}, got {omega!r}")
        if omega == "log" and ranges[0][0] <= 0:
            raise ValueError(f"a log scale for Ωₘ needs a positive prior range, got {ranges[0]}")
        self.param_ranges = tuple(ranges)
        self.omega = omega
        self.coef = nn.Parameter(torch.zeros(6))
        self.log_s = nn.Parameter(torch.tensor([float(np.log(0.1)), 0.0, 0.0]))
        self.register_buffer("theta_lo", torch.tensor([r[0] for r in ranges]), persistent=False)
        self.register_buffer("theta_span", torch.tensor([r[1] - r[0] for r in ranges]), persistent=False)

    @staticmethod
    def features(u: torch.Tensor) -> torch.Tensor:
        """Scaled θ ``(B, 2)`` -> quadratic features ``(B, 6)``: 1, u, v, u², uv, v²."""
        a, b = u[:, 0], u[:, 1]
        return torch.stack([torch.ones_like(a), a, b, a * a, a * b, b * b], dim=1)

    def scaled(self, theta: torch.Tensor) -> torch.Tensor:
        """Physical θ ``(B, 2)`` -> (u, v) ``(B, 2)`` in [0, 1] over the prior box (Ωₘ in its log with
        ``omega="log"``, as :func:`explorer.model.gaussian.scaled_theta`)."""
        u = (theta - self.theta_lo.to(theta)) / self.theta_span.to(theta)
        if self.omega == "log":
            lo, hi = self.param_ranges[0]
            u = torch.cat([torch.log(theta[:, :1] / lo) / float(np.log(hi / lo)), u[:, 1:]], dim=1)
        return u

    def forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(θ) ``(B,)``, s(θ) ``(B,)``) for physical ``theta: (B, 2)``, normalised units."""
        f = self.features(self.scaled(theta.to(self.coef)))
        return f @ self.coef, (f[:, :3] @ self.log_s).exp()

    def eps_mean(self, x_t: torch.Tensor, alpha_bar: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """E[ε̄ | x̄_t, θ] ``(B,)`` for noisy maps ``x_t: (B, 1, H, W)`` with ``alpha_bar: (B,)`` float32
        (module docstring)."""
        mu, s = self(theta)
        var_e = 1.0 / (x_t.shape[-1] * x_t.shape[-2])
        xbar = x_t.float().mean(dim=(1, 2, 3))
        gain = (1 - alpha_bar).sqrt() * var_e / (alpha_bar * s.float() ** 2 + (1 - alpha_bar) * var_e)
        return gain * (xbar - alpha_bar.sqrt() * mu.float())

    @torch.no_grad()
    def fit(self, theta, means, scatter: str = "theta") -> dict:
        """Fit μ(θ) by least squares and s(θ) by maximum likelihood to maps' means.

        theta: ``(N, 2)`` physical θ; means: ``(N,)`` each map's mean of the normalised field;
        scatter: "theta" (log s linear in the scaled θ) or "constant" (one s, as before).
        Sets the parameters; returns {"coef", "log_s", "s_range", "rms_before"} for the record.
        """
        if scatter not in ("theta", "constant"):
            raise ValueError(f"scatter must be 'theta' or 'constant', got {scatter!r}")
        theta = torch.as_tensor(np.asarray(theta, dtype=np.float64))
        means = torch.as_tensor(np.asarray(means, dtype=np.float64)).reshape(-1)
        if theta.ndim != 2 or theta.shape[1] != 2 or theta.shape[0] != means.shape[0] or means.numel() < 7:
            raise ValueError(f"need theta (N, 2) and means (N,) with N >= 7, got {tuple(theta.shape)}, "
                             f"{tuple(means.shape)}")
        features = self.features(self.scaled(theta))
        coef = torch.linalg.lstsq(features, means[:, None]).solution[:, 0]
        g = features[:, :3] if scatter == "theta" else features[:, :1]
        w = torch.from_numpy(fit_log_scatter(g.numpy(), (means - features @ coef).numpy()))
        log_s = torch.zeros(3, dtype=torch.float64)
        log_s[: w.numel()] = w
        log_s[0] = torch.maximum(log_s[0], torch.tensor(np.log(1e-4)))
        self.coef.copy_(coef.to(self.coef))
        self.log_s.copy_(log_s.to(self.log_s))
        s = torch.exp(g @ w)
        return {"coef": coef.tolist(), "log_s": log_s.tolist(), "s_range": [float(s.min()), float(s.max())],
                "rms_before": float(means.std())}

    def to_dict(self) -> dict:
        """The JSON form in ``explorer.json`` (float32 values written exactly)."""
        return {"model": "quadratic-gaussian", "coef": [float(c) for c in self.coef.detach().cpu()],
                "log_s": [float(c) for c in self.log_s.detach().cpu()],
                **({} if self.omega == "linear" else {"omega": self.omega})}

    @classmethod
    def from_dict(cls, d: dict, param_ranges=PRIOR) -> "MeanLevel":
        """Inverse of :meth:`to_dict`; a number for ``log_s`` (one scatter for every θ) is read as
        [that, 0, 0]; no ``omega`` means Ωₘ scaled linearly. Raises ValueError on a malformed entry."""
        if not isinstance(d, dict) or d.get("model") != "quadratic-gaussian":
            raise ValueError(f'mean_level must be {{"model": "quadratic-gaussian", "coef": [6 numbers], '
                             f'"log_s": [3 numbers] or a number}}, got {d!r}')
        coef = np.asarray(d.get("coef", ()), dtype=np.float64)
        try:
            log_s = np.atleast_1d(np.asarray(d.get("log_s"), dtype=np.float64))
        except (TypeError, ValueError):
            log_s = np.array([])
        if log_s.shape == (1,):
            log_s = np.array([log_s[0], 0.0, 0.0])
        if coef.shape != (6,) or log_s.shape != (3,) or not (np.isfinite(coef).all() and np.isfinite(log_s).all()):
            raise ValueError(f"mean_level needs 6 finite coef and a finite log_s (3 numbers or one), got {d!r}")
        out = cls(param_ranges, omega=d.get("omega", "linear"))  # refuses an unknown scale
        with torch.no_grad():
            out.coef.copy_(torch.tensor(coef, dtype=torch.float32))
            out.log_s.copy_(torch.tensor(log_s, dtype=torch.float32))
        return out


class Denoiser(nn.Module):
    """A trained diffusion model: network, schedule, normalisation, prior box and mean level.

    ``forward(x_t, t, θ)`` is the network's prediction (ε̂ or v̂, with the mean level's k = 0 mode),
    the quantity the training loss compares with its target; :meth:`eps`, :meth:`x0` and
    :meth:`posterior_mean` are what samplers and the likelihood use.

    Shapes: ``x_t: (B, 1, H, W)`` normalised units; ``t: (B,)`` long code timesteps 0..T-1 (or a
    scalar); ``theta: (B, 2)`` physical (Ωₘ, σ₈).
    """

    def __init__(self, network: nn.Module, schedule: NoiseSchedule, normalization: Normalization | None = None,
                 mean_level: MeanLevel | None = None, *, metadata: dict | None = None, gaussian_start=None):
        super().__init__()
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        self.network = network
        self.mean_level = mean_level
        self.schedule = schedule
        self.normalization = normalization if normalization is not None else Normalization(-1.0, 1.0)
        self.metadata: dict = metadata if metadata is not None else {}  # the weights' explorer.json
        self.gaussian_start = gaussian_start  # explorer.model.gaussian.GaussianStart of the fast sampler
        self.translation_start = None  # explorer.model.translation.TranslationStart of the few-call sampler
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {self.prediction_type!r}")
        if mean_level is not None and self.prediction_type != "epsilon":
            raise ValueError("a mean level needs an ε-predicting network (prediction_type='epsilon')")
        self.register_buffer("alpha_bar", torch.tensor(schedule.alpha_bar, dtype=torch.float64), persistent=False)

    # ---- facts ---------------------------------------------------------------------------------

    @property
    def config(self):
        """The network's config (diffusers ``FrozenDict``)."""
        return self.network.config

    @property
    def prediction_type(self) -> str:
        return getattr(getattr(self.network, "config", None), "prediction_type", "epsilon")

    @property
    def param_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The prior box ((Ωₘ lo, hi), (σ₈ lo, hi)) the network was trained on."""
        ranges = getattr(getattr(self.network, "config", None), "param_ranges", PRIOR)
        return tuple(tuple(float(v) for v in r) for r in ranges)

    @property
    def resolution(self) -> int:
        """Map side in pixels the model works at."""
        if "resolution" in self.metadata:
            return int(self.metadata["resolution"])
        return int(self.network.config.sample_size)

    @property
    def device(self) -> torch.device:
        p = next(iter(self.network.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def downsampling_factor(self) -> int:
        return int(getattr(self.network, "downsampling_factor", 1))

    # ---- the algebra ---------------------------------------------------------------------------

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """The network's prediction ``(B, 1, H, W)`` (ε̂, or v̂), its k = 0 mode from the mean level."""
        out = self.network(x_t, t, theta)
        if self.mean_level is not None:
            tt = torch.as_tensor(t, device=x_t.device).long().reshape(-1).expand(x_t.shape[0])
            ab = self.alpha_bar.to(x_t.device)[tt].to(torch.float32)
            dc = self.mean_level.eps_mean(x_t, ab, theta.to(device=self.mean_level.coef.device))
            out = out - out.mean(dim=(-2, -1), keepdim=True) + dc.to(out.dtype)[:, None, None, None]
        return out

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, theta: torch.Tensor, bf16: bool | None = False) -> torch.Tensor:
        """ε̂(x_t, t, θ) in the dtype and on the device of ``x_t``.

        The network runs in float32 (under bfloat16 ``autocast`` when ``bf16``; None: where that is
        faster) on its own device; a v-prediction is turned into ε = √ᾱ_t v + √(1 − ᾱ_t) x_t in the
        precision of ``x_t`` (float64 for the likelihood, float32 for the samplers).
        """
        device = self.device
        with autocast(device, enabled=bf16):
            out = self(x_t.to(device=device, dtype=torch.float32), torch.as_tensor(t).to(device),
                       theta.to(device=device, dtype=torch.float32))
        out = out.detach().to(x_t.device, x_t.dtype) if x_t.dtype != torch.float32 or x_t.device != device \
            else out.float()
        if self.prediction_type == "v_prediction":
            out = self.schedule.eps_from_v(x_t, torch.as_tensor(t).to(x_t.device), out)
        return out

    def x0(self, x_t: torch.Tensor, t: torch.Tensor, theta: torch.Tensor, bf16: bool | None = False,
           clip: tuple[float, float] | None = None) -> torch.Tensor:
        """x̂₀ = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, optionally clipped to ``clip`` (normalised units)."""
        x0 = self.schedule.predict_x0(x_t, torch.as_tensor(t).to(x_t.device), self.eps(x_t, t, theta, bf16))
        return x0 if clip is None else x0.clamp(clip[0], clip[1])

    def posterior_mean(self, x_t: torch.Tensor, t: torch.Tensor, theta: torch.Tensor, bf16: bool | None = False,
                       clip: tuple[float, float] | None = None) -> torch.Tensor:
        """The model mean μ_θ(x_t, t) = μ̃_t(x_t, x̂₀) of p(x_{t−1} | x_t) (eq. 7 with x̂₀)."""
        tt = torch.as_tensor(t).to(x_t.device)
        return self.schedule.q_posterior_mean(self.x0(x_t, t, theta, bf16, clip), x_t, tt)

    def encode(self, log10):
        """log10 Σ [(M_⊙/h)/(Mpc/h)²] (numpy or torch, any shape) -> normalised x."""
        return self.normalization.encode(log10)

    def decode(self, x) -> np.ndarray:
        """Normalised maps ``(..., H, W)`` (numpy or torch) -> log10 Σ, float32 (computed in float64)."""
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return np.asarray(self.normalization.decode(x.astype(np.float64)), dtype=np.float32)

    def mean_prior(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(θ), s(θ)), each ``(B,)``, of the mean level (raises ValueError without one)."""
        if self.mean_level is None:
            raise ValueError("this model has no mean level")
        return self.mean_level(theta)
