"""explorer.stats accepts torch tensors (kept apart: importing torch costs ~2 s)."""

import numpy as np
import pytest

from explorer.stats import pixel_histograms, power_spectrum, structure_statistics

torch = pytest.importorskip("torch")


def test_torch_tensors_give_the_numpy_results():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((3, 16, 16)).astype(np.float32)
    tensor = torch.from_numpy(maps).requires_grad_(True)  # detach() must be used
    np.testing.assert_array_equal(power_spectrum(tensor).power, power_spectrum(maps).power)
    edges = np.linspace(-4, 4, 9)
    np.testing.assert_array_equal(
        pixel_histograms(tensor, edges).density, pixel_histograms(maps, edges).density
    )
    np.testing.assert_array_equal(
        structure_statistics(tensor, [1.0]).n_regions, structure_statistics(maps, [1.0]).n_regions
    )
