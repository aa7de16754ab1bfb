"""What all sessions of one app process share: settings, the model, reference sets, the worker pool.

The app is configured by environment variables or by arguments after ``--args``::

    panel serve explorer --address 127.0.0.1 --args --reference /data/camels --weights my_weights

    EXPLORER_WEIGHTS    / --weights DIR    weights folder (default: ``weights/`` next to the package,
                                           i.e. <repo>/weights, whatever the working directory)
    EXPLORER_REFERENCE  / --reference DIR  reference maps: a CAMELS CMD directory holding
                                           ``Maps_Mcdm_<suite>_LH_z=0.00.npy`` + ``params_LH_<suite>.txt``
                                           (a real CAMELS download works as-is; default <repo>/assets/valid,
                                           the bundled stand-in)
    EXPLORER_ONEP       / --onep DIR       1P set for the parameter-response tab (default <repo>/assets/onep)
    EXPLORER_EXAMPLES   / --examples DIR   example fields for the infer tab (default <repo>/assets/examples)
    EXPLORER_DEVICE     / --device NAME    auto (CUDA, then MPS, then CPU), cpu, cuda, ...
    EXPLORER_WORKERS    / --workers N      long jobs (inference, 1P response, simulation, slow
                                           samplers) running at once, shared by all sessions (default
                                           2); quick sampling jobs share one network, one batch at a time
    EXPLORER_SAMPLE_CACHE / --sample-cache 1 or 0: reuse maps already sampled with the same
                                           cosmology, seed and sampler, across sessions (default 1;
                                           :class:`explorer.ui.compute.SampleCache`)
    EXPLORER_BF16       / --bf16 auto|1|0  sample in bfloat16 autocast (default auto: only where the CPU
                                           has AMX/AVX512-BF16, or on CUDA; measured there to give the same
                                           fidelity 1.4x faster). Inference always runs in float32.
    EXPLORER_BATCH_MAPS / --batch-maps N   the largest batch (maps) the sessions' waiting quick samplings
                                           are merged into (default 16; 1: one request at a time;
                                           :mod:`explorer.ui.batching`)
    EXPLORER_SAMPLER    / --sampler NAME   the first sampler of the Emulate and Parameter response tabs:
                                           auto (the default: few-call where the model's default sampler
                                           takes over 0.5 s for 4 maps on this machine, measured at start-up,
                                           else default), default (the model's, 14 calls), few-call
                                           (4 calls, 3x faster; where the weights have its start) or a
                                           label of the sampler menu
    EXPLORER_TORCH_THREADS                 torch intra-op threads (default: torch's, one per core)

Command-line arguments win over environment variables. The model is loaded once per process
(:func:`get_context`, thread-safe) and shared by every session; slow work (sampling, inference,
simulation) runs on :func:`worker pool <submit_to_worker>` threads (each tab's job lifecycle: :mod:`explorer.ui.jobs`) so the server's event loop, and with
it every other session's sliders, stays responsive. Each job runs on a thread of its own that
ends with the job (:class:`ThreadPerJob`), and torch's threads spin only briefly before they sleep
(``GOMP_SPINCOUNT``, set in ``explorer/ui/__init__.py``): see there for the measurements.
"""

from __future__ import annotations

import argparse
import contextvars
import ctypes
import ctypes.util
import functools
import gc
import itertools
import json
import os
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from explorer.paths import REPO, SHIPPED_ASSETS, SHIPPED_WEIGHTS  # noqa: F401  (REPO: re-exported)

from .reference import OnePSet, ReferenceSet


@dataclass(frozen=True)
class Example:
    """A bundled field with known parameters (an entry of ``examples.json``)."""

    name: str
    path: Path
    omega_m: float
    sigma_8: float
    kind: str = "auto"


