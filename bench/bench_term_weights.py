"""How should the bound's strata be weighted? Local (sandwich) analysis of each VLB term at the truth.

    python bench/bench_term_weights.py --out runs/term_weights.npz            # measure (resumable)
    python bench/bench_term_weights.py --out runs/term_weights.npz --analyse  # seconds, prints JSON

Why. The default likelihood ``vlb:8`` sums 8 strata of the bound, each weighted by its width (the
number of terms it stands for), and needs a temperature τ ≈ 5.5 to be honest. The strata are not
equally overconfident: a term whose θ-dependence is mostly the network's field-to-field error
pulls the estimate around without adding information. With per-term gradients and curvatures at
the truth, the estimator's error for any weighting follows without another network call.

Measure. For each field (the 50 calibration fields and the 50 evaluation fields of ``explorer
calibrate``: one map per simulation, never trained on), every term L_k of ``vlb:8`` (the field's own
noise seed, as ``explorer infer``) is evaluated on a 3×3 stencil of θ around the truth (steps
``--step``; moved inside the prior box when the truth is near its edge). The raw (K, 9) arrays go
into ``--out`` after every field (a plain ``.npz``; a rerun continues where it stopped).

Analyse. A quadratic in θ fitted to each term's 9 values gives its gradient g_k and Hessian H_k at
the truth. For weights w (per stratum) the field's local −ln L̂ is Σ_k w_k L_k, its maximum is one
Newton step from the truth, θ̂ = θ* − H⁻¹g with g = Σ w_k g_k, H = Σ w_k H_k, its raw Δχ² at the
truth is gᵀH⁻¹g and its raw covariance H⁻¹. The temperatures are fitted on the calibration fields
exactly as ``explorer calibrate`` does (2D: 68.3 % quantile of Δχ²/2.30; marginal i: the 68.3 %
quantile of (θ̂_i − θ*_i)² / (H⁻¹)_ii, the Gaussian version of its rule), and applied to the
evaluation fields: coverage, relative error of θ̂, |z|. The prior box is ignored (no truncation),
so these are figures of the local approximation; candidates that win here are then checked end to
end with ``explorer calibrate`` and ``bench/bench_coverage.py``.

Weightings compared: the widths (``vlb:8``), each stratum alone, leaving out the lowest strata,
widths × t^α, and per-stratum weights chosen on the calibration fields to minimise the calibrated
Ωₘ error (the evaluation fields judge them). Note that multiplying every weight by c multiplies τ by c:
τ alone says nothing; the calibrated errors and coverage do.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from explorer.params import PARAM_NAMES

TERMS = "vlb:8"
OFFSETS = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=np.float64)


def stencil(truth, step, ranges) -> np.ndarray:
    """(9, 2) θ: a 3×3 stencil with spacing ``step`` around ``truth``, moved inside ``ranges``."""
    lo, hi = np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges])
    centre = np.clip(np.asarray(truth, dtype=np.float64), lo + step, hi - step)
    return centre + OFFSETS * step


def fields(loaded, data: str, valid: str):
    """[(split, map index, θ, log10 field)] of ``explorer calibrate``'s calibration and evaluation fields."""
    from explorer.data import find_cmd, load_cmd
    from explorer.inference.calibrate import _fields, one_map_per_simulation, training_split

    train_cmd, valid_cmd = load_cmd(*find_cmd(data)), load_cmd(*find_cmd(valid))
    _, test_sims = training_split(train_cmd, loaded.metadata, 0, with_val=True)
    out = []
    for split, cmd, sims, seed in (("calibration", train_cmd, test_sims, 0),
                                   ("evaluation", valid_cmd, np.arange(valid_cmd.n_sims), 1)):
        idx = one_map_per_simulation(sims, seed)
        maps = _fields(cmd, idx, loaded.resolution)
        out += [(split, int(i), cmd.theta[s], m) for i, s, m in zip(idx, sims, maps)]
    return out


