"""The work behind each tab as plain functions (no panel): a notebook can call exactly what the app calls.

Each function takes the settings' values as keyword arguments (the views' parameter names) and
returns a fixed dataclass that the plot helpers turn into figures. They run on worker threads;
``progress(done, total)`` is called as work advances and may raise to abandon the job.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from explorer import BOX_SIZE
from explorer.model.samplers import TRANSLATION_START_METHODS
from explorer.params import PARAM_NAMES
from explorer.inference.defaults import (DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_TERMS, FAST_COARSE, FAST_FINE,
                                         FAST_NETWORK, FAST_TERMS)
from explorer.stats import (Histograms, Response, Structure, histogram_bins, leave_one_out_chi2,
                            pixel_histograms, power_spectrum, reduced_chi2, response_ratio,
                            structure_statistics, z_scores)

from .batching import SAMPLING, BatchingSampler

Progress = Callable[[int, int], None]

#: Sampler choices offered in the app: label -> (method, steps[, network]); None = the weights' default.
#: Without a network the weights' default network samples (the small one for the shipped weights);
#: "full" is the network inference uses.
@dataclass(frozen=True)
class Sampler:
    """A sampler setting for ``Emulator.sample``; None fields take the weights' defaults."""

    method: str | None = None
    steps: int | None = None
    network: str | None = None  # "small", "full" or another sub-folder network ("fast")
    slow: bool = False  # seconds or more per map: runs with the long jobs, not in the sliders' queue


#: The app's sampler menu: label -> setting (the compute functions take the setting, not the label).
SAMPLER_CHOICES = {
    "fast (model default)": Sampler(),
    "few-call: translation start + 4 calls (3x faster)": Sampler("sde-translation", 4),
    "fast network: 4 distilled DDIM calls (fastest)": Sampler(None, None, "fast"),
    "full network: Gaussian start + 30 Karras levels (slower)": Sampler("sde-dpmsolver++-karras-gauss", 30, "full",
                                                                         slow=True),
    "DDPM, 25 strided steps (fastest, rough)": Sampler("ddpm-strided", 25),
    "DDPM, 50 strided steps": Sampler("ddpm-strided", 50),
    "DDPM, 250 strided steps": Sampler("ddpm-strided", 250, slow=True),
    "Gaussian start + 30 Karras levels (14 network calls)": Sampler("sde-dpmsolver++-karras-gauss", 30),
    "Gaussian start + 20 Karras levels (9 network calls, rougher)": Sampler("sde-dpmsolver++-karras-gauss", 20),
    "stochastic DPM-Solver++, 30 Karras steps": Sampler("sde-dpmsolver++-karras", 30),
    "stochastic DPM-Solver++, 15 Karras steps (faster, rougher)": Sampler("sde-dpmsolver++-karras", 15),
    "stochastic DPM-Solver++, 30 even steps": Sampler("sde-dpmsolver++", 30),
    "DDIM, 50 steps": Sampler("ddim", 50),
    "DDPM, 1000 steps (paper mode, full network, slow)": Sampler("ddpm", None, "full", slow=True),
}


def sampler_choices(emulator) -> list[str]:
    """The menu labels of :data:`SAMPLER_CHOICES` these weights can run: an entry naming a network
    the weights folder lacks (e.g. "fast", made by ``explorer distill``), or the few-call sampler
    where the weights have no translation start (``explorer fit-start``), is left out."""
    folder = getattr(emulator, "folder", None)

    def available(sampler):
        network = sampler.network
        if sampler.method in TRANSLATION_START_METHODS and not has_translation_start(emulator):
            return False
        return network is None or network in getattr(emulator, "networks", ("full",)) or (
            folder is not None and (folder / network / "explorer.json").is_file())

    return [label for label, s in SAMPLER_CHOICES.items() if available(s)]


#: names for the Emulate tab's first sampler (``--sampler`` / ``EXPLORER_SAMPLER``), besides any menu label
#: and "auto" (:func:`initial_sampler`)
SAMPLER_ALIASES = {"default": next(iter(SAMPLER_CHOICES)),
                   "few-call": next(label for label, s in SAMPLER_CHOICES.items() if s.method in TRANSLATION_START_METHODS)}
