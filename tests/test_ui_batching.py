"""The app's sampling gate (explorer.ui.batching): requests that arrive while a batch runs share the
next batch, each gets its own maps, a superseded request drops out without stopping the others."""

import threading
import time

import numpy as np
import pytest

from explorer.ui import compute
from explorer.ui.batching import BatchingSampler
from explorer.ui.jobs import Superseded


class BatchSpy:
    """An emulator whose maps depend on (θ, seed) only; records each batch; the first batch can be held."""

    def __init__(self, hold: threading.Event | None = None, fail: Exception | None = None):
        self.batches: list[list[tuple]] = []
        self.hold, self.fail = hold, fail
        self.started = threading.Event()

    def check_request(self, omega_m, sigma_8, n, seed):
        if not 0.1 <= omega_m <= 0.5:
            raise ValueError(f"omega_m={omega_m:g} is outside the prior range")
        return float(omega_m), float(sigma_8), int(n), int(seed)

    def resolve(self, method=None, steps=None, network=None):
        return method or "default", steps or 14, network or "small"

    @staticmethod
    def alone(omega_m, sigma_8, n, seed):
        rng = np.random.default_rng(seed)
        return (11.5 + omega_m + sigma_8 * rng.standard_normal((n, 16, 16))).astype(np.float32)

    def sample_many(self, requests, method=None, steps=None, progress=None, network=None):
        self.batches.append(list(requests))
        self.started.set()
        for done in range(1, 11):
            if self.hold is not None and len(self.batches) == 1:
                while not self.hold.wait(0.005):
                    progress(0, 10)
            if progress is not None:
                progress(done, 10)
        if self.fail is not None:
            raise self.fail
        return [self.alone(*r) for r in requests]


def in_threads(gate, emulator, requests, progress=None):
    """Start one thread per request (in order, each after the previous has joined the queue)."""
    results, errors = {}, {}

    def run(i, r):
        try:
            results[i] = gate.sample(emulator, *r, progress=None if progress is None else progress[i])
        except BaseException as err:  # noqa: BLE001 - looked at by the test
            errors[i] = err

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    return threads, results, errors


def test_requests_arriving_during_a_batch_share_the_next_one():
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler(max_maps=16)
    first = [(0.3, 0.8, 4, 1)]
    later = [(0.2, 0.7, 4, 2), (0.4, 0.9, 4, 3), (0.3, 0.8, 4, 4)]
    threads, results, errors = in_threads(gate, emu, first)
    assert emu.started.wait(5)  # a lone request starts at once
    more, results2, errors2 = in_threads(gate, emu, later)
    hold.set()
    for t in threads + more:
        t.join(5)
    assert not errors and not errors2
    assert emu.batches == [first, later] and gate.history == [(1, 4), (3, 12)]
    for r, got in zip(later, (results2[i] for i in range(3))):
        np.testing.assert_array_equal(got.maps, BatchSpy.alone(*r))  # each its own maps, not a neighbour's
        assert (got.batch_maps, got.batch_requests) == (12, 3)
    np.testing.assert_array_equal(results[0].maps, BatchSpy.alone(*first[0]))
    assert (results[0].batch_maps, results[0].batch_requests) == (4, 1)


def test_a_batch_holds_at_most_max_maps_and_one_sampler_setting():
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler(max_maps=8)
    threads, _, _ = in_threads(gate, emu, [(0.3, 0.8, 1, 0)])
    assert emu.started.wait(5)
    waiting = [(0.2, 0.7, 4, 1), (0.2, 0.7, 4, 2), (0.2, 0.7, 4, 3), (0.2, 0.7, 12, 4)]
    more, results, errors = in_threads(gate, emu, waiting)
    other_method = threading.Thread(target=gate.sample, args=(emu, 0.3, 0.8, 2, 5, "ddim"))
    other_method.start()
    time.sleep(0.02)
    hold.set()
    for t in threads + more + [other_method]:
        t.join(5)
    assert not errors
    # oldest first, up to 8 maps; the 12-map request runs alone; the other method in a batch of its own
    assert [len(b) for b in emu.batches] == [1, 2, 1, 1, 1]
    assert emu.batches[1] == waiting[:2] and emu.batches[2] == [waiting[2]] and emu.batches[3] == [waiting[3]]
    assert emu.batches[4] == [(0.3, 0.8, 2, 5)]
    assert results[3].maps.shape == (12, 16, 16)


def test_identical_requests_share_one_place():
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler()
    threads, _, _ = in_threads(gate, emu, [(0.3, 0.8, 4, 1)])
    assert emu.started.wait(5)
    more, results, errors = in_threads(gate, emu, [(0.25, 0.75, 4, 9)] * 3)  # a class pressing one preset
    hold.set()
    for t in threads + more:
        t.join(5)
    assert not errors and emu.batches[1] == [(0.25, 0.75, 4, 9)]
    for i in range(3):
        np.testing.assert_array_equal(results[i].maps, BatchSpy.alone(0.25, 0.75, 4, 9))


