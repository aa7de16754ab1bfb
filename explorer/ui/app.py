"""The whole app: an intro and four tabs in a template, or a page saying why the model could not be loaded.

``build_app()`` is what ``explorer/main.py`` serves; settings come from the environment and
``--args`` (see ``explorer.ui.context``). Missing or corrupt weights stop the app at start: the
page (and the server log) show the ``WeightsError`` message, which says how to get or train them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading

import panel as pn
import param

from . import compute
from .context import AppContext, Settings, get_context, release_memory, submit_to_worker, warm_up
from .emulate import EmulateTab
from .explain import Intro
from .game import GameTab
from .infer import InferTab
from .panes import batch_updates, live_plots
from .response import ResponseTab

TITLE = "Cosmic-field explorer"
#: presenter mode: the page's font sizes (the root's, for widgets; Bokeh's, for texts) and the plots' scale
PRESENTER_FONT, PRESENTER_TEXT, PRESENTER_FONTSCALE = "130%", "16px", 1.4
#: set in the browser, on this session's page only (a CSS variable reaches into every shadow root)
FONT_JS = f"""const root = document.documentElement.style;
root.fontSize = cb_obj.active ? '{PRESENTER_FONT}' : '';
if (cb_obj.active) root.setProperty('--bokeh-font-size', '{PRESENTER_TEXT}');
else root.removeProperty('--bokeh-font-size');"""
log = logging.getLogger(__name__)


def error_page(message: str) -> pn.viewable.Viewable:
    """The page served instead of the app when it cannot start."""
    return pn.Column(
        f"# {TITLE}",
        pn.pane.Alert(f"**The app cannot start.** {message}", alert_type="danger", sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )


def _network_words(loaded) -> str:
    """'1.1 M-parameter network, 2,000 training steps' of one loaded network."""
    n = sum(p.numel() for p in loaded.network.parameters())
    steps = (loaded.metadata.get("training") or {}).get("steps")
    return f"{n / 1e6:.1f} M-parameter network" + (f" ({int(steps):,} training steps)" if steps else "")


def _model_summary(ctx: AppContext) -> str:
    """The header line: which network makes the maps and which one the likelihood, in words."""
    emu = ctx.emulator
    networks = getattr(emu, "networks", {"full": emu.loaded})
    sampling = networks.get(getattr(emu, "default_network", "full"), emu.loaded)
    data = emu.loaded.metadata.get("data") or {}
    parts = [f"Maps from a {_network_words(sampling)}"]
    first = compute.first_likelihood_network(emu)
    if first != "full":
        parts.append(f"likelihood from {'that' if networks.get(first) is sampling else 'a smaller'} network first, "
                     f"refined by a {_network_words(emu.loaded)}")
    elif sampling is not emu.loaded:
        parts.append(f"likelihood from a {_network_words(emu.loaded)}")
    if data.get("suite"):
        sims = data.get("train_sims")  # a count (older folders: a list)
        sims = len(sims) if isinstance(sims, list) else sims
        parts.append(f"trained on {f'{sims:,} ' if sims else ''}{data['suite']} simulations at {emu.resolution}²")
    parts.append(f"running on {emu.loaded.device.type.upper()}")
    return " · ".join(parts)


class ExplorerApp(pn.viewable.Viewer):
    """Emulate, Parameter response, Infer and Guess-the-universe tabs sharing one model, under an intro.

    Above the tabs: a presenter switch (larger text and plot fonts, the secondary plots hidden,
    for a projector) and a one-click handout of the shown tab (one A4 page, PDF or PNG, drawn by
    :mod:`.handout` on a worker).
    """

    presenter = param.Boolean(default=False, label="Presenter mode")
    handout_format = param.Selector(default="pdf", objects={"PDF": "pdf", "PNG": "png"}, label="handout as")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self.emulate = EmulateTab(context)
        self.response = ResponseTab(context)
        self.infer = InferTab(context)
        self.game = GameTab(context)
        self.intro = Intro()
        # Each tab is its own Bokeh root under a tab bar of empty tabs: Bokeh lays out and repaints
        # a whole root after any change inside it, so with the four tabs in one pn.Tabs every
        # status line or progress tick repainted all ~20 figures of all tabs (measured in Chromium
        # on 2 cores: 7.5 s of browser work per game reveal, 2.0 s with the game alone).
        # The tabs are rendered once and hidden (not re-rendered per switch): a re-rendered tab
        # lost the drop box's file, and re-rendered models took their stylesheets from Panel's CDN.
        self.pages = {"Emulate": self.emulate, "Parameter response": self.response, "Infer": self.infer,
                      "Guess the universe": self.game}
        self._page_views = [pn.Column(tab, visible=i == 0, sizing_mode="stretch_width")
                            for i, tab in enumerate(self.pages.values())]
        self.tabs = pn.Tabs(*[(name, pn.Spacer(height=0)) for name in self.pages], sizing_mode="stretch_width")
        self.tabs.param.watch(self._on_tab, "active")
        self._handout_button = pn.widgets.FileDownload(
            callback=self._handout, filename="handout.pdf", label="Handout of this tab", color="primary",
            width=180, disabled=True,
            description="One A4 page of the tab shown: its maps, plots, parameters and what they mean.")
        self.param.watch(self._on_presenter, "presenter")
        self.tabs.param.watch(self._sync_handout, "active")
        for tab in self.pages.values():
            tab.param.watch(self._sync_handout, "ready")

    async def _on_tab(self, event) -> None:
        for i, view in enumerate(self._page_views):
            view.visible = i == event.new
        self._scale_fonts(self.shown)
        if event.new == 1:
            await self.response.activate()
        elif event.new == 3:
            await self.game.activate()

    @property
    def shown(self):
        """The tab on screen."""
        return list(self.pages.values())[self.tabs.active]

    def _on_presenter(self, event) -> None:
        if event.new:
            self.intro.dismissed = True  # the room is for the maps
        for tab in self.pages.values():
            tab.presenter = event.new
        self._scale_fonts(self.shown)  # the other tabs' figures when they are shown (each rebuild costs)

    def _scale_fonts(self, tab) -> None:
        """Redraw ``tab``'s figures at the presenter's font scale (or back at 1) where they differ."""
        scale = PRESENTER_FONTSCALE if self.presenter else 1.0
        plots = [plot for plot in live_plots(tab) if plot.fontscale != scale]
        if plots:
            with batch_updates():  # the figures rebuilt: one model-graph walk, one message
                for plot in plots:
                    plot.set_fontscale(scale)

    def _sync_handout(self, *_events) -> None:
        self._handout_button.disabled = not self.shown.ready

    async def _handout(self) -> io.BytesIO:
        """The shown tab's handout page in the chosen format (drawn on a worker); names the file."""
        from . import handout

        tab, fmt = self.shown, self.handout_format
        summary = _model_summary(self.context)

        def draw():
            stem, fig = tab.handout(summary)
            return stem, handout.render(fig, fmt)

        stem, buf = await asyncio.wrap_future(submit_to_worker(draw))
        self._handout_button.filename = f"{stem}.{fmt}"
        return buf

    def toolbar(self) -> pn.Row:
        """Presenter switch and handout button, above the tab bar."""
        switch = pn.widgets.Toggle.from_param(self.param.presenter, width=170)  # large text, fewer plots
        switch.jscallback(value=FONT_JS)
        return pn.Row(switch, pn.widgets.RadioButtonGroup.from_param(self.param.handout_format, width=110),
                      self._handout_button, sizing_mode="stretch_width")

    async def start(self) -> None:
        """First sampling, once the page is loaded."""
        await self.emulate.refresh()

    def stop(self) -> None:
        """Abandon this session's running jobs and free what they held (called when the session closes)."""
        for tab in self.pages.values():
            tab.stop()
        threading.Timer(2.0, release_memory).start()  # once the closed session's objects are gone

    def roots(self) -> list:
        """The page from top to bottom: intro, model line, warnings, tab bar, the four tabs (one shown).

        ``build_app`` puts each in the template as its own root (see ``__init__``)."""
        notes = [n for key, n in self.context.notes.items() if key != "onep"]
        return [self.intro,
                pn.pane.Markdown(_model_summary(self.context), styles={"font-size": "0.85em", "color": "#555"},
                                 sizing_mode="stretch_width"),
                *[pn.pane.Alert(n, alert_type="warning", sizing_mode="stretch_width") for n in notes],
                self.toolbar(), self.tabs, *self._page_views]

    def __panel__(self):
        return pn.Column(*self.roots(), sizing_mode="stretch_width")


