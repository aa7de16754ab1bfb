"""The whole app: an intro and four tabs in a template, or a page saying why the model could not be loaded.

``build_app()`` is what ``explorer/main.py`` serves; settings come from the environment and
``--args`` (see ``explorer.ui.context``). Missing or corrupt weights stop the app at start: the
page (and the server log) show the ``WeightsError`` message, which says how to get or train them.
"""

from __future__ import annotations

import logging
import sys
import threading

import panel as pn

from .context import AppContext, Settings, get_context, release_memory
from .emulate import EmulateTab
from .explain import Intro
from .game import GameTab
from .infer import InferTab
from .response import ResponseTab

TITLE = "Cosmic-field explorer"
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
    if sampling is not emu.loaded:
        parts.append(f"likelihood from a {_network_words(emu.loaded)}")
    if data.get("suite"):
        sims = data.get("train_sims")  # a count (older folders: a list)
        sims = len(sims) if isinstance(sims, list) else sims
        parts.append(f"trained on {f'{sims:,} ' if sims else ''}{data['suite']} simulations at {emu.resolution}²")
    parts.append(f"running on {emu.loaded.device.type.upper()}")
    return " · ".join(parts)


class ExplorerApp(pn.viewable.Viewer):
    """Emulate, Parameter response, Infer and Guess-the-universe tabs sharing one model, under an intro."""

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
        # status line or progress tick repainted all ~17 figures of all tabs (measured in Chromium
        # on 2 cores: 7.5 s of browser work per game reveal, 2.0 s with the game alone).
        # The tabs are rendered once and hidden (not re-rendered per switch): a re-rendered tab
        # lost the drop box's file, and re-rendered models took their stylesheets from Panel's CDN.
        self.pages = {"Emulate": self.emulate, "Parameter response": self.response, "Infer": self.infer,
                      "Guess the universe": self.game}
        self._page_views = [pn.Column(tab, visible=i == 0, sizing_mode="stretch_width")
                            for i, tab in enumerate(self.pages.values())]
        self.tabs = pn.Tabs(*[(name, pn.Spacer(height=0)) for name in self.pages], sizing_mode="stretch_width")
        self.tabs.param.watch(self._on_tab, "active")

    async def _on_tab(self, event) -> None:
        for i, view in enumerate(self._page_views):
            view.visible = i == event.new
        if event.new == 1:
            await self.response.activate()
        elif event.new == 3:
            await self.game.activate()

    async def start(self) -> None:
        """First sampling, once the page is loaded."""
        await self.emulate.refresh()

    def stop(self) -> None:
        """Abandon this session's running jobs and free what they held (called when the session closes)."""
        for tab in (self.emulate, self.response, self.infer, self.game):
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
                self.tabs, *self._page_views]

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

    The model is loaded before the server starts (a missing model fails here, with its message);
    ``kwargs`` go to ``pn.serve`` (``threaded``, ``websocket_origin``, ...).
    """
    settings = settings or Settings.from_environment([])
    get_context(settings)  # raises WeightsError saying how to get weights
    pn.extension("filedropper")
    return pn.serve({"explorer": lambda: build_app(settings)}, port=port, address=address, show=show,
                    title=TITLE, **kwargs)
