"""`explorer sample`: draw maps at given (Ωₘ, σ₈) from a weights folder.

    explorer sample --omega-m 0.3 --sigma-8 0.8 -n 4 --seed 1 --out maps.npy
    explorer sample --omega-m 0.3 --sigma-8 0.8 --ddpm --out paper_mode.npy      # all T steps
    explorer sample --omega-m 0.3 --sigma-8 0.8 --method sde-dpmsolver++ --steps 30 --out fast.npy
    explorer sample --omega-m 0.3 --sigma-8 0.8 --network full --out full.npy   # the 5.5M-parameter network

Writes ``maps.npy``: ``(N, H, W) float32`` log10 Σ [(M_⊙/h)/(Mpc/h)²], and a sidecar ``maps.json``
with the parameters, seed, method, steps, weights folder and the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .samplers import SAMPLERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `explorer sample`."""
    parser.add_argument("--omega-m", type=float, required=True, help="matter density Ωₘ")
    parser.add_argument("--sigma-8", type=float, required=True, help="fluctuation amplitude σ₈")
    parser.add_argument("-n", "--n", type=int, default=4, help="number of maps (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--steps", type=int, default=None, help="denoising steps (default: the weights' sampler)")
    how.add_argument("--ddpm", action="store_true", help="ancestral DDPM over all T steps (paper mode)")
    parser.add_argument("--method", choices=sorted(SAMPLERS), default=None,
                        help="sampler (default: the weights' sampler, else ddpm-strided)")
    parser.add_argument("--network", default=None,
                        help="network to sample with: small, full, or another sub-folder of the weights holding "
                             "one (e.g. fast, made by `explorer distill`) (default: the weights' default, 'small' "
                             "for the shipped weights; --ddpm paper mode uses 'full', the network inference uses)")
    parser.add_argument("--weights", type=Path, default=None, help="weights folder (default: $EXPLORER_WEIGHTS, else the shipped weights/ next to the package)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16 autocast (default: only where it is faster: CUDA, CPUs with AMX/AVX512-BF16)")
    parser.add_argument("--out", type=Path, required=True, help="output .npy file; a .json sidecar is written next to it")


def run(args: argparse.Namespace) -> int:
    """Sample, write ``--out`` and its JSON sidecar; print one summary line. Returns 0."""
    from explorer.paths import resolve_weights

    from .sampling import Emulator  # torch/diffusers only when the command runs

    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out}")
    if not out.parent.is_dir():
        raise ValueError(f"--out: directory {out.parent} does not exist")
    method, steps = args.method, args.steps
    if args.ddpm:
        if method not in (None, "ddpm"):
            raise ValueError(f"--ddpm conflicts with --method {method}")
        method = "ddpm"

    weights = resolve_weights(args.weights)
    emulator = Emulator.from_folder(weights, device=args.device, bf16=args.bf16)
    network = args.network or ("full" if args.ddpm else emulator.default_network)
    method, steps, network = emulator.resolve(method, steps, network)
    if method == "ddpm":
        steps = emulator.loaded.schedule.T
    start = time.perf_counter()
    maps = emulator.sample(args.omega_m, args.sigma_8, n=args.n, seed=args.seed, method=method, steps=steps,
                           network=network)
    seconds = time.perf_counter() - start

    np.save(out, maps)
    sidecar = {
        "omega_m": args.omega_m, "sigma_8": args.sigma_8, "n": int(maps.shape[0]), "seed": args.seed,
        "method": method, "steps": int(steps), "network": network, "weights": str(weights.resolve()),
        "device": str(emulator.loaded.device), "bf16": args.bf16, "seconds": round(seconds, 3),
        "shape": list(maps.shape), "units": "log10 Sigma_cdm [(Msun/h)/(Mpc/h)^2]",
    }
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {out} ({maps.shape[0]} maps {maps.shape[1]}x{maps.shape[2]}, {method}, {steps} steps, {network} network, "
          f"{seconds:.1f} s)", file=sys.stdout)
    return 0