AUTO = "auto"
#: "auto" starts the sliders on the few-call sampler where the default sampler's 4 maps take longer than
#: this on the machine (:func:`default_sampling_seconds`): a release -> maps drawn within 1 s leaves the
#: sampling about half of it (measured in Chromium: 0.77 s with the few-call sampler on an AMD EPYC, where
#: the default samples 4 maps in 0.79 s and is drawn after 1.36 s; 0.9-1.3 s with the default on an Intel
#: Xeon with AMX, where it samples them in 0.36-0.43 s in bfloat16).
AUTO_FEW_CALL_ABOVE_S = 0.5


def check_sampler_name(name: str) -> str:
    """``name`` if it is "auto", an alias of :data:`SAMPLER_ALIASES` or a label of :data:`SAMPLER_CHOICES`,
    else ValueError listing the names."""
    if name != AUTO and name not in SAMPLER_ALIASES and name not in SAMPLER_CHOICES:
        raise ValueError(f"sampler must be one of {sorted([AUTO, *SAMPLER_ALIASES])} or a label of the sampler menu, "
                         f"got {name!r}")
    return name


def initial_sampler(name: str, labels: list[str], emulator=None) -> str:
    """The menu label the setting ``name`` (:func:`check_sampler_name`) selects among ``labels`` (those these
    weights offer, :func:`sampler_choices`); the first label where the weights cannot run it (e.g.
    "few-call" without a translation start). "auto": the few-call sampler where the weights offer it and
    ``emulator``'s default sampler takes longer than :data:`AUTO_FEW_CALL_ABOVE_S` for 4 maps on this
    machine (measured once per emulator, :func:`default_sampling_seconds`), else the default."""
    if name == AUTO:
        slow = (emulator is not None and SAMPLER_ALIASES["few-call"] in labels
                and default_sampling_seconds(emulator) > AUTO_FEW_CALL_ABOVE_S)
        name = "few-call" if slow else "default"
    label = SAMPLER_ALIASES.get(name, name)
    return label if label in labels else labels[0]


def auto_sampler_note(setting: str, label: str, emulator) -> str:
    """A line for under the sampler menu where "auto" started it on the few-call sampler (why, and that the
    menu changes it); "" otherwise."""
    if setting != AUTO or label != SAMPLER_ALIASES["few-call"]:
        return ""
    return (f"Started on the few-call sampler: the default takes {default_sampling_seconds(emulator):.2f} s "
            "for 4 maps on this machine. The default (first in the menu) is the model's reference sampler; "
            "both match the simulations' statistics within a few per cent (README, \"Few-call sampler\").")


_TIMINGS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_TIMING_LOCK = threading.Lock()


def default_sampling_seconds(emulator, repeats: int = 2) -> float:
    """Seconds ``emulator``'s default sampler takes for 4 maps at the prior's centre on this machine: one
    draw to set up the network's kernels (discarded), then the fastest of ``repeats`` timed draws.
    Measured once per emulator and process (under a lock: a second caller waits for the first's
    figure); the app's warm-up at server start measures it (:func:`explorer.ui.context.warm_up`)."""
    with _TIMING_LOCK:
        if emulator not in _TIMINGS:
            omega_m, sigma_8 = (float(sum(r)) / 2 for r in emulator.param_ranges)
            emulator.sample(omega_m, sigma_8, n=4, seed=0)
            times = []
            for seed in range(1, 1 + max(1, int(repeats))):
                start = time.perf_counter()
                emulator.sample(omega_m, sigma_8, n=4, seed=seed)
                times.append(time.perf_counter() - start)
            _TIMINGS[emulator] = min(times)
        return _TIMINGS[emulator]


def has_translation_start(emulator) -> bool:
    """Whether ``emulator``'s weights can run the few-call sampler (a fitted translation start)."""
    return getattr(getattr(emulator, "loaded", None), "translation_start", None) is not None


#: The preview drawn while a slider is dragged: one map of the few-call sampler (translation start,
#: 4 network calls; README, "A 4-call sampler without distillation") where the weights have its start,
PREVIEW_SAMPLER = Sampler("sde-translation", 4)
#: ... else the Gaussian start and 10 Karras levels (5 network calls, 0.13-0.15 s on 2 cores) ...
PREVIEW_GAUSSIAN = Sampler("sde-dpmsolver++-karras-gauss", 10)
#: ... and for weights without either start
PREVIEW_FALLBACK = Sampler("ddpm-strided", 10)


def preview_sampler(emulator) -> Sampler:
    """:data:`PREVIEW_SAMPLER` where the weights have a translation start, else :data:`PREVIEW_GAUSSIAN`
    where they have a Gaussian start, else :data:`PREVIEW_FALLBACK`."""
    if has_translation_start(emulator):
        return PREVIEW_SAMPLER
    start = getattr(getattr(emulator, "loaded", None), "gaussian_start", None)
    return PREVIEW_GAUSSIAN if start is not None else PREVIEW_FALLBACK


