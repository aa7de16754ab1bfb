"""Gaussian likelihood helpers of the variational lower bound, element-wise, in nats.

    normal_kl(μ₁, log σ₁², μ₂, log σ₂²) = KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²))
        = ½ [ log σ₂² − log σ₁² + σ₁²/σ₂² + (μ₁ − μ₂)²/σ₂² − 1 ]

    gaussian_log_likelihood(x; μ, log σ²) = log N(x; μ, σ²)
        = −½ [ log(2π) + log σ² + (x − μ)²/σ² ]                (a density: continuous data)

Arguments broadcast against each other and may be numpy arrays, torch tensors or floats; the
result has their broadcast shape and type (as in lucidrains' ``normal_kl``, Ho et al. 2020's
``diffusion_utils_2.py``). Callers sum over pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOG_2PI = math.log(2.0 * math.pi)


def _exp(x):
    return torch.exp(x) if torch.is_tensor(x) else np.exp(x)


def normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) per element, in nats (formula above)."""
    return 0.5 * (logvar2 - logvar1 + _exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * _exp(-logvar2) - 1.0)


def gaussian_log_likelihood(x, mean, log_var):
    """log N(x; mean, e^log_var) per element, in nats (a continuous Gaussian density)."""
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * _exp(-log_var))
