"""The denoising network: a periodic U-Net conditioned on θ = (Ωₘ, σ₈).

``ParamUNet`` wraps diffusers' ``UNet2DModel`` (ResNet blocks with GroupNorm, self-attention at the
lowest resolutions) and changes two things:

1. Every spatial convolution pads circularly (``make_circular``), because the maps are periodic.
   With the down/up-sampling grid of ``2**(levels-1)`` pixels, a periodic shift of the input by a
   multiple of that grid shifts the output by the same amount (tested).
2. θ is scaled to [0, 1] over the prior box (``param_ranges``), mapped by an MLP
   (Linear → SiLU → Linear) to the time-embedding width, and handed to ``UNet2DModel`` as
   ``class_labels`` with ``class_embed_type="identity"``: diffusers then computes
   ``emb = time_embedding(t) + class_labels`` (``UNet2DModel.forward``, step "1. time") and passes
   ``emb`` to every ResNet block, so every block sees θ.

The network knows nothing about the noise schedule; its output is ε (or v when
``prediction_type="v_prediction"``) for the timestep index it is given. The schedule, the
normalisation and the map-mean model live in :class:`explorer.model.denoiser.Denoiser`.
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from explorer.params import PRIOR

PREDICTION_TYPES = ("epsilon", "v_prediction")


def make_circular(module: nn.Module) -> nn.Module:
    """Set ``padding_mode="circular"`` on every ``nn.Conv2d`` with a kernel larger than 1.

    Done in place (the padding amount is unchanged: torch pads with ``F.pad(mode="circular")``
    before an unpadded convolution). Returns ``module`` for chaining.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1:
            if isinstance(m.padding, str):
                raise ValueError(f"convolution {m} uses string padding {m.padding!r}; cannot make it circular")
            m.padding_mode = "circular"
    return module


class ParamUNet(ModelMixin, ConfigMixin):
    """Periodic conditional U-Net: ``(x_t, t, θ) -> ε̂``.

    Args (all stored in ``config.json``):
        sample_size: map side in pixels the model is trained at (any multiple of the
            down-sampling factor ``2**(len(block_out_channels)-1)`` runs).
        block_out_channels: channels per resolution level; one level per entry.
        layers_per_block: ResNet blocks per level (the up path has one more, as diffusers).
        attention_levels: how many of the lowest-resolution levels use self-attention
            (AttnDownBlock2D/AttnUpBlock2D); the middle block has attention when this is > 0.
        norm_num_groups: GroupNorm groups; must divide every entry of ``block_out_channels``.
        attention_head_dim: channels per attention head.
        param_ranges: prior box ((Ωₘ lo, hi), (σ₈ lo, hi)) used to scale θ to [0, 1].
        prediction_type: what the output means, "epsilon" or "v_prediction".
        dropout: dropout probability in the ResNet blocks.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int = 64,
        block_out_channels: tuple[int, ...] = (32, 64, 128, 128),
        layers_per_block: int = 2,
        attention_levels: int = 2,
        norm_num_groups: int = 32,
        attention_head_dim: int = 8,
        param_ranges: tuple[tuple[float, float], ...] = PRIOR,
        prediction_type: str = "epsilon",
        dropout: float = 0.0,
    ):
        super().__init__()
        channels = tuple(int(c) for c in block_out_channels)
        levels = len(channels)
        if levels < 1:
            raise ValueError("block_out_channels must have at least one entry")
        if any(c % norm_num_groups for c in channels):
            raise ValueError(f"norm_num_groups={norm_num_groups} must divide every entry of "
                             f"block_out_channels={channels}")
        if not 0 <= attention_levels <= levels:
            raise ValueError(f"attention_levels must be in [0, {levels}], got {attention_levels}")
        if any(c % attention_head_dim for c in channels[levels - attention_levels:]):
            raise ValueError(f"attention_head_dim={attention_head_dim} must divide the channels "
                             f"of the attention levels {channels[levels - attention_levels:]}")
        ranges = [tuple(float(v) for v in r) for r in param_ranges]
        if len(ranges) != 2 or any(len(r) != 2 or not r[0] < r[1] for r in ranges):
            raise ValueError(f"param_ranges must be two (lo, hi) pairs with lo < hi, got {param_ranges!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        if sample_size % 2 ** (levels - 1):
            raise ValueError(f"sample_size={sample_size} must be a multiple of {2 ** (levels - 1)}")

        plain = levels - attention_levels
        temb = 4 * channels[0]  # diffusers' time-embedding width
        self.unet = UNet2DModel(
            sample_size=sample_size, in_channels=1, out_channels=1,
            block_out_channels=channels, layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * plain + ("AttnDownBlock2D",) * attention_levels,
            up_block_types=("AttnUpBlock2D",) * attention_levels + ("UpBlock2D",) * plain,
            add_attention=attention_levels > 0, attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups, dropout=dropout,
            class_embed_type="identity",
        )
        self.theta_mlp = nn.Sequential(nn.Linear(2, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.register_buffer("theta_lo", torch.tensor([r[0] for r in ranges]), persistent=False)
        self.register_buffer("theta_span", torch.tensor([r[1] - r[0] for r in ranges]), persistent=False)
        make_circular(self)

    @property
    def downsampling_factor(self) -> int:
        """Pixels per cell of the coarsest grid, ``2**(levels-1)``; input sides must be multiples."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def scale_theta(self, theta: torch.Tensor) -> torch.Tensor:
        """Physical θ ``(B, 2)`` -> ``(B, 2)`` in [0, 1] over the prior box."""
        return (theta - self.theta_lo.to(theta)) / self.theta_span.to(theta)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Predict the noise.

        Args:
            sample: ``(B, 1, H, W)`` noisy maps x_t, normalised units.
            timestep: ``(B,)`` long code timestep indices 0..T-1 (or a scalar for all).
            theta: ``(B, 2)`` physical (Ωₘ, σ₈).

        Returns:
            ``(B, 1, H, W)`` ε̂ (v̂ for ``prediction_type="v_prediction"``), a plain tensor.
        """
        if sample.ndim != 4 or sample.shape[1] != 1:
            raise ValueError(f"sample must have shape (B, 1, H, W), got {tuple(sample.shape)}")
        f = self.downsampling_factor
        if sample.shape[-1] % f or sample.shape[-2] % f:
            raise ValueError(f"sample height and width must be multiples of {f}, got {tuple(sample.shape[-2:])}")
        if theta.ndim != 2 or theta.shape != (sample.shape[0], 2):
            raise ValueError(f"theta must have shape ({sample.shape[0]}, 2), got {tuple(theta.shape)}")
        weight = self.theta_mlp[0].weight
        cond = self.theta_mlp(self.scale_theta(theta.to(device=weight.device, dtype=weight.dtype)))
        return self.unet(sample, timestep, class_labels=cond, return_dict=False)[0]
