"""explorer: emulate CAMELS-like dark-matter maps with a conditional diffusion model and infer
cosmological parameters (Omega_m, sigma_8) from a map with the same model.

Layers (arrows point to what a layer may import):
    ui -> core;  train, inference -> model, stats, data;  sim -> data;  stats, data -> nothing else.
The compute core never imports panel, holoviews or bokeh.
"""

__version__ = "0.1.0"

#: Prior box of the conditioning parameters (CAMELS LH ranges); owned by explorer.params.
from explorer.params import OMEGA_M_RANGE, PARAM_NAMES, PRIOR, SIGMA_8_RANGE  # noqa: E402,F401
#: Side of the periodic CAMELS CMD maps, Mpc/h.
BOX_SIZE = 25.0
