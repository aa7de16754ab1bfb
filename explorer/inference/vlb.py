"""Terms of the variational lower bound of one field, for many θ at once (DESIGN.md section 6).

Timestep convention as in :mod:`explorer.model.schedule`: code index t = 0..T-1 is the paper's
t = 1..T. The term evaluated with the network at code index k is called ``L_k``:

    L_0 = −log N(x₀; μ_θ(x₁, 1), β₁ I)                 code k = 0 (network at paper t = 1)
    L_k = KL(q(x_k | x_{k+1}, x₀) ‖ p_θ(x_k | x_{k+1}))  code k = 1..T-1 (paper indices inside)
        = Σ_pixels normal_kl(μ̃, log β̃, μ_θ, log β̃)     both Gaussians with the posterior variance
    L_T = KL(q(x_T | x₀) ‖ N(0, I))                      no network, independent of θ (prior_kl)

with x_{k+1} = √ᾱ x₀ + √(1 − ᾱ) ε drawn from q(x_{k+1} | x₀) (ᾱ at code k), μ̃ the posterior
mean (Ho et al. 2020 eq. 7) and μ_θ = μ̃(x_{k+1}, x̂₀(x_{k+1}, ε̂_θ)) (eq. 11, no clipping). All
terms are in nats, summed over pixels. With equal variances the KL reduces to
(μ̃ − μ_θ)²/(2β̃); the full formula is kept (its θ-independent parts are zero here).

Term choices (``terms``): "L0" (the seed paper), "Lk" (one term), "sum:K" (L_0 .. L_{K-1}, as
Diffusion-HMC with K = 20), and "vlb:K", a stratified estimate of the whole diffusion part of the
bound, Σ_{k=1}^{T-1} L_k: the range [1, T) is cut into K strata with log-spaced edges
e_j = T^{j/K}, each stratum is represented by the term at its geometric middle and weighted by
its width, so Σ_j w_j L_{k_j} with Σ_j w_j = T − 1. L_0 is left out of "vlb:K": its decoder
variance β₁ = 10⁻⁴ makes it a sharp test of the network's small-scale error at t = 1, and on the
stand-in calibration fields it was biased to high Ωₘ by ≈ 0.1 (the measurement is in README).
The strata are dense at low t, where a single term carries most information per network call,
and still reach the high-noise terms that carry each map's mean level and large-scale modes.

Scale weights (``terms`` + "/k4:0.7,5.5:0.5"): every term's squared residual (μ̃ − μ_θ for L_k,
x₀ − μ_θ for L_0) is summed in Fourier space (Parseval) with weight 0.7 on the modes with
|k| > 4 h/Mpc and 0.5 on |k| > 5.5 h/Mpc (1 below the first edge; k of the 25 h⁻¹Mpc box). The
network's maps vary too little from map to map at those scales, and there the bound's terms
are most overconfident (README, "Where the temperature comes from"): a soft scale cut. With no
suffix every mode has weight 1 and the terms are the bound's own.

Common random numbers: the noise ε of term k and draw n is ``term_noise(seed, k, n, shape)``,
the same array for every θ, so L(θ) is a smooth deterministic function of θ and differences
between θ are not swamped by the noise of the draw. A term's noise does not depend on which
other terms are computed, so "L0" and "sum:20" share L_0.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Callable

import numpy as np
import torch

from .likelihood import gaussian_log_likelihood, normal_kl

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class InferenceCancelled(RuntimeError):
    """Raised when the ``cancel()`` callback of an inference returns True."""


_SCALE = re.compile(r"/k((?:\d+(?:\.\d*)?:\d+(?:\.\d*)?)(?:,\d+(?:\.\d*)?:\d+(?:\.\d*)?)*)\s*$")


def split_scale_weights(terms: str) -> tuple[str, tuple[tuple[float, float], ...]]:
    """("vlb:8", ((4.0, 0.7), (5.5, 0.5))) from "vlb:8/k4:0.7,5.5:0.5": the term choice and the
    scale weights (|k| above each edge [h/Mpc] gets that weight; edges increasing, weights ≥ 0)."""
    if not isinstance(terms, str):
        raise ValueError(f"terms must be a string such as 'L0', 'sum:20' or 'vlb:4', got {terms!r}")
    if "/" not in terms:
        return terms, ()
    m = _SCALE.search(terms)
    if m is None:
        raise ValueError(f"terms {terms!r}: scale weights are written '/kK1:W1,K2:W2' (K in h/Mpc, increasing; "
                         "W the weight of the modes with |k| > K), e.g. 'vlb:8/k4:0.7,5.5:0.5'")
    pairs = tuple((float(a), float(b)) for a, b in (p.split(":") for p in m.group(1).split(",")))
    edges = [k for k, _ in pairs]
    if any(k <= 0 for k in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"terms {terms!r}: the scale edges must be positive and increasing, got {edges}")
    return terms[:m.start()], pairs


def scale_weight_grid(n: int, pairs, box_size: float) -> np.ndarray | None:
    """(n, n) weight of each Fourier mode of an n² map of side ``box_size`` [Mpc/h] (numpy's FFT
    order); None without pairs (every mode 1)."""
    if not pairs:
        return None
    f = np.fft.fftfreq(n, d=box_size / n) * 2 * np.pi
    k = np.hypot(f[:, None], f[None, :])
    w = np.ones((n, n))
    for edge, weight in pairs:
        w[k > edge] = weight
    return w


def term_timesteps(terms: str, T: int) -> np.ndarray:
    """Code timesteps of a term choice: ``(K,) int64`` (module docstring: "L0", "Lk", "sum:K", "vlb:K")."""
    return term_weights(terms, T)[0]


def term_weights(terms: str, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Code timesteps ``(K,) int64`` of a term choice and the weight ``(K,) float64`` of each term.

    −ln L̂(θ) = Σ_j w_j L_{k_j}(θ). The weights are 1 except for "vlb:K", whose weights are the
    stratum widths (they sum to T − 1, the number of terms L_1 .. L_{T-1} the strata stand for).
    """
    terms = split_scale_weights(terms)[0]  # the scale weights (if any) do not change the terms
    m = re.fullmatch(r"\s*(?:L(\d+)|(sum|vlb):(\d+))\s*", terms)
    if m is None:
        raise ValueError(f"terms must be 'L0', 'Lk' (one term), 'sum:K' (the first K terms) or 'vlb:K' "
                         f"(K strata of the whole bound), got {terms!r}")
    if m.group(1) is not None:
        k = int(m.group(1))
        if not 0 <= k < T:
            raise ValueError(f"terms {terms!r}: term index must be in [0, {T - 1}] for T = {T}")
        return np.array([k], dtype=np.int64), np.ones(1)
    K = int(m.group(3))
    if m.group(2) == "sum":
        if not 1 <= K <= T:
            raise ValueError(f"terms {terms!r}: K must be in [1, {T}] for T = {T}")
        return np.arange(K, dtype=np.int64), np.ones(K)
    edges = np.unique(np.round(float(T) ** (np.arange(K + 1) / max(K, 1))).astype(np.int64))
    if K < 1 or edges.size != K + 1:
        raise ValueError(f"terms {terms!r}: K must be in [1, {_max_strata(T)}] for T = {T} "
                         "(each stratum needs at least one term)")
    ts = np.clip(np.round(np.sqrt(edges[:-1] * edges[1:])).astype(np.int64), edges[:-1], edges[1:] - 1)
    return ts, np.diff(edges).astype(np.float64)