def fourier_masks(n: int, k_max, box: float = 25.0) -> np.ndarray:
    """(C, n, n) bool: the Fourier modes |k| ≤ k_max [h/Mpc] of an n² map of side ``box`` [Mpc/h]
    (k_max = inf: every mode); the likelihood's own k grid (``vlb.scale_weight_grid``)."""
    from explorer.inference.vlb import scale_weight_grid

    return np.stack([np.ones((n, n), bool) if np.isinf(km) else scale_weight_grid(n, ((km, 0.0),), box) == 1
                     for km in k_max])


def terms_with_cuts(loaded, x0: np.ndarray, theta: np.ndarray, timesteps: np.ndarray, seed: int,
                    masks: np.ndarray) -> np.ndarray:
    """(C, K, G) nats: each KL term L_k (k ≥ 1) of ``vlb_terms`` with the residual μ̃ − μ_θ kept
    only on the Fourier modes of mask c (Parseval: with every mode this is Σ_pixels (μ̃ − μ_θ)²/(2β̃),
    the term itself). The same noise and network calls as ``vlb_terms``; one draw."""
    import torch

    from explorer.inference.vlb import term_noise

    sched = loaded.schedule
    H, W = x0.shape
    out = np.empty((masks.shape[0], timesteps.size, theta.shape[0]))
    th = torch.from_numpy(np.asarray(theta, dtype=np.float64))
    x0_t = torch.from_numpy(x0)
    m = torch.from_numpy(masks)
    for j, k in enumerate(timesteps):
        if k < 1:
            raise ValueError("scale cuts are for the KL terms L_k, k >= 1")
        eps = term_noise(seed, int(k), 0, (H, W))
        xt = torch.from_numpy(np.sqrt(sched.alpha_bar[k]) * x0 + np.sqrt(1.0 - sched.alpha_bar[k]) * eps)
        x = xt.expand(th.shape[0], H, W)
        t = torch.full((th.shape[0],), int(k), dtype=torch.long)
        with torch.no_grad():
            mu_theta = loaded.posterior_mean(x[:, None], t, th)[:, 0].double()
            mu_post = sched.q_posterior_mean(x0_t.expand_as(x), x, t)
        power = torch.fft.fft2(mu_post - mu_theta).abs() ** 2 / (H * W)   # (G, H, W), Σ = Σ r²
        out[:, j] = (torch.einsum("chw,ghw->cg", m.double(), power) / (2 * sched.posterior_variance[k])).numpy()
    return out


def measure(args) -> None:
    from explorer.inference.vlb import field_seed, term_weights, vlb_terms
    from explorer.model import load_model
    from explorer.paths import resolve_weights

    loaded = load_model(resolve_weights(args.weights))
    ts, widths = term_weights(TERMS, loaded.schedule.T)
    step = np.array(args.step, dtype=np.float64)
    k_max = np.array(sorted(args.k_max or []) + [np.inf])  # the last row: every mode (the term itself)
    masks = fourier_masks(loaded.resolution, k_max)
    checked, done = False, {}
    if args.out.exists():
        with np.load(args.out, allow_pickle=False) as f:
            done = {k: f[k] for k in f.files}
    todo = fields(loaded, args.data, args.valid)
    if args.max_fields:
        todo = [f for split in ("calibration", "evaluation") for f in [g for g in todo if g[0] == split][:args.max_fields]]
    for n, (split, i, theta, field) in enumerate(todo):
        key = f"{split}__{i}"
        if key + "__L" in done:
            continue
        t0 = time.perf_counter()
        pts = stencil(theta, step, loaded.param_ranges)
        x0 = loaded.normalization.encode(field.astype(np.float64))
        seed = (field_seed(field) + args.noise_replicate) % 2**63
        if args.k_max:
            Lc = terms_with_cuts(loaded, x0, pts, ts, seed, masks)
            if not checked:  # the cut-free row is the bound's own term: check against vlb_terms once
                ref = vlb_terms(loaded, x0, pts, ts, seed=seed, batch_size=16)
                if not np.allclose(Lc[-1], ref, rtol=1e-5, atol=1e-6):
                    raise RuntimeError(f"terms_with_cuts disagrees with vlb_terms: {np.abs(Lc[-1] - ref).max()}")
                checked = True
            L = Lc[-1]
            done[key + "__Lc"] = Lc
        else:
            L = vlb_terms(loaded, x0, pts, ts, seed=seed, batch_size=16)
        done.update({key + "__L": L, key + "__theta": pts, key + "__truth": np.asarray(theta, np.float64)})
        done.update(timesteps=ts, widths=widths, step=step)
        if args.k_max:
            done["k_max"] = k_max
        tmp = args.out.with_suffix(".tmp.npz")
        np.savez(tmp, **done)
        tmp.replace(args.out)
        print(json.dumps({"field": key, "n": n + 1, "of": len(todo), "seconds": round(time.perf_counter() - t0, 1)}),
              flush=True)


