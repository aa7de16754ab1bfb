"""explorer: emulate CAMELS-like dark-matter maps with a conditional diffusion model and infer
cosmological parameters (Omega_m, sigma_8) from a map with the same model.

Layers (arrows point to what a layer may import):
    ui -> core;  train, inference -> model, stats, data;  sim -> data;  stats, data -> nothing else.
The compute core never imports panel, holoviews or bokeh.
"""

__version__ = "0.1.0"

#: Prior box of the conditioning parameters (CAMELS LH ranges).
OMEGA_M_RANGE = (0.1, 0.5)
SIGMA_8_RANGE = (0.6, 1.0)
#: Side of the periodic CAMELS CMD maps, Mpc/h.
BOX_SIZE = 25.0