def preview(emulator, *, omega_m: float, sigma_8: float, seed: int, progress: Progress | None = None,
            batcher: BatchingSampler | None = SAMPLING) -> np.ndarray:
    """One quick map ``(H, W) float32`` log10 Σ at (Ωₘ, σ₈) with :func:`preview_sampler` (no statistics),
    through ``batcher`` (:func:`draw`)."""
    sampler = preview_sampler(emulator)
    return draw(emulator, omega_m, sigma_8, 1, seed, sampler, progress, batcher)[0]


def draw(emulator, omega_m: float, sigma_8: float, n: int, seed: int, sampler: Sampler,
         progress: Progress | None = None, batcher: BatchingSampler | None = SAMPLING) -> np.ndarray:
    """``n`` maps from ``emulator.sample``, or through ``batcher`` (:mod:`.batching`: batched with the
    other sessions' requests, the same maps) where there is one, the sampler is a quick one and the
    emulator can sample batches (``sample_many``; a test double or a user's own emulator need not)."""
    if batcher is None or sampler.slow or not hasattr(emulator, "sample_many"):
        return emulator.sample(omega_m, sigma_8, n=n, seed=seed, method=sampler.method, steps=sampler.steps,
                               progress=progress, network=sampler.network)
    return batcher.sample(emulator, omega_m, sigma_8, n, seed, method=sampler.method, steps=sampler.steps,
                          network=sampler.network, progress=progress).maps


@dataclass(frozen=True, eq=False)
class Comparison:
    """Statistics of generated maps against reference maps of (nearly) the same cosmology; without
    a reference, the generated maps' own statistics (every ``*_ref``, ``z``, ``chi2*`` field None)."""

    k: np.ndarray                # (n_k,) h/Mpc
    power: np.ndarray            # (n, n_k) (Mpc/h)², generated
    power_ref: np.ndarray | None     # (M, n_k) (Mpc/h)², reference
    z: np.ndarray | None         # (n_k,) z-score of the generated mean; None with a single map
    chi2: np.ndarray | None      # (n,) χ²ᵣ of each generated map against the reference
    chi2_floor: np.ndarray | None    # (M,) leave-one-out χ²ᵣ of the reference (cosmic-variance floor)
    hist: Histograms             # generated pixel histograms
    hist_ref: Histograms | None  # reference pixel histograms, same edges
    structure: Structure         # generated, (n, n_t)
    structure_ref: Structure | None  # reference, (M, n_t)

    @property
    def has_reference(self) -> bool:
        return self.power_ref is not None


def compare_maps(maps: np.ndarray, reference: np.ndarray | None, n_bins: int = 40) -> Comparison:
    """Compare generated ``maps (n, H, W)`` with ``reference (M, H, W)``, both log10 Σ, M >= 3; with
    ``reference`` None, the statistics of ``maps`` alone (computed here, on the worker, as well)."""
    ps = power_spectrum(maps, box_size=BOX_SIZE)
    if reference is None:
        return Comparison(k=ps.k, power=ps.power, power_ref=None, z=None, chi2=None, chi2_floor=None,
                          hist=pixel_histograms(maps, histogram_bins(maps, n_bins=n_bins)), hist_ref=None,
                          structure=structure_statistics(maps), structure_ref=None)
    ps_ref = power_spectrum(reference, box_size=BOX_SIZE)
    edges = histogram_bins(maps, reference, n_bins=n_bins)
    return Comparison(
        k=ps.k, power=ps.power, power_ref=ps_ref.power,
        z=z_scores(ps.power, ps_ref.power) if len(maps) > 1 else None,
        chi2=reduced_chi2(ps.power, ps_ref.power), chi2_floor=leave_one_out_chi2(ps_ref.power),
        hist=pixel_histograms(maps, edges), hist_ref=pixel_histograms(reference, edges),
        structure=structure_statistics(maps), structure_ref=structure_statistics(reference),
    )


@dataclass(frozen=True, eq=False)
class Emulation:
    """Maps generated at one cosmology, with their comparison to the reference (if any)."""

    omega_m: float
    sigma_8: float
    seed: int
    maps: np.ndarray                   # (n, H, W) float32 log10 Σ (read-only)
    seconds: float                     # sampling time (when reused: that of the run that sampled them)
    comparison: Comparison             # against the reference, or the maps' own statistics
    reused: bool = False               # the maps came from :class:`SampleCache`, not a new sampling


