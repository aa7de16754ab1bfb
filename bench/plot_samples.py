"""Render emulated maps beside held-out stand-in maps: assets/emulated_vs_standin.png.

    python bench/plot_samples.py [--weights weights] [--out assets/emulated_vs_standin.png]

Rows: three held-out cosmologies of assets/valid; columns: two stand-in maps, then two emulated
maps (seed 1). Each panel states its mean log10 Σ, so a wrong mean level shows at a glance.
"""

import argparse

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from explorer.evaluate import _reference_sets
from explorer.model import Emulator

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--weights", default="weights")
parser.add_argument("--out", default="assets/emulated_vs_standin.png")
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

emu = Emulator.from_folder(args.weights)
theta, truth = _reference_sets("assets", emu.resolution, "valid", 3)
box = 25.0
fig, ax = plt.subplots(3, 4, figsize=(11, 8.4), sharex=True, sharey=True)
for r, (om, s8) in enumerate(theta):
    gen = emu.sample(float(om), float(s8), n=2, seed=args.seed)
    panels = [(truth[r][0], "stand-in"), (truth[r][1], "stand-in"), (gen[0], "emulated"), (gen[1], "emulated")]
    for j, (field, label) in enumerate(panels):
        a = ax[r, j]
        im = a.imshow(field, cmap="magma", vmin=9.5, vmax=13.5, extent=[0, box, box, 0])
        a.text(0.03, 0.04, f"mean {np.mean(field):.2f}", color="w", fontsize=8, transform=a.transAxes)
        if r == 0:
            a.set_title(label, fontsize=11)
        if j == 0:
            a.set_ylabel(f"Ωₘ={om:.2f}  σ₈={s8:.2f}\n[Mpc/h]", fontsize=10)
        if r == 2:
            a.set_xlabel("[Mpc/h]")
fig.colorbar(im, ax=ax, label="log10 Σ [(M⊙/h)/(Mpc/h)²]", shrink=0.8)
fig.suptitle(f"Held-out stand-in simulations vs the shipped emulator ({args.weights}/)", fontsize=11)
plt.savefig(args.out, dpi=70, bbox_inches="tight")
print(args.out)
