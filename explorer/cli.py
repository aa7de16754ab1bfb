"""Command line: `explorer <command> ...` (also `python -m explorer <command> ...`).

Each subcommand lives next to the code it drives, in a module that defines
``add_arguments(parser)`` and ``run(args) -> int``; this file only registers them, and imports
a module when its command runs so that `explorer --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: command name -> (module, one-line help)
COMMANDS = {
    "simulate": ("explorer.sim.command", "run the particle-mesh stand-in simulator, write CAMELS CMD files"),
    "train": ("explorer.train_config", "train the conditional diffusion model on a CMD-format directory"),
    "sample": ("explorer.model.command", "sample maps at given (Omega_m, sigma_8)"),
    "evaluate": ("explorer.evaluate", "measure fidelity figures of a trained model (JSON)"),
    "infer": ("explorer.inference.command", "infer (Omega_m, sigma_8) from a field"),
    "app": ("explorer.ui.command", "serve the app on localhost (same as `panel serve explorer`)"),
    "attach-network": ("explorer.model.attach",
                       "make a smaller trained network the default for sampling (weights/small)"),
    "upgrade-weights": ("explorer.model.upgrade_command",
                        "convert a weights folder of the old layout (mean head inside the network) once"),
    "refit-mean-level": ("explorer.model.refit_command",
                         "refit a weights folder's map-mean model (its scatter may depend on theta) on its training maps"),
    "train-cnn": ("explorer.inference.cnn_train",
                  "train the CNN moment-network estimator on the diffusion model's training split"),
    "distill": ("explorer.model.distill_command",
                "distil the sampling network into a few-call sampler (progressive distillation, resumable)"),
    "fit-start": ("explorer.model.translation_command",
                  "fit the few-call sampler's translation-field start (sde-translation) on the training maps"),
    "calibrate": ("explorer.inference.calibrate_command",
                  "fit the P(k) baseline and the likelihood calibration, measure coverage (JSON)"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="explorer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = (argv or [None])[0]
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the module of the command that runs is imported
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # torch's OpenMP threads busy-wait by default; on a shared 2-core machine that made sampling
    # and training 2-6x slower (measured). Passive waits cost nothing when the machine is idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if not argv else 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"explorer {args.command}: error: {err}", file=sys.stderr)
        return 2