class SampleCache:
    """The maps last sampled in this process, by emulator and arguments, shared by all sessions.

    A seed fixes the maps: the same emulator, (Ωₘ, σ₈), number of maps, seed and sampler give the
    same maps, so they are sampled once. A class pressing the same preset asks for the same maps,
    and an identical request that comes while its maps are being sampled waits for them
    (:mod:`.batching`); one that comes later finds them here; so does a slider moved back. Holds
    ``size`` results (4 maps of 64² are 64 KiB), least recently used dropped first; the arrays are
    read-only.
    """

    def __init__(self, size: int = 32):
        self.size = int(size)
        self._lock = threading.Lock()
        self._by_emulator: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self, emulator, key: tuple) -> tuple[np.ndarray, float] | None:
        """(maps, sampling seconds) stored for ``key``, or None."""
        with self._lock:
            entries = self._by_emulator.get(emulator)
            if entries is None or key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, emulator, key: tuple, maps: np.ndarray, seconds: float) -> np.ndarray:
        """Store ``maps`` (made read-only, and returned) for ``key``."""
        maps = np.asarray(maps)
        maps.setflags(write=False)
        with self._lock:
            entries = self._by_emulator.setdefault(emulator, OrderedDict())
            entries[key] = (maps, float(seconds))
            entries.move_to_end(key)
            while len(entries) > self.size:
                entries.popitem(last=False)
        return maps


#: The app's cache (:class:`SampleCache`); ``emulate(..., cache=None)`` bypasses it.
SAMPLES = SampleCache()


def emulate(emulator, *, omega_m: float, sigma_8: float, n_maps: int, seed: int, sampler: Sampler = Sampler(),
            reference: np.ndarray | None = None, progress: Progress | None = None,
            cache: SampleCache | None = SAMPLES, batcher: BatchingSampler | None = SAMPLING) -> Emulation:
    """Sample ``n_maps`` maps with ``emulator`` and compare them with ``reference (M, H, W)``.

    Maps already sampled with the same arguments come from ``cache`` (``reused`` is then True);
    ``cache=None`` always samples. New maps are drawn through ``batcher`` (:func:`draw`; None: alone)."""
    key = (float(omega_m), float(sigma_8), int(n_maps), int(seed), sampler.method, sampler.steps, sampler.network)
    hit = None if cache is None else cache.get(emulator, key)
    if hit is not None:
        maps, seconds = hit
    else:
        start = time.perf_counter()
        maps = draw(emulator, omega_m, sigma_8, n_maps, seed, sampler, progress, batcher)
        seconds = time.perf_counter() - start
        if cache is not None:
            maps = cache.put(emulator, key, maps, seconds)
    comparison = compare_maps(maps, reference)
    return Emulation(omega_m, sigma_8, seed, maps, seconds, comparison, reused=hit is not None)


@dataclass(frozen=True, eq=False)
class ParameterResponse:
    """P(k) response to one parameter, generated and (when available) from a 1P reference set."""

    param: str                         # "omega_m" or "sigma_8"
    values: np.ndarray                 # (n_values,) the varied parameter
    fiducial: tuple[float, float]      # (Ωₘ, σ₈) the ratio is taken against
    k: np.ndarray                      # (n_k,) h/Mpc
    maps: np.ndarray                   # (n_values, n_seeds, H, W) generated log10 Σ
    power: np.ndarray                  # (n_values, n_seeds, n_k) generated
    response: Response                 # generated ratio to the fiducial (same seeds)
    maps_ref: np.ndarray | None        # (n_values, 15, H, W) 1P reference maps
    power_ref: np.ndarray | None       # (n_values, 15, n_k)
    response_ref: Response | None


