"""One session's slow jobs: a newer request supersedes a running one, a cancel button stops it.

A :class:`JobSlot` numbers the requests of one kind (sampling, inference, ...) of one session.
Only the newest generation may show its result; older jobs notice at their next progress
callback (``slot.progress(gen, ...)`` raises :class:`Superseded`) and stop early, so a slider
dragged while a job runs costs at most one step of the stale job.

Every tab runs its slow work through the same lifecycle, in two calls::

    job = start_job(slot, work, *args, pool="long")   # a new generation; work(job, *args) on a worker
    await run_job(job, what="…", on_busy=…, on_result=…, on_error=…, logger=log)

``start_job`` may run before the page is shown (the Emulate tab's prefetch); ``run_job`` awaits
the job on the event loop and shows its outcome only while it is the slot's newest request:

1. ``on_busy(True)``;
2. await the worker; a :class:`Superseded` job ends here, silently;
3. a :data:`user error <USER_ERRORS>` (a bad file, a value out of range) is logged without a
   traceback, any other exception with its traceback (``log.exception``);
4. a stale job (superseded while its result was on its way) ends here, silently;
5. ``on_busy(False)``, then ``on_result(result)`` (which may be a coroutine function: it is
   awaited) or ``on_error(exception)``: the tab writes the short message the user sees.

No panel here: the callbacks update the page.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from .context import submit_to_worker

#: Exceptions that are the user's doing (the compute layer raises them naming the offending value):
#: their message is all the user and the server log need.
USER_ERRORS = (ValueError, OSError)

log = logging.getLogger(__name__)


class Superseded(Exception):
    """The job was replaced by a newer request of its slot, or cancelled."""


class JobSlot:
    """Generation counter for one kind of job in one session (thread-safe)."""

    def __init__(self, on_progress: Callable[[float, str], None] | None = None, min_interval: float = 0.1):
        self._lock = threading.Lock()
        self._generation = 0
        self._last_report = 0.0
        self.on_progress = on_progress  # called with (fraction in [0, 1], text) from worker threads
        self.min_interval = min_interval

    @property
    def generation(self) -> int:
        return self._generation

    def start(self) -> int:
        """A new request: returns its generation; every older job becomes stale."""
        with self._lock:
            self._generation += 1
            self._last_report = 0.0
            return self._generation

    def cancel(self) -> None:
        """Make the running job stale (it stops at its next progress callback)."""
        with self._lock:
            self._generation += 1

    def is_current(self, generation: int) -> bool:
        return generation == self._generation

    def check(self, generation: int) -> None:
        """Raise :class:`Superseded` if ``generation`` is no longer the newest request."""
        if generation != self._generation:
            raise Superseded(f"job {generation} superseded by {self._generation}")

    def progress(self, generation: int, label: str = "") -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for the core that checks staleness and reports
        (at most every ``min_interval`` seconds, and always at the end)."""

        def report(done: int, total: int) -> None:
            self.check(generation)
            now = time.monotonic()
            if self.on_progress is None or (done < total and now - self._last_report < self.min_interval):
                return
            self._last_report = now
            self.on_progress(done / max(total, 1), f"{label} {done}/{total}".strip())

        return report


@dataclass(eq=False)
class Job:
    """One request of a slot: its generation and the worker's future (made by :func:`start_job`).

    The worker function gets the job as its first argument and calls ``job.check()`` between
    stages, passes ``job.progress(label)`` to the core, or polls ``job.current``.
    """

    slot: JobSlot
    generation: int
    future: Future | None = field(default=None, repr=False)

    @property
    def current(self) -> bool:
        """Whether this is still the newest request of its slot (not superseded, not cancelled)."""
        return self.slot.is_current(self.generation)

    def check(self) -> None:
        """Raise :class:`Superseded` if this job is stale."""
        self.slot.check(self.generation)

    def progress(self, label: str = "") -> Callable[[int, int], None]:
        """The slot's ``progress(done, total)`` callback for this job (see :meth:`JobSlot.progress`)."""
        return self.slot.progress(self.generation, label)


def start_job(slot: JobSlot, fn: Callable[..., Any], /, *args, pool: str = "interactive", **kwargs) -> Job:
    """Start a new request of ``slot`` (every older one becomes stale): ``fn(job, *args, **kwargs)``
    on worker pool ``pool`` (``context.submit_to_worker``); no event loop needed."""
    job = Job(slot, slot.start())
    job.future = submit_to_worker(fn, job, *args, pool=pool, **kwargs)
    return job


async def run_job(job: Job, *, what: str, on_result: Callable[[Any], Any], on_error: Callable[[Exception], None],
                  on_busy: Callable[[bool], None] | None = None, logger: logging.Logger = log) -> None:
    """Await ``job`` and show its outcome if it is still current (the steps of the module docstring).

    ``what`` names the job in the server log ("sampling at (0.3, 0.8, …)"), ``logger`` is the
    calling tab's. The callbacks run on the event loop; of a stale job only ``on_busy(True)`` runs.
    """
    busy = on_busy or (lambda _busy: None)
    busy(True)
    try:
        result = await asyncio.wrap_future(job.future)
    except Superseded:
        return
    except Exception as err:
        if isinstance(err, USER_ERRORS):  # the user's mistake: their message, no traceback
            logger.info("%s: %s: %s", what, type(err).__name__, err)
        else:  # a bug or a broken setup: the traceback in the server log
            logger.exception("%s failed", what)
        if job.current:
            busy(False)
            on_error(err)
        return
    if not job.current:
        return  # a newer request is on its way (or the job was cancelled): drop this result
    busy(False)
    shown = on_result(result)
    if inspect.isawaitable(shown):
        await shown
