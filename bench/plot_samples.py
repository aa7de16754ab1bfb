"""Render emulated maps beside held-out stand-in maps: assets/emulated_vs_standin.png.

    python bench/plot_samples.py [--weights weights] [--out assets/emulated_vs_standin.png]
"""

import argparse
import numpy as np, matplotlib
matplotlib.use("Agg"); import matplotlib.pyplot as plt
from explorer.model import Emulator
from explorer.evaluate import _reference_sets

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--weights", default="weights")
parser.add_argument("--out", default="assets/emulated_vs_standin.png")
args = parser.parse_args()
emu = Emulator.from_folder(args.weights)
theta, truth = _reference_sets('assets', 64, 'valid', 3)
fig, ax = plt.subplots(2, 4, figsize=(13, 6.6))
for r, c in enumerate([0, 2]):
    om, s8 = theta[c]
    gen = emu.sample(om, s8, n=2, seed=1)
    for j, (m, lab) in enumerate([(truth[c][0], "stand-in"), (truth[c][1], "stand-in"), (gen[0], "emulated"), (gen[1], "emulated")]):
        im = ax[r, j].imshow(m, cmap="magma", vmin=9.5, vmax=13.5, extent=[0, 25, 25, 0])
        ax[r, j].set_title(f"{lab}  Ω_m={om:.2f} σ_8={s8:.2f}", fontsize=9)
fig.colorbar(im, ax=ax, label="log10 Σ [(M⊙/h)/(Mpc/h)²]", shrink=0.8)
plt.savefig(args.out, dpi=70, bbox_inches='tight')