def parameter_response(emulator, *, param: str, values, fiducial: tuple[float, float], n_seeds: int,
                       seed: int, sampler: Sampler = Sampler(), onep=None, progress: Progress | None = None
                       ) -> ParameterResponse:
    """Vary ``param`` over ``values`` with the other at its fiducial value and the seed fixed.

    Every value is sampled with the same ``seed``, so the ratio to the fiducial cancels most of
    the sample variance, as the fixed initial conditions of a 1P set do. ``onep`` (a
    ``reference.OnePSet``) supplies the simulated response where it has every value.
    """
    if param not in PARAM_NAMES:
        raise ValueError(f"param must be 'omega_m' or 'sigma_8', got {param!r}")
    values = np.asarray(sorted(set(float(v) for v in values)))
    j = 0 if param == "omega_m" else 1
    thetas = [tuple(float(v) if i == j else fiducial[i] for i in range(2)) for v in values]
    if fiducial not in thetas:
        thetas.append(tuple(fiducial))
    done_maps, total_maps = 0, len(thetas)
    sampled = {}
    for theta in thetas:
        def step(done, total, offset=done_maps):
            if progress is not None:
                progress(offset * total + done, total_maps * total)
        sampled[theta] = emulator.sample(*theta, n=n_seeds, seed=seed, method=sampler.method, steps=sampler.steps,
                                         progress=step, network=sampler.network)
        done_maps += 1
    maps = np.stack([sampled[t] for t in thetas[:len(values)]])           # (n_values, n_seeds, H, W)
    k, power = _grouped_power(maps)
    fid_power = power_spectrum(sampled[tuple(fiducial)], box_size=BOX_SIZE).power
    response = response_ratio(power, fid_power)

    maps_ref = power_ref = response_ref = None
    if onep is not None:
        available = dict(onep.values(param))
        fid_sim = dict(onep.values(param)).get(fiducial[j])
        if fid_sim is not None and all(v in available for v in values):
            maps_ref = np.stack([onep.maps(available[v]) for v in values])
            power_ref = _grouped_power(maps_ref)[1]
            fid_ref = power_spectrum(onep.maps(fid_sim), box_size=BOX_SIZE).power
            response_ref = response_ratio(power_ref, fid_ref)
    return ParameterResponse(param, values, tuple(fiducial), k, maps, power, response,
                             maps_ref, power_ref, response_ref)


