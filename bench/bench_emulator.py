"""Emulator figures for a weights folder; prints JSON (and optional plots).

    python bench/bench_emulator.py --skip-timing --configs sde-dpmsolver++-karras-gauss:30@small \
        --seeds 0 1000 2000 --json runs/emulator.json          # the README's headline fidelity

Every quality figure is measured for each sampler seed in ``--seeds`` (cosmology c is generated with
seed S + c) on all 20 held-out cosmologies that have new-seed twins, and reported per seed, per
cosmology (one JSON line each, ``"row": "seed"`` / ``"row": "cosmology"``) and as mean and spread
over the seeds with the worst cosmology named (``explorer.evaluate.over_seeds``).

For each sampler configuration (method, steps): wall time for 4 maps at the model's resolution
(median of --repeats runs, all configurations timed side by side in this one run), and, unless
--timing-only, fidelity on held-out cosmologies (explorer.evaluate.fidelity: χ²_r(generated) against
the leave-one-out floor and against new-seed simulations), pixel σ ratio, mean log10 offset and
pixel-histogram agreement, and statistics a power spectrum is blind to (pixel skewness and kurtosis,
regions above 1σ and 2σ: explorer.evaluate.non_gaussianity) for generated and simulated maps; then
the 1P response of the default sampler against assets/onep.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from explorer.evaluate import (_reference_sets, fidelity, histogram_agreement, non_gaussianity, one_p_response,
                               over_seeds, spread)
from explorer.model import Emulator, bf16_helps
from explorer.paths import SHIPPED_ASSETS, resolve_weights

CONFIGS = [(m, s, None) for m, s in [
    ("ddpm-strided", 25), ("ddpm-strided", 50), ("ddpm-strided", 100), ("ddpm-strided", 250),
    ("sde-dpmsolver++-karras-gauss", 30), ("sde-dpmsolver++-karras-gauss", 15),
    ("sde-dpmsolver++-karras", 30), ("sde-dpmsolver++-karras", 15),
    ("ddim", 50), ("dpmsolver++", 20), ("sde-dpmsolver++", 30)]] + [("ddpm", 1000, "full")]


def parse_config(text):
    """"method:steps" or "method:steps@network" (network "small" or "full"; default: the weights' default)."""
    text, _, network = text.partition("@")
    method, steps = text.split(":")
    return method, int(steps), network or None


def label(method, steps, network=None):
    return f"{method}:{steps}" + (f"@{network}" if network else "")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped one)")
    p.add_argument("--assets", default=str(SHIPPED_ASSETS), help="bundled reference data (valid/, twins/, onep/)")
    p.add_argument("--configs", nargs="+", type=parse_config, default=None,
                   help="method:steps[@network] ... (default: a ladder from 25-step strided DDPM to 1000-step DDPM)")
    p.add_argument("--n-cosmologies", type=int, default=20,
                   help="held-out cosmologies (default 20: all that have new-seed twins in assets/twins)")
    p.add_argument("--first-cosmology", type=int, default=0,
                   help="skip the first held-out cosmologies (split a long run, e.g. 1000-step DDPM, in parts; "
                        "cosmology c is generated with seed c either way, so parts add up to the whole run)")
    p.add_argument("--n-generated", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1000, 2000],
                   help="sampler seeds: cosmology c is generated with seed S + c for each S (default 0 1000 2000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timing-only", action="store_true")
    p.add_argument("--skip-fidelity", action="store_true", help="timings and the 1P response only")
    p.add_argument("--skip-timing", action="store_true", help="no wall-time measurement (fidelity runs in parts)")
    p.add_argument("--fidelity-configs", nargs="+", type=parse_config, default=None,
                   help="configurations whose fidelity is measured (default: all timed ones but ddpm:1000)")
    p.add_argument("--onep-config", type=parse_config, default=None,
                   help="sampler of the 1P response (default: the weights' default sampler)")
    p.add_argument("--onep-generated", type=int, default=15, help="generated maps per 1P cosmology")
    p.add_argument("--skip-onep", action="store_true", help="no 1P response")
    p.add_argument("--plot-dir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "both"], default="auto",
                   help="the network's precision: auto (bf16 autocast only where the CPU has AMX/AVX512-BF16, "
                        "as the app and `explorer sample` do), fp32, bf16, or both side by side "
                        "(each configuration's label gets /fp32 or /bf16)")
    args = p.parse_args()
    precisions = {"auto": [None], "fp32": [False], "bf16": [True], "both": [False, True]}[args.precision]
    emulators = {bf16: Emulator.from_folder(args.weights, bf16=bf16) for bf16 in precisions}
    emu = emulators[precisions[0]]
    suffix = {None: "", False: "/fp32", True: "/bf16"} if args.precision == "both" else {precisions[0]: ""}
    configs = [(*c, bf16) for c in (args.configs or CONFIGS) for bf16 in precisions]
    out = {"weights": str(resolve_weights(args.weights)), "seeds": args.seeds, "threads": torch.get_num_threads(),
           "precision": args.precision, "bf16_auto_on": bf16_helps("cpu"), "timing_4_maps": {}, "fidelity": {}}

    if not args.skip_timing:  # warm-up: the first calls of a network in a process build its kernels
        for network, bf16 in {(c[2], c[3]) for c in configs}:
            emulators[bf16].sample(0.3, 0.8, n=4, seed=0, method="ddpm-strided", steps=3, network=network)
    for method, steps, network, bf16 in ([] if args.skip_timing else configs):  # side by side in one run
        times = []
        for r in range(args.repeats if steps <= 250 else 1):
            start = time.perf_counter()
            emulators[bf16].sample(0.3, 0.8, n=4, seed=r, method=method, steps=steps, network=network)
            times.append(time.perf_counter() - start)
        out["timing_4_maps"][label(method, steps, network) + suffix[bf16]] = float(np.median(times))
    print(json.dumps(out["timing_4_maps"]), flush=True)
    if args.timing_only:
        return _finish(out, args)

    first, last = args.first_cosmology, args.first_cosmology + args.n_cosmologies
    theta, truth = (a[first:] for a in _reference_sets(args.assets, emu.resolution, "valid", last))
    _, twins = _reference_sets(args.assets, emu.resolution, "twins", last)
    twins = twins[first:]
    if not args.skip_fidelity:
        out["non_gaussianity_simulations"] = non_gaussianity(truth.reshape(-1, *truth.shape[-2:]))
    fidelity_configs = ([(*c, bf16) for c in args.fidelity_configs for bf16 in precisions] if args.fidelity_configs
                        else [c for c in configs if c[:2] != ("ddpm", 1000)])
    for method, steps, network, bf16 in ([] if args.skip_fidelity else fidelity_configs):
        name = label(method, steps, network) + suffix[bf16]
        results, generated = {}, []

        def emulate(om, s8, n, seed, emu=emulators[bf16]):
            maps = emu.sample(om, s8, n=n, seed=seed, method=method, steps=steps, network=network)
            generated.append(maps)
            return maps

        for seed in args.seeds:
            results[seed] = fidelity(emulate, theta, truth, twins, n_generated=args.n_generated, seed=seed + first)
            row = {k: v for k, v in results[seed].to_dict().items() if k != "per_cosmology"}
            print(json.dumps({"row": "seed", "config": name, "seed": seed, **row}), flush=True)
        summary = over_seeds(results)
        for row in summary["per_cosmology"]:
            print(json.dumps({"row": "cosmology", "config": name, **row}), flush=True)
        gen = np.concatenate(generated)
        f = {"summary": summary["summary"], "worst": summary["worst"],
             "histogram": histogram_agreement(gen, truth.reshape(-1, *truth.shape[-2:])),
             "non_gaussianity": non_gaussianity(gen),  # what P(k) cannot see; compare "simulations"
             "n_cosmologies": len(theta), "first_cosmology": first, "seeds": args.seeds,
             "per_cosmology": summary["per_cosmology"]}
        print(json.dumps({"row": "summary", "config": name, "summary": f["summary"], "worst": f["worst"]}), flush=True)
        out["fidelity"][name] = f

    if args.skip_onep:
        return _finish(out, args)
    onep_theta, onep_maps = _reference_sets(args.assets, emu.resolution, "onep", 10)
    method, steps, network = args.onep_config or (emu.default_method, emu.default_steps, None)
    responses = {}
    for seed in args.seeds:  # the same seed at every θ of one response, as the 1P sets hold their IC seed fixed
        responses[seed] = one_p_response(
            lambda om, s8, n, sd: emu.sample(om, s8, n=n, seed=sd, method=method, steps=steps, network=network),
            onep_theta, onep_maps, n_generated=args.onep_generated, seed=seed)
        print(json.dumps({"row": "one_p", "seed": seed, **responses[seed].summary()}), flush=True)
    agreement = {k: [responses[s].agreement[k] for s in args.seeds] for k in ("omega_m", "sigma_8")}
    out["one_p"] = {"sampler": label(method, steps, network or emu.default_network), "n_generated": args.onep_generated,
                    "seeds": args.seeds, "agreement_per_seed": agreement,
                    "agreement": {k: spread(v) for k, v in agreement.items()}}
    resp = responses[args.seeds[0]]
    if args.plot_dir:
        _plot_response(resp, args.plot_dir)
    return _finish(out, args)


