"""Sample-quality figures of an emulator on held-out simulations (DESIGN.md section 7).

For every held-out cosmology θ_c with its 15 true maps (one simulation), and optionally 15 maps
of a *new-seed* simulation at the same θ_c:

    χ²_r(generated)   15 generated maps against the true maps' mean and σ (per k)
    χ²_r(LOO true)    each true map against the other 14 (the seed paper's cosmic-variance floor)
    χ²_r(new seed)    the new-seed simulation's maps against the true maps: what a perfect
                      emulator scores (the LOO floor is lower, because the 15 maps of a simulation
                      share its large-scale modes)

    fidelity_loo     = mean χ²_r(generated) / mean χ²_r(LOO true)     (seed paper: 1.30/1.27)
    fidelity_newseed = mean χ²_r(generated) / mean χ²_r(new seed)     (target ≤ 1.10; perfect = 1)

means over all maps of all cosmologies. Also reported: the pixel σ ratio and the mean log10 Σ
offset (generated − true), cheap alarms for washed-out or shifted samples, and the small-scale
scatter ratio: how much the band power at k ≥ 2.5 h/Mpc varies from map to map, generated against
true (std over maps of log P_band; geometric mean over cosmologies). It was 0.65-0.75 for the
shipped networks, and it is what makes the likelihood overconfident (README, "Where the
temperature comes from").

`explorer evaluate --seeds 0 1000 2000` prints these as JSON: per seed, as mean and spread over the
seeds, and per cosmology with the worst one named (:func:`over_seeds`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from explorer.params import PARAM_NAMES
from explorer.paths import SHIPPED_ASSETS

#: emulate(omega_m, sigma_8, n, seed) -> (n, H, W) log10 Σ
EmulateFn = Callable[[float, float, int, int], np.ndarray]


@dataclass
class Fidelity:
    """Fidelity figures over n_cosmologies held-out cosmologies (see module docstring)."""

    n_cosmologies: int
    n_generated: int
    chi2_generated: float
    chi2_loo: float
    chi2_newseed: float | None
    fidelity_loo: float
    fidelity_newseed: float | None
    pixel_std_ratio: float  # mean over cosmologies of σ_pix(generated)/σ_pix(true)
    mean_offset: float  # mean over cosmologies of ⟨log10 Σ⟩_gen − ⟨log10 Σ⟩_true, dex
    mean_offset_sem: float  # its standard error over cosmologies
    map_mean_scatter_ratio: float  # mean over cosmologies of std(per-map means)_gen / std(...)_true
    small_scale_scatter_ratio: float | None  # geometric mean over cosmologies of std(log P, k >= K_SMALL)_gen
    # / _true (None: one generated map, or maps without k >= K_SMALL)
    per_cosmology: list  # [{"theta": [Ωₘ, σ₈], "chi2_generated", "chi2_loo", "chi2_newseed"}]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


#: Lower edge [h/Mpc] of the band of ``small_scale_scatter_ratio`` (up to the maps' highest k).
K_SMALL = 2.5


def band_power_scatter(power: np.ndarray, k: np.ndarray, k_min: float = K_SMALL, k_max: float = np.inf) -> float:
    """std over maps (ddof=1) of log of each map's mean power at k_min ≤ k < k_max; ``power (n, n_k)``."""
    sel = (np.asarray(k) >= k_min) & (np.asarray(k) < k_max)
    if not sel.any() or power.shape[0] < 2:
        raise ValueError(f"need >= 2 maps and a k >= {k_min} h/Mpc (the maps' highest k is {np.max(k):.3g})")
    return float(np.log(power[:, sel].mean(axis=1)).std(ddof=1))