def _grouped_power(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(k) of ``maps (G, S, H, W)``: k ``(n_k,)`` and power ``(G, S, n_k)``."""
    ps = power_spectrum(maps.reshape(-1, *maps.shape[-2:]), box_size=BOX_SIZE)
    return ps.k, ps.power.reshape(*maps.shape[:2], -1)


#: Likelihood choices of the infer tab: label -> VLB ``terms`` (explorer.inference.vlb.term_timesteps).
TERM_CHOICES = {
    "whole bound, 8 strata, small scales down-weighted (the full network's default, calibrated)": DEFAULT_TERMS,
    "whole bound, 8 strata, every scale alike (the small network's default, calibrated)": "vlb:8",
    "whole bound, 4 strata (faster, less precise)": "vlb:4",
    "L0 (seed paper)": "L0",
    "L0 … L4 (sum of 5 terms)": "sum:5",
    "L0 … L19 (Diffusion-HMC, 20× slower)": "sum:20",
}


def _grid_name(coarse, fine) -> str:
    return "+".join("x".join(str(n) for n in shape) for shape in (coarse, fine))


PRECISE_GRID, FAST_GRID = _grid_name(DEFAULT_COARSE, DEFAULT_FINE), _grid_name(FAST_COARSE, FAST_FINE)
#: Grids of the infer tab: label -> "COARSExCOARSE+FINExFINE" points per axis (``grid_shape``).
GRID_CHOICES = {
    "4×4 + 4×4 points (precise)": PRECISE_GRID,
    "3×3 + 3×3 points (fast, 44 % fewer evaluations)": FAST_GRID,
}


def grid_shape(grid: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``"4x4+4x4"`` -> ((4, 4), (4, 4)): the coarse and fine points per axis; ValueError otherwise."""
    try:
        coarse, fine = (tuple(int(n) for n in part.split("x")) for part in grid.split("+"))
        if len(coarse) != 2 or len(fine) != 2:
            raise ValueError
    except (AttributeError, ValueError):
        raise ValueError(f"grid must look like '4x4+4x4' (coarse + fine points per axis), got {grid!r}") from None
    return coarse, fine


def likelihood_networks(emulator) -> dict[str, str]:
    """The Infer tab's network menu: label -> network name. "full" always; "small" where the weights
    carry a small network with a likelihood calibration of its own for :data:`FAST_TERMS`
    (``explorer calibrate --weights weights/small --terms vlb:8``: its temperatures differ from the
    full network's). The small network comes first: it is the tab's default (:func:`network_preset`)."""
    full = {"full network: precise, about 4× slower (default terms, 4×4 + 4×4 grid)": "full"}
    try:
        small = emulator.network(FAST_NETWORK)
    except (AttributeError, ValueError):  # no small network in these weights
        return full
    from explorer.inference.grid import calibrated_for_fast_preset

    if not calibrated_for_fast_preset(small.metadata):
        return full  # not calibrated for its terms: raw contours would be 5-10x too narrow
    return {"small network: fast (every scale alike, 3×3 + 3×3 grid)": FAST_NETWORK, **full}


def first_likelihood_network(emulator) -> str:
    """The network that answers first on the Infer tab (and reads the game's maps): the first entry of
    :func:`likelihood_networks`."""
    return next(iter(likelihood_networks(emulator).values()))


def likelihood_model(emulator, network: str):
    """The loaded network named ``network`` ("full": the emulator's own, else its sub-network)."""
    return emulator.loaded if network == "full" else emulator.network(network)


def network_preset(network: str) -> dict:
    """The terms and grid that go with a likelihood network in the app: the small network's measured
    fast configuration, or the full network's precise default."""
    if network == FAST_NETWORK:  # explorer.inference.defaults: the fast preset, measured there
        return {"terms": FAST_TERMS, "grid": FAST_GRID}
    return {"terms": DEFAULT_TERMS, "grid": PRECISE_GRID}


@dataclass(frozen=True, eq=False)
class Inference:
    """The posterior of one field from the diffusion model, and from the P(k) baseline if available."""

    name: str
    field_log10: np.ndarray          # (r, r) float32 log10 Σ at the model resolution
    kind: str                        # how the input was read: "density" or "log10"
    posterior: object                # explorer.inference.Posterior (VLB)
    baseline: object | None          # explorer.inference.Posterior (P(k)), or None
    cnn: dict | None = None          # the CNN estimator's {"omega_m": {"mean", "std", ...}, ...}, or None
    network: str = "full"            # the likelihood's network ("full" or a sub-network such as "small")


def infer_field(loaded, field: np.ndarray, *, name: str, kind: str = "auto", terms: str = DEFAULT_TERMS,
                calibrated: bool = True, per_timestep: bool = False, truth=None, seed: int | None = None,
                pk_baseline=None, cnn=None, progress: Progress | None = None, cancel=None,
                on_coarse=None, grid: str = PRECISE_GRID, network: str = "full", window=None) -> Inference:
    """Infer (Ωₘ, σ₈) from ``field (H, W)`` (Σ or log10 Σ, as read by ``explorer.data.read_field``).

    ``loaded`` is an ``explorer.model.Denoiser``; ``pk_baseline`` the path of a
    ``pk_baseline.json`` (None: no baseline); ``cnn`` the folder of a CNN estimator (None: none);
    ``grid`` the coarse and fine points (:data:`GRID_CHOICES`); ``network`` names ``loaded`` in the result;
    ``window`` a fine window given (``explorer.inference.grid.window_from``): no coarse scan.
    The baselines (a fraction of a second) come first, so that ``on_coarse(Inference)``, called
    once the coarse scan is done, carries them beside the first look at the surface
    (``explorer.inference.grid.coarse_preview``). Raises ValueError for a field the model cannot use,
    ``InferenceCancelled`` when ``cancel()`` returns True.
    """
    from explorer.data import prepare_field
    from explorer.inference import PkBaseline, infer

    coarse, fine = grid_shape(grid)
    prepared = prepare_field(field, loaded.resolution, kind)  # fails fast, before any network call
    baseline = None
    if pk_baseline is not None:
        baseline = PkBaseline.load(pk_baseline).posterior(prepared.log10, truth=truth)
    estimate = None
    if cnn is not None:
        estimator = cnn_estimator(str(cnn), str(loaded.device))
        estimate = estimator.estimate(prepare_field(field, estimator.resolution, prepared.kind).log10)

    def result(posterior) -> Inference:
        return Inference(name, prepared.log10, prepared.kind, posterior, baseline, estimate, network)

    posterior = infer(loaded, prepared, kind=prepared.kind, terms=terms, calibrated=calibrated, coarse=coarse, fine=fine,
                      window=window,
                      per_timestep=per_timestep, truth=truth, seed=seed, progress=progress, cancel=cancel,
                      on_coarse=None if on_coarse is None else (lambda post: on_coarse(result(post))))
    return result(posterior)


@functools.lru_cache(maxsize=2)
def cnn_estimator(folder: str, device: str = "cpu"):
    """The CNN estimator of ``folder``, loaded once per process (it is small: ~3 MB)."""
    from explorer.inference.cnn import CnnEstimator

    return CnnEstimator.load(folder, device=device)
