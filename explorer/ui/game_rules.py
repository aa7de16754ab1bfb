"""The rules of "Guess the universe", without panel: puzzles, scores, the running score, the "why".

A round shows one map ``field: (r, r) float32 log10 Σ`` whose parameters θ = (Ωₘ, σ₈) are
hidden. The player guesses θ̂; the error is measured in prior widths w = (hi − lo) of each
parameter (0.4 for both in the CAMELS box), and the round scores

    d = sqrt(Σ_i ((θ̂_i − θ_i) / w_i)²),     score = round(100 · exp(−d² / (2 s²))),   s = 0.2,

so a perfect guess scores 100, d = 0.2 (e.g. Ωₘ off by 0.08) scores 61, d = 0.4 scores 14, and
a guess from the opposite corner of the box nothing. The models' maxima are scored the same way.

Randomness: round n of game seed s draws from ``numpy.random.default_rng([s, n])``, so a round
does not depend on what happened before it (changing the map source, skipping, resetting): the
same seed gives the same universes, in every session (a class can play the same game).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .compute import Sampler, draw  # through the app's sampling gate: batched with the sliders

SCORE_SCALE = 0.2  # s: the distance (in prior widths) at which a round scores 100·e^(−1/2) = 61
SOURCES = ("simulation", "emulated")
CLOSE = 0.1        # |error| below this many prior widths counts as "spot on" in the explanation


def prior_widths(ranges) -> np.ndarray:
    """(2,) widths hi − lo of ``ranges = ((lo, hi), (lo, hi))``, the (Ωₘ, σ₈) prior box."""
    return np.array([hi - lo for lo, hi in ranges], dtype=np.float64)


def distance(guess, truth, ranges) -> float:
    """Euclidean distance between ``guess`` and ``truth`` (each (Ωₘ, σ₈)) in prior widths."""
    return float(np.hypot(*((np.asarray(guess, float) - np.asarray(truth, float)) / prior_widths(ranges))))


def score(d: float) -> int:
    """Points of a guess at distance ``d`` prior widths from the truth: 100 · exp(−d²/2s²), rounded."""
    if not np.isfinite(d) or d < 0:
        raise ValueError(f"distance must be finite and non-negative, got {d}")
    return int(round(100.0 * np.exp(-0.5 * (d / SCORE_SCALE) ** 2)))


@dataclass(frozen=True, eq=False)
class Puzzle:
    """One round's map and its hidden parameters."""

    number: int                      # the round, from 1
    source: str                      # "simulation" or "emulated"
    field: np.ndarray                # (r, r) float32 log10 Σ [(M_⊙/h)/(Mpc/h)²]
    truth: tuple[float, float]       # (Ωₘ, σ₈), shown after the reveal
    origin: str                      # where the map comes from, in words (shown after the reveal)


@dataclass(frozen=True)
class Outcome:
    """A revealed round: the guess against the truth."""

    number: int
    source: str
    guess: tuple[float, float]       # (Ωₘ, σ₈) of the player
    truth: tuple[float, float]
    error: tuple[float, float]       # guess − truth
    error_widths: tuple[float, float]  # guess − truth in prior widths
    distance: float                  # in prior widths
    score: int


def judge(puzzle: Puzzle, guess, ranges) -> Outcome:
    """The outcome of guessing ``guess = (Ωₘ, σ₈)`` for ``puzzle`` in the prior box ``ranges``."""
    guess = (float(guess[0]), float(guess[1]))
    error = np.subtract(guess, puzzle.truth)
    widths = error / prior_widths(ranges)
    d = distance(guess, puzzle.truth, ranges)
    return Outcome(puzzle.number, puzzle.source, guess, puzzle.truth, (float(error[0]), float(error[1])),
                   (float(widths[0]), float(widths[1])), d, score(d))


def puzzle_rng(seed: int, number: int) -> np.random.Generator:
    """The generator of round ``number`` of game ``seed`` (independent of every other round)."""
    if seed < 0 or number < 1:
        raise ValueError(f"need seed >= 0 and round number >= 1, got seed={seed}, number={number}")
    return np.random.default_rng([int(seed), int(number)])


