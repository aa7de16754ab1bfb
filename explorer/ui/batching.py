"""The app's sampling gate: every session's quick sampling runs through one :class:`BatchingSampler`,
which runs one batch of network calls at a time and puts the requests that arrive meanwhile into
the next batch.

Why: four sessions releasing their sliders together used to be sampled one after another, so the
last waited four samplings (4.4x its solo time on an Intel Xeon with AMX, 5.2x on an AMD EPYC).
Where the network is not compute-bound a batch of 16 maps costs much less than four of 4
(measured with ``bench/bench_gate.py``, README "App"), and a request's maps do not depend on the
batch it joins (:meth:`explorer.model.Emulator.sample_many`: each request draws its noise from its
own seed). A request that arrives while nothing runs starts at once: a lone session waits for
nothing.

- A batch holds requests of one emulator, network, method and steps, up to ``max_maps`` maps (the
  oldest request first; a larger request runs alone).
- Identical requests (same θ, number of maps and seed: a class pressing the same preset) share one
  place in the batch, and a request identical to one being sampled waits for its maps instead of
  sampling them again (what the one-job-at-a-time pool and the cache of sampled maps gave before).
- Each request's ``progress(done, total)`` is called as the batch advances and may raise (a slider
  moved on: ``Superseded``): that request gets its exception, the rest of the batch goes on; a
  batch whose requests have all given up stops.
- An error of the sampler itself goes to every request of its batch. Bad arguments are refused
  before a request joins (:meth:`~explorer.model.Emulator.check_request`), so they never spoil a
  batch.

No panel here; the compute functions call :data:`SAMPLING`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Progress = Callable[[int, int], None]


class _AllGaveUp(Exception):
    """Every request of the running batch has given up: stop sampling it."""


@dataclass(eq=False)
class _Waiter:
    """One caller waiting for a request's maps (several for identical requests)."""

    progress: Progress | None
    error: BaseException | None = None


@dataclass(eq=False)
class _Request:
    emulator: object
    sampler: tuple              # (method, steps, network), resolved
    args: tuple                 # (omega_m, sigma_8, n, seed), checked
    waiters: list = field(default_factory=list)
    maps: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False
    batch_maps: int = 0          # maps in the batch it ran in (for the caller's record)
    batch_seconds: float = 0.0   # that batch's sampling time
    batch_requests: int = 0      # requests in that batch

    def compatible(self, other: "_Request") -> bool:
        return self.emulator is other.emulator and self.sampler == other.sampler

    @property
    def n(self) -> int:
        return self.args[2]

    def live(self) -> list[_Waiter]:
        return [w for w in self.waiters if w.error is None]


@dataclass(frozen=True)
class Sampled:
    """A request's maps and the batch they came from."""

    maps: np.ndarray          # (n, H, W) float32 log10 Σ
    batch_maps: int           # maps sampled in that batch (the request's own n when alone)
    batch_requests: int       # requests in that batch
    seconds: float            # the batch's sampling time (without the wait for an earlier batch)


class BatchingSampler:
    """Quick sampling for many threads, one batch at a time (module docstring)."""

    def __init__(self, max_maps: int = 16):
        if int(max_maps) < 1:
            raise ValueError(f"max_maps must be a positive integer, got {max_maps!r}")
        self.max_maps = int(max_maps)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._running: list[_Request] = []  # the batch being sampled
        self._busy = False
        #: (requests, maps) of every batch run, newest last (the last 100): for benchmarks and tests
        self.history: list[tuple[int, int]] = []

    def sample(self, emulator, omega_m: float, sigma_8: float, n: int, seed: int, method: str | None = None,
               steps: int | None = None, network: str | None = None, progress: Progress | None = None) -> Sampled:
        """``n`` maps at (Ωₘ, σ₈) with ``seed``, as ``emulator.sample`` gives them, sampled in a batch
        with whatever other requests are waiting. Raises what the sampler or ``progress`` raised."""
        args = emulator.check_request(omega_m, sigma_8, n, seed)  # ValueError here, before joining
        sampler = emulator.resolve(method, steps, network)
        waiter = _Waiter(progress)
        with self._cond:
            new = _Request(emulator, sampler, args)
            request = next((r for r in self._running + self._pending if r.compatible(new) and r.args == args), None)
            if request is None:
                request = new
                self._pending.append(request)
            request.waiters.append(waiter)
            while not request.done:
                if not self._busy and self._pending and self._pending[0] is request:
                    self._lead()
                else:
                    self._cond.wait()
        if waiter.error is not None:
            raise waiter.error
        if request.error is not None:
            raise request.error
        return Sampled(request.maps, request.batch_maps, request.batch_requests, request.batch_seconds)

    def _lead(self) -> None:
        """Run the next batch (called with the lock held, by the thread of the oldest pending request;
        the lock is released while the network runs)."""
        first = self._pending[0]
        batch, maps = [], 0
        for r in self._pending:
            if r.compatible(first) and (not batch or maps + r.n <= self.max_maps):
                batch.append(r)
                maps += r.n
        for r in batch:
            self._pending.remove(r)
        self._busy, self._running = True, batch
        self._cond.release()
        start = time.perf_counter()
        try:
            method, steps, network = first.sampler
            results = first.emulator.sample_many([r.args for r in batch], method=method, steps=steps,
                                                 network=network, progress=self._progress(batch))
        except _AllGaveUp:
            results = None
        except BaseException as err:  # noqa: BLE001 - handed to every request of the batch
            results = err
        finally:
            seconds = time.perf_counter() - start
            self._cond.acquire()
        for i, r in enumerate(batch):
            if results is None and r.live():  # stopped, but someone joined it meanwhile: sample it next
                self._pending.insert(0, r)
                continue
            if isinstance(results, BaseException):
                r.error = results
            elif results is not None:
                r.maps = results[i]
            r.batch_maps, r.batch_seconds, r.batch_requests, r.done = maps, seconds, len(batch), True
        self.history = (self.history + [(len(batch), maps)])[-100:]
        self._busy, self._running = False, []
        self._cond.notify_all()

    @staticmethod
    def _progress(batch: list[_Request]) -> Progress:
        """One progress callback for the batch: each live waiter's own, its exception kept for it."""

        def report(done: int, total: int) -> None:
            alive = False
            for r in batch:
                for w in r.live():
                    if w.progress is not None:
                        try:
                            w.progress(done, total)
                        except BaseException as err:  # noqa: BLE001 - that caller gave up (Superseded)
                            w.error = err
                            continue
                    alive = True
            if not alive:
                raise _AllGaveUp

        return report


#: The app's gate for quick sampling (sliders, previews, presets): one process-wide instance.
SAMPLING = BatchingSampler()