@dataclass(frozen=True)
class Settings:
    """Where the app finds its model and data (see the module docstring)."""

    weights: Path = SHIPPED_WEIGHTS
    reference: Path = SHIPPED_ASSETS / "valid"
    onep: Path = SHIPPED_ASSETS / "onep"
    examples: Path = SHIPPED_ASSETS / "examples"
    device: str = "auto"
    workers: int = 2
    sample_cache: bool = True  # reuse maps already sampled with the same arguments (compute.SampleCache)
    bf16: bool | None = None  # bfloat16 autocast for sampling; None: where it is faster (model.bf16_helps)
    batch_maps: int = 16  # the largest batch the sessions' waiting quick samplings are merged into (batching.py)
    sampler: str = "auto"  # the Emulate tab's first sampler: "auto", an alias of compute.SAMPLER_ALIASES or a menu label

    @classmethod
    def from_environment(cls, argv: list[str] | None = None, environ=None) -> "Settings":
        """Settings from ``argv`` (the ``--args`` of ``panel serve``) over ``environ`` over defaults."""
        environ = os.environ if environ is None else environ
        parser = argparse.ArgumentParser(prog="panel serve explorer --args", add_help=False)
        for name in ("weights", "reference", "onep", "examples", "device", "workers", "sample_cache", "bf16", "batch_maps",
                     "sampler"):
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=environ.get(f"EXPLORER_{name.upper()}"))
        args, _unknown = parser.parse_known_args(list(argv or []))
        default = cls()
        values = {}
        for name in ("weights", "reference", "onep", "examples"):
            given = getattr(args, name)
            values[name] = Path(given).expanduser() if given else getattr(default, name)
        values["device"] = args.device or default.device
        values["workers"] = _count("workers", args.workers, default.workers)
        values["batch_maps"] = _count("batch_maps", args.batch_maps, default.batch_maps)
        values["sample_cache"] = _flag("sample_cache", args.sample_cache, default.sample_cache)
        values["bf16"] = _flag("bf16", args.bf16, None, auto=True)
        if args.sampler:
            from .compute import check_sampler_name

            values["sampler"] = check_sampler_name(args.sampler)
        return cls(**values)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _count(name: str, given: str | None, default: int) -> int:
    """A positive integer setting (at least 1), or ``default`` when not given; ValueError naming it otherwise."""
    if not given:
        return default
    try:
        return max(1, int(given))
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {given!r}") from None


def _flag(name: str, given: str | None, default, auto: bool = False):
    """A boolean setting: 1/0 (true/false, yes/no, on/off), or ``default`` when not given (and for
    "auto" where ``auto``); ValueError naming the setting otherwise."""
    flag = (given or "").strip().lower()
    if not flag or (auto and flag == "auto"):
        return default
    if flag not in _TRUE + _FALSE:
        raise ValueError(f"{name} must be {'auto, ' if auto else ''}1 or 0, got {given!r}")
    return flag in _TRUE


@dataclass
class AppContext:
    """Everything the views need from the process: built once by :func:`get_context`.

    ``emulator`` is an ``explorer.model.Emulator``; the optional data sets are None when absent,
    with the reason in ``notes`` (shown in the page).
    """

    settings: Settings
    emulator: object
    reference: ReferenceSet | None = None
    onep: OnePSet | None = None
    examples: list[Example] = field(default_factory=list)
    pk_baseline: Path | None = None
    cnn: Path | None = None  # folder of the CNN estimator (weights/cnn), when the weights carry one
    notes: dict[str, str] = field(default_factory=dict)


