"""ParamUNet: periodic-shift equivariance (and that zero padding breaks it), θ conditioning."""

import pytest
import torch
from torch import nn

from explorer.model.unet import ParamUNet, make_circular


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_unet(**kw) -> ParamUNet:
    cfg = dict(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4)
    with torch.random.fork_rng():  # deterministic weights without touching the global RNG
        torch.manual_seed(0)
        return ParamUNet(**{**cfg, **kw}).eval()


def shift_error(model: ParamUNet, shift: tuple[int, int]) -> float:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 32, 32, generator=gen, dtype=torch.float64)
    t = torch.tensor([10, 700])
    theta = torch.tensor([[0.3, 0.8], [0.15, 0.95]], dtype=torch.float64)
    with torch.no_grad():
        y = model(x, t, theta)
        y_shifted = model(torch.roll(x, shift, dims=(2, 3)), t, theta)
    return (torch.roll(y, shift, dims=(2, 3)) - y_shifted).abs().max().item()


def test_equivariant_to_periodic_shifts():
    model = tiny_unet().double()
    assert model.downsampling_factor == 8
    assert shift_error(model, (8, -16)) < 1e-10
    assert shift_error(model, (24, 8)) < 1e-10


def test_zero_padding_breaks_equivariance():
    """The same test on the same weights with zero padding fails: it has teeth."""
    model = tiny_unet().double()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.padding_mode = "zeros"
    assert shift_error(model, (8, -16)) > 1e-3


def test_make_circular_covers_every_spatial_conv():
    model = tiny_unet()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    spatial = [m for m in convs if max(m.kernel_size) > 1]
    assert len(spatial) >= 10
    assert all(m.padding_mode == "circular" for m in spatial)
    for m in spatial:
        m.padding_mode = "zeros"
    make_circular(model)
    assert all(m.padding_mode == "circular" for m in spatial)


def test_theta_changes_output_and_shapes():
    model = tiny_unet()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([5, 5])
    with torch.no_grad():
        a = model(x, t, torch.tensor([[0.3, 0.8], [0.3, 0.8]]))
        b = model(x, t, torch.tensor([[0.3, 0.8], [0.45, 0.65]]))
    assert isinstance(a, torch.Tensor) and a.shape == (2, 1, 16, 16) and a.dtype == torch.float32
    torch.testing.assert_close(a[0], b[0])
    assert (a[1] - b[1]).abs().max() > 1e-4
    scaled = model.scale_theta(torch.tensor([[0.1, 0.6], [0.5, 1.0], [0.3, 0.8]]))
    torch.testing.assert_close(scaled, torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]]))


def test_default_architecture_and_config_errors():
    model = ParamUNet()
    unet_cfg = model.unet.config
    assert unet_cfg.block_out_channels == (32, 64, 128, 128) and unet_cfg.layers_per_block == 2
    assert unet_cfg.down_block_types == ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D")
    assert unet_cfg.up_block_types == ("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D")
    assert unet_cfg.class_embed_type == "identity"
    assert model.theta_mlp[-1].out_features == 4 * 32   # the time-embedding width
    with pytest.raises(ValueError, match="norm_num_groups"):
        ParamUNet(block_out_channels=(8, 16), norm_num_groups=6)
    with pytest.raises(ValueError, match="param_ranges"):
        ParamUNet(param_ranges=((0.5, 0.1), (0.6, 1.0)))
    with pytest.raises(ValueError, match="theta"):
        tiny_unet()(torch.zeros(2, 1, 16, 16), torch.tensor([1, 1]), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="multiples of 8"):
        tiny_unet()(torch.zeros(1, 1, 12, 12), torch.tensor([1]), torch.zeros(1, 2))
