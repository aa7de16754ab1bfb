"""A row of HoloViews panes, one figure each: how the app shows strips of maps and small multiples.

A HoloViews ``Layout`` becomes one Bokeh ``GridPlot``; inside ``pn.Tabs`` next to other plots
its sub-figures were drawn squeezed (axes on top, labels clipped: Panel 1.9 / Bokeh 3.9), so
strips are separate figures in a ``pn.Row`` instead. ``PlotRow.objects`` keeps the current
HoloViews elements (for tests and for the standalone HTML download).
"""

from __future__ import annotations

import holoviews as hv
import panel as pn


class PlotRow(pn.viewable.Viewer):
    """Up to ``capacity`` figures side by side; ``update`` replaces them."""

    def __init__(self, capacity: int, **params):
        super().__init__(**params)
        self.panes = [pn.pane.HoloViews(None, linked_axes=False) for _ in range(capacity)]
        self.objects: list = []
        self._row = pn.Row()

    def update(self, objects) -> None:
        objects = list(objects or [])[:len(self.panes)]
        self.objects = objects
        for pane, obj in zip(self.panes, objects):
            pane.object = obj
        # unused panes leave the row (toggling ``visible`` on a HoloViews pane with a plot fails
        # in Panel 1.9 with a stylesheet TypeError); their old figures are dropped
        for pane in self.panes[len(objects):]:
            pane.object = None
        if len(self._row.objects) != len(objects):
            self._row.objects = self.panes[:len(objects)]

    @property
    def loading(self) -> bool:
        return self._row.loading

    @loading.setter
    def loading(self, value: bool) -> None:
        self._row.loading = value

    def layout(self, cols: int | None = None) -> hv.Layout | None:
        """The current figures as one HoloViews layout (None when empty)."""
        if not self.objects:
            return None
        return hv.Layout(self.objects).cols(cols or len(self.objects))

    def __panel__(self):
        return self._row
