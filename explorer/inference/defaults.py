"""The inference defaults and conventions that the CLI, the app and the library share.

A plain module (numbers only, no torch), so that `explorer infer --help` and `explorer calibrate
--help` answer without loading the network code; :mod:`.grid` uses and re-exports these names.
"""

#: Δχ² of the 1, 2, 3σ contours for two parameters (χ²₂ quantiles of 68.27, 95.45, 99.73 %).
LEVELS = (2.30, 6.18, 11.83)
from explorer.params import PARAM_NAMES  # noqa: E402,F401  (re-exported)
MASS_68, MASS_95 = 0.6827, 0.9545

# Defaults of infer(): the whole bound in 8 log-spaced strata ("vlb:8", timesteps 1, 3, 9, 20, 49, 116,
# 274, 650), one noise draw per term drawn from the field itself (vlb.field_seed), (4·4 + 4·4) points
# x 8 terms = 256 network evaluations (+8 with a truth), against the seed paper's 2,500. On 19 stand-in
# fields (7x7 grids over the prior, README "Inference") 8 strata had 0.80x the Ωₘ error of 4 strata
# (0.168 vs 0.210) and needed half the temperature. On 4 calibration fields the 4x4 fine grid (its
# bicubic spline is one cubic per axis) moved the marginal means by <= 0.04 of their std and the
# stds by <= 2 % against a 7x7 fine grid (5x5: <= 0.004 and 0.3 %) at 0.8x the cost of 5x5. The
# network costs ~55 CPU-ms per 64² evaluation of the (32,64,96,128)/2-block model in float32 on two
# cores (bfloat16 autocast was 2x slower on the 2-core Xeon, and its rounding made L(θ) jump by
# ~0.5 nat between neighbouring θ), so ~15 s; bench/bench_inference.py measures it.
# Since session 15 the strata's squared residuals are weighted per Fourier mode, a soft scale cut
# (vlb.split_scale_weights): there the network's maps scatter too little from map to map (0.75 of the
# simulations'), and the terms were most overconfident. Session 16 made the stronger of the two
# calibrated weightings the default: 0.5 above 4 h/Mpc and 0.25 above 5.5 h/Mpc. On the 50 held-out
# fields over 3 noise replicates: temperature 2.59 (0.7/0.5: 3.51; plain "vlb:8": 5.50), Ωₘ error
# 0.137 ± 0.010 (0.150 ± 0.019; 0.185 ± 0.018), 0.62x the P(k) baseline's, max |z| 3.0, mean 68 %
# coverage 74 / 73 % (README, "Where the temperature comes from"). "vlb:8/k4:0.7,5.5:0.5" and plain
# "vlb:8" stay calibrated beside it.
DEFAULT_TERMS = "vlb:8/k4:0.5,5.5:0.25"
DEFAULT_N_NOISE = 1
DEFAULT_COARSE = (4, 4)
DEFAULT_FINE = (4, 4)
DEFAULT_BATCH = 16
DEFAULT_HALF_WIDTH = (0.1, 0.1)
DEFAULT_INTERPOLATE = (51, 51)

# The fast preset (`explorer infer --fast`, the app's default where the weights carry a small network
# calibrated for these terms): the small network (1.1 M parameters, 3.5x cheaper per evaluation), every
# scale alike (its calibration in the 60-76 % band; with the scale weighting its σ₈ intervals came out
# too narrow), on 3x3 + 3x3 points: 144 evaluations instead of 256. On the 50 held-out fields
# (`bench/bench_coverage.py`, paired with 4x4 + 4x4 by `bench/compare_coverage.py`) the posterior means
# moved by a median 0.09 of their std (largest 0.36), the stds by a median 0-2 % (README "Inference").
# Since session 19 `explorer infer` also uses it to place the full network's fine window (no coarse
# scan: 128 instead of 256 full-network evaluations; batch.window_network, grid.window_from): on the 50
# held-out fields the posterior means moved by <= 0.025 of their std against the coarse-to-fine scan.
FAST_NETWORK = "small"
FAST_TERMS = "vlb:8"
FAST_COARSE = (3, 3)
FAST_FINE = (3, 3)

#: σ* of the Gaussian start: the first network call of "sde-dpmsolver++-karras-gauss" is at σ <= 3.
#: Lower σ* saves calls but makes the maps too Gaussian: at σ* = 1 their pixel skewness was 15 %
#: and kurtosis 29 % low, at σ* = 3 both within 4 % (README, "Emulator speed").
DEFAULT_START_SIGMA = 3.0