# ---------------------------------------------------------------------------------------------- analysis

def quad_fit(theta: np.ndarray, values: np.ndarray, at: np.ndarray):
    """Gradient (…, 2) and Hessian (…, 2, 2) at ``at`` of the least-squares quadratic through
    ``values`` (…, 9) on ``theta`` (9, 2)."""
    d = (theta - at) / np.array([0.1, 0.1])  # scaled coordinates for a well-conditioned fit
    A = np.column_stack([np.ones(len(d)), d[:, 0], d[:, 1], d[:, 0] ** 2, d[:, 0] * d[:, 1], d[:, 1] ** 2])
    coef = np.linalg.lstsq(A, values.reshape(-1, len(d)).T, rcond=None)[0].T  # (…, 6)
    coef = coef.reshape(values.shape[:-1] + (6,))
    s = np.array([0.1, 0.1])
    g = np.stack([coef[..., 1] / s[0], coef[..., 2] / s[1]], axis=-1)
    H = np.empty(values.shape[:-1] + (2, 2))
    H[..., 0, 0] = 2 * coef[..., 3] / s[0] ** 2
    H[..., 1, 1] = 2 * coef[..., 5] / s[1] ** 2
    H[..., 0, 1] = H[..., 1, 0] = coef[..., 4] / (s[0] * s[1])
    return g, H