def fidelity(emulate: EmulateFn, theta: np.ndarray, true_maps: np.ndarray,
             newseed_maps: np.ndarray | None = None, n_generated: int = 15, seed: int = 0,
             box_size: float = 25.0, progress: Callable[[int, int], None] | None = None) -> Fidelity:
    """Fidelity of `emulate` at held-out cosmologies.

    theta: (C, 2) (Ωₘ, σ₈); true_maps: (C, 15, H, W) log10 Σ; newseed_maps: (C', 15, H, W)
    for the first C' ≤ C cosmologies, or None. Generated maps use seed `seed + c` at cosmology c.
    """
    from explorer.stats import leave_one_out_chi2, power_spectrum, reduced_chi2

    theta = np.asarray(theta, dtype=np.float64)
    if true_maps.ndim != 4 or true_maps.shape[0] != theta.shape[0]:
        raise ValueError(f"true_maps must be (C, n, H, W) with C = {theta.shape[0]}, got {true_maps.shape}")
    start = time.perf_counter()
    gen_all, loo_all, new_all, std_ratio, offsets, scatter, rows = [], [], [], [], [], [], []
    small = []
    for c, (om, s8) in enumerate(theta):
        generated = np.asarray(emulate(float(om), float(s8), n_generated, seed + c), dtype=np.float64)
        truth = true_maps[c].astype(np.float64)
        ps_true, ps_gen = power_spectrum(truth, box_size), power_spectrum(generated, box_size)
        p_true = ps_true.power
        chi_gen = reduced_chi2(ps_gen.power, p_true)
        chi_loo = leave_one_out_chi2(p_true)
        gen_all.append(chi_gen)
        loo_all.append(chi_loo)
        row = {"theta": [float(om), float(s8)], "chi2_generated": float(chi_gen.mean()),
               "chi2_loo": float(chi_loo.mean())}
        if newseed_maps is not None and c < len(newseed_maps):
            p_new = power_spectrum(newseed_maps[c].astype(np.float64), box_size).power
            chi_new = reduced_chi2(p_new, p_true)
            new_all.append(chi_new)
            row["chi2_newseed"] = float(chi_new.mean())
        std_ratio.append(generated.std() / truth.std())
        offsets.append(generated.mean() - truth.mean())
        scatter.append(_scatter_ratio(generated.mean(axis=(1, 2)).std(ddof=1), truth.mean(axis=(1, 2)).std(ddof=1)))
        row.update(pixel_std_ratio=float(std_ratio[-1]), mean_offset=float(offsets[-1]),
                   map_mean_scatter_ratio=float(scatter[-1]))
        if len(generated) > 1 and ps_gen.k.max() >= K_SMALL:  # (not for one map, or maps too coarse)
            small.append(_scatter_ratio(band_power_scatter(ps_gen.power, ps_gen.k),
                                        band_power_scatter(p_true, ps_true.k)))
            row["small_scale_scatter_ratio"] = float(small[-1])
        rows.append(row)
        if progress:
            progress(c + 1, len(theta))
    chi_gen = float(np.concatenate(gen_all).mean())
    chi_loo = float(np.concatenate(loo_all).mean())
    chi_new = float(np.concatenate(new_all).mean()) if new_all else None
    # Compare generated and new-seed χ² on the same cosmologies.
    chi_gen_matched = float(np.concatenate(gen_all[:len(new_all)]).mean()) if new_all else None
    return Fidelity(
        n_cosmologies=len(theta), n_generated=n_generated, chi2_generated=chi_gen, chi2_loo=chi_loo,
        chi2_newseed=chi_new, fidelity_loo=chi_gen / chi_loo,
        fidelity_newseed=(chi_gen_matched / chi_new) if new_all else None,
        pixel_std_ratio=float(np.mean(std_ratio)), mean_offset=float(np.mean(offsets)),
        mean_offset_sem=float(np.std(offsets, ddof=1) / np.sqrt(len(offsets))) if len(offsets) > 1 else float("nan"),
        map_mean_scatter_ratio=float(np.mean(scatter)),
        small_scale_scatter_ratio=float(np.exp(np.mean(np.log(np.maximum(small, 1e-12))))) if small else None,
        per_cosmology=rows, seconds=time.perf_counter() - start)


def _scatter_ratio(generated: float, true: float, zero: float = 1e-9) -> float:
    """std_gen / std_true of the per-map means [dex]; below ``zero`` dex a scatter is rounding, not
    signal: 1 when both are, inf when only the truth's is."""
    if true > zero:
        return float(generated / true)
    return 1.0 if generated <= zero else float("inf")


