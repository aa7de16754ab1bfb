"""What every figure of the app shares, without a plotting library: colours, labels, colour range.

Used by :mod:`.plots` and :mod:`.posterior` (HoloViews, in the browser) and by :mod:`.handout`
(matplotlib, printed), so a handout reads like the page it was printed from.
"""

from __future__ import annotations

import numpy as np

K_LABEL = "k [h/Mpc]"
P_LABEL = "P(k) [(Mpc/h)²]"
GENERATED, REFERENCE = "#d95f02", "#1b9e77"  # colour-blind-safe pair used in every figure
GUESS = "#1f78b4"  # the player's guess (blue: neither model's colour)
CNN = "#7570b3"  # the CNN estimator (the third colour of the same colour-blind-safe set)
CMAP = "magma"


def map_clim(*sets) -> tuple[float, float]:
    """Common colour range (1st to 99.9th percentile) over all given map sets."""
    values = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in sets if s is not None])
    lo, hi = np.percentile(values, [1, 99.9])
    return float(lo), float(max(hi, lo + 1e-6))
