"""Classroom mode without a browser: the guessing game's rules and tab, the Emulate tab's presets and
seed switch, the glossary and the intro.

The spy emulator of ``test_ui`` stands in for the model; the inference behind a reveal is a fake
returning a Gaussian ``Posterior`` around the truth (the real one is tested in ``test_ui``), so the
figures are the real ones and the whole module runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from explorer.inference import Posterior
from explorer.params import PRIOR
from explorer.ui import compute, game_rules
from explorer.ui.emulate import CUSTOM, EmulateTab
from explorer.ui.explain import GLOSSARY, Intro, glossary_card, glossary_markdown
from explorer.ui.game import GameTab
from explorer.ui.game_rules import Puzzle

from test_ui import context  # noqa: F401  (the fixture: a spy emulator with the tiny data sets)


def run(coro):
    return asyncio.run(coro)


def gaussian_posterior(centre, truth, width=(0.03, 0.05)) -> Posterior:
    """A Posterior on the prior box whose −2 ln L̂ is a Gaussian bowl around ``centre``."""
    om, s8 = np.linspace(0.1, 0.5, 21), np.linspace(0.6, 1.0, 21)
    chi2 = ((om[:, None] - centre[0]) / width[0]) ** 2 + ((s8[None, :] - centre[1]) / width[1]) ** 2
    return Posterior.from_grid(om, s8, chi2, truth=truth)


@pytest.fixture()
def inferred(monkeypatch):
    """``compute.infer_field`` replaced: records its calls, the model's maximum 0.02 above the truth in Ωₘ."""
    calls = []

    def fake_inference(loaded, field, *, name, kind="auto", truth=None, pk_baseline=None, progress=None,
                       cancel=None, **settings):
        calls.append(dict(name=name, kind=kind, truth=truth, field=field, loaded=loaded,
                          **{k: settings.get(k) for k in ("network", "terms", "grid")}))
        post = gaussian_posterior((truth[0] + 0.02, truth[1]), truth)
        return compute.Inference(name, field, kind, post, gaussian_posterior(truth, truth, (0.06, 0.08)))

    monkeypatch.setattr(compute, "infer_field", fake_inference)
    return calls


def play(tab: GameTab, guess) -> None:
    """Set the sliders to ``guess`` and press Reveal."""
    tab.param.update(omega_m=guess[0], sigma_8=guess[1])
    tab.param.trigger("reveal")


# ---- rules --------------------------------------------------------------------------------------

def test_score_of_known_distances():
    assert game_rules.score(0.0) == 100
    assert game_rules.score(0.2) == 61 and game_rules.score(0.4) == 14 and game_rules.score(2**0.5) == 0
    assert game_rules.distance((0.3, 0.8), (0.5, 0.8), PRIOR) == pytest.approx(0.5)  # half the Ωₘ width
    assert game_rules.distance((0.1, 0.6), (0.5, 1.0), PRIOR) == pytest.approx(2**0.5)
    with pytest.raises(ValueError, match="distance"):
        game_rules.score(-1.0)


def test_judge_gives_the_error_in_prior_widths():
    puzzle = Puzzle(3, "simulation", np.zeros((4, 4), np.float32), (0.3, 0.8), "test")
    o = game_rules.judge(puzzle, (0.34, 0.7), PRIOR)
    assert o.number == 3 and o.truth == (0.3, 0.8) and o.guess == (0.34, 0.7)
    np.testing.assert_allclose(o.error, (0.04, -0.1))
    np.testing.assert_allclose(o.error_widths, (0.1, -0.25))
    assert o.distance == pytest.approx(np.hypot(0.1, 0.25)) and o.score == game_rules.score(o.distance)


