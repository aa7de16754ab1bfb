"""The conditioning parameters: their names, labels and prior box, owned here once.

    PARAM_NAMES = ("omega_m", "sigma_8")      # the order of θ everywhere: θ = (Ωₘ, σ₈)
    PRIOR = ((0.1, 0.5), (0.6, 1.0))          # the CAMELS LH box, flat prior inside it

A trained model carries its own box in its weights (``param_ranges``), which is the one to use for
that model; these are the defaults new models, data sets and the app start from. A plain module
(no imports), so every layer may use it.
"""

PARAM_NAMES = ("omega_m", "sigma_8")
#: how people write them
PARAM_LABELS = {"omega_m": "Ωₘ", "sigma_8": "σ₈"}
#: Ωₘ and σ₈ ranges of the CAMELS Latin hypercube (and of the stand-in's sets)
OMEGA_M_RANGE = (0.1, 0.5)
SIGMA_8_RANGE = (0.6, 1.0)
PRIOR = (OMEGA_M_RANGE, SIGMA_8_RANGE)
