"""Panel entry point: `panel serve explorer` (from the repository root) serves this file.

    panel serve explorer --address 127.0.0.1 --show
    panel serve explorer --args --reference /path/to/camels --weights /path/to/weights

Settings (environment variables EXPLORER_WEIGHTS, EXPLORER_REFERENCE, EXPLORER_ONEP,
EXPLORER_EXAMPLES, EXPLORER_DEVICE, EXPLORER_WORKERS, or the matching ``--args`` options) are
described in ``explorer/ui/context.py``. Resources (Bokeh, Panel and their extensions) are served by
the server itself, so the app works without internet access. This file only assembles the app.
"""

import panel as pn

from explorer.ui.app import TITLE, build_app

pn.extension("filedropper")

build_app().servable(title=TITLE)
