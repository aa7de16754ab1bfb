"""Guess-the-universe tab: read (Ωₘ, σ₈) off one map by eye, then see what the models read from it.

A round shows one map: one of the 15 maps of a reference simulation, or a map the diffusion model
generates at hidden parameters drawn uniformly from the prior box. The player sets two sliders
and presses **Reveal**: the truth, the error in prior widths, the round's score and a plain-language
"why" appear at once; then the diffusion likelihood and the P(k) baseline infer from the same map
(``compute.infer_field``, the Infer tab's work, on the worker pool through ``jobs.start_job`` /
``jobs.run_job``; a progress bar meanwhile), drawn as the Infer tab's contours with the truth and
the guess marked, their maxima scored like the guess. **Next round** draws the next map,
**Reset** starts the game again (same seed: same maps).

The rules (puzzles, scores, running score, the "why") are :mod:`.game_rules`, without panel.
Every browser session builds its own tab (``app.build_app``), so rounds and scores are per session;
the game seed is drawn per session and shown, and round n of seed s is the same map everywhere.
"""

from __future__ import annotations

import logging
import secrets

import holoviews as hv
import panel as pn
import param

from explorer.params import OMEGA_M_RANGE, SIGMA_8_RANGE

from . import compute, game_rules, plots, posterior
from .context import AppContext
from .explain import glossary_card
from .game_rules import Outcome, Puzzle, Scoreboard
from .jobs import Job, JobSlot, Superseded, run_job, start_job
from .panes import LivePlot, batch_updates
from .tab import Tab

log = logging.getLogger(__name__)

N_HISTORY = 8  # rounds listed in the score table (the running score counts them all)
RULES = (f"Guess Ωₘ and σ₈ of the universe in the map, then press **Reveal**. Score per round: "
         f"100·exp(−d²/2s²), d = the distance of your guess from the truth in prior widths, "
         f"s = {game_rules.SCORE_SCALE}: 100 for a bullseye, 61 at d = {game_rules.SCORE_SCALE} "
         f"(e.g. Ωₘ off by 0.08), 14 at d = 0.4. The colour scale is the same in every round.")