def load_examples(directory: Path) -> list[Example]:
    """Entries of ``directory/examples.json`` whose file exists (ValueError for a malformed list)."""
    index = Path(directory) / "examples.json"
    if not index.is_file():
        return []
    try:
        entries = json.loads(index.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{index} is not valid JSON ({err})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{index} must hold a list of examples")
    examples = []
    for e in entries:
        path = Path(directory) / str(e.get("file", ""))
        if not path.is_file():
            continue
        label = e.get("name") or f"{path.stem} (Ωₘ={float(e['omega_m']):.3g}, σ₈={float(e['sigma_8']):.3g})"
        examples.append(Example(label, path, float(e["omega_m"]), float(e["sigma_8"]), e.get("kind", "auto")))
    return examples


def build_context(settings: Settings) -> AppContext:
    """Load the model (raises ``WeightsError`` saying how to get weights) and the optional data."""
    from explorer.model import Emulator

    emulator = Emulator.from_folder(settings.weights, device=settings.device, bf16=settings.bf16)
    ctx = AppContext(settings=settings, emulator=emulator)
    from .batching import SAMPLING

    SAMPLING.max_maps = settings.batch_maps  # process-wide, like the pools
    for pool in POOLS:
        executor(pool, settings.workers)
    try:
        ctx.reference = ReferenceSet.from_directory(settings.reference, emulator.resolution)
    except (OSError, ValueError) as err:
        ctx.notes["reference"] = (f"No reference maps ({err}). Point EXPLORER_REFERENCE (or --args "
                                  "--reference DIR) at a CAMELS CMD directory.")
    try:
        ctx.onep = OnePSet.from_directory(settings.onep, emulator.resolution)
    except (OSError, ValueError) as err:
        ctx.notes["onep"] = f"No 1P reference set ({err}); only generated responses are shown."
    try:
        ctx.examples = load_examples(settings.examples)
    except ValueError as err:
        ctx.notes["examples"] = str(err)
    baseline = Path(settings.weights) / "pk_baseline.json"
    ctx.pk_baseline = baseline if baseline.is_file() else None
    from explorer.inference.cnn import find_cnn

    ctx.cnn = find_cnn(settings.weights)
    return ctx


_LOCK = threading.Lock()
_CONTEXTS: dict[Settings, AppContext] = {}


def get_context(settings: Settings | None = None) -> AppContext:
    """The process-wide :class:`AppContext` for ``settings`` (built on first use, under a lock)."""
    settings = Settings.from_environment() if settings is None else settings
    with _LOCK:
        if settings not in _CONTEXTS:
            _CONTEXTS[settings] = build_context(settings)
        return _CONTEXTS[settings]


def warm_up(settings: Settings) -> AppContext:
    """Load the context for ``settings``, import the page's modules and sample 4 maps with the default
    sampler: the first sampling in a process also sets up the network's kernels (README "Warm-up
    matters": 1.74 s against 1.21 s), and with ``--sampler auto`` two more draws time it on this machine,
    which picks the sliders' first sampler (:func:`explorer.ui.compute.initial_sampler`). Run by
    ``explorer/app_hooks.py`` on its own thread when `panel serve explorer` starts."""
    import time

    from . import compute

    start = time.perf_counter()
    ctx = get_context(settings)
    import explorer.ui.app  # noqa: F401  (the imports of the first session's page)

    omega_m, sigma_8 = (float(sum(r)) / 2 for r in ctx.emulator.param_ranges)  # the prior's centre
    if settings.sampler == compute.AUTO and compute.has_translation_start(ctx.emulator):
        seconds = compute.default_sampling_seconds(ctx.emulator)  # its first, discarded draw sets up the kernels
        first = compute.initial_sampler(settings.sampler, compute.sampler_choices(ctx.emulator), ctx.emulator)
        print(f"explorer: the sliders start on {first!r}: the default sampler takes {seconds:.2f} s for 4 maps "
              f"here (few-call above {compute.AUTO_FEW_CALL_ABOVE_S:g} s; --sampler default or few-call to "
              "choose)", file=sys.stderr)
    else:
        ctx.emulator.sample(omega_m, sigma_8, n=4, seed=0)
    warm_up_likelihood(ctx, (omega_m, sigma_8))
    print(f"explorer: model loaded and warmed up in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return ctx


def warm_up_likelihood(ctx: AppContext, theta) -> None:
    """One batch of the Infer tab's first network (its default, e.g. the small network's fast preset)
    and the CNN estimator loaded, so that the first drop after a start does not pay for their set-up
    (0.4 s here; the first of three drops took 9.6-9.8 s before, 8.8 s after, README "App")."""
    import numpy as np

    from explorer.inference.defaults import DEFAULT_BATCH
    from explorer.inference.vlb import vlb_terms

    from . import compute

    loaded = compute.likelihood_model(ctx.emulator, compute.first_likelihood_network(ctx.emulator))
    x0 = np.zeros((loaded.resolution, loaded.resolution))
    vlb_terms(loaded, x0, np.tile(np.asarray(theta, dtype=np.float64), (DEFAULT_BATCH // 8, 1)), np.arange(1, 9),
              batch_size=DEFAULT_BATCH)
    if ctx.cnn is not None:
        compute.cnn_estimator(str(ctx.cnn), str(loaded.device))


class ThreadPerJob:
    """An executor that runs every job on a new thread, which ends with the job; at most
    ``workers`` jobs run at once (the others wait on their own threads, in no guaranteed order).

    Why not a thread pool: every thread that has called torch keeps an OpenMP team of its own,
    and once more threads are kept than there are cores, GNU OpenMP shortens every team's spin
    before it sleeps. Measured on 2 cores (4 maps, the shipped sampler): 1.0 s on one pool
    thread, 1.7-1.9 s on the same thread after a second pool thread had run one job, 1.1 s again
    once that thread had ended. A slider superseding a running job made a second pool thread
    every time; here the stale job's thread, and its team, end with it.
    """

    def __init__(self, workers: int, name: str):
        self.workers = max(1, int(workers))
        self.name = name
        self._slots = threading.BoundedSemaphore(self.workers)
        self._count = itertools.count(1)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()

        def run() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    result = fn(*args, **kwargs)
                except BaseException as err:  # handed to whoever awaits the future
                    future.set_exception(err)
                else:
                    future.set_result(result)

        threading.Thread(target=run, name=f"explorer-{self.name}-{next(self._count)}", daemon=True).start()
        return future


_EXECUTORS: dict[str, ThreadPerJob] = {}
_EXECUTOR_LOCK = threading.Lock()
#: Worker pools: "interactive" for slider sampling and previews, "long" for inference, the 1P
#: response, simulations and slow samplers, so that long jobs never queue in front of another
#: session's slider.
POOLS = ("interactive", "long")
#: Jobs at once per pool where fixed. The quick jobs' network calls go through one gate,
#: :data:`explorer.ui.batching.SAMPLING`, which runs one batch at a time (torch already spreads one
#: over every core; measured on 2 cores, two samplings at once were slower than one after the
#: other) and batches the requests that wait; so up to 8 sessions' jobs are let in together, to
#: wait there and be batched, and their statistics run beside the next batch.
POOL_WORKERS = {"interactive": 8}


def torch_threads(environ=None) -> int | None:
    """Intra-op threads for torch from ``EXPLORER_TORCH_THREADS``; None leaves torch's default."""
    environ = os.environ if environ is None else environ
    if environ.get("EXPLORER_TORCH_THREADS"):
        return max(1, int(environ["EXPLORER_TORCH_THREADS"]))
    return None


def executor(pool: str = "interactive", workers: int = 2) -> ThreadPerJob:
    """The process-wide pool ``pool`` (created on first use, running ``workers`` jobs at once, or
    :data:`POOL_WORKERS` ``[pool]`` where fixed)."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    with _EXECUTOR_LOCK:
        if pool not in _EXECUTORS:
            threads = torch_threads()
            if threads is not None:
                import torch

                torch.set_num_threads(threads)  # process-wide: shared by the workers
            _EXECUTORS[pool] = ThreadPerJob(POOL_WORKERS.get(pool, workers), pool)
        return _EXECUTORS[pool]


def submit_to_worker(fn, /, *args, pool: str = "interactive", **kwargs) -> Future:
    """Start ``fn(*args, **kwargs)`` on worker pool ``pool`` now (no event loop needed) -> its Future.

    The caller's context variables (Panel's current document) travel with it, so widgets updated
    from the job (progress bars) are scheduled onto the right session.
    """
    return executor(pool).submit(contextvars.copy_context().run, functools.partial(fn, *args, **kwargs))


def release_memory() -> bool:
    """Collect garbage and hand freed heap back to the OS (glibc ``malloc_trim``); True if it ran.

    Why: torch's CPU tensors of a finished job (an inference holds ~100 MB of activations and VLB
    grids) are freed into glibc's per-thread arenas, which keep the pages; without a trim the
    server's resident memory only grew (measured: +120 MB after the first inference, never
    returned when every session had closed). Called after each inference and when a session closes.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)  # returns 1 if it released memory, 0 if there was none to release
        return True
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return False