def test_a_superseded_request_drops_out_and_the_batch_goes_on():
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler()
    threads, _, _ = in_threads(gate, emu, [(0.3, 0.8, 1, 0)])
    assert emu.started.wait(5)
    stale = threading.Event()

    def moved_on(done, total):
        if stale.is_set():
            raise Superseded("the slider moved")

    calls = []
    more, results, errors = in_threads(gate, emu, [(0.2, 0.7, 4, 1), (0.4, 0.9, 4, 2)],
                                       progress=[moved_on, lambda d, t: calls.append(d)])
    stale.set()
    hold.set()
    for t in threads + more:
        t.join(5)
    assert isinstance(errors.get(0), Superseded) and 0 not in results
    np.testing.assert_array_equal(results[1].maps, BatchSpy.alone(0.4, 0.9, 4, 2))
    assert calls[-1] == 10


def test_a_batch_everyone_left_stops_and_errors_reach_every_request():
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler()

    def gone(done, total):
        raise Superseded("cancelled")

    threads, results, errors = in_threads(gate, emu, [(0.3, 0.8, 4, 1)], progress=[gone])
    for t in threads:
        t.join(5)
    assert isinstance(errors[0], Superseded) and not hold.is_set()  # it stopped without being released
    assert gate.history == [(1, 4)]

    broken, gate = BatchSpy(fail=RuntimeError("out of memory")), BatchingSampler()
    threads, results, errors = in_threads(gate, broken, [(0.3, 0.8, 4, 1)])
    for t in threads:
        t.join(5)
    assert isinstance(errors[0], RuntimeError)
    # bad arguments are refused before joining: nothing sampled, the next request unaffected
    with pytest.raises(ValueError, match="omega_m=0.9 is outside"):
        gate.sample(BatchSpy(), 0.9, 0.8, 4, 1)
    ok = BatchSpy()
    np.testing.assert_array_equal(gate.sample(ok, 0.3, 0.8, 2, 3).maps, BatchSpy.alone(0.3, 0.8, 2, 3))
    with pytest.raises(ValueError, match="max_maps"):
        BatchingSampler(0)


def test_the_app_draws_quick_samplers_through_the_gate_and_slow_ones_alone():
    emu, gate = BatchSpy(), BatchingSampler()
    alone_calls = []
    emu.sample = lambda *a, **kw: alone_calls.append((a, kw)) or BatchSpy.alone(*a[:2], kw["n"], kw["seed"])
    result = compute.emulate(emu, omega_m=0.3, sigma_8=0.8, n_maps=2, seed=5, cache=None, batcher=gate)
    np.testing.assert_array_equal(result.maps, BatchSpy.alone(0.3, 0.8, 2, 5))
    assert gate.history == [(1, 2)] and not alone_calls
    compute.preview(emu, omega_m=0.2, sigma_8=0.7, seed=3, batcher=gate)
    assert gate.history == [(1, 2), (1, 1)] and emu.batches[-1] == [(0.2, 0.7, 1, 3)]
    slow = compute.Sampler("ddpm", None, "full", slow=True)  # minutes: never holds up the sliders' gate
    compute.emulate(emu, omega_m=0.3, sigma_8=0.8, n_maps=2, seed=5, sampler=slow, cache=None, batcher=gate)
    assert len(gate.history) == 2 and alone_calls[0][1]["method"] == "ddpm"
    compute.emulate(emu, omega_m=0.3, sigma_8=0.8, n_maps=2, seed=6, cache=None, batcher=None)
    assert len(gate.history) == 2 and len(alone_calls) == 2


def test_a_request_identical_to_one_being_sampled_waits_for_its_maps():
    """A class pressing one preset a moment apart: the second press finds the first being sampled and
    waits for those maps, so they are sampled once (the cache of sampled maps only helps afterwards)."""
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler()
    threads, results, errors = in_threads(gate, emu, [(0.25, 0.75, 4, 9)])
    assert emu.started.wait(5)
    more, results2, errors2 = in_threads(gate, emu, [(0.25, 0.75, 4, 9), (0.25, 0.75, 4, 10)])
    hold.set()
    for t in threads + more:
        t.join(5)
    assert not errors and not errors2
    assert emu.batches == [[(0.25, 0.75, 4, 9)], [(0.25, 0.75, 4, 10)]]  # seed 9 sampled once
    np.testing.assert_array_equal(results2[0].maps, results[0].maps)


def test_a_request_joined_while_running_keeps_it_going_when_the_first_asker_leaves():
    """The one who asked gave up, but an identical request joined it meanwhile: the batch goes on for
    it and it gets its maps (had the batch stopped first, the request is queued again)."""
    hold = threading.Event()
    emu, gate = BatchSpy(hold), BatchingSampler()
    leave = threading.Event()

    def leaving(done, total):
        if leave.is_set():
            raise Superseded("moved on")

    threads, results, errors = in_threads(gate, emu, [(0.3, 0.8, 4, 1)], progress=[leaving])
    assert emu.started.wait(5)
    late, results2, errors2 = in_threads(gate, emu, [(0.3, 0.8, 4, 1)])  # joins the running request
    leave.set()
    hold.set()
    for t in threads + late:
        t.join(5)
    assert isinstance(errors[0], Superseded)
    assert not errors2
    np.testing.assert_array_equal(results2[0].maps, BatchSpy.alone(0.3, 0.8, 4, 1))
