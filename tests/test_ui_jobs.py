"""The job lifecycle every tab runs its slow work through (``explorer.ui.jobs``), with fake work.

``start_job`` starts a generation of a slot on a worker, ``run_job`` awaits it and calls the
page's callbacks only while the job is its slot's newest request. The tabs' use of it is tested
in ``test_ui.py``.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from explorer.ui.jobs import Job, JobSlot, Superseded, run_job, start_job


class Page:
    """Records the callbacks of ``run_job`` as a tab would show them."""

    def __init__(self):
        self.busy_calls: list[bool] = []
        self.results: list = []
        self.errors: list[Exception] = []

    @property
    def busy(self) -> bool:
        return bool(self.busy_calls) and self.busy_calls[-1]

    def callbacks(self) -> dict:
        return dict(on_busy=self.busy_calls.append, on_result=self.results.append, on_error=self.errors.append)


def run(coro):
    return asyncio.run(coro)


def held(release: threading.Event, value):
    """Work that waits for ``release`` while reporting progress (a long job), then returns ``value``."""

    def work(job: Job):
        report = job.progress()
        while not release.wait(0.01):
            report(0, 10)
        return value

    return work


def test_result_is_shown_and_busy_is_off_after_success():
    page = Page()
    run(run_job(start_job(JobSlot(), lambda job, a, b=0: a + b, 2, b=3), what="adding", **page.callbacks()))
    assert page.results == [5] and page.errors == [] and page.busy_calls == [True, False]


def test_superseded_job_never_shows_its_result():
    slot, page = JobSlot(), Page()
    release = threading.Event()

    async def scenario():
        stale = start_job(slot, held(release, "stale"))
        stale_run = asyncio.ensure_future(run_job(stale, what="stale", **page.callbacks()))
        await asyncio.sleep(0.05)
        newer = start_job(slot, lambda job: "newer")
        await run_job(newer, what="newer", **page.callbacks())
        try:
            await asyncio.wait_for(stale_run, timeout=5)  # the stale job ends on its own
        finally:
            release.set()
        return stale

    stale = run(scenario())
    assert page.results == ["newer"] and page.errors == [] and not page.busy
    with pytest.raises(Superseded):  # the stale job stopped at its next progress callback
        stale.future.result()


def test_stale_result_without_progress_callbacks_is_dropped():
    """A job that finishes after a newer request started (it never checked) shows nothing."""
    slot, page = JobSlot(), Page()
    gate = threading.Event()

    async def scenario():
        job = start_job(slot, lambda job: gate.wait(5) and "stale")
        slot.start()  # a newer request (or a cancel) while the job runs
        gate.set()
        await run_job(job, what="stale", **page.callbacks())

    run(scenario())
    assert page.results == [] and page.errors == [] and page.busy_calls == [True]


def test_exception_is_logged_with_traceback_and_shown_short(caplog):
    page = Page()

    def broken(job):
        raise RuntimeError("CUDA out of memory")

    with caplog.at_level(logging.INFO, logger="explorer.ui.jobs"):
        run(run_job(start_job(JobSlot(), broken), what="sampling at (0.3, 0.8)", **page.callbacks()))
    [record] = [r for r in caplog.records if r.name == "explorer.ui.jobs"]
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError
    assert record.getMessage() == "sampling at (0.3, 0.8) failed"
    assert "Traceback" in caplog.text  # the server log has it ...
    [err] = page.errors  # ... the page gets the exception to word one line
    assert isinstance(err, RuntimeError) and str(err) == "CUDA out of memory"
    assert page.results == [] and page.busy_calls == [True, False]


@pytest.mark.parametrize("error", [ValueError("field.npy holds NaN"), FileNotFoundError("no such file: x.npy")],
                         ids=["ValueError", "OSError"])
def test_user_error_shows_its_message_without_a_traceback(caplog, error):
    page = Page()

    def bad_input(job):
        raise error

    logger = logging.getLogger("explorer.ui.some_tab")
    with caplog.at_level(logging.INFO, logger=logger.name):
        run(run_job(start_job(JobSlot(), bad_input), what="inference on x.npy", logger=logger, **page.callbacks()))
    assert page.errors == [error] and page.busy_calls == [True, False]
    [record] = [r for r in caplog.records if r.name == logger.name]  # the tab's own logger
    assert record.levelno < logging.WARNING and record.exc_info is None and str(error) in record.getMessage()


def test_superseded_and_cancelled_jobs_are_silent(caplog):
    slot, page = JobSlot(), Page()

    def cancelled(job):
        slot.cancel()  # the Cancel button, pressed while the job runs
        job.check()

    with caplog.at_level(logging.DEBUG):
        run(run_job(start_job(slot, cancelled), what="cancelled", **page.callbacks()))
    assert page.results == page.errors == [] and page.busy_calls == [True]  # the cancel handler ends busy
    assert not [r for r in caplog.records if r.name.startswith("explorer")]


def test_error_of_a_stale_job_is_logged_but_not_shown(caplog):
    slot, page = JobSlot(), Page()

    def failing_late(job):
        slot.start()  # a newer request arrives, then this job fails
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="explorer.ui.jobs"):
        run(run_job(start_job(slot, failing_late), what="stale", **page.callbacks()))
    assert page.errors == [] and [r.exc_info[0] for r in caplog.records] == [RuntimeError]


def test_job_started_before_the_event_loop_and_an_async_result_callback():
    """The Emulate tab's prefetch: ``start_job`` without a running loop, awaited later."""
    slot, shown = JobSlot(), []
    job = start_job(slot, lambda job: job.generation)
    assert job.current and job.generation == slot.generation == 1

    async def show(result):
        await asyncio.sleep(0)
        shown.append(result)

    run(run_job(job, what="prefetched", on_result=show, on_error=pytest.fail))
    assert shown == [1]


def test_job_progress_reports_and_checks_its_own_generation():
    reports = []
    slot = JobSlot(on_progress=lambda fraction, text: reports.append((fraction, text)), min_interval=0)
    job = Job(slot, slot.start())
    job.progress("step")(5, 10)
    assert reports == [(0.5, "step 5/10")] and job.current
    slot.start()
    assert not job.current
    with pytest.raises(Superseded):
        job.check()