def test_puzzles_are_reproducible_per_seed_and_round(context):
    def draw(seed, number, source="simulation"):
        return game_rules.draw_puzzle(context.emulator, context.reference, seed=seed, number=number, source=source)

    a, b = draw(7, 1), draw(7, 1)
    assert a.truth == b.truth and np.array_equal(a.field, b.field) and a.origin == b.origin
    assert tuple(context.reference.cmd.theta[int(a.origin.split("simulation ")[1].split()[0])]) == a.truth
    assert len({draw(7, n).origin for n in range(1, 6)}) > 1 and len({draw(s, 1).origin for s in range(5)}) > 1
    e = draw(7, 2, "emulated")
    assert e.truth == draw(7, 2, "emulated").truth and e.field.shape == (16, 16)
    call = context.emulator.calls[-1]
    assert (call["omega_m"], call["sigma_8"], call["n"]) == (*e.truth, 1)
    assert all(lo <= v <= hi for v, (lo, hi) in zip(e.truth, context.emulator.param_ranges))
    with pytest.raises(ValueError, match="source must be one of"):
        draw(7, 1, "lattice")
    with pytest.raises(ValueError, match="needs reference maps"):
        game_rules.draw_puzzle(context.emulator, None, seed=1, number=1, source="simulation")


def test_explanation_follows_the_errors():
    puzzle = Puzzle(1, "simulation", np.zeros((4, 4), np.float32), (0.4, 0.9), "test")
    text = game_rules.explain(game_rules.judge(puzzle, (0.2, 0.92), PRIOR))
    assert "**Ωₘ** is higher than you guessed" in text and "brighter" in text
    assert "**σ₈**: close" in text and "opposite" not in text
    text = game_rules.explain(game_rules.judge(puzzle, (0.2, 1.0), PRIOR))
    assert "**σ₈** is lower than you guessed" in text and "opposite directions" in text


# ---- the tab ------------------------------------------------------------------------------------

def test_reveal_shows_truth_error_score_and_the_models(context, inferred):
    tab = GameTab(context, seed=11)
    assert tab._reveal_button.disabled and tab.puzzle is None  # nothing drawn before the tab is shown
    run(tab.activate())
    truth = tab.puzzle.truth
    assert tab.map_pane.object is not None and "which universe" in tab.map_pane.object.opts.get().kwargs["title"]
    assert not tab._reveal_button.disabled and tab._next_button.disabled and (tab.omega_m, tab.sigma_8) == (0.3, 0.8)
    assert tab.reveal_text.object == "" and tab.why_text.object == ""  # hidden until the reveal

    play(tab, (0.25, 0.9))
    o = tab.outcome
    assert o.guess == (0.25, 0.9) and o.truth == truth and tab.revealed
    assert o.score == game_rules.score(game_rules.distance((0.25, 0.9), truth, PRIOR))
    assert f"### Round 1: {o.score} points" in tab.reveal_text.object
    assert f"**{truth[0]:.3f}**" in tab.reveal_text.object
    assert f"| in prior widths | {o.error_widths[0]:+.2f} |" in tab.reveal_text.object
    assert "**Why?**" in tab.why_text.object and f"**Score: {o.score}** after 1 round" in tab.score_text.object
    assert f"Ωₘ = {truth[0]:.3f}" in tab.map_pane.object.opts.get().kwargs["title"]
    assert tab._reveal_button.disabled and not tab._next_button.disabled
    # the Infer tab's inference, on the revealed map, with the truth
    # (the spy emulator has no small network: the full network's precise preset)
    assert inferred == [dict(name="round 1", kind="log10", truth=truth, field=tab.puzzle.field, loaded=context.emulator.loaded,
                             network="full", terms=compute.DEFAULT_TERMS, grid=compute.PRECISE_GRID)]
    overlay = tab.contour_pane.object
    labels = {el.label for el in overlay if el.label}
    assert {"truth", "your guess", "maximum"} <= labels
    model = game_rules.score(game_rules.distance((truth[0] + 0.02, truth[1]), truth, PRIOR))
    assert tab.scoreboard.model_scores == {1: model} and "P(k) baseline (best fit)" in tab.models_text.object
    assert f"Diffusion model: {model} on 1 round" in tab.score_text.object
    assert not tab.inferring and not tab._progress.visible and not tab.contour_pane.pane.loading

    play(tab, (0.5, 0.6))  # a revealed round cannot be scored twice, nor its guess changed
    assert tab.scoreboard.rounds == 1 and tab.outcome.guess == (0.25, 0.9)


