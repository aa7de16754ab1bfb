"""A CNN estimator of (Ωₘ, σ₈): a moment network beside the diffusion likelihood and the P(k) baseline.

The CAMELS CMD parameter-inference networks (Villaescusa-Navarro et al. 2021b, "Multifield
Cosmology with Artificial Intelligence") predict, from one map, the posterior mean μᵢ and standard
deviation σᵢ of each parameter: a *moment network* (Jeffrey & Wandelt 2020), trained with

    loss = Σᵢ ln Σ_batch (θᵢ − μᵢ)²  +  Σᵢ ln Σ_batch ((θᵢ − μᵢ)² − σᵢ²)²

so μ tends to E[θ | map] and σ² to Var[θ | map]. The logs balance the parameters' scales. θ is
scaled to u ∈ [0, 1]² over the prior box inside the network; everything outside speaks physical θ.

Here: a small convolutional network with **circular padding** (the maps are periodic), resolution
levels that halve the map, batch norm and leaky ReLU, an average over all positions (the maps'
statistics do not depend on where a structure sits: a flattened 4×4 feature map let the first
version memorise the 450 training cosmologies, validation loss rising after 250 steps), then two
dense layers to 4 outputs (μ₁, μ₂, σ₁, σ₂; σ through a softplus). Prediction averages the 8 rotations and flips of the map.
A calibration factor per parameter (fitted on the validation simulations so that ±σ covers 68.3 %)
scales σ; it is 1 until fitted.

Weights folder (``weights/cnn``; nothing executable, never a pickle)::

    config.json        "format": "explorer-cnn/1", network widths, resolution, normalisation of
                       the log10 maps, param_ranges, sigma_scale, provenance and measured figures
    model.safetensors  the network's tensors
    README.md          the model card

Use::

    cnn = CnnEstimator.load("weights/cnn")
    est = cnn.estimate(log10_map)          # {"omega_m": {"mean", "std", "lo68", ...}, "sigma_8": {...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explorer.data.transform import Normalization, dihedral
from explorer.params import PARAM_NAMES, PRIOR

FORMAT = "explorer-cnn/1"
CONFIG_FILE = "config.json"
TENSORS_FILE = "model.safetensors"
FOLDER = "cnn"  # the estimator's folder inside a weights folder
Z68, Z95 = 1.0, 1.959964  # Gaussian central intervals


def moment_loss(mu: torch.Tensor, sigma: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The moment-network loss (module docstring) of ``mu, sigma, u: (B, 2)`` (scaled units)."""
    err2 = (u - mu) ** 2
    return (torch.log(err2.sum(0)).sum() + torch.log(((err2 - sigma ** 2) ** 2).sum(0)).sum())


def _conv(c_in: int, c_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, padding_mode="circular", bias=bias)


class MomentNet(nn.Module):
    """Map ``x: (B, 1, r, r)`` (normalised log10 Σ) -> ``(mu, sigma)``, each ``(B, 2)`` in scaled units.

    Level j (j = 0 .. len(widths)-1) has two 3×3 convolutions of ``widths[j]`` channels, the second
    with stride 2; the last level's map (r / 2^len(widths) pixels on a side) is averaged over
    positions before the dense layers.
    """

    def __init__(self, resolution: int = 64, widths=(16, 32, 64, 128), hidden: int = 64,
                 dropout: float = 0.2, norm: str = "batch"):
        super().__init__()
        side = resolution // 2 ** len(widths)
        if side < 1 or resolution % 2 ** len(widths):
            raise ValueError(f"resolution {resolution} is not divisible by 2^{len(widths)}")
        if norm not in ("none", "batch"):
            raise ValueError(f"norm must be 'none' or 'batch', got {norm!r}")
        layer_norm = (lambda w: nn.BatchNorm2d(w)) if norm == "batch" else (lambda w: nn.Identity())
        layers, c = [], 1
        for w in widths:
            layers += [_conv(c, w, bias=norm == "none"), layer_norm(w), nn.LeakyReLU(0.2),
                       _conv(w, w, stride=2, bias=norm == "none"), layer_norm(w), nn.LeakyReLU(0.2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, hidden),
                                  nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(hidden, 4))
        self.config = {"resolution": int(resolution), "widths": [int(w) for w in widths], "hidden": int(hidden),
                       "dropout": float(dropout), "norm": norm}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.features(x))
        return out[:, :2], nn.functional.softplus(out[:, 2:]) + 1e-4