def spread(values) -> dict:
    """``{"mean", "std", "min", "max"}`` of repeated measurements (std with ddof=1; 0 for one value)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        raise ValueError("spread needs at least one value")
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max())}


#: The headline figures of :class:`Fidelity` that :func:`over_seeds` summarises.
HEADLINE = ("fidelity_newseed", "fidelity_loo", "chi2_generated", "pixel_std_ratio", "mean_offset",
            "map_mean_scatter_ratio", "small_scale_scatter_ratio")
#: Per-cosmology figures and their ideal values (a perfect emulator's expectation).
PER_COSMOLOGY_IDEAL = {"fidelity_newseed": 1.0, "fidelity_loo": 1.0, "pixel_std_ratio": 1.0, "mean_offset": 0.0,
                       "map_mean_scatter_ratio": 1.0, "small_scale_scatter_ratio": 1.0}


def over_seeds(results: dict) -> dict:
    """Mean and spread over sampler seeds of the headline figures, and the worst cosmologies.

    ``results``: {seed: Fidelity}, all for the same cosmologies. Returns a JSON-able dict:

    * ``summary``: per figure of ``HEADLINE``, ``mean``, ``std`` (over seeds, ddof=1), ``min``,
      ``max`` and ``per_seed``; each seed's figure is itself over all maps of all cosmologies;
    * ``per_cosmology``: per cosmology c, its own figures averaged over seeds with their per-seed
      values: ``fidelity_newseed`` = χ²_r(generated)/χ²_r(new seed) and ``fidelity_loo`` =
      χ²_r(generated)/χ²_r(LOO) at θ_c, ``pixel_std_ratio``, ``mean_offset``, ``map_mean_scatter_ratio``;
    * ``worst``: per figure, the cosmology farthest from the ideal (largest χ² ratio; largest
      |log ratio| or |offset|).
    """
    if not results:
        raise ValueError("over_seeds needs at least one seed's Fidelity")
    seeds = list(results)
    summary = {}
    for name in HEADLINE:
        values = [getattr(results[s], name) for s in seeds]
        if any(v is None for v in values):
            continue
        summary[name] = {**spread(values), "per_seed": {str(s): float(v) for s, v in zip(seeds, values)}}
    rows = []
    for c, first in enumerate(results[seeds[0]].per_cosmology):
        per = [results[s].per_cosmology[c] for s in seeds]
        if any(not np.allclose(p["theta"], first["theta"]) for p in per):
            raise ValueError("over_seeds: the seeds' results are for different cosmologies")
        row = {"cosmology": c, "theta": first["theta"], "chi2_loo": first["chi2_loo"]}
        per_seed = {"fidelity_loo": [p["chi2_generated"] / p["chi2_loo"] for p in per]}
        if "chi2_newseed" in first:
            row["chi2_newseed"] = first["chi2_newseed"]
            per_seed["fidelity_newseed"] = [p["chi2_generated"] / p["chi2_newseed"] for p in per]
        for key in ("pixel_std_ratio", "mean_offset", "map_mean_scatter_ratio", "small_scale_scatter_ratio"):
            if key in first:  # (results saved before a figure existed lack it)
                per_seed[key] = [p[key] for p in per]
        for key, values in per_seed.items():
            row[key] = float(np.mean(values))
            row[key + "_per_seed"] = [round(float(v), 4) for v in values]
        rows.append(row)
    worst = {}
    for key, ideal in PER_COSMOLOGY_IDEAL.items():
        have = [r for r in rows if key in r]
        if not have:
            continue
        if key.startswith("fidelity"):
            badness = lambda r: r[key]  # noqa: E731  (a larger χ² ratio is worse)
        elif ideal == 1.0:
            badness = lambda r: abs(np.log(r[key])) if r[key] > 0 else np.inf  # noqa: E731
        else:
            badness = lambda r: abs(r[key])  # noqa: E731
        pick = max(have, key=badness)
        worst[key] = {"cosmology": pick["cosmology"], "theta": pick["theta"], "value": pick[key],
                      "per_seed": pick[key + "_per_seed"]}
    return {"seeds": [int(s) for s in seeds], "summary": summary, "worst": worst, "per_cosmology": rows}


@dataclass
class OnePResponse:
    """P(k; θ)/P(k; θ_fid) of generated maps vs a 1P reference set, per varied parameter."""

    k: np.ndarray  # (n_k,) h/Mpc
    values: dict  # parameter name -> (n_values,) the varied values
    generated: dict  # name -> Response (mean/std over the generated seeds)
    reference: dict  # name -> Response (mean/std over the reference simulation's 15 maps)
    agreement: dict  # name -> RMS of (mean_gen − mean_ref)/√(σ_gen² + σ_ref²) over values and k

    def summary(self) -> dict:
        return {"agreement": {k: float(v) for k, v in self.agreement.items()},
                "values": {k: [float(x) for x in v] for k, v in self.values.items()}}


def one_p_response(emulate: EmulateFn, theta: np.ndarray, maps: np.ndarray, fiducial=(0.3, 0.8),
                   n_generated: int = 15, seed: int = 0, box_size: float = 25.0) -> OnePResponse:
    """The seed paper's Figure 2: the response of P(k) to one parameter, generated vs reference.

    theta: (S, 2) of a 1P set (one parameter varied at a time around `fiducial`); maps: (S, 15, H, W)
    log10 Σ. The generated maps use the same seed (hence the same noise draws, map by map) at every
    θ, so the ratio to the fiducial cancels most of the sample variance, as the fixed IC seed does
    in the reference set.
    """
    from explorer.stats import power_spectrum, response_agreement, response_ratio

    theta = np.asarray(theta, dtype=np.float64)
    out = {"k": None, "values": {}, "generated": {}, "reference": {}, "agreement": {}}
    for index, name in enumerate(PARAM_NAMES):
        other = 1 - index
        rows = np.flatnonzero(np.isclose(theta[:, other], fiducial[other]))
        _, first = np.unique(np.round(theta[rows, index], 10), return_index=True)
        rows = rows[first]  # sorted by value; the fiducial, in both halves of a 1P set, once
        fid = rows[np.argmin(np.abs(theta[rows, index] - fiducial[index]))]
        gen = [power_spectrum(np.asarray(emulate(*theta[r], n_generated, seed), dtype=np.float64),
                              box_size).power for r in rows]
        ref = [power_spectrum(maps[r].astype(np.float64), box_size).power for r in rows]
        i_fid = list(rows).index(fid)
        g = response_ratio(np.stack(gen), gen[i_fid])
        r = response_ratio(np.stack(ref), ref[i_fid])
        keep = [i for i in range(len(rows)) if i != i_fid]  # the fiducial's ratio is 1 by definition
        sub = lambda resp: type(resp)(resp.ratio[keep], resp.mean[keep], resp.std[keep])
        out["values"][name] = theta[rows, index]
        out["generated"][name], out["reference"][name] = g, r
        out["agreement"][name] = response_agreement(sub(g), sub(r))
        out["k"] = power_spectrum(maps[rows[0], :1].astype(np.float64), box_size).k
    return OnePResponse(**out)


def histogram_agreement(generated: np.ndarray, truth: np.ndarray, n_bins: int = 40) -> dict:
    """Pixel-histogram agreement of two map sets (log10 Σ): max |Δ mean density| in units of the
    truth's map-to-map σ per bin (bins where the truth has weight), and the KS-like max CDF gap."""
    from explorer.stats import histogram_bins, pixel_histograms

    edges = histogram_bins(generated, truth, n_bins=n_bins)
    g, t = pixel_histograms(generated, edges), pixel_histograms(truth, edges)
    used = t.mean > 0.01 * t.mean.max()
    z = np.abs(g.mean - t.mean)[used] / np.maximum(t.std[used], 1e-12)
    width = np.diff(edges)
    cdf_gap = np.abs(np.cumsum(g.mean * width) - np.cumsum(t.mean * width)).max()
    return {"max_abs_z": float(z.max()), "median_abs_z": float(np.median(z)), "max_cdf_gap": float(cdf_gap)}