def _max_strata(T: int) -> int:
    K = 1
    while np.unique(np.round(float(T) ** (np.arange(K + 2) / (K + 1))).astype(np.int64)).size == K + 2:
        K += 1
    return K


def field_seed(field) -> int:
    """The default noise seed of a field: a 63-bit hash of its values (as float32).

    Every field gets its own draws and the same field always the same ones. With one seed for all
    fields, the error of that one draw is shared by every field and shows up as a common bias
    (measured on 16 stand-in fields: the Ωₘ bias of "vlb:4" was −0.059 with seed 0 and −0.021 /
    −0.015 with seeds 1 / 2); drawn per field, it averages out and the calibration absorbs it.
    """
    a = np.ascontiguousarray(np.asarray(field, dtype="<f4"))
    return int.from_bytes(hashlib.sha256(a.tobytes()).digest()[:8], "little") >> 1


def term_noise(seed: int, timestep: int, draw: int, shape: tuple[int, ...]) -> np.ndarray:
    """The fixed standard-normal noise of term ``timestep``, draw ``draw``: ``shape`` float64."""
    return np.random.default_rng([int(seed), int(timestep), int(draw)]).standard_normal(shape)


def prior_kl(schedule, x0) -> float:
    """L_T = KL(q(x_T | x₀) ‖ N(0, I)) summed over pixels, nats; ``x0`` any shape, normalised."""
    x0 = np.asarray(x0, dtype=np.float64)
    ab = schedule.alpha_bar[-1]
    return float(normal_kl(math.sqrt(ab) * x0, math.log1p(-ab), 0.0, 0.0).sum())


