"""Infer tab: drop a field (or pick a bundled example) and get −2ΔlnL̂ over (Ωₘ, σ₈).

Every bad file gets the specific message of ``explorer.data.read_field`` / ``prepare_field`` in
the page, and nothing else changes (DESIGN.md section 8). The grid runs on the worker pool with a
progress bar (``jobs.start_job`` / ``jobs.run_job``); **Cancel** (or a newer drop) stops it between
network batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.inference.posterior import grid_of, grid_text
from explorer.params import PARAM_NAMES

from . import compute, plots, posterior
from .context import AppContext, release_memory
from .explain import glossary_card
from .jobs import USER_ERRORS, Job, JobSlot, Superseded, run_job, start_job
from .panes import DIMMED, SHOWN, LivePlot, batch_updates, progress_bar, show_progress
from .tab import Tab

log = logging.getLogger(__name__)

MAX_MB = 64
MAX_BYTES = MAX_MB * 2**20


class InferTab(Tab):
    """Parameter inference from one field with the diffusion model (and the P(k) baseline)."""

    kind = param.Selector(default="auto", objects={"auto-detect": "auto", "density Σ": "density",
                                                   "log10 Σ": "log10"}, label="the file holds")
    terms = param.Selector(default=compute.DEFAULT_TERMS, objects=compute.TERM_CHOICES, label="likelihood terms")
    network = param.Selector(default="full", objects={"full network (the default)": "full"}, label="likelihood network")
    grid = param.Selector(default=compute.PRECISE_GRID, objects=compute.GRID_CHOICES, label="grid over the prior")
    refine = param.Boolean(default=True, label="then refine with the full network",
                           doc="After the small network's fast result, the full network's precise one replaces it "
                               "in place (only with the fast preset).")
    calibrated = param.Boolean(default=True, label="calibrated error bars")
    per_timestep = param.Boolean(default=False, label="per-timestep contours (1σ of each term)")
    show_baseline = param.Boolean(default=True, label="show the baselines (P(k) contours, CNN point)")
    example = param.Selector(default=None, objects=[], allow_None=True, label="bundled example")
    run_example = param.Event(label="Infer from the example")
    cancel = param.Event(label="Cancel")
    busy = param.Boolean(default=False, doc="Inference runs (progress bar, Cancel enabled).")
    waiting = param.Boolean(default=False, doc="Nothing of the running inference is drawn yet (the posterior "
                                               "pane shows it is loading).")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        names = {e.name: e for e in context.examples}
        self._examples = names
        self.param.example.objects = list(names)
        if names:
            self.example = next(iter(names))
        networks = compute.likelihood_networks(context.emulator)
        self.param.network.objects = networks
        if params.get("network") not in networks.values():  # the small network's fast preset where it is calibrated
            self.network = compute.first_likelihood_network(context.emulator)
        self.param.update(**{k: v for k, v in compute.network_preset(self.network).items() if k not in params})
        self.result: compute.Inference | None = None
        self.dropper = pn.widgets.FileDropper(multiple=False, max_file_size=f"{MAX_MB}MB", height=120,
                                              sizing_mode="stretch_width")
        self._progress = progress_bar()
        self._status = pn.pane.Markdown("Drop a field or pick an example.", sizing_mode="stretch_width")
        self._error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._slot = JobSlot(on_progress=lambda f, _t: setattr(self._progress, "value", int(100 * f)))
        self.field_pane = LivePlot()
        self.posterior_pane = LivePlot()
        self.posterior_pane.pane.loading = self.param.waiting
        self.marginal_panes = (LivePlot(), LivePlot())
        self.estimates = pn.pane.Markdown("", sizing_mode="stretch_width")
        # marginals and estimates: dimmed while the coarse first look is shown (they are the last result's)
        self._details = pn.Column(pn.Row(*self.marginal_panes), self.estimates, styles=SHOWN,
                                  sizing_mode="stretch_width")
        self._cancel_button = pn.widgets.Button.from_param(self.param.cancel, color="warning",
                                                           disabled=self.param.busy.rx.not_())
        self._dropped: dict[str, bytes | str] = {}  # the dropper's files already seen
        self._refining = False  # the full network is refining the fast result shown
        self._json = pn.widgets.FileDownload(callback=self._result_json, filename="posterior.json",
                                             label="Download result (.json)", disabled=True)
        self._html = pn.widgets.FileDownload(callback=self._figure_html, filename="posterior.html",
                                             label="Download plots (.html)", disabled=True)
        self.dropper.param.watch(self._on_drop, "value")
        self.param.watch(self._on_example, "run_example")
        self.param.watch(self._on_cancel, "cancel")
        self.param.watch(self._redraw, ["show_baseline", "per_timestep"])
        self.param.watch(self._on_network, "network")

    def stop(self) -> None:
        """Abandon running jobs (the session closed): they stop at their next progress callback."""
        self._slot.cancel()

    def controls(self) -> pn.Column:
        return pn.Column(
            "### Field",
            self.dropper,
            pn.pane.Markdown(f".npy, .npz (one array) or FITS; one square 2D map, up to **{MAX_MB} MB**; "
                             f"a density Σ or its log10, block-averaged to the model's "
                             f"{self.context.emulator.resolution}².", styles={"font-size": "0.85em"}),
            pn.widgets.Select.from_param(self.param.example, disabled=not self._examples),
            pn.widgets.Button.from_param(self.param.run_example, color="primary", disabled=not self._examples),
            pn.widgets.Select.from_param(self.param.kind),
            pn.widgets.Select.from_param(self.param.network, disabled=len(self.param.network.objects) < 2),
            pn.widgets.Checkbox.from_param(self.param.refine, disabled=len(self.param.network.objects) < 2),
            pn.widgets.Select.from_param(self.param.terms),
            pn.widgets.Select.from_param(self.param.grid),
            pn.widgets.Checkbox.from_param(self.param.calibrated),
            pn.widgets.Checkbox.from_param(self.param.per_timestep),
            pn.widgets.Checkbox.from_param(self.param.show_baseline, disabled=self.context.pk_baseline is None and self.context.cnn is None),
            self._cancel_button, self._json, self._html,
            width=300,
        )

    def __panel__(self):
        return pn.Row(self.controls(), pn.Column(
            pn.Row(self._status, self._progress, sizing_mode="stretch_width"),
            self._error,
            pn.Row(self.posterior_pane, self.field_pane),
            pn.pane.Markdown("Contours: **white** the diffusion model, **green** the P(k) baseline, thin coloured "
                             "lines the 1σ contour of each VLB term; solid, dashed, dotted = 1σ, 2σ, 3σ "
                             "(Δχ² = 2.30, 6.18, 11.83). ★ truth, ✕ maximum, **purple** ● the CNN estimator ± 1σ. "
                             "The grey box is the refined window; outside it, faded, the coarse scan. "
                             "Marginals: shaded 68 % interval, "
                             "red line the truth, dashed green the P(k) baseline, dotted purple the CNN.",
                             styles={"font-size": "0.85em"}, sizing_mode="stretch_width"),
            self._details,
            glossary_card("VLB", "Δχ²", "68 % / 95 % contours", "τ (temperature)", "P(k) baseline", "CNN estimator", "prior box",
                          title="What do these words mean? VLB, Δχ², contours, τ, P(k) baseline …",
                          visible=self.param.presenter.rx.not_()),
            sizing_mode="stretch_width"), sizing_mode="stretch_width")

    # ---- inputs --------------------------------------------------------------------------------
    async def _on_drop(self, event) -> None:
        """Infer from the file just dropped.

        The dropper keeps every file of the session in ``value``, mutated in place (``event.old``
        is ``event.new``): the new file is the one whose name or data was not there before (a
        file dropped again under its old name is new data under an old key). Removing a file
        starts nothing.
        """
        files = dict(event.new or {})
        new = [name for name, data in files.items() if self._dropped.get(name) is not data]
        self._dropped = files
        if new:
            name = new[-1]
            await self.run(name, data=files[name])

    def _on_network(self, event) -> None:
        """A network comes with its measured terms and grid (``compute.network_preset``); either can
        still be changed afterwards."""
        self.param.update(**compute.network_preset(event.new))

    async def _on_example(self, _event) -> None:
        example = self._examples.get(self.example)
        if example is not None:
            await self.run(example.name, path=example.path, truth=(example.omega_m, example.sigma_8),
                           kind=example.kind)

    def _on_cancel(self, _event) -> None:
        self._slot.cancel()
        refining, self._refining = self._refining, False
        self._busy(False)
        if refining:
            self._status.object = (f"Refinement cancelled: the result shown is the small network's fast one "
                                   f"for **{self.result.name}**.")
        else:
            self._status.object = "Cancelled." + (" The surface shown is the coarse first look." if self._first_look_shown() else "")

    # ---- the job -------------------------------------------------------------------------------
    def _work(self, job: Job, name: str, data, path, truth, settings: dict, on_coarse=None) -> compute.Inference:
        """Read the field and infer (on a worker); a cancelled inference ends as :class:`Superseded`.
        ``on_coarse(Inference)`` gets the first look at the surface (from the worker thread)."""
        from explorer.data import read_field
        from explorer.inference import InferenceCancelled

        if path is not None:
            field = read_field(path, max_bytes=MAX_BYTES)
        else:
            data = data.encode() if isinstance(data, str) else data  # text/* uploads arrive decoded
            field = read_field(data, filename=name, max_bytes=MAX_BYTES)
        job.check()
        settings = dict(settings)
        baselines = settings.pop("baselines", True)  # False: the refinement reuses the fast result's
        loaded = compute.likelihood_model(self.context.emulator, settings.get("network", "full"))
        try:
            return compute.infer_field(
                loaded, field, name=name, truth=truth, pk_baseline=self.context.pk_baseline if baselines else None,
                cnn=self.context.cnn if baselines else None, progress=job.progress(), cancel=lambda: not job.current,
                on_coarse=on_coarse, **settings)
        except InferenceCancelled:
            raise Superseded(f"inference on {name} cancelled") from None
        finally:
            release_memory()  # the network's activations of this inference go back to the OS

    async def run(self, name: str, *, data: bytes | str | None = None, path=None, truth=None,
                  kind: str | None = None) -> None:
        """Read the field (``data`` uploaded as ``name``, or ``path``) and infer; newer calls supersede.

        The coarse scan's first look at the surface is drawn as soon as it exists (about half-way),
        then replaced in place by the refined surface."""
        settings = dict(kind=kind or self.kind, terms=self.terms, calibrated=self.calibrated,
                        per_timestep=self.per_timestep, network=self.network, grid=self.grid)
        loop = asyncio.get_running_loop()
        first_look = loop.create_future()

        def on_coarse(result: compute.Inference) -> None:  # on the worker thread
            loop.call_soon_threadsafe(lambda: first_look.done() or first_look.set_result(result))

        job = start_job(self._slot, self._work, name, data, path, truth, settings, on_coarse, pool="long")
        self._error.visible = False
        self._status.object = f"Inferring (Ωₘ, σ₈) from **{name}** …"

        async def show_first_look() -> None:  # a task: it keeps this session's context (its document)
            result = await first_look
            if job.current and self.busy:
                self._show_coarse(result)

        shown = []

        def on_result(result: compute.Inference) -> None:
            shown.append(result)
            self._inferred(result)

        drawing = asyncio.ensure_future(show_first_look())
        self._refining = False
        try:
            await run_job(job, what=f"inference on {name}", on_busy=self._busy, on_result=on_result,
                          on_error=lambda err: self._failed(name, err), logger=log)
        finally:
            drawing.cancel()
        if shown and job.current and self._refines(settings):
            await self._refine(name, data, path, truth, settings)

    def _refines(self, settings: dict) -> bool:
        """Whether a result of ``settings`` is followed by the full network's: the fast preset, the
        full network at hand, and "then refine" on."""
        fast = {"network": compute.FAST_NETWORK, **compute.network_preset(compute.FAST_NETWORK)}
        return (self.refine and "full" in self.param.network.objects.values()
                and all(settings.get(k) == v for k, v in fast.items()))

    async def _refine(self, name: str, data, path, truth, settings: dict) -> None:
        """The fast result is shown; the full network's precise preset replaces it in place when done
        (the progress bar and Cancel stay; the fast result stays on screen, not dimmed). The full
        network skips its coarse scan: its fine grid covers the fast posterior's calibrated 3σ box
        (``grid.window_from``), and the fast coarse scan stays the figure's background outside it."""
        from explorer.inference.grid import window_from

        fast = self.result
        settings = {**settings, "network": "full", **compute.network_preset("full"), "window": window_from(fast.posterior),
                    "baselines": False}
        job = start_job(self._slot, self._work, name, data, path, truth, settings, None, pool="long")
        self._status.object += " Refining with the full network (precise, about 4× longer) …"
        self._refining = True

        def busy(on: bool) -> None:
            show_progress(self._progress, on)
            self.busy = on

        def done(result: compute.Inference) -> None:
            self._refining = False
            # the fast result's field, baselines and coarse scan (the background outside the window) are
            # this one's too: reused, not recomputed, and the field's map is not redrawn
            self._inferred(dataclasses.replace(
                result, field_log10=fast.field_log10, baseline=fast.baseline, cnn=fast.cnn,
                posterior=dataclasses.replace(result.posterior, coarse=fast.posterior.coarse)))

        def failed(err: Exception) -> None:
            self._refining = False
            self._failed(name, err)

        await run_job(job, what=f"full-network refinement on {name}", on_busy=busy, on_result=done,
                      on_error=failed, logger=log)

    def _busy(self, busy: bool) -> None:
        show_progress(self._progress, busy)
        self.busy = self.waiting = busy

    @property
    def progress_shown(self) -> bool:
        return self._progress.styles == SHOWN


    def _inferred(self, result: compute.Inference) -> None:
        self._status.object = (f"**{result.name}** ({result.kind}): {result.posterior.n_evaluations} network "
                               f"evaluations in {result.posterior.seconds:.1f} s ({_how(result)}).")
        with batch_updates():
            self.show(result)

    def _first_look_shown(self) -> bool:
        post = getattr(self.result, "posterior", None)
        return post is not None and post.settings.get("stage") == "coarse"

    def _show_coarse(self, result: compute.Inference) -> None:
        """Draw the coarse scan's first look while the fine grid is computed (downloads stay off)."""
        with batch_updates():
            self.show(result, final=False)
        self.waiting = False
        self._status.object = (f"**{result.name}**: a first look from the coarse scan "
                               f"({result.posterior.n_evaluations} network evaluations); refining …")

    def _failed(self, name: str, err: Exception) -> None:
        still = f" The result below is still that of **{self.result.name}**." if self.result is not None else ""
        if self._first_look_shown():  # it failed while refining: what is shown is its coarse first look
            still = f" The surface below is only the coarse first look of **{self.result.name}**."
        if isinstance(err, USER_ERRORS):  # a bad file: its specific message, nothing else changes
            self._status.object, self._error.object = f"Could not use **{name}**.{still}", str(err)
        else:
            self._status.object = f"Inference failed on **{name}**.{still}"
            self._error.object = f"{type(err).__name__}: {err}"
        self._error.visible = True

    # ---- display -------------------------------------------------------------------------------
    def show(self, result: compute.Inference, final: bool = True) -> None:
        """Draw ``result``; a first look (``final=False``) draws only the surface and the field (the
        marginals and estimates below are the last result's, dimmed), and the downloads wait."""
        previous, self.result = self.result, result
        if previous is None or previous.field_log10 is not result.field_log10:  # a first look drew it already
            r = result.field_log10.shape[0]
            title = f"{result.name.split(' (')[0]} ({r}², {result.kind})"
            self.field_pane.update(plots.map_image(result.field_log10, title, size=250))
        self._redraw()
        self._details.styles = SHOWN if final else DIMMED
        stem = result.name.rsplit(".", 1)[0].replace(" ", "_")[:60]
        self._json.filename, self._html.filename = f"posterior_{stem}.json", f"posterior_{stem}.html"
        self._json.disabled = self._html.disabled = not final
        self.ready = final

    def handout(self, model: str):
        """(file stem, handout page) of the posterior shown (on a worker)."""
        from . import handout

        stem = self.result.name.rsplit(".", 1)[0].replace(" ", "_")[:60]
        return f"posterior_{stem}", handout.infer_page(self.result, model=model)

    def _redraw(self, *_events) -> None:
        """The figures of the result shown; of a coarse first look only the surface (its marginals
        from a few points per axis would mislead)."""
        if self.result is None:
            return
        post, base, cnn = self.result.posterior, self.result.baseline, self.result.cnn
        with batch_updates():
            self.posterior_pane.update(posterior.posterior_plot(post, base, self.show_baseline, self.per_timestep,
                                                                name=self.result.name, size=330, cnn=cnn))
            if self._first_look_shown():
                return
            for pane, name in zip(self.marginal_panes, PARAM_NAMES):
                pane.update(posterior.marginal_plot(post, name, base, self.show_baseline, cnn=cnn))
            shown = self.show_baseline
            self.estimates.object = posterior.estimates_markdown(post, base if shown else None, cnn if shown else None)

    def figure(self) -> hv.Layout:
        panes = (self.posterior_pane, self.field_pane, *self.marginal_panes)
        parts = [p.object for p in panes if p.object is not None]
        return hv.Layout(parts).cols(2).opts(shared_axes=False)

    def _result_json(self) -> io.BytesIO:
        r = self.result
        out = {"field": r.name, "kind": r.kind, "network": r.network, "posterior": r.posterior.to_dict(),
               "pk_baseline": r.baseline.to_dict() if r.baseline is not None else None, "cnn": r.cnn}
        return io.BytesIO(json.dumps(out, indent=1, default=_jsonable).encode())

    def _figure_html(self) -> io.BytesIO:
        return plots.figure_html(self.figure(), f"Posterior of {self.result.name}")


def _how(result: compute.Inference) -> str:
    """"small network, vlb:8, 3×3 + 3×3 grid": what computed ``result``."""
    post = result.posterior
    settings = getattr(post, "settings", None) or {}
    grid = grid_text(grid_of(settings))
    grid = grid and f"{grid} grid" + (" on the fast result's 3σ window" if settings.get("window_given") else "")
    return ", ".join(part for part in (f"{getattr(result, 'network', 'full')} network", getattr(post, "terms", ""),
                                       grid) if part)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
