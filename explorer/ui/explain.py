"""Plain-language texts of the app: the intro shown on load and a glossary of its jargon.

Written for a first-year student, meant to stay correct for a cosmologist. ``GLOSSARY`` maps a
term to one or two sentences; a tab shows some of them in a collapsed card::

    glossary_card("P(k)", "χ²ᵣ", "leave-one-out floor")      # a pn.Card, collapsed by default

``INTRO`` is the text of :class:`Intro`, the dismissable box at the top of the page.
"""

from __future__ import annotations

import panel as pn
import param

from explorer.params import PRIOR

(_OM_LO, _OM_HI), (_S8_LO, _S8_HI) = PRIOR

INTRO = f"""\
**What you see.** Each picture is a map of dark matter in a simulated universe: a patch 25 h⁻¹Mpc \
(about 120 million light-years) across and 5 h⁻¹Mpc deep, coloured by how much mass lies along \
each line of sight (log₁₀ of the surface density Σ). Bright knots are dark-matter halos, where \
galaxies and clusters of galaxies live; the threads between them are filaments, the dark patches voids.

**Two numbers set how such a universe looks.** **Ωₘ** is the share of the Universe's energy \
that is matter: more matter gives a brighter map and thicker filaments. **σ₈** measures how \
clumpy matter is today: a higher σ₈ gives denser knots, emptier voids, more contrast. Here \
Ωₘ runs from {_OM_LO} to {_OM_HI} and σ₈ from {_S8_LO} to {_S8_HI} (our Universe: about 0.3 and 0.8).

**The model** is a diffusion network, the kind that generates images from noise, trained on \
simulations: it draws new maps for any (Ωₘ, σ₈), and it can score how well a map fits each \
pair, which turns it into a measuring instrument.

**The tabs.** *Emulate*: move the sliders (or pick a preset) and watch the universe change, next \
to real simulations. *Parameter response*: change one number at a time and see which scales react. \
*Infer*: give it a map, get the (Ωₘ, σ₈) that fit, with error contours. *Guess the universe*: \
guess the numbers by eye, then see how the model does on the same map.
"""

