"""Panel entry point: `panel serve explorer` (run from the repository root) serves this file.

    panel serve explorer --address 127.0.0.1 --show         # opens the app in a browser
    panel serve explorer --warm                              # also build one session before serving
    panel serve explorer --args --reference /path/to/camels --weights /path/to/weights

Settings (environment variables EXPLORER_WEIGHTS, EXPLORER_REFERENCE, EXPLORER_ONEP,
EXPLORER_EXAMPLES, EXPLORER_DEVICE, EXPLORER_WORKERS, EXPLORER_SAMPLE_CACHE, EXPLORER_BF16,
EXPLORER_BATCH_MAPS, EXPLORER_TORCH_THREADS, or the matching
``--args`` options) are described in ``explorer/ui/context.py``. Bokeh, Panel and their extensions
are served by the server itself (no CDN), so the app works offline. `panel serve` listens on all
interfaces unless given ``--address 127.0.0.1``. The model loads on a background thread when the
server starts (``app_hooks.py``). This file only assembles the app.
"""

import panel as pn

from explorer.ui.app import TITLE, build_app

pn.extension("filedropper")

build_app().servable(title=TITLE)
