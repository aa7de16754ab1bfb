"""Parameter-response tab (seed paper Figure 2): vary one parameter, the other at its fiducial value.

Every value is sampled with the same seed, so P(k; θ)/P(k; θ_fid) cancels most of the sample
variance, as the single initial-condition seed of a CAMELS 1P set does; the bundled 1P set (or
the user's, ``EXPLORER_ONEP``) gives the simulated response drawn beside it.
"""

from __future__ import annotations

import io
import logging

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.params import PARAM_LABELS

from . import compute, plots
from .context import AppContext
from .explain import glossary_card
from .jobs import Job, JobSlot, run_job, start_job
from .panes import LivePlot, batch_updates
from .tab import Tab

log = logging.getLogger(__name__)

DEFAULT_VALUES = {"omega_m": (0.2, 0.25, 0.3, 0.35, 0.4), "sigma_8": (0.7, 0.75, 0.8, 0.85, 0.9)}
FIDUCIAL = (0.3, 0.8)


class ResponseTab(Tab):
    """Generated vs 1P response of P(k) to Ωₘ or σ₈."""

    vary = param.Selector(default="omega_m", objects={"Ωₘ": "omega_m", "σ₈": "sigma_8"}, label="vary")
    n_seeds = param.Integer(default=4, bounds=(2, 16), label="maps per value (seeds)")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), label="seed (same for every value)")
    sampler = param.Selector(default=next(iter(compute.SAMPLER_CHOICES)), objects=list(compute.SAMPLER_CHOICES),
                             label="sampler")
    run = param.Event(label="Run")
    busy = param.Boolean(default=False, doc="Sampling runs (progress bar, loading strip).")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self.param.sampler.objects = compute.sampler_choices(context.emulator)
        self.sampler = compute.initial_sampler(context.settings.sampler, self.param.sampler.objects,
                                                context.emulator)
        self.result: compute.ParameterResponse | None = None
        self._progress = pn.indicators.Progress(value=0, max=100, visible=self.param.busy,
                                                sizing_mode="stretch_width")
        self._status = pn.pane.Markdown("Press **Run** (or change a setting) to sample the response.",
                                        sizing_mode="stretch_width")
        self._error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        note = context.notes.get("onep")
        self._note = pn.pane.Alert(note or "", alert_type="warning", visible=bool(note))
        self._slot = JobSlot(on_progress=lambda f, _t: setattr(self._progress, "value", int(100 * f)))
        self.strip_row = LivePlot()
        self.strip_row.pane.loading = self.param.busy
        self.ref_strip_row = LivePlot()
        self.power_pane = LivePlot()
        self.ratio_pane = LivePlot()
        self._html = pn.widgets.FileDownload(callback=self._figure_html, filename="response.html",
                                             label="Download plots (.html)", disabled=True)
        self.param.watch(self._on_settings, ["vary", "n_seeds", "seed", "sampler", "run"])

    def values(self, vary: str) -> tuple[float, ...]:
        """Values of the varied parameter: the 1P set's when it has them, else the defaults."""
        if self.context.onep is not None:
            values = tuple(v for v, _sim in self.context.onep.values(vary))
            if len(values) >= 2:
                return values
        return DEFAULT_VALUES[vary]

    def fiducial(self) -> tuple[float, float]:
        return self.context.onep.fiducial if self.context.onep is not None else FIDUCIAL

    def stop(self) -> None:
        """Abandon running jobs (the session closed): they stop at their next progress callback."""
        self._slot.cancel()

    def controls(self) -> pn.Column:
        return pn.Column(
            "### Parameter response",
            pn.widgets.RadioButtonGroup.from_param(self.param.vary),
            pn.widgets.IntSlider.from_param(self.param.n_seeds),
            pn.widgets.IntInput.from_param(self.param.seed),
            pn.widgets.Select.from_param(self.param.sampler),
            pn.widgets.Button.from_param(self.param.run, color="primary"),
            self._html,
            width=300,
        )

    def __panel__(self):
        return pn.Row(self.controls(), pn.Column(
            pn.Row(self._status, self._progress, sizing_mode="stretch_width"),
            self._error, self._note,
            glossary_card("1P", "seed", "P(k)", "cosmic variance", "reference maps",
                          title="What do these words mean? 1P, seed, P(k), cosmic variance …",
                          visible=self.param.presenter.rx.not_()),
            "#### Generated maps at the extremes and the fiducial (same seed)", self.strip_row,
            "#### 1P reference maps", self.ref_strip_row,
            pn.Row(self.power_pane, self.ratio_pane),
            sizing_mode="stretch_width"), sizing_mode="stretch_width")

    async def activate(self) -> None:
        """Run once when the tab is first shown."""
        if self.result is None and self._slot.generation == 0:
            await self.refresh()

    async def _on_settings(self, *_events) -> None:
        await self.refresh()

    async def refresh(self) -> None:
        """Sample the response at the current settings and redraw (a newer call supersedes this one)."""
        vary, values, fiducial = self.vary, self.values(self.vary), self.fiducial()
        job = start_job(self._slot, self._work, vary, values, fiducial, self.n_seeds, self.seed, self.sampler,
                        pool="long")
        self._status.object = (f"Sampling {self.n_seeds} maps at each of {len(values)} values of "
                               f"{PARAM_LABELS[vary]} ({', '.join(f'{v:g}' for v in values)}) …")
        await run_job(job, what=f"the {vary} response", on_busy=self._busy, on_result=self._responded,
                      on_error=self._failed, logger=log)

    def _work(self, job: Job, vary: str, values, fiducial, n_seeds: int, seed: int, sampler: str):
        """The response (on a worker): ``compute.parameter_response`` with the menu's sampler."""
        return compute.parameter_response(
            self.context.emulator, param=vary, values=values, fiducial=fiducial, n_seeds=n_seeds, seed=seed,
            sampler=compute.SAMPLER_CHOICES[sampler], onep=self.context.onep, progress=job.progress())

    def _busy(self, busy: bool) -> None:
        if busy:
            self._progress.value = 0
        self.busy = busy

    def _responded(self, result: compute.ParameterResponse) -> None:
        fiducial = result.fiducial
        self._status.object = (f"Response to {PARAM_LABELS[result.param]} around Ωₘ = {fiducial[0]:g}, "
                               f"σ₈ = {fiducial[1]:g}: {result.maps.shape[1]} seeds per value"
                               + ("" if result.response_ref is not None else " (no matching 1P reference)") + ".")
        self._error.visible = False
        with batch_updates():
            self.show(result)

    def _failed(self, err: Exception) -> None:
        self._error.object, self._error.visible = f"Failed: {err}", True

    def show(self, result: compute.ParameterResponse) -> None:
        self.result = result
        name = PARAM_LABELS[result.param]
        j = 0 if result.param == "omega_m" else 1
        fid_value = result.fiducial[j]
        picks = sorted({0, int(np.argmin(np.abs(result.values - fid_value))), len(result.values) - 1})
        clim = plots.map_clim(result.maps[picks, 0] if result.maps_ref is None else result.maps_ref[picks, 0])
        titles = [f"{name} = {result.values[i]:g}" for i in picks]
        self.strip_row.update(plots.map_row([result.maps[i, 0] for i in picks], titles, clim))
        self.ref_strip_row.update(None if result.maps_ref is None else
                                  plots.map_row([result.maps_ref[i, 0] for i in picks], titles, clim))
        self.power_pane.update(plots.response_power_plot(result))
        self.ratio_pane.update(plots.response_ratio_plot(result))
        self._html.disabled = False
        self._html.filename = f"response_{result.param}_seed{self.seed}.html"
        self.ready = True

    def handout(self, model: str):
        """(file stem, handout page) of the response shown (on a worker)."""
        from . import handout

        r = self.result
        return (f"response_{r.param}_fid{r.fiducial[0]:.3f}_{r.fiducial[1]:.3f}",
                handout.response_page(r, model=model))

    def figure(self) -> hv.Layout:
        parts = [p.object for p in (self.strip_row, self.ref_strip_row, self.power_pane, self.ratio_pane)
                 if p.object is not None]
        return hv.Layout(parts).cols(1).opts(shared_axes=False)

    def _figure_html(self) -> io.BytesIO:
        return plots.figure_html(self.figure(), "Parameter response")

