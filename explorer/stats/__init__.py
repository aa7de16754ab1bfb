"""Summary statistics of 2D maps: power spectrum, χ², pixel histograms, 1P response, structure.

Pure numpy/scipy; imports nothing else from the package. Torch tensors are accepted wherever an
array is. One concept per module:

- ``power``: ``power_spectrum`` (Fourier convention in its module docstring)
- ``chi2``: ``reduced_chi2``, ``leave_one_out_chi2``, ``z_scores``
- ``histogram``: ``histogram_bins``, ``pixel_histograms``
- ``response``: ``response_ratio``, ``response_agreement``
- ``structure``: ``connected_regions``, ``structure_statistics``
"""

from explorer.stats.chi2 import leave_one_out_chi2, reduced_chi2, z_scores
from explorer.stats.histogram import Histograms, histogram_bins, pixel_histograms
from explorer.stats.power import PowerSpectrum, power_spectrum
from explorer.stats.response import Response, response_agreement, response_ratio
from explorer.stats.structure import Regions, Structure, connected_regions, structure_statistics

__all__ = [
    "Histograms",
    "PowerSpectrum",
    "Regions",
    "Response",
    "Structure",
    "connected_regions",
    "histogram_bins",
    "leave_one_out_chi2",
    "pixel_histograms",
    "power_spectrum",
    "reduced_chi2",
    "response_agreement",
    "response_ratio",
    "structure_statistics",
    "z_scores",
]
