"""What the app (:mod:`.app`) asks of each of its tabs."""

from __future__ import annotations

import panel as pn
import param


class Tab(pn.viewable.Viewer):
    """A tab: it follows the app's presenter mode and says when it has something to print."""

    presenter = param.Boolean(default=False, doc="Presenter mode (set by the app): the secondary plots hidden.")
    ready = param.Boolean(default=False, doc="A result is shown: a handout can be printed (``handout``).")

    def handout(self, model: str):
        """(file stem, matplotlib Figure) of the result shown, by :mod:`.handout` (run on a worker);
        ``model``: the network, in words. Called only when ``ready``."""
        raise NotImplementedError

    def stop(self) -> None:
        """Abandon running jobs (the session closed)."""