def non_gaussianity(maps: np.ndarray) -> dict:
    """Statistics a power spectrum is blind to, averaged over maps ``(N, H, W)`` (log10 Σ):
    pixel skewness and excess kurtosis, and the number of connected regions above μ + 1σ and
    μ + 2σ of each map (periodic, :func:`explorer.stats.connected_regions`). A Gaussian field has
    skewness and kurtosis 0; the stand-in maps have about 1.0 and 1.6."""
    from scipy.stats import kurtosis, skew

    from explorer.stats import connected_regions

    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (N, H, W), got {maps.shape}")
    flat = maps.reshape(len(maps), -1)
    out = {"skewness": float(np.mean(skew(flat, axis=1))), "kurtosis": float(np.mean(kurtosis(flat, axis=1)))}
    for nu in (1, 2):
        counts = [connected_regions(m, m.mean() + nu * m.std()).n_regions for m in maps]
        out[f"regions_above_{nu}sigma"] = float(np.mean(counts))
    return out


def load_reference(directory: str | Path, resolution: int, set_name: str = "LH", suite: str | None = None,
                   sims=None) -> tuple[np.ndarray, np.ndarray]:
    """θ (C, 2) and log10 maps (C, 15, r, r) of a CMD directory (optionally only `sims`)."""
    from explorer.data import MAPS_PER_SIM, find_cmd, load_cmd, to_log10

    cmd = load_cmd(*find_cmd(directory, set_name=set_name, suite=suite))
    sims = np.arange(cmd.n_sims) if sims is None else np.asarray(sims)
    maps = to_log10(cmd.maps, resolution, indices=cmd.map_indices(sims))
    return cmd.theta[sims], maps.reshape(len(sims), MAPS_PER_SIM, resolution, resolution)