class GameTab(Tab):
    """One player's game: a map per round, a guess, the reveal, the models' reading, a running score."""

    source = param.Selector(default="simulation", objects={"a simulation (reference set)": "simulation",
                                                           "emulated at hidden parameters": "emulated"},
                            label="the map is")
    omega_m = param.Number(default=0.3, bounds=OMEGA_M_RANGE, step=0.005, label="Ωₘ")
    sigma_8 = param.Number(default=0.8, bounds=SIGMA_8_RANGE, step=0.005, label="σ₈")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), label="game seed (same seed, same maps)")
    reveal = param.Event(label="Reveal")
    next_round = param.Event(label="Next round")
    reset = param.Event(label="Reset")
    number = param.Integer(default=1, bounds=(1, None), doc="The current round, from 1.")
    drawing = param.Boolean(default=False, doc="The round's map is being drawn (or sampled).")
    has_puzzle = param.Boolean(default=False, doc="A map is shown.")
    revealed = param.Boolean(default=False, doc="The current round is revealed (sliders locked).")
    inferring = param.Boolean(default=False, doc="The models read the revealed map (progress bar).")

    def __init__(self, context: AppContext, **params):
        params.setdefault("seed", secrets.randbelow(2**31 - 1))  # per session, shown, reproducible
        super().__init__(**params)
        self.context = context
        self.emulator = context.emulator
        self.ranges = self.emulator.param_ranges
        (om_lo, om_hi), (s8_lo, s8_hi) = self.ranges
        self.param.omega_m.bounds, self.param.sigma_8.bounds = (om_lo, om_hi), (s8_lo, s8_hi)
        if context.reference is None:  # nothing to draw simulations from
            self.param.source.objects = {"emulated at hidden parameters": "emulated"}
            self.source = "emulated"
        self.puzzle: Puzzle | None = None
        self.outcome: Outcome | None = None
        self.inference: compute.Inference | None = None
        self.scoreboard = Scoreboard()
        self._clim = game_rules.common_clim(context.reference, self.ranges)

        self._progress = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width",
                                                visible=self.param.drawing.rx.or_(self.param.inferring))
        self._status = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 10))
        self._error = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._draw_slot = JobSlot(on_progress=self._report)
        self._infer_slot = JobSlot(on_progress=self._report)
        self.map_pane = LivePlot()
        self.map_pane.pane.loading = self.param.drawing
        self.contour_pane = LivePlot()
        self.contour_pane.pane.loading = self.param.inferring
        self.reveal_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.why_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.models_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.score_text = pn.pane.Markdown(self._score_markdown(), sizing_mode="stretch_width")
        self.history_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._reveal_button = pn.widgets.Button.from_param(self.param.reveal, color="primary", disabled=True)
        self._next_button = pn.widgets.Button.from_param(self.param.next_round, color="success", disabled=True)
        self._reset_button = pn.widgets.Button.from_param(self.param.reset, color="light")

        self.param.watch(self._sync_buttons, ["has_puzzle", "revealed", "drawing"])
        self.param.watch(self._on_reveal, "reveal")
        self.param.watch(self._on_next, "next_round")
        self.param.watch(self._on_restart, ["reset", "seed"])
        self.param.watch(self._on_source, "source")

    # ---- layout --------------------------------------------------------------------------------
    def controls(self) -> pn.Column:
        locked = self.param.revealed
        return pn.Column(
            "### Your guess",
            pn.widgets.RadioBoxGroup.from_param(self.param.source, disabled=self.param.drawing),
            pn.widgets.FloatSlider.from_param(self.param.omega_m, format="0.000", disabled=locked),
            pn.widgets.FloatSlider.from_param(self.param.sigma_8, format="0.000", disabled=locked),
            self._reveal_button,
            pn.Row(self._next_button, self._reset_button),
            pn.widgets.IntInput.from_param(self.param.seed),
            self.score_text,
            self.reveal_text,
            width=300,
        )

    def __panel__(self):
        return pn.Row(self.controls(), pn.Column(
            pn.pane.Markdown(RULES, sizing_mode="stretch_width", styles={"font-size": "0.9em"}),
            pn.Row(self._status, self._progress, sizing_mode="stretch_width"),
            self._error,
            pn.Row(self.map_pane, self.contour_pane),
            pn.Row(self.why_text, self.models_text, sizing_mode="stretch_width"),
            pn.Column(self.history_text, visible=self.param.presenter.rx.not_(), sizing_mode="stretch_width"),
            glossary_card("Ωₘ", "σ₈", "log₁₀ Σ", "prior box", "P(k)", "P(k) baseline", "VLB", "Δχ²",
                          "68 % / 95 % contours", "τ (temperature)",
                          title="What do these words mean? Ωₘ, σ₈, P(k), VLB, Δχ², contours, τ …",
                          visible=self.param.presenter.rx.not_()),
            sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def _sync_buttons(self, *_events) -> None:
        self._reveal_button.disabled = not self.has_puzzle or self.revealed
        self._next_button.disabled = self.drawing or (self.has_puzzle and not self.revealed)

    # ---- rounds --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Abandon running jobs (the session closed): they stop at their next progress callback."""
        self._draw_slot.cancel()
        self._infer_slot.cancel()

    async def activate(self) -> None:
        """Draw the first round when the tab is first shown."""
        if self.puzzle is None and self._draw_slot.generation == 0:
            await self.draw()

    async def draw(self) -> None:
        """Draw the map of round ``number`` (a newer call supersedes this one) and clear the reveal."""
        self._stop_inference()
        seed, number, source = self.seed, self.number, self.source
        job = start_job(self._draw_slot, self._draw, seed, number, source)
        self.puzzle, self.outcome, self.inference = None, None, None
        centre = [0.5 * (lo + hi) for lo, hi in self.ranges]  # no anchoring on the last guess
        self.param.update(has_puzzle=False, revealed=False, ready=False, omega_m=centre[0], sigma_8=centre[1])
        with batch_updates():
            self._error.visible = False
            for pane in (self.reveal_text, self.why_text, self.models_text):
                pane.object = ""
            self.contour_pane.clear()
        self._status.object = f"Round {number}: " + ("sampling a map at hidden parameters …" if source == "emulated"
                                                     else "drawing a simulation …")
        await run_job(job, what=f"game round {number} (seed {seed}, {source})", on_busy=self._drawing,
                      on_result=self._show_puzzle, on_error=self._draw_failed, logger=log)

    def _draw(self, job: Job, seed: int, number: int, source: str) -> Puzzle:
        """The round's puzzle (on a worker): ``game_rules.draw_puzzle``."""
        return game_rules.draw_puzzle(self.emulator, self.context.reference, seed=seed, number=number,
                                      source=source, progress=job.progress("denoising step"))

    def _show_puzzle(self, puzzle: Puzzle) -> None:
        self.puzzle = puzzle
        with batch_updates():
            self.map_pane.update(self._map_figure(f"Round {puzzle.number}: which universe is this?"))
            self.has_puzzle = True
        self._status.object = f"Round {puzzle.number}: set the sliders to your guess, then press **Reveal**."

    def _draw_failed(self, err: Exception) -> None:
        self._status.object = ""
        self._error.object, self._error.visible = f"Could not draw round {self.number}: {err}", True

    async def _on_next(self, _event) -> None:
        if self.revealed or self.puzzle is None:
            self.number += 1
            await self.draw()

    async def _on_restart(self, _event) -> None:
        self.scoreboard = Scoreboard()
        self.score_text.object = self._score_markdown()
        self.history_text.object = ""
        self.number = 1
        await self.draw()

    async def _on_source(self, _event) -> None:
        if not self.revealed:  # the unrevealed round is drawn again from the new source
            await self.draw()  # (after a reveal, the next round uses it)

    # ---- reveal --------------------------------------------------------------------------------
    async def _on_reveal(self, _event) -> None:
        if self.puzzle is None or self.revealed:
            return
        puzzle = self.puzzle
        self.outcome = outcome = game_rules.judge(puzzle, (self.omega_m, self.sigma_8), self.ranges)
        self.scoreboard.add(outcome)
        self.param.update(revealed=True, ready=True)
        om, s8 = outcome.truth
        with batch_updates():
            self.map_pane.update(self._map_figure(f"Round {puzzle.number}: Ωₘ = {om:.3f}, σ₈ = {s8:.3f}"))
            self.reveal_text.object = self._reveal_markdown(outcome)
            self.why_text.object = "**Why?**\n\n" + game_rules.explain(outcome)
            self.score_text.object = self._score_markdown()
            self.history_text.object = self._history_markdown()
        await self.infer()

    async def infer(self) -> None:
        """Let the diffusion likelihood and the P(k) baseline read the revealed map (supersedable)."""
        puzzle = self.puzzle
        job = start_job(self._infer_slot, self._infer, puzzle, pool="long")
        self._status.object = (f"Round {puzzle.number}: the diffusion model and the P(k) baseline are reading "
                               f"the same map …")
        self.models_text.object = ("*The models' contours appear here when the inference is done "
                                   "(5 to 30 s on a CPU).*")
        await run_job(job, what=f"game round {puzzle.number} inference", on_busy=self._inferring,
                      on_result=self._inferred, on_error=self._infer_failed, logger=log)

    def _infer(self, job: Job, puzzle: Puzzle) -> compute.Inference:
        """The Infer tab's inference of the round's map with its truth (on a worker)."""
        from explorer.inference import InferenceCancelled

        network = compute.first_likelihood_network(self.emulator)
        try:
            return compute.infer_field(
                compute.likelihood_model(self.emulator, network), puzzle.field, name=f"round {puzzle.number}", kind="log10",
                truth=puzzle.truth, pk_baseline=self.context.pk_baseline, cnn=self.context.cnn, progress=job.progress(),
                cancel=lambda: not job.current, network=network, **compute.network_preset(network))
        except InferenceCancelled:
            raise Superseded(f"inference of round {puzzle.number} cancelled") from None

    def _inferred(self, result: compute.Inference) -> None:
        self.inference = result
        post = result.posterior
        model = game_rules.score(game_rules.distance(_maximum(post), self.outcome.truth, self.ranges))
        self.scoreboard.model_scores[self.outcome.number] = model
        self._status.object = (f"Round {self.outcome.number}: read by the diffusion model in {post.seconds:.0f} s "
                               f"({post.n_evaluations} network evaluations). **Next round** when you are ready.")
        with batch_updates():
            self.contour_pane.update(guess_plot(post, result.baseline, self.outcome.guess, self.ranges))
            self.models_text.object = self._models_markdown(result)
            self.score_text.object = self._score_markdown()
            self.history_text.object = self._history_markdown()

    def handout(self, model: str):
        """(file stem, handout page) of the revealed round, with the models' reading once it is done."""
        from . import handout

        o = self.outcome
        return (f"guess_the_universe_seed{self.seed}_round{o.number}",
                handout.game_page(self.puzzle, o, self.inference, self.scoreboard, model=model, ranges=self.ranges))

    def _infer_failed(self, err: Exception) -> None:
        self._status.object = ""
        self.models_text.object = ""
        self._error.object, self._error.visible = f"The models could not read this map: {err}", True

    def _stop_inference(self) -> None:
        self._infer_slot.cancel()
        self.inferring = False  # a superseded job ends silently, without on_busy(False)

    # ---- jobs' state ---------------------------------------------------------------------------
    def _report(self, fraction: float, _text: str) -> None:
        self._progress.value = int(round(100 * fraction))

    def _drawing(self, busy: bool) -> None:
        if busy:
            self._progress.value = 0
        self.drawing = busy

    def _inferring(self, busy: bool) -> None:
        if busy:
            self._progress.value = 0
        self.inferring = busy

    # ---- display -------------------------------------------------------------------------------
    def _map_figure(self, title: str) -> hv.Image:
        return plots.map_image(self.puzzle.field, title, clim=self._clim, size=270)

    def _reveal_markdown(self, o: Outcome) -> str:
        (e_om, e_s8), (w_om, w_s8) = o.error, o.error_widths
        return (f"### Round {o.number}: {o.score} points\n\n"
                f"| | Ωₘ | σ₈ |\n|---|---|---|\n"
                f"| truth | **{o.truth[0]:.3f}** | **{o.truth[1]:.3f}** |\n"
                f"| your guess | {o.guess[0]:.3f} | {o.guess[1]:.3f} |\n"
                f"| error | {e_om:+.3f} | {e_s8:+.3f} |\n"
                f"| in prior widths | {w_om:+.2f} | {w_s8:+.2f} |\n\n"
                f"Distance d = {o.distance:.2f} prior widths. The map: {self.puzzle.origin}.")

    def _models_markdown(self, result: compute.Inference) -> str:
        truth, guess = self.outcome.truth, self.outcome.guess
        rows = [("you", guess)]
        rows.append(("diffusion model (best fit)", _maximum(result.posterior)))
        if result.baseline is not None:
            rows.append(("P(k) baseline (best fit)", _maximum(result.baseline)))
        if result.cnn is not None:
            rows.append(("CNN estimator (mean)", tuple(result.cnn[n]["mean"] for n in ("omega_m", "sigma_8"))))
        lines = ["| | Ωₘ | σ₈ | d | score |", "|---|---|---|---|---|"]
        for name, (om, s8) in rows:
            d = game_rules.distance((om, s8), truth, self.ranges)
            lines.append(f"| {name} | {om:.3f} | {s8:.3f} | {d:.2f} | {game_rules.score(d)} |")
        post = result.posterior
        inside = _region(post.delta_chi2_truth(), post.levels)
        mine = _region(post.delta_chi2_at(*guess), post.levels)
        return ("\n".join(lines) + f"\n\nDiffusion model: the truth (★) is {inside}, your guess (◆) {mine}. "
                "Contours: white the diffusion model, green the P(k) baseline; solid 68 %, dashed 95 %.")

    def _score_markdown(self) -> str:
        b = self.scoreboard
        if not b.rounds:
            return "**Score**: 0 (no round revealed yet)"
        text = f"**Score: {b.total}** after {b.rounds} round{'s' if b.rounds > 1 else ''} (mean {b.mean:.0f})"
        if b.model_scores:
            n = len(b.model_scores)
            text += f"\n\nDiffusion model: {b.model_total} on {n} round{'s' if n > 1 else ''}"
        return text

    def _history_markdown(self) -> str:
        b = self.scoreboard
        lines = ["| round | map | truth (Ωₘ, σ₈) | your guess | your score | model's score |",
                 "|---|---|---|---|---|---|"]
        for o in b.outcomes[-N_HISTORY:]:
            model = b.model_scores.get(o.number, "…")
            lines.append(f"| {o.number} | {o.source} | {o.truth[0]:.3f}, {o.truth[1]:.3f} | "
                         f"{o.guess[0]:.3f}, {o.guess[1]:.3f} | {o.score} | {model} |")
        return "**Rounds**\n\n" + "\n".join(lines)


def _maximum(post) -> tuple[float, float]:
    """(Ωₘ, σ₈) of the posterior's marginal maxima."""
    return post.estimates["omega_m"]["max"], post.estimates["sigma_8"]["max"]


def _region(delta_chi2: float | None, levels) -> str:
    """Where a point with this Δχ² lies with respect to the diffusion model's contours, in words."""
    if delta_chi2 is None:
        return "(unknown)"
    if delta_chi2 <= levels[0]:
        return "inside its 68 % contour"
    return "inside its 95 % contour" if delta_chi2 <= levels[1] else "outside its 95 % contour"


def guess_plot(post, baseline, guess, ranges, size: int = 270) -> hv.Overlay:
    """The Infer tab's contour figure (``posterior.posterior_plot``) over the whole prior box, with the
    player's ``guess = (Ωₘ, σ₈)`` marked (◆) and the legend under the frame."""
    return posterior.posterior_plot(post, baseline, show_baseline=True, size=size, guess=guess).opts(
        xlim=tuple(ranges[0]), ylim=tuple(ranges[1]), title="What the models read from this map",
        legend_position="bottom", legend_cols=3)