def test_the_game_reads_with_the_small_networks_fast_preset_where_it_is_calibrated(context, inferred, monkeypatch):
    from types import SimpleNamespace

    small = SimpleNamespace(metadata={"calibration": {"temperature": 9.0, "terms": compute.FAST_TERMS, "n_noise": 1}})
    monkeypatch.setattr(context.emulator, "network", lambda name: small if name == "small" else None, raising=False)
    tab = GameTab(context, seed=11)
    run(tab.activate())
    play(tab, (0.25, 0.9))
    assert len(inferred) == 1 and inferred[0]["loaded"] is small
    assert (inferred[0]["network"], inferred[0]["terms"], inferred[0]["grid"]) == ("small", "vlb:8", "3x3+3x3")
    # calibrated only for other terms: the full network reads the map
    small.metadata["calibration"]["terms"] = compute.DEFAULT_TERMS
    tab.param.trigger("next_round")
    play(tab, (0.25, 0.9))
    assert inferred[-1]["network"] == "full" and inferred[-1]["loaded"] is context.emulator.loaded


def test_rounds_running_score_and_reset(context, inferred):
    tab = GameTab(context, seed=4)
    run(tab.activate())
    first = tab.puzzle
    tab.param.trigger("next_round")  # only after the reveal
    assert tab.number == 1 and tab.puzzle is first
    play(tab, (0.2, 0.7))
    tab.param.trigger("next_round")
    assert tab.number == 2 and not tab.revealed and tab.contour_pane.object is None and tab.reveal_text.object == ""
    assert (tab.omega_m, tab.sigma_8) == (0.3, 0.8)  # sliders back in the middle
    play(tab, (0.4, 0.9))
    b = tab.scoreboard
    assert b.rounds == 2 and b.total == sum(o.score for o in b.outcomes) and "round | map" in tab.history_text.object
    assert tab.history_text.object.count("| simulation |") == 2

    tab.param.trigger("reset")  # same seed: the same maps again, the score from zero
    assert tab.number == 1 and tab.scoreboard.rounds == 0 and tab.puzzle.truth == first.truth
    assert np.array_equal(tab.puzzle.field, first.field) and tab.score_text.object.startswith("**Score**: 0")
    tab.seed = 5  # a new seed is a new game
    assert tab.number == 1 and tab.scoreboard.rounds == 0


def test_sessions_are_independent_and_a_seed_replays_a_game(context, inferred):
    alice, bob = GameTab(context), GameTab(context)
    assert alice.seed != bob.seed  # each session draws its own seed
    carol = GameTab(context, seed=alice.seed)
    for tab in (alice, bob, carol):
        run(tab.activate())
    assert carol.puzzle.truth == alice.puzzle.truth and np.array_equal(carol.puzzle.field, alice.puzzle.field)
    play(alice, (0.3, 0.8))
    assert alice.scoreboard.rounds == 1 and bob.scoreboard.rounds == 0 and carol.scoreboard.rounds == 0
    assert not bob.revealed and not bob._reveal_button.disabled and bob.map_pane.object is not None


def test_emulated_round_samples_one_map_at_hidden_parameters(context, inferred):
    tab = GameTab(context, seed=2)
    run(tab.activate())
    assert context.emulator.calls == []  # the first round is a simulation
    tab.source = "emulated"  # an unrevealed round is drawn again from the new source
    call = context.emulator.calls[-1]
    assert tab.puzzle.source == "emulated" and (call["omega_m"], call["sigma_8"], call["n"]) == (*tab.puzzle.truth, 1)
    play(tab, (0.3, 0.8))
    assert "generated by the diffusion model" in tab.reveal_text.object and tab.scoreboard.model_scores


