"""`explorer app`: serve the app from Python, bound to localhost unless told otherwise.

Same app as `panel serve explorer`; the model is loaded before the server starts, so missing or
corrupt weights stop it at once with a message saying how to get them.

    explorer app                                  # http://127.0.0.1:5006/explorer, opens a browser
    explorer app --port 5010 --no-show --reference /path/to/CAMELS/2D_maps
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--port", type=int, default=5006, help="port to serve on (default 5006)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="interface to bind (default localhost; 0.0.0.0 exposes it to the network)")
    parser.add_argument("--show", action="store_true", help="open a browser tab")
    for name in ("weights", "reference", "onep", "examples", "device", "workers", "sampler"):
        parser.add_argument(f"--{name}", default=None, help=f"as EXPLORER_{name.upper()}")


def run(args) -> int:
    from explorer.ui.app import serve
    from explorer.ui.context import Settings

    argv = [item for name in ("weights", "reference", "onep", "examples", "device", "workers", "sampler")
            if getattr(args, name) is not None for item in (f"--{name}", str(getattr(args, name)))]
    serve(Settings.from_environment(argv), port=args.port, address=args.address, show=args.show)
    return 0