def load(path: Path, cut: int | None = None, band_weights=None) -> dict:
    """{split: {"truth": (n, 2), "g": (n, K, 2), "H": (n, K, 2, 2)}} per-term local fits, nats;
    ``cut``: the terms with scale cut number ``cut`` (of the file's "k_max") instead of the terms;
    ``band_weights``: one weight per band between the cuts (k ≤ k_max[0], k_max[0] < k ≤ k_max[1],
    …, above the last finite cut): the residual's power weighted band by band (a soft scale cut)."""
    with np.load(path, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    if cut is not None:
        d.update({k[:-1]: v[cut] for k, v in d.items() if k.endswith("__Lc")})
    if band_weights is not None:
        bw = np.asarray(band_weights, dtype=np.float64)
        for k in [k for k in d if k.endswith("__Lc")]:
            bands = np.diff(d[k], axis=0, prepend=np.zeros_like(d[k][:1]))  # (C, K, G): each band's part
            if bw.size != bands.shape[0]:
                raise ValueError(f"band_weights needs {bands.shape[0]} weights (bands between {d['k_max'].tolist()})")
            d[k[:-1]] = np.tensordot(bw, bands, axes=1)
    out = {}
    for split in ("calibration", "evaluation"):
        keys = sorted(k[:-3] for k in d if k.startswith(split + "__") and k.endswith("__L"))
        truth = np.array([d[k + "__truth"] for k in keys])
        gs, Hs = zip(*[quad_fit(d[k + "__theta"], d[k + "__L"], d[k + "__truth"]) for k in keys]) if keys else ((), ())
        out[split] = {"truth": truth, "g": np.array(gs), "H": np.array(Hs), "keys": keys}
    out["timesteps"], out["widths"] = d["timesteps"], d["widths"]
    out["k_max"] = d.get("k_max")
    return out


def local(split: dict, w: np.ndarray):
    """Per field: θ̂ − truth (n, 2), raw covariance H⁻¹ (n, 2, 2), raw Δχ²(truth) (n,), H positive definite (n,)."""
    g = np.einsum("k,nki->ni", w, split["g"])
    H = np.einsum("k,nkij->nij", w, split["H"])
    ok = (np.linalg.eigvalsh(H)[:, 0] > 0)
    Hs = np.where(ok[:, None, None], H, np.eye(2)[None] * np.abs(H).max())
    cov = np.linalg.inv(Hs)
    delta = -np.einsum("nij,nj->ni", cov, g)
    chi2 = np.einsum("ni,nij,nj->n", g, cov, g)
    return delta, cov, chi2, ok


def calibrate_local(cal: dict, w: np.ndarray) -> dict:
    delta, cov, chi2, ok = local(cal, w)
    tau = float(np.quantile(chi2, 0.6827) / 2.30)
    marg = [float(np.quantile(delta[:, i] ** 2 / cov[:, i, i], 0.6827)) for i in range(2)]
    return {"tau": tau, "marginal": marg, "bad_hessian": int((~ok).sum())}


def evaluate_local(ev: dict, w: np.ndarray, cal: dict) -> dict:
    delta, cov, chi2, ok = local(ev, w)
    out = {"tau": round(cal["tau"], 3), "tau_marginal": [round(t, 3) for t in cal["marginal"]],
           "bad_hessian": int((~ok).sum())}
    truth = ev["truth"]
    for i, name in enumerate(PARAM_NAMES):
        std = np.sqrt(cal["marginal"][i] * cov[:, i, i])
        z = delta[:, i] / std
        out[name] = {"coverage68": round(float(np.mean(np.abs(z) <= 1)), 3),
                     "rel_error": round(float(np.mean(np.abs(delta[:, i]) / truth[:, i])), 4),
                     "rms_error": round(float(np.sqrt(np.mean(delta[:, i] ** 2))), 4),
                     "bias": round(float(np.mean(delta[:, i])), 4),
                     "mean_std": round(float(np.mean(std)), 4),
                     "max_abs_z": round(float(np.abs(z).max()), 2)}
    out["coverage_2d_1sigma"] = round(float(np.mean(chi2 / cal["tau"] <= 2.30)), 3)
    return out


def score(cal: dict, w: np.ndarray) -> float:
    """What the fitted weights minimise on the calibration fields: Σ_i (rms error_i / prior width_i)²."""
    delta, _, _, ok = local(cal, w)
    return float(np.sum(np.mean(delta ** 2, axis=0) / np.array([0.4, 0.4]) ** 2)) + 10.0 * (~ok).sum()


def fit_weights(cal: dict, start: np.ndarray) -> np.ndarray:
    """Per-stratum weights (≥ 0, multiplying the widths) minimising ``score`` on the calibration fields."""
    from scipy.optimize import minimize

    K = start.size

    def f(logw):
        return score(cal, start * np.exp(logw))

    best = None
    for x0 in (np.zeros(K), -np.linspace(0, 3, K), np.linspace(-3, 0, K)):
        r = minimize(f, x0, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-3, "fatol": 1e-7})
        if best is None or r.fun < best.fun:
            best = r
    w = start * np.exp(best.x)
    return w / w.sum() * start.sum()


