"""Where the shipped weights and bundled assets are, whatever the working directory.

The weights folder is resolved the same way by the CLI, the app, the benchmarks and Python code:

    1. an explicit folder (``--weights DIR``, ``Emulator.from_folder(DIR)``, the app's ``--args --weights``),
    2. else the environment variable ``EXPLORER_WEIGHTS``,
    3. else the folder shipped with the package: ``weights/`` next to the ``explorer`` package
       (``<repo>/weights`` for a clone with an editable install).

The bundled reference data (``assets/``) is found next to the package in the same way. This module
imports nothing heavy, so the CLI can resolve paths before torch is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The folder that holds the ``explorer`` package, ``weights/`` and ``assets/`` (the repository root
#: of a clone; an editable install points here).
REPO = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = REPO / "weights"
SHIPPED_ASSETS = REPO / "assets"
WEIGHTS_ENV = "EXPLORER_WEIGHTS"


def resolve_weights(given: str | os.PathLike | None = None, environ=None) -> Path:
    """The weights folder: ``given``, else ``$EXPLORER_WEIGHTS``, else the shipped ``weights/``.

    Only chooses; :func:`explorer.model.load_model` checks the folder and its error names all three
    ways to choose one (:func:`how_to_get_weights`).
    """
    environ = os.environ if environ is None else environ
    if given not in (None, ""):
        return Path(given).expanduser()
    if environ.get(WEIGHTS_ENV):
        return Path(environ[WEIGHTS_ENV]).expanduser()
    return SHIPPED_WEIGHTS


def how_to_get_weights(environ=None) -> str:
    """The three ways a weights folder is chosen, for error messages."""
    environ = os.environ if environ is None else environ
    now = f" (now {environ[WEIGHTS_ENV]!r})" if environ.get(WEIGHTS_ENV) else " (not set)"
    return (f"Weights are taken from --weights DIR, else ${WEIGHTS_ENV}{now}, else the shipped folder "
            f"{SHIPPED_WEIGHTS} (restore it with `git -C {REPO} checkout -- weights/`); "
            "or train a model with `explorer train ...` and pass its output folder.")


def resolve_assets(given: str | os.PathLike | None = None) -> Path:
    """The bundled reference data: ``given``, else ``assets/`` next to the package."""
    folder = Path(given).expanduser() if given not in (None, "") else SHIPPED_ASSETS
    if not folder.is_dir():
        raise FileNotFoundError(f"assets folder {folder} does not exist (the bundled one is {SHIPPED_ASSETS}; "
                                "regenerate it with `explorer simulate --assets --out assets`)")
    return folder