#: term -> one or two sentences. Keys are what the tabs display (Unicode symbols as in the plots).
GLOSSARY: dict[str, str] = {
    "Ωₘ": "The fraction of the Universe's energy density that is matter (dark and ordinary) today; "
           "the rest is mostly dark energy. More matter means more mass in every map (the mean "
           "surface density grows with Ωₘ) and more small-scale clumping.",
    "σ₈": "How lumpy matter is today: the root-mean-square fluctuation of the matter density in "
           "spheres of 8 h⁻¹Mpc radius (from linear theory). Higher σ₈: denser knots, emptier "
           "voids, more contrast.",
    "log₁₀ Σ": "The value of a pixel: log₁₀ of the surface density Σ, the dark-matter mass per area "
               "in a 5 h⁻¹Mpc-thick slab, in (M_⊙/h)/(Mpc/h)²; 12 means 10¹² solar masses per (Mpc/h)².",
    "h⁻¹Mpc": "Megaparsecs (1 Mpc = 3.26 million light-years) divided by h = H₀/(100 km/s/Mpc) ≈ 0.7, "
              "the simulations' unit of length: 25 h⁻¹Mpc ≈ 36 Mpc ≈ 120 million light-years.",
    "prior box": f"The range the simulations cover and the model knows: Ωₘ ∈ [{_OM_LO}, {_OM_HI}], "
                 f"σ₈ ∈ [{_S8_LO}, {_S8_HI}], flat inside. Errors in the game are measured in units of its "
                 f"width ({_OM_HI - _OM_LO:g} for each).",
    "emulator": "A fast stand-in for a simulation: here a diffusion model that turns random noise into a "
                "map, step by step, steered by (Ωₘ, σ₈). A second of computing instead of hours.",
    "seed": "The number that fixes the random noise a map starts from (for a simulation: its initial "
            "conditions). Same seed, nearby parameters: the same layout of knots and voids, reshaped.",
    "reference maps": "Maps of simulations at known parameters (here the particle-mesh stand-in for CAMELS): "
                      "another universe each, with its own initial conditions, used to check the "
                      "generated maps' statistics.",
    "cosmic variance": "Differences between maps of the same cosmology that come only from different "
                       "random initial conditions: a limit on how well any one map can pin down Ωₘ and σ₈.",
    "1P": "A CAMELS '1P' set: simulations that change one parameter at a time around a fiducial cosmology, "
          "all from the same initial conditions, so the difference between two of them is that "
          "parameter's effect alone, free of cosmic variance.",
    "P(k)": "The power spectrum: how strongly the map fluctuates at each scale, as a function of the "
            "wavenumber k = 2π / wavelength (in h/Mpc; large k = small scales). It captures a Gaussian "
            "field completely, but not the shapes of filaments and knots.",
    "z-score": "For each k, the difference between the generated and the reference mean P(k) in units "
               "of its standard error: |z| < 2 is a difference that chance explains.",
    "χ²ᵣ": "Reduced chi-squared: the squared difference between one map's P(k) and the reference mean, "
            "in units of the reference scatter, averaged over k. About 1.3 for a map as typical as a "
            "simulated one (not 1: 15 reference maps only estimate the mean and scatter).",
    "leave-one-out floor": "χ²ᵣ of each reference map against the other 14 maps of its simulation: how much "
                           "maps of one cosmology differ by cosmic variance alone. A generated map near this "
                           "floor is as typical as a simulated one.",
    "VLB": "Variational lower bound: the diffusion model's lower bound on ln p(map | Ωₘ, σ₈), a sum of "
           "one term per noise level. Estimated from a few of its terms on a grid of (Ωₘ, σ₈), it "
           "serves as the log-likelihood ln L̂ of the Infer tab. By default the smallest scales (finer "
           "than about 1.5 Mpc/h) count 0.5 and 0.25, where the model's maps are least realistic.",
    "P(k) baseline": "The classical method, for comparison: a Gaussian likelihood of the binned log P(k), "
                     "its mean and covariance fitted on simulations across the prior box.",
    "CNN estimator": "A small convolutional network trained on the same simulated maps to predict Ωₘ and σ₈ "
                     "with an error bar (mean ± σ) straight from the map: the machine-learning baseline "
                     "of the CAMELS papers. It is fast but gives no likelihood surface.",
    "Δχ²": "−2ΔlnL̂ = 2 [ln L̂_max − ln L̂(Ωₘ, σ₈)]: how much worse a parameter pair explains the map "
           "than the best one (divided by the temperature τ). For two parameters, Δχ² = 2.30, 6.18, 11.83 "
           "enclose 68.3, 95.4, 99.7 % (1σ, 2σ, 3σ) of a Gaussian likelihood.",
    "68 % / 95 % contours": "The regions Δχ² < 2.30 (solid, 68 %, 1σ) and Δχ² < 6.18 (dashed, 95 %, 2σ): "
                            "for a calibrated model the true (Ωₘ, σ₈) lies inside the 68 % contour "
                            "for about two maps in three.",
    "τ (temperature)": "The raw diffusion likelihood is overconfident (its contours are too small), so "
                       "−2ΔlnL̂ is divided by a temperature τ > 1, fitted on simulations the model never "
                       "trained on so that 68 % contours hold the truth for 68 % of them.",
}


def glossary_markdown(*terms: str) -> str:
    """The entries of ``terms`` (all of them if none are given) as a Markdown list."""
    unknown = [t for t in terms if t not in GLOSSARY]
    if unknown:
        raise ValueError(f"no glossary entry for {unknown}; known terms: {list(GLOSSARY)}")
    return "\n".join(f"- **{t}**: {GLOSSARY[t]}" for t in (terms or GLOSSARY))


def glossary_card(*terms: str, title: str | None = None, **kwargs) -> pn.Card:
    """A card, collapsed by default, explaining ``terms``; its title lists them unless given."""
    title = title or "What do these words mean? " + ", ".join(terms)
    kwargs.setdefault("sizing_mode", "stretch_width")
    return pn.Card(pn.pane.Markdown(glossary_markdown(*terms), sizing_mode="stretch_width"),
                   title=title, collapsed=kwargs.pop("collapsed", True), **kwargs)


class Intro(pn.viewable.Viewer):
    """The welcome text at the top of the page, until the visitor dismisses it (per session)."""

    dismiss = param.Event(label="Got it ✕")
    dismissed = param.Boolean(default=False)

    def __init__(self, **params):
        super().__init__(**params)
        self.param.watch(lambda _event: setattr(self, "dismissed", True), "dismiss")

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(INTRO, sizing_mode="stretch_width", margin=(0, 10), styles={"font-size": "0.92em"}),
            pn.widgets.Button.from_param(self.param.dismiss, color="primary", width=110),
            visible=self.param.dismissed.rx.not_(), sizing_mode="stretch_width",
            styles={"background": "#eef2f8", "border-radius": "6px", "padding": "4px 8px"}, margin=(0, 0, 10, 0))