def analyse(args) -> dict:
    d = load(args.out)
    cal, ev = d["calibration"], d["evaluation"]
    ts, widths = d["timesteps"], d["widths"].astype(np.float64)
    K = ts.size
    report = {"n_calibration": len(cal["keys"]), "n_evaluation": len(ev["keys"]), "timesteps": ts.tolist(),
              "widths": widths.tolist(), "weightings": {}}

    def add(name, w):
        w = np.asarray(w, dtype=np.float64)
        c = calibrate_local(cal, w)
        report["weightings"][name] = {"weights": [round(float(v), 3) for v in w],
                                      "calibration_fields": evaluate_local(cal, w, c),
                                      "evaluation_fields": evaluate_local(ev, w, c)}

    add("vlb:8 (widths)", widths)
    for k in range(K):
        add(f"L{ts[k]} alone", np.where(np.arange(K) == k, widths, 0.0))
    for m in range(1, K - 1):
        add(f"without the lowest {m}", np.where(np.arange(K) >= m, widths, 0.0))
        add(f"without the highest {m}", np.where(np.arange(K) < K - m, widths, 0.0))
    for alpha in (-1.0, -0.5, 0.5):
        add(f"widths x t^{alpha}", widths * ts.astype(np.float64) ** alpha)
    add("fitted on calibration fields", fit_weights(cal, widths))
    if args.replicate is not None:
        report["noise_decomposition"] = decompose(d, load(args.replicate), widths)
    if d["k_max"] is not None:
        report["scale_cuts"] = {}
        for c, km in enumerate(d["k_max"]):
            dc = load(args.out, c)
            cal_c = calibrate_local(dc["calibration"], widths)
            row = {"calibration_fields": evaluate_local(dc["calibration"], widths, cal_c),
                   "evaluation_fields": evaluate_local(dc["evaluation"], widths, cal_c)}
            if args.replicate is not None:
                row["noise_decomposition"] = {split: v["local_temperature (omega_m, sigma_8)"]["vlb:8 (widths)"]
                                              for split, v in decompose(dc, load(args.replicate, c), widths).items()}
            report["scale_cuts"][f"k <= {km:g}"] = row
        # soft cuts: the residual's power down-weighted above 4 and 5.5 h/Mpc (needs those cuts)
        if {4.0, 5.5} <= set(d["k_max"].tolist()):
            report["band_weights"] = {}
            n_bands = d["k_max"].size
            for above_4, above_55 in ((1.0, 1.0), (1.0, 0.5), (1.0, 0.25), (0.7, 0.5), (0.5, 0.25), (1.0, 0.0)):
                bw = np.ones(n_bands)
                bw[list(d["k_max"]).index(5.5)] = above_4     # the band 4 < k <= 5.5
                bw[-1] = above_55                              # k > 5.5 (to the map's corner modes)
                db = load(args.out, band_weights=bw)
                cal_b = calibrate_local(db["calibration"], widths)
                report["band_weights"][f"4-5.5: {above_4:g}, >5.5: {above_55:g}"] = {
                    "calibration_fields": evaluate_local(db["calibration"], widths, cal_b),
                    "evaluation_fields": evaluate_local(db["evaluation"], widths, cal_b)}
    return report


def _sandwich_ratio(g: np.ndarray, H: np.ndarray) -> np.ndarray:
    """(2,): (H⁻¹ J H⁻¹)_ii / (H⁻¹)_ii with J = mean g gᵀ, H = mean Hessian: the temperature each
    marginal needs in the local approximation."""
    Hi = np.linalg.inv(H.mean(axis=0))
    J = np.einsum("ni,nj->ij", g, g) / len(g)
    return np.diag(Hi @ J @ Hi) / np.diag(Hi)


def decompose(d0: dict, d1: dict, widths: np.ndarray) -> dict:
    """How much of the score's spread is the Monte-Carlo noise of the terms' one draw.

    Two noise replicates of the same fields: the score difference g₀ − g₁ has covariance 2 J_MC,
    so J_MC = ½ mean (g₀ − g₁)(g₀ − g₁)ᵀ; the rest of J is the field-to-field part. Reported as the
    local temperatures (:func:`_sandwich_ratio`) of the total, the noise and the field part, per
    stratum and for the widths' sum, and for the mean of the two replicates (n_noise = 2).
    """
    out = {}
    for split in ("calibration", "evaluation"):
        a, b = d0[split], d1[split]
        common = sorted(set(a["keys"]) & set(b["keys"]))
        pos_a, pos_b = {k: i for i, k in enumerate(a["keys"])}, {k: i for i, k in enumerate(b["keys"])}
        ia, ib = [pos_a[k] for k in common], [pos_b[k] for k in common]
        ga, gb, Ha, Hb = a["g"][ia], b["g"][ib], a["H"][ia], b["H"][ib]
        rows = {}
        K = widths.size
        for name, w in [("vlb:8 (widths)", widths)] + [(f"stratum {k} alone", np.eye(K)[k] * widths[k]) for k in range(K)]:
            g0, g1 = np.einsum("k,nki->ni", w, ga), np.einsum("k,nki->ni", w, gb)
            H = np.einsum("k,nkij->nij", w, np.concatenate([Ha, Hb]))
            total = _sandwich_ratio(np.concatenate([g0, g1]), H)
            mc = _sandwich_ratio((g0 - g1) / np.sqrt(2), H)
            two = _sandwich_ratio((g0 + g1) / 2, H)
            share = np.diag(H.mean(axis=0)) / np.diag(np.einsum("k,nkij->ij", widths, np.concatenate([Ha, Hb])) / (2 * len(common)))
            rows[name] = {"information_share": np.round(share, 3).tolist(), "tau_total": np.round(total, 2).tolist(), "tau_noise": np.round(mc, 2).tolist(),
                          "tau_field": np.round(total - mc, 2).tolist(),
                          "tau_two_draws": np.round(two, 2).tolist()}
        out[split] = {"n_fields": len(common), "local_temperature (omega_m, sigma_8)": rows}
    return out


