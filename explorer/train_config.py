"""The training run's settings (:class:`TrainConfig`) and `explorer train`'s command line.

    explorer train --data data/train --run-dir runs/main
    explorer train --help                       # every setting, with its meaning and default

Each setting is one field of :class:`TrainConfig` with its help text; the command line is built
from the fields, so the CLI, ``RUN/config.json`` and the weights' ``train_config`` use the same
names. A plain module (no torch): the training code (:mod:`explorer.train`) is imported only
when a run starts, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields


def _f(default, help_text: str):
    """A TrainConfig field with its command-line help."""
    return field(default=default, metadata={"help": help_text})


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored in RUN/config.json and in the weights)."""

    data: str = _f("data/train", "CMD directory of the training maps (stand-in or a CAMELS download)")
    maps: str | None = _f(None, "maps file name in --data (default: discover Maps_Mcdm_*_LH_*.npy)")
    params: str | None = _f(None, "parameters file name in --data (default: the one matching the maps)")
    run_dir: str = _f("runs/main", "run folder: checkpoint.pt, log.jsonl, best/ and last/ weights")
    resolution: int = _f(64, "working resolution in pixels (block-average of the linear density)")
    normalization: str = _f("percentile", "map scaling to [-1, 1]: 'minmax' (seed work) or 'percentile' "
                                          "(0.01/99.99 %)")
    extra_data: tuple = _f((), "CMD directories whose simulations all join the training split (e.g. "
                               "`explorer simulate --recipe corners`); validation and test stay --data's")
    normalization_from: str | None = _f(None, "weights folder whose normalisation (lo, hi) the maps get instead "
                                              "of one fitted to the training maps, so that the new network can "
                                              "be attached beside that folder's (explorer attach-network)")
    split_seed: int = _f(0, "seed of the train/validation/test split by simulation")
    val_fraction: float = _f(0.05, "fraction of simulations held out for validation")
    test_fraction: float = _f(0.05, "fraction of simulations held out for testing (never trained on)")
    channels: tuple = _f((32, 64, 96, 128), "U-Net block_out_channels, one per level")
    layers_per_block: int = _f(2, "ResNet blocks per U-Net level")
    attention_levels: int = _f(2, "self-attention at this many of the lowest resolutions")
    norm_groups: int = _f(32, "GroupNorm groups")
    prediction_type: str = _f("epsilon", "network target: 'epsilon' or 'v_prediction'")
    # The plain MSE gives each map's mean (its k = 0 mode) 1/(H·W) of the weight, and an under-trained
    # network then gets the mean level wrong by up to ±1.5 dex while its (mean-free) P(k) looks fine.
    # The loss becomes mean((ε̂−ε)²) + mean_weight · mean_over_batch(mean_pixels(ε̂−ε)²).
    mean_weight: float = _f(100.0, "extra loss weight on each map's mean noise (its k = 0 mode)")
    loss_weighting: str = _f("uniform", "loss weight per timestep: 'uniform' (Ho et al. 2020) or 'min-snr' "
                                        "(Hang et al. 2023: min(SNR, gamma)/SNR for epsilon)")
    min_snr_gamma: float = _f(5.0, "gamma of --loss-weighting min-snr")
    mean_head: bool = _f(True, "give each map's mean by a Gaussian map-mean prior instead of the U-Net "
                               "(a warm start from weights without it adds one fitted to the training maps)")
    batch_size: int = _f(16, "maps per optimiser step and process")
    lr: float = _f(2e-4, "AdamW peak learning rate")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    lr_decay: str = _f("constant", "after the warm-up: 'constant' or 'cosine' (a half cosine to 0 at --max-steps)")
    warmup: int = _f(200, "linear learning-rate warm-up, steps")
    grad_clip: float = _f(1.0, "gradient-norm clipping")
    ema_decay: float = _f(0.999, "EMA decay of the weights (with the usual (1+n)/(10+n) warm-up)")
    max_steps: int = _f(100_000, "stop after this many optimiser steps")
    max_minutes: float | None = _f(None, "stop (with a checkpoint) after this wall time, minutes")
    bf16: bool | None = _f(None, "bfloat16 autocast (default: only where faster: CUDA, CPUs with AMX/AVX512-BF16)")
    seed: int = _f(0, "seed of initialisation, batches, noise and augmentations")
    log_every: int = _f(25, "write a log.jsonl line every this many steps")
    ckpt_every: int = _f(200, "write RUN/checkpoint.pt every this many steps")
    val_every: int = _f(1000, "sample-quality validation every this many steps (0: never)")
    val_cosmologies: int = _f(3, "held-out simulations sampled at each validation")
    val_maps: int = _f(8, "generated maps per validation cosmology")
    val_method: str = _f("sde-dpmsolver++-karras", "sampler of the validation maps")
    val_steps: int = _f(30, "sampler steps of the validation maps")
    init: str | None = _f(None, "weights folder to start from (warm start, or a lower-resolution model)")
    workers: int = _f(0, "DataLoader worker processes")
    device: str = _f("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, ...")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field (``run_dir`` -> ``--run-dir``), with its help and default."""
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        value = getattr(defaults, f.name)
        name = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default {value})".replace("%", "%%")  # argparse formats help with %
        if isinstance(value, bool) or f.name == "bf16":
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=value, help=help_text)
        elif f.name == "extra_data":
            parser.add_argument(name, nargs="+", default=value, metavar="DIR", help=help_text)
        elif isinstance(value, tuple):
            parser.add_argument(name, type=int, nargs="+", default=value, metavar="N", help=help_text)
        else:
            kind = float if f.name == "max_minutes" else {int: int, float: float}.get(type(value), str)
            parser.add_argument(name, type=kind, default=value, help=help_text)


def run(args) -> int:
    """Train with the parsed options; rank 0 prints the run's record as one JSON line."""
    from explorer.train import train  # torch: only when a run starts

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    cfg.channels, cfg.extra_data = tuple(cfg.channels), tuple(cfg.extra_data)
    record = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(dict(record), default=str))
    return 0