def add_arguments(parser):
    parser.add_argument("--weights", default=None,
                        help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped weights/ next to the package)")
    parser.add_argument("--reference", default=str(SHIPPED_ASSETS),
                        help="CMD directory of held-out simulations (default: the bundled assets/valid)")
    parser.add_argument("--twins", default=str(SHIPPED_ASSETS),
                        help="CMD directory of new-seed simulations at the first reference cosmologies "
                             "(assets/twins); '' to skip")
    parser.add_argument("--n-cosmologies", type=int, default=20,
                        help="first N held-out cosmologies (default 20: all that have new-seed twins)")
    parser.add_argument("--n-generated", type=int, default=15, help="generated maps per cosmology (default 15)")
    parser.add_argument("--method", default=None, help="sampler (default: the weights' default)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the weights' default)")
    parser.add_argument("--network", default=None,
                        help="network: small, full or another sub-folder of the weights (default: the weights' default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1000, 2000],
                        help="sampler seeds: cosmology c is generated with seed S + c for each S; every figure is "
                             "reported per seed and as mean and spread over seeds (default 0 1000 2000)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, ...")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")


def run(args) -> int:
    from tqdm import tqdm

    from explorer.model import Emulator
    from explorer.paths import resolve_weights

    args.weights = resolve_weights(args.weights)
    emu = Emulator.from_folder(args.weights, device=args.device)
    theta, truth = _reference_sets(args.reference, emu.resolution, "valid", args.n_cosmologies)
    newseed = None
    if args.twins:
        _, newseed = _reference_sets(args.twins, emu.resolution, "twins", args.n_cosmologies)

    method, steps, network = emu.resolve(args.method, args.steps, args.network)

    def emulate(om, s8, n, seed):
        return emu.sample(om, s8, n=n, seed=seed, method=method, steps=steps, network=network)

    results = {}
    with tqdm(total=len(theta) * len(args.seeds), desc="evaluate") as bar:
        for seed in args.seeds:
            results[seed] = fidelity(emulate, theta, truth, newseed, n_generated=args.n_generated, seed=seed,
                                     progress=lambda done, total: bar.update(1))
    out = {"weights": str(args.weights), "method": method, "steps": steps, "network": network,
           "n_cosmologies": len(theta), "n_generated": args.n_generated, **over_seeds(results)}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _reference_sets(directory, resolution, recipe_name, limit):
    """θ and maps of a reference folder; the bundled assets keep each set in assets/<recipe>/."""
    directory = Path(directory)
    if (directory / recipe_name).is_dir():
        directory = directory / recipe_name
    set_name = "1P" if recipe_name == "onep" else "LH"
    theta, maps = load_reference(directory, resolution, set_name=set_name, sims=None)
    return theta[:limit], maps[:limit]
