"""Can the bound tell a typical field from an atypical one? (issue #16, item 3: a first measurement)

    python bench/bench_gof.py                      # shipped weights, assets/valid, ~2 min on 2 cores
    python bench/bench_gof.py --maps-per-sim 3 --max-sims 50
    python bench/bench_gof.py --write              # also store the line in the weights (typicality)
    python bench/bench_gof.py --other-simulators 20   # also fields from three other simulators

For held-out stand-in maps (``assets/valid``) and for altered copies of the same maps, it computes
the whole-bound estimate −ln L̂ = Σ_k w_k L_k(θ) (the likelihood's own terms, by default the
default likelihood's, one fixed noise draw per term) at the map's TRUE θ, in nats. The held-out maps give the reference: a
straight-line fit in θ and the scatter of its residuals. Each altered field gets z = (its −ln L̂
minus the fit at its θ) / scatter; a typical field has |z| ≲ 2. The alterations are the ones a
user's file may carry:

- ``gaussian``: the map's Fourier phases randomised (same P(k) and mean of log10 Σ): a Gaussian
  field in log10 Σ, i.e. a **lognormal** density field with the map's spectrum;
- ``smoothed``: a Gaussian kernel of 1 pixel (another resolution or smoothing);
- ``noisy``: white noise of 0.05 dex added to log10 Σ;
- ``shifted``: log10 Σ + 0.3 (a unit error, a factor 2 in Σ).

A separate held-out set checks the false alarms: the ``assets/twins`` simulations (20 of the
cosmologies with new initial-condition seeds, 2 maps each), never used by the fit. For them it
reports the largest |z|, how many pass |z| > 3, and how many get an empirical p below 0.05 and 0.01
(:func:`explorer.inference.typicality.p_value` against the fitting maps' residuals).

Fields from other simulators (``--other-simulators``, the cosmologies and initial-condition seeds
of the first ``assets/valid`` simulations, maps 0 and 1, so only the simulator differs):

- ``2lpt``: second-order Lagrangian perturbation theory to z = 0, no N-body steps (an approximate
  simulator: no shell crossing, no halos);
- ``pm_3steps``: the same particle-mesh code with 3 kick-drift-kick steps instead of 10 (FastPM
  run coarsely in time, as fast approximate codes are);
- ``pm_32``: 32³ particles on a 64³ force mesh instead of 64³ on 128³ (eight times the particle
  mass, half the force resolution; tracers upsampled to the same 128³). Its white noise is drawn on
  the 32³ lattice, so its phases differ from the 64³ simulation's: the same cosmology, another
  realisation.

It evaluates at the true θ, not at the best fit: the best fit only lowers −ln L̂ by Δχ²·τ/2 ~ 10
nats, far below the scatter measured here, so this is what a check at the best fit would see.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from explorer.inference.defaults import DEFAULT_TERMS
from explorer.paths import resolve_assets, resolve_weights

ALTERATIONS = ("gaussian", "smoothed", "noisy", "shifted")
OTHER_SIMULATORS = ("2lpt", "pm_3steps", "pm_32")


def other_simulator_maps(kind: str, theta, seed: int, resolution: int, n_maps: int = 2) -> np.ndarray:
    """The first ``n_maps`` log10 Σ maps (n, r, r) of one simulation by another simulator (module docstring)."""
    import torch

    from explorer.data.transform import block_average
    from explorer.sim.cosmology import Cosmology
    from explorer.sim.fastpm import PMConfig, linear_field, lpt_displacements, run_pm
    from explorer.sim.maps import cdm_maps

    cosmo, box = Cosmology(*theta), 25.0
    upsample = 2
    if kind == "2lpt":
        psi1, psi2 = lpt_displacements(linear_field(cosmo, 64, box, seed), box)
        s = psi1 + float(cosmo.growth_2lpt(1.0)[0][0]) * psi2  # D₁(1) = 1
        s = torch.remainder(s + 0.5 * box, box) - 0.5 * box
    elif kind == "pm_3steps":
        s = run_pm(cosmo, seed, PMConfig(n_steps=3))
    elif kind == "pm_32":
        s, upsample = run_pm(cosmo, seed, PMConfig(n_particles=32, n_mesh=64)), 4
    else:
        raise ValueError(f"unknown simulator {kind!r}; choose from {OTHER_SIMULATORS}")
    maps = cdm_maps(s, cosmo, box_size=box, map_size=128, upsample=upsample)[:n_maps]
    return np.log10(block_average(maps.numpy().astype(np.float64), 128 // resolution))


def alter(log10: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """An altered copy of one (r, r) log10 Σ map (module docstring)."""
    if how == "gaussian":
        f = np.fft.rfft2(log10 - log10.mean())
        phases = np.exp(2j * np.pi * rng.random(f.shape))
        phases[0, 0] = 1.0
        return np.fft.irfft2(np.abs(f) * phases, s=log10.shape) + log10.mean()
    if how == "smoothed":
        k = np.fft.fftfreq(log10.shape[0])
        kernel = np.exp(-2 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2))  # σ = 1 pixel
        return np.fft.ifft2(np.fft.fft2(log10) * kernel).real
    if how == "noisy":
        return log10 + rng.normal(0.0, 0.05, log10.shape)
    if how == "shifted":
        return log10 + 0.3
    raise ValueError(f"unknown alteration {how!r}; choose from {ALTERATIONS}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--max-sims", type=int, default=50)
    p.add_argument("--maps-per-sim", type=int, default=2)
    p.add_argument("--terms", default=DEFAULT_TERMS, help="the likelihood's terms (default %(default)s)")
    p.add_argument("--other-simulators", type=int, default=0, metavar="N",
                   help="also score maps 0 and 1 of the first N valid cosmologies from other simulators")
    p.add_argument("--write", action="store_true",
                   help="store the held-out line in the weights' explorer.json (explorer.inference.typicality)")
    args = p.parse_args(argv)

    from explorer.data import find_cmd, load_cmd
    from explorer.inference.calibrate import _fields
    from explorer.inference.vlb import field_seed, split_scale_weights, term_weights, vlb_terms
    from explorer.model import load_model

    loaded = load_model(resolve_weights(args.weights))
    cmd = load_cmd(*find_cmd(resolve_assets() / "valid"))
    sims = np.arange(min(args.max_sims, cmd.n_sims))
    idx = np.array([15 * s + j for s in sims for j in range(args.maps_per_sim)])
    maps = _fields(cmd, idx, loaded.resolution)
    thetas = cmd.theta[idx // 15]
    timesteps, weights = term_weights(args.terms, loaded.schedule.T)
    scale_weights = split_scale_weights(args.terms)[1]

    def nll(log10, theta):
        x0 = loaded.normalization.encode(np.asarray(log10, dtype=np.float64))
        terms = vlb_terms(loaded, x0, np.asarray([theta]), timesteps, seed=field_seed(log10),
                          scale_weights=scale_weights)
        return float(weights @ terms[:, 0])

    start = time.perf_counter()
    held_out = np.array([nll(m, t) for m, t in zip(maps, thetas)])
    design = np.c_[np.ones(len(thetas)), thetas]
    coef, *_ = np.linalg.lstsq(design, held_out, rcond=None)
    resid = held_out - design @ coef
    scatter = float(resid.std(ddof=3))
    z_held = resid / scatter
    ref = {"z_heldout": z_held.tolist()}
    from explorer.inference.typicality import p_value

    twins = load_cmd(*find_cmd(resolve_assets() / "twins"))
    t_idx = np.array([15 * s + j for s in range(twins.n_sims) for j in range(2)])
    t_maps, t_theta = _fields(twins, t_idx, loaded.resolution), twins.theta[t_idx // 15]
    z_twins = np.array([(nll(m, t) - np.r_[1.0, t] @ coef) / scatter for m, t in zip(t_maps, t_theta)])
    p_twins = np.array([p_value(z, ref) for z in z_twins])
    report = {"weights": str(resolve_weights(args.weights)), "terms": args.terms, "n_held_out": int(len(idx)),
              "fit_nats": {"constant": round(float(coef[0]), 1), "per_omega_m": round(float(coef[1]), 1),
                           "per_sigma_8": round(float(coef[2]), 1)},
              "held_out_mean_nats": round(float(held_out.mean()), 1),
              "held_out_raw_std_nats": round(float(held_out.std(ddof=1)), 1),
              "residual_scatter_nats": round(scatter, 1),
              "held_out_abs_z_max": round(float(np.abs(resid).max() / scatter), 2),
              "separate_twins": {"n": int(z_twins.size), "z_mean": round(float(z_twins.mean()), 2),
                                 "z_std": round(float(z_twins.std(ddof=1)), 2),
                                 "abs_z_max": round(float(np.abs(z_twins).max()), 2),
                                 "flagged_at_abs_z_3": int((np.abs(z_twins) > 3).sum()),
                                 "p_below_0.05": int((p_twins < 0.05).sum()), "p_below_0.01": int((p_twins < 0.01).sum())}}
    rng = np.random.default_rng(0)
    sub = np.arange(0, len(idx), max(1, len(idx) // 20))[:20]  # 20 source maps per alteration
    for how in ALTERATIONS:
        z = np.array([(nll(alter(maps[i], how, rng), thetas[i]) - design[i] @ coef) / scatter for i in sub])
        report[how] = {"n": int(len(z)), "z_median": round(float(np.median(z)), 1),
                       "z_min": round(float(z.min()), 1), "z_max": round(float(z.max()), 1),
                       "flagged_at_abs_z_3": int((np.abs(z) > 3).sum()),
                       "p_below_0.01": int(sum(p_value(v, ref) < 0.01 for v in z))}
    if args.other_simulators:
        from explorer.sim.sets import RECIPES

        recipe = RECIPES["valid"]
        n_other = min(args.other_simulators, recipe.n_sims)
        for kind in OTHER_SIMULATORS:
            z, nat = [], []
            for sim in range(n_other):
                theta = recipe.params()[sim]
                for m in other_simulator_maps(kind, theta, recipe.sim_seed(sim), loaded.resolution):
                    z.append((nll(m, theta) - np.r_[1.0, theta] @ coef) / scatter)
                    nat.append(float(m.mean() - maps[args.maps_per_sim * sim: args.maps_per_sim * (sim + 1)].mean()))
            z = np.array(z)
            report[f"simulator_{kind}"] = {
                "n": int(z.size), "z_median": round(float(np.median(z)), 2), "z_min": round(float(z.min()), 2),
                "z_max": round(float(z.max()), 2), "flagged_at_abs_z_3": int((np.abs(z) > 3).sum()),
                "p_below_0.05": int(sum(p_value(v, ref) < 0.05 for v in z)),
                "p_below_0.01": int(sum(p_value(v, ref) < 0.01 for v in z)),
                "mean_log10_offset_vs_pm": round(float(np.mean(nat)), 4)}
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.write:
        from explorer.inference import records
        from explorer.inference.typicality import KEY

        records.store(resolve_weights(args.weights), KEY, {
            "terms": args.terms, "n_noise": 1, "coef": [float(c) for c in coef], "scatter": scatter,
            "n_maps": int(len(idx)), "z_heldout": [round(float(v), 3) for v in z_held],
            "source": "bench/bench_gof.py: assets/valid maps at their true θ"})
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