def test_next_round_stops_a_running_inference(context, monkeypatch):
    started, release = threading.Event(), threading.Event()
    stopped = []

    def slow_inference(loaded, field, *, cancel=None, progress=None, **kw):
        started.set()
        while not release.wait(0.01):
            if cancel():
                from explorer.inference import InferenceCancelled

                stopped.append(True)
                raise InferenceCancelled("cancelled")
        raise AssertionError("never cancelled")

    monkeypatch.setattr(compute, "infer_field", slow_inference)
    tab = GameTab(context, seed=1)

    async def scenario():
        await tab.draw()
        tab.param.update(omega_m=0.2)
        reveal = asyncio.ensure_future(tab._on_reveal(None))
        while not started.is_set():
            await asyncio.sleep(0.01)
        assert tab.inferring and tab._progress.visible and tab.contour_pane.pane.loading
        assert tab.scoreboard.rounds == 1  # the score does not wait for the models
        tab.number += 1
        await tab.draw()  # what Next round does
        await reveal

    run(scenario())
    assert stopped == [True] and not tab.inferring and not tab._progress.visible
    assert tab.number == 2 and not tab.revealed and tab.scoreboard.model_scores == {}


def test_failed_inference_is_shown_and_the_round_still_counts(context, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ValueError("field must be 16² log10 Σ")

    monkeypatch.setattr(compute, "infer_field", broken)
    tab = GameTab(context, seed=3)
    run(tab.activate())
    with caplog.at_level("INFO", logger="explorer.ui.game"):
        play(tab, (0.3, 0.8))
    assert tab._error.visible and tab._error.object == "The models could not read this map: field must be 16² log10 Σ"
    assert tab.scoreboard.rounds == 1 and not tab.inferring and not tab._next_button.disabled


# ---- Emulate tab: presets and the seed switch ---------------------------------------------------

def test_presets_set_both_sliders_in_one_sampling(context):
    context.reference = None  # the maps' own statistics only: 4x faster, same watchers
    tab = EmulateTab(context)
    assert tab.preset.startswith("fiducial")  # (0.3, 0.8), the sliders' default
    labels = tab.param.preset.objects
    assert len(labels) == 7 and labels[-1] == CUSTOM
    corner = next(label for label in labels if "most matter, clumpiest" in label)
    tab.preset = corner
    assert [(c["omega_m"], c["sigma_8"]) for c in context.emulator.calls] == [(0.5, 1.0)]
    tab.preset = next(label for label in labels if "σ₈ were lower" in label)
    assert (tab.omega_m, tab.sigma_8) == (0.3, 0.65) and len(context.emulator.calls) == 2
    tab.omega_m = 0.33  # the sliders no longer match a preset
    assert tab.preset == CUSTOM and len(context.emulator.calls) == 3


def test_fresh_seed_mode_draws_a_seed_per_change(context):
    context.reference = None
    tab = EmulateTab(context)
    tab.omega_m = 0.2
    assert context.emulator.calls[-1]["seed"] == 0 and tab.seed == 0  # same seed: one layout, reshaped
    tab.seed_mode = "fresh"
    tab.sigma_8 = 0.9
    calls = context.emulator.calls
    assert len(calls) == 2 and calls[-1]["seed"] == tab.seed != 0  # one sampling, with the new seed
    seed = tab.seed
    tab.n_maps = 2  # other settings keep the seed
    assert len(calls) == 3 and calls[-1]["seed"] == seed


# ---- glossary and intro -------------------------------------------------------------------------

def test_glossary_explains_the_jargon_in_collapsed_cards():
    for term in ("1P", "VLB", "χ²ᵣ", "leave-one-out floor", "τ (temperature)", "P(k)", "Δχ²",
                 "68 % / 95 % contours", "Ωₘ", "σ₈"):
        assert len(GLOSSARY[term]) > 40
    assert "2.30" in GLOSSARY["Δχ²"] and "6.18" in GLOSSARY["68 % / 95 % contours"]
    card = glossary_card("P(k)", "VLB")
    assert card.collapsed and "P(k), VLB" in card.title and "**VLB**" in card.objects[0].object
    assert glossary_markdown().count("\n- ") == len(GLOSSARY) - 1
    with pytest.raises(ValueError, match="no glossary entry"):
        glossary_markdown("wormhole")
    intro = Intro()
    view = intro.__panel__()
    assert view.visible and "Ωₘ" in view.objects[0].object and "Guess the universe" in view.objects[0].object
    intro.param.trigger("dismiss")
    assert not view.visible