def draw_puzzle(emulator, reference, *, seed: int, number: int, source: str,
                progress: Callable[[int, int], None] | None = None) -> Puzzle:
    """Round ``number`` of game ``seed``: a map of a reference simulation, or one emulated at hidden θ.

    ``source="simulation"``: one of the 15 maps of a simulation of ``reference`` (a
    ``reference.ReferenceSet``), both drawn uniformly. ``source="emulated"``: θ uniform in the
    ``emulator``'s prior box and a sampling seed, then one map from ``emulator.sample`` (its
    default sampler; ``progress(done, total)`` per denoising step).
    """
    rng = puzzle_rng(seed, number)
    if source == "simulation":
        if reference is None:
            raise ValueError("source='simulation' needs reference maps (EXPLORER_REFERENCE); none are loaded")
        sim = int(rng.integers(reference.cmd.n_sims))
        maps = reference.maps(sim)
        j = int(rng.integers(len(maps)))
        truth = tuple(float(v) for v in reference.cmd.theta[sim, :2])
        origin = f"map {j + 1} of {len(maps)} of simulation {sim} of `{reference.source}`"
        return Puzzle(number, source, np.asarray(maps[j], dtype=np.float32), truth, origin)
    if source == "emulated":
        (om_lo, om_hi), (s8_lo, s8_hi) = emulator.param_ranges
        truth = (float(rng.uniform(om_lo, om_hi)), float(rng.uniform(s8_lo, s8_hi)))
        sample_seed = int(rng.integers(2**31 - 1))
        maps = draw(emulator, *truth, 1, sample_seed, Sampler(), progress)
        origin = f"generated by the diffusion model at hidden parameters (sampling seed {sample_seed})"
        return Puzzle(number, source, np.asarray(maps[0], dtype=np.float32), truth, origin)
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def common_clim(reference, ranges, percentiles=(1.0, 99.9)) -> tuple[float, float] | None:
    """One colour range for every round: percentiles of the maps of the reference simulations
    nearest to the four corners of the prior box (None without a reference).

    With a fixed scale the overall brightness of a map can be compared between rounds (its mean
    log10 Σ grows with Ωₘ), which a per-map scale would hide.
    """
    if reference is None:
        return None
    sims = {reference.nearest(om, s8, k=1)[0].sim for om in ranges[0] for s8 in ranges[1]}
    values = np.concatenate([reference.maps(s).ravel() for s in sorted(sims)])
    lo, hi = np.percentile(values, percentiles)
    return float(lo), float(max(hi, lo + 1e-6))


def explain(outcome: Outcome) -> str:
    """Why the map looks the way it does, for this guess: one plain-language sentence per parameter."""
    (e_om, e_s8), (w_om, w_s8) = outcome.error, outcome.error_widths
    om, s8 = outcome.truth
    lines = []
    if abs(w_om) < CLOSE:
        lines.append(f"**Ωₘ**: close (off by {abs(e_om):.3f}). The overall brightness gives it away: the more "
                     "matter, the more mass in every pixel.")
    elif e_om < 0:
        lines.append(f"**Ωₘ** is higher than you guessed ({om:.3f}): more matter, so the whole map is brighter "
                     "on average, and gravity has pulled it into thicker, more connected filaments.")
    else:
        lines.append(f"**Ωₘ** is lower than you guessed ({om:.3f}): less matter, so the map is fainter on "
                     "average, with thinner filaments and wide, empty voids.")
    if abs(w_s8) < CLOSE:
        lines.append(f"**σ₈**: close (off by {abs(e_s8):.3f}). The contrast between dense knots and empty voids "
                     "is what σ₈ sets.")
    elif e_s8 < 0:
        lines.append(f"**σ₈** is higher than you guessed ({s8:.3f}): matter is clumpier, since the early ripples "
                     "were stronger, more of it has collapsed into bright, compact knots (halos) with darker "
                     "voids between them: more contrast.")
    else:
        lines.append(f"**σ₈** is lower than you guessed ({s8:.3f}): matter is smoother, with fewer bright knots "
                     "and less contrast between the dense and the empty regions.")
    if abs(w_om) >= CLOSE and abs(w_s8) >= CLOSE and e_om * e_s8 < 0:
        lines.append("Your two errors go in opposite directions, a common trade: more matter with weaker ripples "
                     "and less matter with stronger ones both make a similar amount of clumping, which is why "
                     "the contours of the models are tilted.")
    return "\n\n".join(lines)


@dataclass
class Scoreboard:
    """The revealed rounds of one game, and the diffusion model's score on the same maps."""

    outcomes: list[Outcome] = field(default_factory=list)
    model_scores: dict[int, int] = field(default_factory=dict)  # round -> score of the model's maximum

    def add(self, outcome: Outcome) -> None:
        if any(o.number == outcome.number for o in self.outcomes):
            raise ValueError(f"round {outcome.number} was already revealed")
        self.outcomes.append(outcome)

    @property
    def rounds(self) -> int:
        return len(self.outcomes)

    @property
    def total(self) -> int:
        return sum(o.score for o in self.outcomes)

    @property
    def mean(self) -> float | None:
        return self.total / self.rounds if self.outcomes else None

    @property
    def model_total(self) -> int:
        return sum(self.model_scores.values())