def _finish(out, args):
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def _plot_response(resp, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, name, label in zip(axes, ("omega_m", "sigma_8"), ("Ωₘ", "σ₈")):
        values = resp.values[name]
        colors = plt.cm.viridis(np.linspace(0, 1, len(values)))
        for i, (v, c) in enumerate(zip(values, colors)):
            ref, gen = resp.reference[name], resp.generated[name]
            ax.plot(resp.k, ref.mean[i], color=c, lw=2, label=f"{label} = {v:.2f}")
            ax.fill_between(resp.k, ref.mean[i] - ref.std[i], ref.mean[i] + ref.std[i], color=c, alpha=0.15)
            ax.plot(resp.k, gen.mean[i], color=c, lw=1.5, ls="--")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no overlapping minor labels
        ax.set_xticks([0.3, 0.5, 1, 2, 3, 5, 8], ["0.3", "0.5", "1", "2", "3", "5", "8"])
        ax.set_xlabel("k [h/Mpc]")
        ax.set_ylabel("P(k; θ) / P(k; θ_fid)")
        ax.set_title(f"1P response to {label}: stand-in (solid) vs emulator (dashed); "
                     f"agreement {resp.agreement[name]:.2f}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "one_p_response.png", dpi=110)


if __name__ == "__main__":
    main()
