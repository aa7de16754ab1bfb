"""One session's slow jobs: a newer request supersedes a running one, a cancel button stops it.

A :class:`JobSlot` numbers the requests of one kind (sampling, inference, ...) of one session.
Only the newest generation may show its result; older jobs notice at their next progress
callback (``slot.progress(gen, ...)`` raises :class:`Superseded`) and stop early, so a slider
dragged while a job runs costs at most one step of the stale job. No panel here.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


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
