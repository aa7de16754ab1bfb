"""`explorer calibrate`: fit the P(k) baseline and the likelihood temperature, measure coverage.

    explorer calibrate --weights weights --data data/train --valid assets/valid --json calib.json

(the command line lives in :mod:`.calibrate_command`; this module is the library)

Steps (all fields are one map per simulation, from simulations the model never trained on):

1. P(k) baseline: fitted on every map of the training set's *train* split (the trainer's split,
   read from the weights' metadata, else ``split_by_simulation(n, (0.9, 0.05, 0.05), seed=0)``),
   written to ``WEIGHTS/pk_baseline.json``. On the same maps, the Gaussian model of the fast
   sampler's start (:mod:`explorer.model.gaussian`), stored in ``WEIGHTS/explorer.json`` under
   "gaussian_start".
2. Temperatures on the calibration split (the training set's *test* and *validation* splits,
   never trained on):
   * τ of the 2D surface: the raw Δχ² at the truth is χ²₂-distributed for an honest likelihood,
     so τ is chosen such that 68.3 % of the calibration fields have Δχ²_raw(truth)/τ ≤ 2.30, i.e.
     τ = q₀.₆₈₃(Δχ²_raw(truth)) / 2.30 (``fit_temperature``);
   * τ_Ωm and τ_σ8 of the two marginals: the smallest τ_i at which the fraction of calibration
     fields whose central 68 % interval of parameter i holds the truth is closest to 68.3 %
     (``fit_marginal_temperature``). One τ cannot make both 1D intervals honest: the VLB is more
     overconfident along Ωₘ than along σ₈.
   Stored in ``WEIGHTS/explorer.json`` under "calibration" (the other keys and the tensors are
   left alone; a calibration of other terms moves to "calibration_other_terms", :mod:`.records`). The same 2D fit is done for the P(k) baseline, for comparison.
3. Evaluation split (``--valid``, e.g. assets/valid): coverage of the 68/95 % intervals and of the
   2D 1σ/2σ contours, bias, relative error and mean |z| of the posterior means, for the diffusion
   likelihood (raw, one τ, calibrated) and the P(k) baseline; printed as JSON, written to ``--json``.

``--grids FILE.npz`` keeps every field's raw VLB surface (both splits), and ``--from-grids FILE.npz``
redoes steps 2-3 from them without a network evaluation (seconds instead of an hour), e.g. to
compare calibration rules. The files hold plain numeric and string arrays (no pickle).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from explorer.model.gaussian import GaussianStart

from .defaults import (DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_START_SIGMA, DEFAULT_TERMS, LEVELS,
                       MASS_68, PARAM_NAMES)
from .grid import infer
from .grids_file import _saved, load_grids, save_grids
from .posterior import Posterior, intervals
from .pk_baseline import FILENAME as PK_FILENAME
from .pk_baseline import PkBaseline



#: Temperature whose 3σ region the fine windows of the raw calibration runs must hold. A window
#: chosen at τ = 1 is narrow (about ±0.13 around the coarse minimum), and a marginal retempered to
#: τ ≈ 5-10 afterwards would be cut off by it: its intervals too short, the fitted τ_i too large.
#: The evaluation runs use the fitted temperatures' own window, as `explorer infer` does.
CALIBRATION_WINDOW_TEMPERATURE = 10.0


def fit_temperature(delta_chi2_truth, mass: float = MASS_68, level: float = LEVELS[0]) -> float:
    """τ such that a fraction ``mass`` of fields has Δχ²_raw(truth)/τ ≤ ``level``.

    ``delta_chi2_truth: (n,)`` raw Δχ² at the true θ of n independent fields. For an honest
    2-parameter likelihood these are χ²₂ draws and τ ≈ 1; τ > 1 widens the contours (the
    likelihood was overconfident).
    """
    d = np.asarray(delta_chi2_truth, dtype=np.float64)
    if d.ndim != 1 or d.size < 3 or np.isnan(d).any() or (d < 0).any():
        raise ValueError(f"need at least 3 non-negative Δχ² values, got {d!r}")
    q = float(np.quantile(d, mass))
    return max(q / level, 1e-3)


def marginal_coverage(raw_posteriors: list[Posterior], name: str, temperatures, mass: float = MASS_68) -> np.ndarray:
    """Fraction of fields whose central ``mass`` interval of ``name`` holds the truth, at each of
    ``temperatures`` (the marginal's own τ; raw posteriors at τ = 1 with truths) -> (len(temperatures),)."""
    if name not in PARAM_NAMES:
        raise ValueError(f"name must be one of {PARAM_NAMES}, got {name!r}")
    if not raw_posteriors or any(p.truth is None for p in raw_posteriors):
        raise ValueError("need posteriors, each with a truth")
    j, taus = PARAM_NAMES.index(name), np.asarray(temperatures, dtype=np.float64)
    inside = np.zeros(taus.size)
    for post in raw_posteriors:
        raw = post.delta_chi2 * post.temperature
        # float32 exp (3x faster than float64; the marginals agree to ~1e-7 of their peak), float64 sums
        half = (0.5 * (raw - raw.min())).astype(np.float32)
        p = np.exp(-half[None] / taus.astype(np.float32)[:, None, None]).sum(axis=2 - j, dtype=np.float64)  # (τ, points)
        lo, hi = intervals((post.omega_m, post.sigma_8)[j], p, mass)
        inside += (lo <= post.truth[j]) & (post.truth[j] <= hi)
    return inside / len(raw_posteriors)


def fit_marginal_temperature(raw_posteriors: list[Posterior], name: str, mass: float = MASS_68,
                             candidates=np.geomspace(0.1, 1000.0, 466)) -> float:
    """τ_i: the smallest of ``candidates`` (2 % steps) whose coverage is closest to ``mass``, the
    coverage being the fraction of fields whose central ``mass`` interval of ``name`` holds the truth.

    Coverage is measured directly at each τ (:func:`marginal_coverage`), because it need not grow
    monotonically with τ for a single field (a truth near the prior edge can leave the interval
    again as a wide marginal's interval moves towards the middle of the box). With n fields it
    moves in steps of 1/n; the closest step is taken (34/50 = 68 % for 68.3 %), not the first one
    at or above ``mass``, which would overshoot by up to a step.
    """
    if len(raw_posteriors) < 3:
        raise ValueError("need at least 3 posteriors, each with a truth")
    coverage = marginal_coverage(raw_posteriors, name, candidates, mass)
    return float(candidates[int(np.argmin(np.abs(coverage - mass)))])


def coverage_metrics(posteriors: list[Posterior]) -> dict:
    """Coverage, bias and errors of posteriors with known truth (means as point estimates).

    Per parameter: ``coverage68/95`` (truth inside the central 1D interval), ``bias`` (mean of
    mean − truth), ``rel_error`` (mean |mean − truth| / truth), ``mean_abs_z`` (mean |mean −
    truth| / std), ``mean_std``. Joint: ``coverage_2d_1sigma/2sigma`` (Δχ²(truth) ≤ 2.30 / 6.18).
    """
    if not posteriors or any(p.truth is None for p in posteriors):
        raise ValueError("coverage needs at least one posterior, each with a truth")
    out: dict = {"n_fields": len(posteriors)}
    for j, name in enumerate(PARAM_NAMES):
        truth = np.array([p.truth[j] for p in posteriors])
        est = [p.estimates[name] for p in posteriors]
        mean, std = np.array([e["mean"] for e in est]), np.array([e["std"] for e in est])
        inside68 = [e["lo68"] <= t <= e["hi68"] for e, t in zip(est, truth)]
        inside95 = [e["lo95"] <= t <= e["hi95"] for e, t in zip(est, truth)]
        out[name] = {"coverage68": float(np.mean(inside68)), "coverage95": float(np.mean(inside95)),
                     "bias": float(np.mean(mean - truth)),
                     "rel_error": float(np.mean(np.abs(mean - truth) / truth)),
                     "mean_abs_z": float(np.mean(np.abs(mean - truth) / np.maximum(std, 1e-12))),
                     "mean_std": float(np.mean(std))}
    d = np.array([p.delta_chi2_truth() for p in posteriors])
    out["coverage_2d_1sigma"] = float(np.mean(d <= LEVELS[0]))
    out["coverage_2d_2sigma"] = float(np.mean(d <= LEVELS[1]))
    out["median_delta_chi2_truth"] = float(np.median(d))
    return out


def one_map_per_simulation(sims, seed: int = 0) -> np.ndarray:
    """Map indices, one per simulation: ``15 s + r`` with r drawn from ``seed`` (slab and axis vary)."""
    from explorer.data import MAPS_PER_SIM

    sims = np.asarray(sims, dtype=np.int64)
    return sims * MAPS_PER_SIM + np.random.default_rng(seed).integers(0, MAPS_PER_SIM, sims.size)


def maps_per_simulation(sims, seed: int = 0, per_sim: int = 1) -> np.ndarray:
    """Map indices, ``per_sim`` different maps of each simulation: first the maps of
    :func:`one_map_per_simulation` (``per_sim = 1`` is exactly that), then a second map of each
    simulation, and so on, the later ones drawn without replacement from each simulation's other maps."""
    from explorer.data import MAPS_PER_SIM

    if not 1 <= per_sim <= MAPS_PER_SIM:
        raise ValueError(f"maps per simulation must be 1 … {MAPS_PER_SIM}, got {per_sim}")
    first = one_map_per_simulation(sims, seed)
    if per_sim == 1:
        return first
    sims = np.asarray(sims, dtype=np.int64)
    rng = np.random.default_rng([seed, per_sim])
    rest = np.stack([rng.permutation(np.delete(np.arange(MAPS_PER_SIM), f - MAPS_PER_SIM * s))[:per_sim - 1]
                     for s, f in zip(sims, first)])                       # (n_sims, per_sim - 1) slabs
    return np.concatenate([first, (sims[:, None] * MAPS_PER_SIM + rest).T.ravel()])


def encoded_training_maps(denoiser, data, split_seed: int = 0):
    """``(cmd, train_sims, map_indices, maps)``: the CMD set ``data``, the trainer's train split of it
    (:func:`training_split` with ``denoiser.metadata``), its maps' indices and the maps in ``denoiser``'s
    normalised units, ``(N, n, n)`` float64 at its resolution."""
    from explorer.data import find_cmd, load_cmd, to_log10

    cmd = load_cmd(*find_cmd(data))
    train_sims, _ = training_split(cmd, denoiser.metadata, split_seed)
    idx = cmd.map_indices(train_sims)
    maps = denoiser.encode(to_log10(cmd.maps, denoiser.resolution, indices=idx).astype(np.float64))
    return cmd, train_sims, idx, maps


def training_split(cmd, metadata: dict, split_seed: int = 0, with_val: bool = False):
    """(train sims, test sims) of the trainer's split: from the weights' metadata when it describes
    this data set, else recomputed with ``split_by_simulation(n, (0.9, 0.05, 0.05), split_seed)``.
    ``with_val``: the second array holds the test and the validation simulations (both never
    trained on; validation only chose checkpoints by sample quality)."""
    from explorer.data import split_by_simulation

    data = (metadata or {}).get("data") or {}
    if data.get("n_sims") == cmd.n_sims and data.get("test_sims"):
        test = set(data["test_sims"])
        val = set(data.get("val_sims") or [])
        train = np.array([s for s in range(cmd.n_sims) if s not in test | val], dtype=np.int64)
        return train, np.array(sorted(test | val if with_val else test), dtype=np.int64)
    split = split_by_simulation(cmd.n_sims, (0.9, 0.05, 0.05), seed=split_seed)
    held = np.concatenate([split.test, split.val]) if with_val else split.test
    return split.train, np.sort(held)


def write_calibration(folder: str | Path, calibration: dict, key: str = "calibration") -> None:
    """Set ``key`` of ``folder/explorer.json``; every other key is kept as it was. A "calibration"
    with ``terms`` becomes the current one, and the calibration of other terms stays stored beside it
    (:mod:`.records`: `explorer infer` with those terms still finds its temperatures)."""
    from explorer.model.weights import set_metadata

    from . import records

    if key == "calibration" and isinstance(calibration, dict) and "terms" in calibration:
        records.store(folder, key, calibration)
    else:
        set_metadata(folder, key, calibration)


def _fields(cmd, map_indices, resolution: int) -> np.ndarray:
    from explorer.data import to_log10

    order = np.argsort(map_indices)
    maps = to_log10(cmd.maps, resolution, indices=np.asarray(map_indices)[order])
    out = np.empty_like(maps)
    out[order] = maps
    return out


def _record(map_index: int, vlb: Posterior, pk: Posterior) -> dict:
    """One evaluation field, compactly: truth, then mean ± std and Δχ²(truth) per likelihood."""
    def brief(p):
        return {**{n: [round(p.estimates[n]["mean"], 5), round(p.estimates[n]["std"], 5)] for n in PARAM_NAMES},
                "delta_chi2_truth": round(p.delta_chi2_truth(), 3)}
    return {"map": map_index, "truth": list(vlb.truth), "vlb_calibrated": brief(vlb), "pk": brief(pk)}


def _posteriors(loaded, maps, thetas, desc: str, show: bool, cluster=None, **kw) -> list[Posterior]:
    """``infer`` of each field, here or (``cluster = (workers, scheduler, weights folder)``) on Dask."""
    from tqdm.auto import tqdm

    if cluster is not None:
        from .batch import posteriors

        return posteriors(cluster[2], maps, thetas, workers=cluster[0], scheduler=cluster[1], show=show,
                          desc=desc, **kw)

    out = []
    for field, theta in tqdm(list(zip(maps, thetas)), desc=desc, unit="field", disable=not show):
        out.append(infer(loaded, field, kind="log10", truth=tuple(theta), **kw))
    return out


def fit_on_train_split(loaded, train_cmd, train_sims, start_sigma: float = DEFAULT_START_SIGMA):
    """Step 1: what is fitted on every map of the train split, ``(PkBaseline, GaussianStart)``: the
    P(k) baseline of the Infer tab and the Gaussian model of the fast sampler's start."""
    idx = train_cmd.map_indices(train_sims)
    maps, theta = _fields(train_cmd, idx, loaded.resolution), train_cmd.maps_theta()[idx]
    baseline = PkBaseline.fit(theta, maps, param_ranges=loaded.param_ranges, n_independent=len(train_sims))
    start = GaussianStart.fit(theta, loaded.encode(maps), loaded.param_ranges, sigma=start_sigma)
    return baseline, start


def fit_temperatures(raw: list[Posterior], pk: list[Posterior]) -> dict:
    """Step 2: τ (2D), τ_Ωm and τ_σ8 (marginals) from the raw posteriors of the calibration fields,
    the P(k) baseline's τ from its posteriors of the same fields, and coverage before and after."""
    tau = fit_temperature([p.delta_chi2_truth() for p in raw])
    marginal, notes = {}, []
    for name in PARAM_NAMES:
        marginal[name] = fit_marginal_temperature(raw, name)
        best = float(marginal_coverage(raw, name, [marginal[name]])[0])
        if abs(best - MASS_68) > 0.1:
            notes.append(f"{name}: the closest coverage on the calibration fields is {best:.0%}")
    calibration = {"temperature": tau, "marginal_temperatures": marginal,
                   "method": ("tau = 68.3% quantile of raw delta_chi2(truth) / 2.30 (2D contours); "
                              "tau_i = smallest temperature whose central 68% intervals of parameter i "
                              "hold the truth for the fraction of fields closest to 68.3% (marginals)"),
                   "n_fields": len(raw), "notes": notes}
    taus = _temperatures(calibration)
    calibration.update(coverage_before=coverage_metrics(raw),
                       coverage_one_temperature=coverage_metrics([p.retempered(tau) for p in raw]),
                       coverage_after=coverage_metrics([p.retempered(*taus) for p in raw]),
                       pk_temperature=fit_temperature([p.delta_chi2_truth() for p in pk]))
    return calibration


def _temperatures(calibration: dict) -> tuple[float, tuple[float, float]]:
    """(τ, (τ_Ωm, τ_σ8)) of a calibration record, for ``Posterior.retempered``."""
    return calibration["temperature"], tuple(calibration["marginal_temperatures"][n] for n in PARAM_NAMES)


def evaluate_coverage(raw: list[Posterior], pk: list[Posterior], calibration: dict, map_indices) -> dict:
    """Step 3: coverage, bias and errors on the evaluation fields of the diffusion likelihood (raw, one
    τ, calibrated) and the P(k) baseline (raw, with its τ), and one record per field."""
    tau, marginal = _temperatures(calibration)
    cal = [p.retempered(tau, marginal) for p in raw]
    return {"n_fields": len(cal), "vlb_raw": coverage_metrics(raw),
            "vlb_one_temperature": coverage_metrics([p.retempered(tau) for p in raw]),
            "vlb_calibrated": coverage_metrics(cal), "pk": coverage_metrics(pk),
            "pk_calibrated": coverage_metrics([p.retempered(calibration["pk_temperature"]) for p in pk]),
            "evaluations_per_field": cal[0].n_evaluations,
            "fields": [_record(int(i), c, q) for i, c, q in zip(map_indices, cal, pk)]}


def calibrate(weights=None, data="data/train", valid="assets/valid", *, terms: str = DEFAULT_TERMS,
              n_noise: int = DEFAULT_N_NOISE, coarse=DEFAULT_COARSE, fine=DEFAULT_FINE, seed: int = 0,
              noise_seed: int | None = None,
              split_seed: int = 0, max_fields: int | None = None, write: bool = True, show: bool = True,
              start_sigma: float = DEFAULT_START_SIGMA, skip_coverage: bool = False,
              grids=None, from_grids=None, workers: int = 0, scheduler: str | None = None,
              maps_per_sim: int = 1) -> dict:
    """Run steps 1-3 of the module docstring (``fit_on_train_split``, ``fit_temperatures``,
    ``evaluate_coverage``); writes their results into the weights folder; returns the JSON-able report.
    ``maps_per_sim``: calibration fields per calibration simulation (:func:`maps_per_simulation`;
    more fields steady the temperature fit at that many times the cost; the evaluation keeps one).
    ``workers`` > 0 or ``scheduler``: the fields' posteriors are computed on Dask
    (:func:`.batch.posteriors`), the same numbers as in this process."""
    from explorer.data import find_cmd, load_cmd
    from explorer.model import load_model

    from explorer.paths import resolve_weights

    t_start = time.perf_counter()
    weights = resolve_weights(weights)
    loaded = load_model(weights)
    r = loaded.resolution
    train_cmd = load_cmd(*find_cmd(data))
    valid_cmd = load_cmd(*find_cmd(valid))
    train_sims, test_sims = training_split(train_cmd, loaded.metadata, split_seed, with_val=True)
    valid_sims = np.arange(valid_cmd.n_sims)
    if max_fields is not None:
        test_sims, valid_sims = test_sims[:max_fields], valid_sims[:max_fields]
    from explorer.data import MAPS_PER_SIM

    cal_idx = maps_per_simulation(test_sims, seed, maps_per_sim)  # (refuses a bad count) before anything is written
    if not skip_coverage and (test_sims.size < 3 or valid_sims.size < 3):  # before anything is written
        raise ValueError(f"need >= 3 calibration and evaluation fields, got {test_sims.size} and {valid_sims.size}")
    kw = dict(terms=terms, n_noise=n_noise, coarse=coarse, fine=fine, seed=noise_seed,
              cluster=(workers, scheduler, weights) if workers or scheduler else None)

    baseline, start = fit_on_train_split(loaded, train_cmd, train_sims, start_sigma)         # 1.
    if write:
        baseline.save(Path(weights) / PK_FILENAME)
        write_calibration(weights, start.to_dict(), key="gaussian_start")
    gaussian_start = {"sigma": start.sigma, "n_maps": start.n_maps, "mean_scatter": start.mean_scatter}
    if skip_coverage:
        return {"weights": str(weights), "gaussian_start": gaussian_start, "written": bool(write),
                "seconds": time.perf_counter() - t_start}

    saved = load_grids(from_grids, terms, n_noise) if from_grids is not None else None
    cal_maps, cal_theta = _fields(train_cmd, cal_idx, r), train_cmd.theta[cal_idx // MAPS_PER_SIM]   # 2.
    if saved is not None:
        raw = _saved(saved, "calibration", cal_idx, cal_theta)
    else:
        raw = _posteriors(loaded, cal_maps, cal_theta, "calibration fields", show, temperature=1.0,
                          window_temperature=CALIBRATION_WINDOW_TEMPERATURE, **kw)
    calibration = fit_temperatures(raw, [baseline.posterior(m, truth=tuple(t)) for m, t in zip(cal_maps, cal_theta)])
    calibration.update(terms=terms, n_noise=int(n_noise), seed=int(seed),
                       noise_seed="per field (hash of its values)" if noise_seed is None else int(noise_seed),
                       maps_per_sim=int(maps_per_sim),
                       split=f"test and validation splits of {data} ({len(test_sims)} simulations, "
                             + ("one map each)" if maps_per_sim == 1 else f"{maps_per_sim} maps each)"))
    if write:
        write_calibration(weights, calibration)
    tau, marginal_taus = _temperatures(calibration)

    ev_idx = one_map_per_simulation(valid_sims, seed + 1)                                   # 3.
    ev_maps, ev_theta = _fields(valid_cmd, ev_idx, r), valid_cmd.theta[valid_sims]
    seconds = None
    if saved is not None:
        ev_raw = _saved(saved, "evaluation", ev_idx, ev_theta)
    else:  # the calibrated run (its fine window follows τ); raw and one-τ are the same grids retempered
        t0 = time.perf_counter()
        ev_raw = [p.retempered(1.0) for p in _posteriors(loaded, ev_maps, ev_theta, "evaluation fields", show,
                                                         temperature=tau, window_temperature=max(tau, *marginal_taus),
                                                         **kw)]
        seconds = (time.perf_counter() - t0) / len(ev_raw)
    if grids is not None:
        save_grids(grids, {"calibration": (cal_idx, raw), "evaluation": (ev_idx, ev_raw)},
                   terms=terms, n_noise=n_noise)
    pk = [baseline.posterior(m, truth=tuple(t)) for m, t in zip(ev_maps, ev_theta)]
    evaluation = evaluate_coverage(ev_raw, pk, calibration, ev_idx)
    evaluation.update(data=str(valid), seconds_per_field=seconds, grid={"coarse": list(coarse), "fine": list(fine)},
                      from_grids=None if from_grids is None else str(from_grids))
    if write:
        summary = {k: v for k, v in evaluation.items() if k != "fields"}
        write_calibration(weights, {**calibration, "evaluation": summary})
    marginal = calibration["marginal_temperatures"]
    return {"weights": str(weights), "terms": terms, "n_noise": int(n_noise), "temperature": tau,
            "marginal_temperatures": marginal, "gaussian_start": gaussian_start,
            "pk_baseline": {"bins": len(baseline.groups), "degree": baseline.degree, "n_maps": baseline.n_maps,
                            "train_sims": len(train_sims)},
            "calibration": calibration, "evaluation": evaluation, "written": bool(write),
            "seconds": time.perf_counter() - t_start}