def build_app(settings: Settings | None = None) -> pn.viewable.Viewable:
    """The app for one session (the model is shared by the process), or the error page."""
    from explorer.model import WeightsError

    try:
        context = get_context(settings or Settings.from_environment(sys.argv[1:]))
    except (WeightsError, ValueError) as err:
        log.error("explorer app cannot start: %s", err)
        print(f"explorer app: {err}", file=sys.stderr)
        return error_page(str(err))
    app = ExplorerApp(context)
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        app.emulate.prefetch()  # sample while the page loads; shown once it is connected
        pn.state.onload(app.start)
        pn.state.on_session_destroyed(lambda _ctx: app.stop())
    template = pn.template.BootstrapTemplate(title=TITLE, header_background="#2b3a55")
    template.main.extend(app.roots())
    return template


def serve(settings: Settings | None = None, *, port: int = 5006, address: str = "127.0.0.1",
          show: bool = True, **kwargs):
    """Serve the app from Python (e.g. for an `explorer app` command): localhost unless told otherwise.

    The model is loaded before the server starts (a missing model fails here, with its message) and
    warmed up in the background as `panel serve explorer` does (:func:`~explorer.ui.context.warm_up`: the
    kernels' set-up, and with ``--sampler auto`` the timing that picks the sliders' sampler);
    ``kwargs`` go to ``pn.serve`` (``threaded``, ``websocket_origin``, ...).
    """
    settings = settings or Settings.from_environment([])
    get_context(settings)  # raises WeightsError saying how to get weights
    threading.Thread(target=warm_up, args=(settings,), name="explorer-warm-up", daemon=True).start()
    pn.extension("filedropper")
    return pn.serve({"explorer": lambda: build_app(settings)}, port=port, address=address, show=show,
                    title=TITLE, **kwargs)
