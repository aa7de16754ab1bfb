"""Server hooks of `panel serve explorer` (Bokeh runs this file of a directory app once per server).

When the server starts, a background thread loads the model and the reference sets for the app's
settings and samples once, so the first visitor does not wait for the import, the model load and
the first sampling's kernel set-up (:func:`explorer.ui.context.warm_up`). The server answers at
once meanwhile; a visitor who comes before it is done waits for the same load, not a second one.
"""

import sys
import threading

#: the arguments after ``--args`` (Bokeh sets sys.argv to them while it runs this file)
_ARGV = list(sys.argv[1:])


def on_server_loaded(server_context) -> None:
    threading.Thread(target=_warm_up, args=(_ARGV,), name="explorer-warm-up", daemon=True).start()


def _warm_up(argv: list[str]) -> None:
    from explorer.ui.context import Settings, warm_up

    try:
        warm_up(Settings.from_environment(argv))
    except Exception as err:  # the first session reports it on the page (missing weights, bad settings)
        print(f"explorer: warm-up at server start failed: {type(err).__name__}: {err}", file=sys.stderr)
