"""Emulate tab: sliders for (Ωₘ, σ₈) sample maps live and compare them with reference maps.

Sampling starts when a slider is released (``throttled``), or the seed, number of maps or
sampler changes; it runs on the worker pool and a newer request supersedes a running one
(``jobs.start_job`` / ``jobs.run_job``). The maps are drawn first and the statistics in a later
message, so the browser paints the maps while the server draws the rest. While a slider is dragged,
a preview (one map, :func:`compute.preview`, ~0.15 s) follows it: one preview runs at a time and the
newest slider position is previewed next, so the preview keeps up with the hand at any speed. The statistics are those of the seed paper:
P(k) with mean ± σ bands and per-k z-scores (Figure 1), χ²ᵣ of each map beside the leave-one-out
floor, pixel histograms with envelopes (Figure 4) and the connected-region census.

For a class: presets (the fiducial cosmology, the four corners of the prior box, a lower σ₈) set
both sliders at once, and a switch keeps the seed (one cosmic web, reshaped by Ωₘ and σ₈) or
draws a fresh one at every change; a collapsed card explains the jargon (:mod:`.explain`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import time

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.params import OMEGA_M_RANGE, SIGMA_8_RANGE

from . import compute, plots
from .context import AppContext
from .explain import glossary_card
from .jobs import Job, JobSlot, run_job, start_job
from .panes import SHOWN, LivePlot, PlotRow, batch_updates, progress_bar, show_progress
from .reference import simulate_reference
from .tab import Tab

log = logging.getLogger(__name__)

N_SHOWN = 8   # generated maps drawn (all of them are downloadable and enter the statistics)
N_REF_SHOWN = 4
CUSTOM = "custom (the sliders)"
PREVIEW_PLACEHOLDER = "preview: drag a slider"
PREVIEW_SIZE = 190  # pixels: the preview fits the 300-pixel controls column
SEED_NOTE = ("When Ωₘ or σ₈ change, **same seed**: the model starts from the same noise, so Ωₘ and σ₈ "
             "reshape one cosmic web and its layout stays; the reference maps are other simulations, with "
             "their own initial conditions, so theirs changes. **Fresh seed**: new noise at every change.")


def presets(param_ranges) -> dict[str, tuple[float, float] | None]:
    """The preset menu: label -> (Ωₘ, σ₈) inside ``param_ranges`` (the model's prior box); the last
    entry, :data:`CUSTOM`, stands for slider values that are no preset."""
    (om_lo, om_hi), (s8_lo, s8_hi) = param_ranges

    def inside(om, s8):
        return float(min(max(om, om_lo), om_hi)), float(min(max(s8, s8_lo), s8_hi))

    fid, low = inside(0.3, 0.8), inside(0.3, 0.65)
    return {
        f"fiducial (Ωₘ = {fid[0]:g}, σ₈ = {fid[1]:g})": fid,
        f"corner: least matter, smoothest ({om_lo:g}, {s8_lo:g})": (om_lo, s8_lo),
        f"corner: least matter, clumpiest ({om_lo:g}, {s8_hi:g})": (om_lo, s8_hi),
        f"corner: most matter, smoothest ({om_hi:g}, {s8_lo:g})": (om_hi, s8_lo),
        f"corner: most matter, clumpiest ({om_hi:g}, {s8_hi:g})": (om_hi, s8_hi),
        f"what if σ₈ were lower? ({low[0]:g}, {low[1]:g})": low,
        CUSTOM: None,
    }


class EmulateTab(Tab):
    """Live emulation at slider parameters, beside the nearest reference simulation."""

    omega_m = param.Number(default=0.3, bounds=OMEGA_M_RANGE, step=0.005, label="Ωₘ")
    sigma_8 = param.Number(default=0.8, bounds=SIGMA_8_RANGE, step=0.005, label="σ₈")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), label="seed")
    n_maps = param.Integer(default=4, bounds=(1, 16), label="number of maps")
    sampler = param.Selector(default=next(iter(compute.SAMPLER_CHOICES)), objects=list(compute.SAMPLER_CHOICES),
                             label="sampler (speed ↔ quality)")
    new_seed = param.Event(label="new seed")
    preset = param.Selector(default=CUSTOM, objects=[CUSTOM], label="preset (sets both sliders)")
    seed_mode = param.Selector(default="same", objects={"same seed": "same", "fresh seed": "fresh"},
                               label="seed when Ωₘ or σ₈ change")
    simulate = param.Event(label="Simulate 15 reference maps here")
    busy = param.Boolean(default=False, doc="Sampling runs (the progress bar is shown).")

    def __init__(self, context: AppContext, **params):
        super().__init__(**params)
        self.context = context
        self.emulator = context.emulator
        self.param.sampler.objects = compute.sampler_choices(self.emulator)
        self.sampler = compute.initial_sampler(context.settings.sampler, self.param.sampler.objects,
                                                context.emulator)
        self._sampler_note = compute.auto_sampler_note(context.settings.sampler, self.sampler, self.emulator)
        (om_lo, om_hi), (s8_lo, s8_hi) = self.emulator.param_ranges
        self.param.omega_m.bounds, self.param.sigma_8.bounds = (om_lo, om_hi), (s8_lo, s8_hi)
        self._presets = presets(self.emulator.param_ranges)
        self.param.preset.objects = list(self._presets)
        self.preset = self._matching_preset()
        self.result: compute.Emulation | None = None
        self._simulated: tuple[float, float, int, np.ndarray] | None = None  # (Ωₘ, σ₈, seed, maps)
        self._shown_reference = None
        self._clim: tuple[float, float] | None = None  # colour range of the maps shown (the preview's too)
        self._prefetched: tuple[tuple, Job] | None = None  # (settings, job) started by prefetch()
        self._fresh_seed: int | None = None  # a seed drawn for a slider change ("fresh seed" mode)

        self._progress = progress_bar(bar_color="primary")
        self._status = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 10))
        self._error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._reference_info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._chi2_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._slot = JobSlot(on_progress=self._report, min_interval=1.0)
        self._sim_slot = JobSlot()
        self._preview_slot = JobSlot()
        self._previewing = False  # a preview job runs (the drag watcher loops until none is pending)
        self._preview_next: tuple[float, float] | None = None  # the newest slider position not yet previewed
        self._sliders: tuple = ()  # (Ωₘ, σ₈) slider widgets: their unthrottled values drive the preview
        self.preview_pane = LivePlot()
        self.maps_row = LivePlot()
        self.ref_row = LivePlot()
        self.power_pane = LivePlot()
        self.zscore_pane = LivePlot()
        self.chi2_pane = LivePlot()
        self.hist_pane = LivePlot()
        self.structure_row = PlotRow(3)
        self._npy = pn.widgets.FileDownload(callback=self._maps_npy, filename="generated_maps.npy",
                                            label="Download maps (.npy)", color="primary",
                                            disabled=True)
        self._html = pn.widgets.FileDownload(callback=self._figure_html, filename="emulate.html",
                                             label="Download plots (.html)", disabled=True)
        self._simulate_button = pn.widgets.Button.from_param(self.param.simulate, color="default")
        stand_in = context.reference is not None and context.reference.is_stand_in
        self._simulate_button.disabled = not stand_in
        if not stand_in:
            self._simulate_button.description = "only with the bundled stand-in reference (particle-mesh)"

        self.param.watch(self._on_settings, ["omega_m", "sigma_8", "seed", "n_maps", "sampler"])
        self.param.watch(self._on_new_seed, "new_seed")
        self.param.watch(self._on_preset, "preset")
        self.param.watch(self._sync_preset, ["omega_m", "sigma_8"])
        self.param.watch(self._on_simulate, "simulate")

    # ---- controls -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Abandon running jobs (the session closed): they stop at their next progress callback."""
        self._slot.cancel()
        self._sim_slot.cancel()
        self._preview_slot.cancel()

    def controls(self) -> pn.Column:
        self._sliders = (pn.widgets.FloatSlider.from_param(self.param.omega_m, throttled=True, format="0.000"),
                         pn.widgets.FloatSlider.from_param(self.param.sigma_8, throttled=True, format="0.000"))
        for slider in self._sliders:  # ``value`` follows the drag; the parameters follow the release
            slider.param.watch(self._on_drag, "value")
        return pn.Column(
            "### Parameters",
            *self._sliders,
            self.preview_pane,  # right under the sliders it follows
            pn.widgets.Select.from_param(self.param.preset),
            pn.Row(pn.widgets.IntInput.from_param(self.param.seed, width=130),
                   pn.widgets.Button.from_param(self.param.new_seed, width=110, margin=(27, 5, 5, 5))),
            pn.widgets.RadioButtonGroup.from_param(self.param.seed_mode),
            pn.pane.Markdown(SEED_NOTE, styles={"font-size": "0.85em"}, margin=(0, 10)),
            pn.widgets.IntSlider.from_param(self.param.n_maps),
            pn.widgets.Select.from_param(self.param.sampler),
            pn.pane.Markdown(self._sampler_note, styles={"font-size": "0.85em"}, margin=(0, 10),
                             visible=bool(self._sampler_note)),
            self._simulate_button,
            pn.pane.Markdown("PNG of a plot: the save tool of its toolbar (hover the plot).",
                             styles={"font-size": "0.85em"}),
            self._npy, self._html,
            width=300,
        )

    def __panel__(self):
        detail = self.param.presenter.rx.not_()  # shown unless in presenter mode
        return pn.Row(
            self.controls(),
            pn.Column(
                pn.Row(self._status, self._progress, sizing_mode="stretch_width"),
                glossary_card("log₁₀ Σ", "seed", "emulator", "reference maps", "cosmic variance", "P(k)",
                              "z-score", "χ²ᵣ", "leave-one-out floor", visible=detail,
                              title="What do these words mean? seed, P(k), z-score, χ²ᵣ, leave-one-out floor, …"),
                self._error,
                self._reference_info,
                "#### Generated maps", self.maps_row,
                "#### Reference maps", self.ref_row,
                pn.Row(pn.Column(self.power_pane, pn.Column(self.zscore_pane, visible=detail)),
                       pn.Column(self.chi2_pane, visible=detail)),  # (a FlexBox drew its figures blank)
                pn.Column(self._chi2_text, visible=detail, sizing_mode="stretch_width"),
                pn.Row(self.hist_pane),
                pn.Column("#### Structure: connected regions above μ + νσ (ν in units of each map's σ)",
                          self.structure_row, visible=detail, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # ---- jobs ----------------------------------------------------------------------------------
    def _report(self, fraction: float, text: str) -> None:
        self._progress.value = int(round(100 * fraction))

    def _busy(self, busy: bool) -> None:
        show_progress(self._progress, busy)
        self.busy = busy

    @property
    def progress_shown(self) -> bool:
        return self._progress.styles == SHOWN

    def _simulating(self, busy: bool) -> None:
        self._simulate_button.loading = busy

    def _on_new_seed(self, _event) -> None:
        self.seed = random.randrange(2**31 - 1)  # triggers a refresh through the seed watcher

    def _on_preset(self, event) -> None:
        theta = self._presets.get(event.new)
        if theta is not None:  # both sliders in one update: one sampling job
            self.param.update(omega_m=theta[0], sigma_8=theta[1])

    def _matching_preset(self) -> str:
        for label, theta in self._presets.items():
            if theta is not None and np.isclose(theta[0], self.omega_m) and np.isclose(theta[1], self.sigma_8):
                return label
        return CUSTOM

    def _sync_preset(self, *_events) -> None:
        self.preset = self._matching_preset()

    async def _on_settings(self, *events) -> None:
        if [e.name for e in events] == ["seed"] and events[0].new == self._fresh_seed:
            self._fresh_seed = None  # drawn below for a slider change, which samples with it
            return
        if self.seed_mode == "fresh" and any(e.name in ("omega_m", "sigma_8") for e in events):
            self._fresh_seed = self.seed = random.randrange(2**31 - 1)
        await self.refresh()

    def _reference_maps(self, omega_m: float, sigma_8: float):
        """(15, r, r) log10 reference maps and a Markdown description (run on a worker)."""
        sim = self._simulated
        if sim is not None and np.isclose(sim[0], omega_m) and np.isclose(sim[1], sigma_8):
            return sim[3], (f"**Reference**: 15 maps of a stand-in simulation run at exactly "
                            f"Ωₘ = {omega_m:.3f}, σ₈ = {sigma_8:.3f} (seed {sim[2]}).")
        ref = self.context.reference
        if ref is None:
            return None, "**No reference maps**: " + self.context.notes.get("reference", "")
        near = ref.nearest(omega_m, sigma_8, k=3)
        rows = "\n".join(f"| {'**' if i == 0 else ''}{n.sim}{'**' if i == 0 else ''} | {n.omega_m:.3f} | "
                         f"{n.sigma_8:.3f} | {n.distance:.3f} |" for i, n in enumerate(near))
        text = (f"**Reference**: the 15 maps of simulation {near[0].sim} of `{ref.source}`, the nearest "
                f"of {ref.cmd.n_sims} to the sliders (distance in prior widths):\n\n"
                f"| simulation | Ωₘ | σ₈ | distance |\n|---|---|---|---|\n{rows}")
        return ref.maps(near[0].sim), text

    def _work(self, job: Job, omega_m, sigma_8, n_maps, seed, sampler):
        """(Emulation, reference maps or None, reference description): the sampling job (on a worker)."""
        job.check()  # superseded while it queued: nothing to do
        reference, text = self._reference_maps(omega_m, sigma_8)
        job.check()
        result = compute.emulate(self.emulator, omega_m=omega_m, sigma_8=sigma_8, n_maps=n_maps, seed=seed,
                                 sampler=compute.SAMPLER_CHOICES[sampler], reference=reference,
                                 progress=job.progress("denoising step"), cache=self._cache())
        return result, reference, text

    def _cache(self) -> compute.SampleCache | None:
        """The shared cache of sampled maps, once this page shows its first maps (``compute.SampleCache``).

        Not for the first maps of a page: drawn at once from the cache, as the page connected, its
        statistics figures were built on the server but 1 page in 3-5 never showed them (Panel 1.9,
        measured with bench_app; with ~1 s of sampling in between, as before, it never happened).
        """
        return compute.SAMPLES if self.context.settings.sample_cache and self.result is not None else None

    def _settings(self) -> tuple:
        return (self.omega_m, self.sigma_8, self.n_maps, self.seed, self.sampler)

    @staticmethod
    def _pool(settings: tuple) -> str:
        """Slow samplers run with the long jobs, so they never hold up another session's slider."""
        return "long" if compute.SAMPLER_CHOICES[settings[-1]].slow else "interactive"

    def prefetch(self) -> None:
        """Start sampling at the current settings now, while the page loads; ``refresh`` picks it up."""
        settings = self._settings()
        self._prefetched = (settings, start_job(self._slot, self._work, *settings, pool=self._pool(settings)))
        self._busy(True)
        self._status.object = self._busy_text()

    def _busy_text(self) -> str:
        return (f"Sampling {self.n_maps} map(s) at Ωₘ = {self.omega_m:.3f}, σ₈ = {self.sigma_8:.3f} "
                f"({self.sampler}) …")

    # ---- preview while dragging -------------------------------------------------------------------
    async def _on_drag(self, _event) -> None:
        """Preview the sliders' current (unreleased) position; one preview job at a time."""
        omega_m, sigma_8 = (float(s.value) for s in self._sliders)
        if (omega_m, sigma_8) == (self.omega_m, self.sigma_8):
            return  # the release itself (or a value set from Python): the sampling job draws it
        self._preview_next = (omega_m, sigma_8)
        if self._previewing:
            return  # the running loop previews the newest position next
        self._previewing = True
        try:
            while self._preview_next is not None:
                theta, self._preview_next = self._preview_next, None
                job = start_job(self._preview_slot, self._preview_work, *theta, self.seed)
                await run_job(job, what=f"preview at {theta}", on_result=self._show_preview,
                              on_error=lambda err: None, logger=log)
        finally:
            self._previewing = False

    def _preview_work(self, job: Job, omega_m: float, sigma_8: float, seed: int):
        """(Ωₘ, σ₈, (H, W) map, seconds) of one quick map (on a worker)."""
        job.check()
        start = time.perf_counter()
        m = compute.preview(self.emulator, omega_m=omega_m, sigma_8=sigma_8, seed=seed, progress=job.progress())
        return omega_m, sigma_8, m, time.perf_counter() - start

    def _show_preview(self, outcome: tuple) -> None:
        omega_m, sigma_8, m, seconds = outcome
        log.debug("preview at (%.3f, %.3f) in %.2f s", omega_m, sigma_8, seconds)
        self.preview_pane.update(plots.map_image(m, f"preview: Ωₘ {omega_m:.3f}, σ₈ {sigma_8:.3f}",
                                                 self._clim or plots.map_clim(m), colorbar=False,
                                                 size=PREVIEW_SIZE))

    def _stop_preview(self) -> None:
        self._preview_next = None
        self._preview_slot.cancel()

    async def refresh(self) -> None:
        """Sample at the current settings and redraw (a newer call supersedes this one)."""
        self._stop_preview()
        settings = self._settings()
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] == settings and prefetched[1].current:
            job = prefetched[1]
        else:
            job = start_job(self._slot, self._work, *settings, pool=self._pool(settings))
        self._status.object = self._busy_text()
        await run_job(job, what=f"sampling at {settings}", on_busy=self._busy, on_result=self._sampled,
                      on_error=self._sampling_failed, logger=log)

    async def _sampled(self, outcome: tuple) -> None:
        result, reference, text = outcome
        self._status.object = (f"{len(result.maps)} map(s) at Ωₘ = {result.omega_m:.3f}, "
                               f"σ₈ = {result.sigma_8:.3f}, seed {result.seed}: "
                               + (f"reused, sampled in {result.seconds:.1f} s for an earlier request."
                                  if result.reused else f"sampled in {result.seconds:.1f} s."))
        with batch_updates():
            self.show_maps(result, reference, text)
        await asyncio.sleep(0.02)  # the maps' message leaves before the statistics are drawn
        if self.result is result:  # not replaced meanwhile
            with batch_updates():
                self.show_statistics(result)

    def _sampling_failed(self, err: Exception) -> None:
        self._status.object = ""
        self.show_error(f"Sampling failed: {err}")

    async def _on_simulate(self, _event) -> None:
        omega_m, sigma_8, seed = self.omega_m, self.sigma_8, self.seed
        job = start_job(self._sim_slot, self._simulate, omega_m, sigma_8, seed, pool="long")
        self._status.object = f"Simulating 15 reference maps at Ωₘ = {omega_m:.3f}, σ₈ = {sigma_8:.3f} …"
        await run_job(job, what=f"simulating the reference at ({omega_m}, {sigma_8}), seed {seed}",
                      on_busy=self._simulating, on_result=self._simulated_reference,
                      on_error=lambda err: self.show_error(f"Simulation failed: {err}"), logger=log)

    def _simulate(self, job: Job, omega_m: float, sigma_8: float, seed: int):
        """(Ωₘ, σ₈, seed, (15, r, r) log10 maps) of a stand-in simulation (on a worker)."""
        return omega_m, sigma_8, seed, simulate_reference(omega_m, sigma_8, seed, self.emulator.resolution)

    async def _simulated_reference(self, simulated: tuple) -> None:
        self._simulated = simulated
        await self.refresh()

    # ---- display -------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self._error.object = message
        self._error.visible = True

    def show(self, result: compute.Emulation, reference: np.ndarray | None, text: str) -> None:
        """Draw ``result`` (and the reference it was compared with): maps and statistics."""
        self.show_maps(result, reference, text)
        self.show_statistics(result)

    def show_maps(self, result: compute.Emulation, reference: np.ndarray | None, text: str) -> None:
        """Draw the maps of ``result`` and the reference maps."""
        self._error.visible = False
        self.result = result
        self._reference_info.object = text
        # the colour scale is the reference's: generated maps are read against the truth, and the
        # reference figures are only redrawn when the reference changes
        clim = self._clim = plots.map_clim(reference if reference is not None else result.maps)
        shown = result.maps[:N_SHOWN]
        self.maps_row.update(plots.map_row(shown, [f"generated #{i + 1}" for i in range(len(shown))], clim,
                                           size=180 if len(shown) <= 2 else 150))
        if reference is None or reference is not self._shown_reference:
            self.ref_row.update(None if reference is None else plots.map_row(
                reference[:N_REF_SHOWN], [f"reference #{i + 1}" for i in range(N_REF_SHOWN)], clim))
            self._shown_reference = reference
        if self.preview_pane.object is None:  # made now, so the first preview only swaps data (no new layout)
            self.preview_pane.update(plots.map_image(np.full(result.maps.shape[1:], np.nan, np.float32),
                                                     PREVIEW_PLACEHOLDER, clim, colorbar=False,
                                                     size=PREVIEW_SIZE))

    def show_statistics(self, result: compute.Emulation) -> None:
        """Draw the statistics of ``result`` (computed on the worker, ``compute.compare_maps``)."""
        c = result.comparison
        if not c.has_reference:
            self.power_pane.update(plots.power_plot(c.k, c.power, title="P(k) of the generated maps"))
            self.hist_pane.update(plots.histogram_plot(c.hist))
            self.structure_row.update(plots.structure_panels(c.structure))
            self.zscore_pane.clear()
            self.chi2_pane.clear()
            self._chi2_text.object = ""
        else:
            self.power_pane.update(plots.power_plot(c.k, c.power, c.power_ref))
            self.zscore_pane.update(plots.zscore_plot(c.k, c.z))
            self.chi2_pane.update(plots.chi2_plot(c.chi2, c.chi2_floor))
            gen, floor = np.mean(c.chi2), np.mean(c.chi2_floor)
            self._chi2_text.object = (f"χ²ᵣ of the generated maps: mean **{gen:.3g}**; cosmic-variance floor "
                                      f"(reference, leave-one-out): **{floor:.3g}**; ratio {gen / floor:.3g}")
            self.hist_pane.update(plots.histogram_plot(c.hist, c.hist_ref))
            self.structure_row.update(plots.structure_panels(c.structure, c.structure_ref))
        stem = self._stem(result)
        self._npy.filename = f"generated_maps_{stem}.npy"
        self._html.filename = f"emulate_{stem}.html"
        self._npy.disabled = self._html.disabled = False
        self.ready = True

    def handout(self, model: str):
        """(file stem, handout page) of the maps and statistics shown (on a worker)."""
        from . import handout

        r = self.result
        note = self._reference_info.object.split("\n\n")[0].rstrip(":") + "."
        return (f"emulate_{self._stem(r)}",
                handout.emulate_page(r, self._shown_reference, model=model, note=note))

    @staticmethod
    def _stem(r: compute.Emulation) -> str:
        return f"Om{r.omega_m:.3f}_s8{r.sigma_8:.3f}_seed{r.seed}"

    def figure(self) -> hv.Layout:
        """The current plots as one HoloViews layout (what the HTML download holds)."""
        parts = [p.object for p in (self.maps_row, self.ref_row) if p.object is not None]
        parts += [p.object for p in (self.power_pane, self.zscore_pane, self.chi2_pane, self.hist_pane)
                  if p.object is not None]
        parts += self.structure_row.objects
        return hv.Layout(parts).cols(1).opts(shared_axes=False)

    def _maps_npy(self) -> io.BytesIO:
        buf = io.BytesIO()
        np.save(buf, self.result.maps, allow_pickle=False)
        buf.seek(0)
        return buf

    def _figure_html(self) -> io.BytesIO:
        r = self.result
        return plots.figure_html(self.figure(), f"Emulated maps at Ωₘ={r.omega_m:.3f}, σ₈={r.sigma_8:.3f}")