@dataclass
class CnnEstimator:
    """A trained :class:`MomentNet` with what it needs to read a map and speak physical θ."""

    network: MomentNet
    normalization: Normalization               # log10 Σ -> network input
    param_ranges: tuple = PRIOR                # ((Ωₘ lo, hi), (σ₈ lo, hi)): u = (θ − lo)/(hi − lo)
    sigma_scale: tuple = (1.0, 1.0)            # calibration factor on σ of each parameter
    info: dict = field(default_factory=dict)   # provenance, training record, measured figures

    @property
    def resolution(self) -> int:
        return int(self.network.config["resolution"])

    def _span(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(self.param_ranges, dtype=np.float64)
        return r[:, 0], r[:, 1] - r[:, 0]

    def scale(self, theta) -> np.ndarray:
        """Physical θ ``(..., 2)`` -> u ∈ [0, 1]² over the prior box."""
        lo, span = self._span()
        return (np.asarray(theta, dtype=np.float64) - lo) / span

    @torch.no_grad()
    def predict(self, log10_maps, *, augment: bool = True, batch: int = 256,
                calibrated: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Mean and σ of θ for ``log10_maps: (N, r, r)`` or ``(r, r)`` -> ``(N, 2)``, ``(N, 2)`` physical.

        With ``augment`` the network sees all 8 rotations/flips of each map; μ and σ are their
        averages (σ² averaged). ``calibrated`` multiplies σ by ``sigma_scale``.
        """
        a = np.asarray(log10_maps, dtype=np.float32)
        single = a.ndim == 2
        a = a[None] if single else a
        if a.ndim != 3 or a.shape[1:] != (self.resolution, self.resolution):
            raise ValueError(f"the CNN estimator reads ({self.resolution}, {self.resolution}) log10 maps, "
                             f"got shape {np.shape(log10_maps)}; bring the field to this resolution first "
                             "(explorer.data.prepare_field)")
        if not np.isfinite(a).all():
            raise ValueError("the maps contain NaN or inf")
        net = self.network.eval()
        device = next(net.parameters()).device
        ks = range(8) if augment else (0,)
        mu_sum, var_sum = np.zeros((a.shape[0], 2)), np.zeros((a.shape[0], 2))
        for start in range(0, a.shape[0], batch):
            x = self.normalization.encode(torch.from_numpy(a[start:start + batch]).to(device))[:, None]
            for k in ks:
                mu, sigma = net(dihedral(x, k))
                mu_sum[start:start + batch] += mu.double().cpu().numpy()
                var_sum[start:start + batch] += sigma.double().cpu().numpy() ** 2
        lo, span = self._span()
        mean = lo + span * mu_sum / len(ks)
        std = span * np.sqrt(var_sum / len(ks))
        if calibrated:
            std = std * np.asarray(self.sigma_scale, dtype=np.float64)
        return (mean[0], std[0]) if single else (mean, std)

    def estimate(self, log10_map, **kw) -> dict:
        """One map ``(r, r)`` log10 Σ -> per parameter {"mean", "std", "max", "lo68", "hi68", "lo95", "hi95"}
        (Gaussian intervals; "max" = "mean"), the layout of :attr:`Posterior.estimates`."""
        mean, std = self.predict(log10_map, **kw)
        return {name: {"mean": float(m), "std": float(s), "max": float(m), "lo68": float(m - Z68 * s),
                       "hi68": float(m + Z68 * s), "lo95": float(m - Z95 * s), "hi95": float(m + Z95 * s)}
                for name, m, s in zip(PARAM_NAMES, mean, std)}

    # ---- storage -----------------------------------------------------------------------------

    def config(self) -> dict:
        return {"format": FORMAT, "network": self.network.config, "normalization": self.normalization.to_dict(),
                "param_ranges": [list(r) for r in self.param_ranges],
                "sigma_scale": [float(s) for s in self.sigma_scale], **self.info}

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (each atomically: temporary file, then rename)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        tmp = folder / (TENSORS_FILE + ".part")
        save_file(tensors, str(tmp))
        os.replace(tmp, folder / TENSORS_FILE)
        tmp = folder / (CONFIG_FILE + ".part")
        tmp.write_text(json.dumps(self.config(), indent=1) + "\n")
        os.replace(tmp, folder / CONFIG_FILE)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> "CnnEstimator":
        """Read a folder written by :meth:`save` (safetensors only; never unpickles).

        Raises FileNotFoundError if a file is missing and ValueError if one is malformed."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in (CONFIG_FILE, TENSORS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"CNN estimator: {folder / name} not found "
                                        "(train one with `explorer train-cnn`)")
        try:
            cfg = json.loads((folder / CONFIG_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{folder / CONFIG_FILE} is not valid JSON ({err})") from None
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise ValueError(f"{folder / CONFIG_FILE}: not a CNN estimator (format {FORMAT!r} expected)")
        try:
            net = MomentNet(**cfg["network"])
            ranges = tuple(tuple(float(v) for v in r) for r in cfg["param_ranges"])
            scale = tuple(float(s) for s in cfg.get("sigma_scale", (1.0, 1.0)))
            norm = Normalization.from_dict(cfg["normalization"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{folder / CONFIG_FILE}: malformed ({type(err).__name__}: {err})") from None
        try:
            state = load_file(str(folder / TENSORS_FILE))
            net.load_state_dict(state)
        except (SafetensorError, RuntimeError, OSError) as err:
            raise ValueError(f"{folder / TENSORS_FILE}: cannot be read as this network ({err})") from None
        info = {k: v for k, v in cfg.items()
                if k not in ("format", "network", "normalization", "param_ranges", "sigma_scale")}
        return cls(net.to(device).eval(), norm, ranges, scale, info)


def calibration_scale(mean, std, theta) -> np.ndarray:
    """Per-parameter factor s on σ so that |θ − μ| ≤ s σ for 68.3 % of the maps: the 68.3 % quantile
    of |z| (``mean, std, theta: (N, 2)`` physical) -> ``(2,)``."""
    z = np.abs((np.asarray(theta, float) - np.asarray(mean, float)) / np.asarray(std, float))
    return np.quantile(z, 0.683, axis=0)


def find_cnn(weights_folder: str | os.PathLike) -> Path | None:
    """``WEIGHTS/cnn`` if it holds a CNN estimator, else None."""
    p = Path(weights_folder) / FOLDER
    return p if (p / CONFIG_FILE).is_file() else None
