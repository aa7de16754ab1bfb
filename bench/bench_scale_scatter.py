"""Scale by scale: the generated maps' power and its map-to-map scatter against the simulations'.

    python bench/bench_scale_scatter.py --json runs/scale_scatter.json

For each of the 20 held-out cosmologies that have new-seed twins (``assets/valid``, ``assets/twins``),
15 maps are generated with the weights' default sampler (seed S + c, S in ``--seeds``) and compared
with the 15 simulated maps, in 6 bands of k: the ratio of the mean power, and the ratio of the
map-to-map scatter of log P (std over the 15 maps). Both are averaged over the cosmologies in log
(geometric mean). The new-seed twins against the same simulations are the floor: what 15 maps of
the true model give (≈ 1 up to the noise of 15 maps; that noise is why a ratio is averaged over 20
cosmologies). Prints one JSON row per seed and the summary: mean ± std over seeds, with the twins'
ratios beside them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from explorer.evaluate import _reference_sets, band_power_scatter, spread
from explorer.paths import resolve_assets, resolve_weights

BAND_EDGES = (0.25, 0.6, 1.2, 2.5, 5.0, 10.0, 20.0)  # h/Mpc; the 64² maps of 25 Mpc/h reach k ≈ 8


def band_ratios(maps: np.ndarray, truth: np.ndarray, box: float = 25.0) -> dict:
    """Per band: log of the mean-power ratio and of the log-P scatter ratio, maps vs truth (n, H, W) each."""
    from explorer.stats import power_spectrum

    pa, pb = power_spectrum(maps, box), power_spectrum(truth, box)
    k = pa.k
    out = {"power": [], "scatter": [], "bands": []}
    for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:]):
        sel = (k >= lo) & (k < hi)
        if not sel.any():
            continue
        la, lb = np.log(pa.power[:, sel].mean(axis=1)), np.log(pb.power[:, sel].mean(axis=1))
        out["bands"].append(f"{lo}-{min(hi, float(k.max()) + 0.01):.3g}")
        out["power"].append(float(la.mean() - lb.mean()))
        out["scatter"].append(float(np.log(band_power_scatter(pa.power, k, lo, hi)
                                           / band_power_scatter(pb.power, pb.k, lo, hi))))
    return out


def summarise(rows: list[dict]) -> dict:
    """Geometric mean over cosmologies of each band's ratios."""
    return {"bands": rows[0]["bands"],
            "power_ratio": np.round(np.exp(np.mean([r["power"] for r in rows], axis=0)), 3).tolist(),
            "scatter_ratio": np.round(np.exp(np.mean([r["scatter"] for r in rows], axis=0)), 3).tolist()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1000, 2000])
    p.add_argument("--n-cosmologies", type=int, default=20)
    p.add_argument("--network", default=None, help="small, full, ... (default: the weights' default)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    from explorer.model import Emulator

    weights = resolve_weights(args.weights)
    emu = Emulator.from_folder(weights, device="cpu")
    assets = resolve_assets()
    theta, truth = _reference_sets(assets, emu.resolution, "valid", args.n_cosmologies)
    _, twins = _reference_sets(assets, emu.resolution, "twins", args.n_cosmologies)
    method, steps, network = emu.resolve(None, None, args.network)
    start = time.perf_counter()
    twin = summarise([band_ratios(twins[c].astype(np.float64), truth[c].astype(np.float64)) for c in range(len(twins))])
    per_seed = {}
    for seed in args.seeds:
        rows = []
        for c, (om, s8) in enumerate(theta):
            maps = emu.sample(float(om), float(s8), n=truth.shape[1], seed=seed + c, method=method, steps=steps,
                              network=network)
            rows.append(band_ratios(np.asarray(maps, dtype=np.float64), truth[c].astype(np.float64)))
        per_seed[seed] = summarise(rows)
        print(json.dumps({"row": "seed", "seed": seed, **per_seed[seed]}), flush=True)
    bands = twin["bands"]
    report = {"weights": str(weights), "method": method, "steps": steps, "network": network,
              "n_cosmologies": int(len(theta)), "seeds": args.seeds, "bands_h_per_mpc": bands,
              "generated": {key: [spread([per_seed[s][key][b] for s in args.seeds]) for b in range(len(bands))]
                            for key in ("power_ratio", "scatter_ratio")},
              "new_seed_twins": {key: twin[key] for key in ("power_ratio", "scatter_ratio")},
              "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