def plot(report: dict, path: Path) -> None:
    """Per stratum and for the sum: the local temperature split into Monte-Carlo noise and
    field-to-field scatter (evaluation fields), with each stratum's share of the curvature."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for split, hatch in (("calibration", "//"), ("evaluation", "")):
        rows = report["noise_decomposition"][split]["local_temperature (omega_m, sigma_8)"]
        names = list(rows)[1:] + list(rows)[:1]
        labels = [f"t={t}" for t in report["timesteps"]] + ["sum\n(vlb:8)"]
        x = np.arange(len(names)) + (-0.2 if split == "calibration" else 0.2)
        for i, (ax, pname) in enumerate(zip(axes, ("Ωₘ", "σ₈"))):
            noise = np.array([max(rows[n]["tau_noise"][i], 0) for n in names])
            field = np.array([max(rows[n]["tau_field"][i], 0) for n in names])
            ax.bar(x, noise, 0.38, color="#9ecae1", hatch=hatch, edgecolor="k", lw=0.4,
                   label=f"Monte-Carlo noise ({split})")
            ax.bar(x, field, 0.38, bottom=noise, color="#de2d26", hatch=hatch, edgecolor="k", lw=0.4,
                   label=f"field-to-field ({split})")
            if split == "evaluation":
                share = [rows[n]["information_share"][i] for n in names[:-1]]
                for xi, sh in zip(x[:-1], share):
                    ax.text(xi - 0.2, -0.35, f"{100 * sh:.0f}%", ha="center", va="top", fontsize=7, color="0.3")
                ax.axhline(1.0, color="k", lw=0.8, ls=":")
                ax.set_xticks(np.arange(len(names)), labels, fontsize=8)
                ax.set_title(f"{pname}: temperature each term would need (local, at the truth)", fontsize=9)
                ax.set_ylabel("τ (1 = honest)")
                ax.set_ylim(-1.1, None)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Where the bound's overconfidence lives: 50 calibration (hatched) and 50 held-out fields; "
                 "grey: share of the sum's curvature", fontsize=9)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--data", default="data/train")
    p.add_argument("--valid", default="assets/valid")
    p.add_argument("--out", type=Path, default=Path("runs/term_weights.npz"))
    p.add_argument("--step", type=float, nargs=2, default=[0.025, 0.025], help="stencil spacing (Ωₘ, σ₈)")
    p.add_argument("--noise-replicate", type=int, default=0,
                   help="noise seed field_seed + r, as bench_coverage.py; use another --out per replicate")
    p.add_argument("--k-max", type=float, nargs="*", default=None,
                   help="also keep each term with its residual cut to |k| <= K_MAX h/Mpc (scale cuts)")
    p.add_argument("--max-fields", type=int, default=None, help="first N fields of each split")
    p.add_argument("--analyse", action="store_true", help="analyse --out instead of measuring")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None, help="with --analyse --replicate: the figure (PNG)")
    p.add_argument("--replicate", type=Path, default=None,
                   help="with --analyse: the same measurement with another --noise-replicate, to split "
                        "the score's spread into Monte-Carlo noise and field-to-field scatter")
    args = p.parse_args(argv)
    if args.analyse:
        report = analyse(args)
        print(json.dumps(report, indent=1))
        if args.plot and "noise_decomposition" in report:
            plot(report, args.plot)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        measure(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