def _as_field(x0) -> np.ndarray:
    a = x0.detach().cpu().numpy() if torch.is_tensor(x0) else np.asarray(x0)
    if a.ndim == 4 and a.shape[:2] == (1, 1):
        a = a[0, 0]
    if a.ndim != 2:
        raise ValueError(f"x0 must have shape (H, W) or (1, 1, H, W), got {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("x0 contains NaN or inf")
    return a


@torch.no_grad()
def vlb_terms(denoiser, x0, theta, timesteps, *, n_noise: int = 1, seed: int = 0,
              batch_size: int = 64, bf16: bool = False, progress: Progress | None = None,
              cancel: Cancel | None = None, scale_weights=(), box_size: float | None = None) -> np.ndarray:
    """VLB terms L_k(θ) of one field for every θ of a list, with common random numbers.

    Parameters
    ----------
    denoiser : :class:`explorer.model.Denoiser` (its schedule, and μ_θ from its ``posterior_mean``).
    x0 : (H, W) or (1, 1, H, W), the field in normalised units (x = 2 (log10 Σ − lo)/(hi − lo) − 1).
    theta : (G, 2) physical (Ωₘ, σ₈).
    timesteps : (K,) code indices k in [0, T); k = 0 is L_0 (module docstring).
    n_noise : noise draws per term; the result is their mean.
    seed : seed of the fixed noise (``term_noise``).
    batch_size : network evaluations per forward pass.
    bf16 : run the network under bfloat16 autocast (the loss itself is computed in float64);
        off by default, as its rounding noise (~0.5 nat on a 64² field) breaks the smoothness in θ.
    progress : ``progress(done, total)`` after each batch, in network evaluations.
    cancel : ``cancel()`` is polled before each batch; True raises :class:`InferenceCancelled`.
    scale_weights : ((k edge [h/Mpc], weight), ...) of :func:`split_scale_weights`: each term's
        squared residual weighted per Fourier mode (module docstring); () = the bound itself.
    box_size : side of the field [Mpc/h] for the scale weights (default ``explorer.BOX_SIZE``).

    Returns
    -------
    (K, G) float64, nats: L_k(θ_g) summed over pixels, averaged over the n_noise draws.
    Network evaluations: K · n_noise · G.
    """
    schedule = denoiser.schedule
    x0 = _as_field(x0)
    H, W = x0.shape
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[1] != 2 or theta.shape[0] < 1:
        raise ValueError(f"theta must have shape (G, 2) with G >= 1, got {theta.shape}")
    ts = np.asarray(timesteps).reshape(-1)
    if ts.size < 1 or not np.issubdtype(ts.dtype, np.integer) or ts.min() < 0 or ts.max() >= schedule.T:
        raise ValueError(f"timesteps must be integer code indices in [0, {schedule.T}), got {timesteps!r}")
    ts = ts.astype(np.int64)
    if isinstance(n_noise, bool) or int(n_noise) != n_noise or n_noise < 1:
        raise ValueError(f"n_noise must be a positive integer, got {n_noise!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n_noise, batch_size = int(n_noise), int(batch_size)
    K, G = ts.size, theta.shape[0]
    if scale_weights:
        from explorer import BOX_SIZE

        if H != W:
            raise ValueError(f"scale weights need a square field, got {H} x {W}")
        mode_w = torch.from_numpy(scale_weight_grid(H, scale_weights, BOX_SIZE if box_size is None else box_size))

    # 1. the fixed noisy maps x_{k+1} = √ᾱ_k x₀ + √(1-ᾱ_k) ε_{k,n}, shared by all θ (eq. 4)
    sqrt_ab = np.sqrt(schedule.alpha_bar[ts])[:, None, None, None]
    sqrt_1mab = np.sqrt(1.0 - schedule.alpha_bar[ts])[:, None, None, None]
    eps = np.stack([np.stack([term_noise(seed, k, n, (H, W)) for n in range(n_noise)]) for k in ts])
    xt = torch.from_numpy(sqrt_ab * x0 + sqrt_1mab * eps)  # (K, N, H, W) float64
    x0_t = torch.from_numpy(x0)
    theta_t = torch.from_numpy(theta)

    # L_0 uses the decoder variance β₁; L_k the posterior variance β̃ (> 0 for k >= 1)
    logvar = torch.from_numpy(np.where(ts == 0, math.log(schedule.betas[0]),
                                       np.log(np.where(ts == 0, 1.0, schedule.posterior_variance[ts]))))

    losses = torch.empty(K * n_noise * G, dtype=torch.float64)
    total = losses.numel()
    for start in range(0, total, batch_size):
        if cancel is not None and cancel():
            raise InferenceCancelled(f"cancelled after {start} of {total} network evaluations")
        i = torch.arange(start, min(start + batch_size, total))
        k, n, g = i // (n_noise * G), (i // G) % n_noise, i % G
        x = xt[k, n]                                     # (B, H, W) float64
        t = torch.from_numpy(ts)[k]                       # (B,) code timesteps
        # 2. the model mean μ_θ = μ̃(x_t, x̂₀) and the posterior mean μ̃ (eq. 7; at k = 0, c1 = 1, c2 = 0),
        #    in float64 (the network itself runs in float32)
        mu_theta = denoiser.posterior_mean(x[:, None], t, theta_t[g], bf16=bf16)[:, 0]
        mu_post = schedule.q_posterior_mean(x0_t.expand_as(x), x, t)
        lv = logvar[k][:, None, None]
        # 3. the terms, summed over pixels
        if scale_weights:  # equal variances: KL = Σ r²/(2σ²), NLL = Σ r²/(2σ²) + ½ log(2πσ²) per pixel
            def weighted(r):  # Σ_modes w |r̂|² / (H W) = Σ_pixels r² when every w = 1 (Parseval)
                return (mode_w * torch.fft.fft2(r).abs() ** 2).sum(dim=(1, 2)) / (H * W)
            var = torch.exp(logvar[k])
            kl = weighted(mu_post - mu_theta) / (2 * var)
            nll = weighted(x0_t - mu_theta) / (2 * var) + 0.5 * H * W * (math.log(2 * math.pi) + logvar[k])
        else:
            kl = normal_kl(mu_post, lv, mu_theta, lv).sum(dim=(1, 2))
            nll = -gaussian_log_likelihood(x0_t, mu_theta, lv).sum(dim=(1, 2))
        losses[i] = torch.where(torch.from_numpy(ts)[k] == 0, nll, kl)
        if progress is not None:
            progress(int(i[-1]) + 1, total)
    return losses.reshape(K, n_noise, G).mean(dim=1).numpy()
