"""The app's view objects without a browser: parameters trigger the right core calls, plots update,
stale jobs are dropped, bad inputs show their message and change nothing else.

A spy emulator stands in for the model where only the calls matter; the infer tab runs the real
tiny random model (``conftest.tiny_weights``) through the real ``explorer.inference``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import shutil
import sys
import threading
import time
from types import SimpleNamespace

import holoviews as hv
import panel as pn
import numpy as np
import param
import pytest

from explorer.ui import compute
from explorer.ui import posterior as posterior_panes
from explorer.ui.app import ExplorerApp, build_app
from explorer.ui.panes import live_plots
from explorer.ui.context import (REPO, AppContext, Settings, ThreadPerJob, get_context, load_examples,
                                 torch_threads)
from explorer.ui.emulate import PREVIEW_PLACEHOLDER, EmulateTab
from explorer.ui.infer import InferTab
from explorer.ui.jobs import JobSlot, Superseded
from explorer.ui.reference import OnePSet, ReferenceSet
from explorer.ui.response import ResponseTab


class SpyEmulator:
    """Records ``sample`` calls; maps depend on (θ, seed) so tests can tell results apart."""

    resolution = 16
    param_ranges = ((0.1, 0.5), (0.6, 1.0))
    default_method, default_steps = "ddpm-strided", 10

    def __init__(self, fail: Exception | None = None, hold: threading.Event | None = None):
        self.calls: list[dict] = []
        self.fail = fail
        self.hold = hold  # while unset, the first call keeps reporting progress (a long job)
        self.superseded = False
        self.loaded = SimpleNamespace(metadata={"data": {"suite": "spy"}}, device=SimpleNamespace(type="cpu"))

    def sample(self, omega_m, sigma_8, n=4, seed=0, method=None, steps=None, progress=None, network=None):
        self.calls.append(dict(omega_m=omega_m, sigma_8=sigma_8, n=n, seed=seed, method=method, steps=steps,
                               network=network))
        if self.fail is not None:
            raise self.fail
        if self.hold is not None and len(self.calls) == 1:
            try:
                while not self.hold.wait(0.01):
                    progress(0, 10)
            except Superseded:
                self.superseded = True
                raise
        if progress is not None:
            progress(10, 10)
        rng = np.random.default_rng(seed)
        return (11.5 + 2 * omega_m + 0.3 * sigma_8 * rng.standard_normal((n, 16, 16))).astype(np.float32)


@pytest.fixture()
def context(tiny_reference, tiny_onep, tiny_examples):
    return AppContext(settings=Settings(), emulator=SpyEmulator(),
                      reference=ReferenceSet.from_directory(tiny_reference, 16),
                      onep=OnePSet.from_directory(tiny_onep, 16), examples=load_examples(tiny_examples))


def run(coro):
    return asyncio.run(coro)


def images(overlay) -> list:
    """The maps of a strip figure."""
    return [el for el in overlay if isinstance(el, hv.Image)]


# ---- settings and the shared context ------------------------------------------------------------

def test_settings_arguments_win_over_environment(tmp_path):
    env = {"EXPLORER_WEIGHTS": "/env/weights", "EXPLORER_REFERENCE": "/env/ref", "EXPLORER_WORKERS": "3"}
    s = Settings.from_environment(["--reference", str(tmp_path)], environ=env)
    assert s.weights.as_posix() == "/env/weights" and s.reference == tmp_path and s.workers == 3
    default = Settings.from_environment([], environ={})
    assert default.weights == REPO / "weights" and default.reference == REPO / "assets" / "valid"
    assert default.sample_cache and s.sample_cache
    assert not Settings.from_environment(["--sample-cache", "0"], environ={"EXPLORER_SAMPLE_CACHE": "1"}).sample_cache
    assert not Settings.from_environment([], environ={"EXPLORER_SAMPLE_CACHE": "off"}).sample_cache
    with pytest.raises(ValueError, match="sample_cache"):
        Settings.from_environment(["--sample-cache", "maybe"], environ={})
    assert default.bf16 is None  # auto: the emulator decides by the hardware (model.bf16_helps)
    assert default.sampler == "auto"  # few-call where the default sampler is slow here (compute.initial_sampler)
    assert Settings.from_environment([], environ={"EXPLORER_SAMPLER": "few-call"}).sampler == "few-call"
    assert Settings.from_environment(["--sampler", "default"], environ={"EXPLORER_SAMPLER": "auto"}).sampler == "default"
    with pytest.raises(ValueError, match="few-call"):
        Settings.from_environment(["--sampler", "quick"], environ={})
    assert Settings.from_environment(["--bf16", "0"], environ={"EXPLORER_BF16": "1"}).bf16 is False
    assert Settings.from_environment([], environ={"EXPLORER_BF16": "on"}).bf16 is True
    assert Settings.from_environment([], environ={"EXPLORER_BF16": "auto"}).bf16 is None
    with pytest.raises(ValueError, match="bf16"):
        Settings.from_environment(["--bf16", "fast"], environ={})
    assert default.batch_maps == 16  # the sessions' waiting samplings merged into batches of up to 16 maps
    assert Settings.from_environment(["--batch-maps", "1"], environ={"EXPLORER_BATCH_MAPS": "32"}).batch_maps == 1
    assert Settings.from_environment([], environ={"EXPLORER_BATCH_MAPS": "32"}).batch_maps == 32
    with pytest.raises(ValueError, match="batch_maps"):
        Settings.from_environment(["--batch-maps", "many"], environ={})
    assert (REPO / "explorer" / "main.py").is_file()  # defaults are found from the package, not the cwd


def test_torch_threads_setting():
    assert torch_threads(environ={"EXPLORER_TORCH_THREADS": "3"}) == 3
    assert torch_threads(environ={}) is None


def test_each_job_runs_on_a_thread_that_ends_with_it_and_at_most_workers_at_once():
    pool = ThreadPerJob(2, "test")
    gate, started = threading.Event(), []

    def job(i):
        started.append(threading.current_thread())
        gate.wait(10)
        return i

    futures = [pool.submit(job, i) for i in range(3)]
    deadline = time.monotonic() + 10
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(started) == 2  # the third job waits for a free slot
    gate.set()
    assert [f.result(timeout=10) for f in futures] == [0, 1, 2]
    assert len(set(started)) == 3  # a new thread per job ...
    for thread in started:
        thread.join(timeout=10)
        assert not thread.is_alive()  # ... which ended with it (and with it torch's OpenMP team)
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=10)


def test_context_is_built_once_per_process(app_environment, monkeypatch):
    from explorer.ui import context as ctx_module

    settings = Settings.from_environment([], environ=app_environment)
    builds = []
    real = ctx_module.build_context
    monkeypatch.setattr(ctx_module, "build_context", lambda s: builds.append(s) or real(s))
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_context(settings))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) <= 1 and all(r is results[0] for r in results)
    ctx = results[0]
    assert ctx.emulator.resolution == 16 and ctx.reference.cmd.n_sims == 6 and len(ctx.examples) == 2
    assert ctx.onep.fiducial == (0.3, 0.8)
    assert ctx.emulator.bf16 is None  # auto
    off = ctx_module.build_context(Settings.from_environment(["--bf16", "0"], environ=app_environment))
    assert off.emulator.bf16 is False  # the setting reaches the sampler



def test_server_start_hook_loads_the_sessions_context_and_samples_once_in_the_background(app_environment,
                                                                                       monkeypatch, capfd):
    """`panel serve explorer --args ...` runs explorer/app_hooks.py with sys.argv = [file, *args];
    its server-start hook loads, on a thread of its own, the very context the sessions will ask
    for (the same settings) and samples once."""
    import runpy

    from explorer.ui import context as ctx_module

    for name, value in app_environment.items():
        monkeypatch.setenv(name, value)
    args = ["--sample-cache", "0"]  # differs from every other test's settings: a context of its own
    monkeypatch.setattr(sys, "argv", [str(REPO / "explorer" / "app_hooks.py"), *args])
    hooks = runpy.run_path(str(REPO / "explorer" / "app_hooks.py"))
    monkeypatch.setattr(sys, "argv", ["panel"])  # the hook runs later, with the server's argv
    calls = []
    real = ctx_module.build_context

    def build(settings):
        ctx = real(settings)
        sample = ctx.emulator.sample
        ctx.emulator.sample = lambda *a, **k: calls.append((a, k)) or sample(*a, **k)
        return ctx

    monkeypatch.setattr(ctx_module, "build_context", build)
    hooks["on_server_loaded"](None)
    warm = [t for t in threading.enumerate() if t.name == "explorer-warm-up"]
    assert len(warm) == 1
    warm[0].join(60)
    settings = Settings.from_environment(args)  # what build_app gets in each session
    assert not settings.sample_cache and settings in ctx_module._CONTEXTS
    assert get_context(settings).emulator.resolution == 16
    assert calls == [((0.3, 0.8), {"n": 4, "seed": 0})]  # the prior's centre, the app's 4 maps
    assert "warmed up in" in capfd.readouterr().err


def test_missing_weights_show_how_to_get_them(tmp_path, capsys):
    page = build_app(Settings(weights=tmp_path / "nowhere"))
    alert = page.objects[1]
    assert "cannot start" in alert.object and "explorer train" in alert.object
    assert "explorer train" in capsys.readouterr().err


def test_reference_nearest_and_one_p(context):
    near = context.reference.nearest(0.41, 0.89, k=2)
    assert near[0].sim == 2 and near[0].distance < near[1].distance
    maps = context.reference.maps(near[0].sim)
    assert maps.shape == (15, 16, 16) and maps.dtype == np.float32 and 10 < maps.mean() < 14
    assert [v for v, _ in context.onep.values("sigma_8")] == [0.7, 0.75, 0.8, 0.85, 0.9]


def test_job_slot_supersedes():
    slot = JobSlot()
    first = slot.start()
    report = slot.progress(first)
    report(1, 2)
    second = slot.start()
    assert not slot.is_current(first) and slot.is_current(second)
    with pytest.raises(Superseded):
        report(2, 2)


# ---- emulate tab --------------------------------------------------------------------------------

def test_slider_release_samples_and_redraws(context):
    tab = EmulateTab(context)
    run(tab.refresh())
    spy = context.emulator
    assert spy.calls[-1] == dict(omega_m=0.3, sigma_8=0.8, n=4, seed=0, method=None, steps=None, network=None)
    first_maps = [img.data for img in images(tab.maps_row.object)]
    assert len(first_maps) == 4

    tab.omega_m = 0.45  # what the throttled slider does on release: the watcher samples
    assert spy.calls[-1]["omega_m"] == 0.45
    assert tab.result.omega_m == 0.45
    assert not np.array_equal(images(tab.maps_row.object)[0].data, first_maps[0])
    assert images(tab.maps_row.object)[0].bounds.lbrt() == (0, 0, 25.0, 25.0)  # h⁻¹Mpc
    assert "simulation 2 of" in tab._reference_info.object  # nearest to (0.45, 0.8): (0.4, 0.9)
    assert len(images(tab.ref_row.object)) == 4 and len(tab.structure_row.objects) == 3
    for pane in (tab.power_pane, tab.zscore_pane, tab.chi2_pane, tab.hist_pane):
        assert pane.object is not None
    c = tab.result.comparison
    assert c.chi2.shape == (4,) and c.chi2_floor.shape == (15,) and c.z.shape == c.k.shape


def test_controls_map_to_core_arguments(context):
    tab = EmulateTab(context)
    tab.param.update(n_maps=2, seed=7, sampler="DDIM, 50 steps")
    call = context.emulator.calls[-1]
    assert (call["n"], call["seed"], call["method"], call["steps"], call["network"]) == (2, 7, "ddim", 50, None)
    tab.sampler = "full network: Gaussian start + 30 Karras levels (slower)"
    call = context.emulator.calls[-1]
    assert (call["method"], call["steps"], call["network"]) == ("sde-dpmsolver++-karras-gauss", 30, "full")
    tab.sampler = "DDIM, 50 steps"
    assert len(images(tab.maps_row.object)) == 2 and tab.result.comparison.z is not None
    tab.n_maps = 1  # a single map has no z-score; the page says so instead of failing
    assert tab.result.comparison.z is None and not tab._error.visible
    before = tab.seed
    tab.param.trigger("new_seed")
    assert tab.seed != before and context.emulator.calls[-1]["seed"] == tab.seed


def test_newer_request_supersedes_running_job(context):
    release = threading.Event()
    context.emulator = spy = SpyEmulator(hold=release)
    tab = EmulateTab(context)

    async def scenario():
        stale = asyncio.ensure_future(tab.refresh())       # θ = (0.3, 0.8): blocks in the worker
        while not spy.calls:
            await asyncio.sleep(0.01)
        with param.parameterized.discard_events(tab):
            tab.omega_m = 0.2
        await tab.refresh()                                # the newer request
        release.set()
        await stale

    run(scenario())
    assert spy.superseded  # the stale job stopped at its next progress callback
    assert tab.result.omega_m == 0.2 and [c["omega_m"] for c in spy.calls] == [0.3, 0.2]


def test_one_sessions_slow_sampler_does_not_block_another(context, tiny_reference):
    release = threading.Event()
    slow = SpyEmulator(hold=release)
    busy_tab = EmulateTab(AppContext(settings=Settings(), emulator=slow, reference=context.reference))
    with param.parameterized.discard_events(busy_tab):
        busy_tab.sampler = "DDPM, 1000 steps (paper mode, full network, slow)"  # runs with the long jobs
    other = EmulateTab(context)

    async def scenario():
        long_job = asyncio.ensure_future(busy_tab.refresh())
        while not slow.calls:
            await asyncio.sleep(0.01)
        await asyncio.wait_for(other.refresh(), timeout=30)  # completes while the other job runs
        assert other.result is not None and busy_tab.result is None
        release.set()
        await long_job

    run(scenario())
    assert busy_tab.result is not None


def test_sampling_error_is_shown_and_cleared(context, caplog):
    context.emulator = SpyEmulator(fail=RuntimeError("CUDA out of memory"))
    tab = EmulateTab(context)
    with caplog.at_level("ERROR", logger="explorer.ui.emulate"):
        run(tab.refresh())
    assert tab._error.visible and tab._error.object == "Sampling failed: CUDA out of memory"
    assert not tab.busy and not tab.progress_shown and tab.result is None
    # the server log keeps the traceback; the page shows one line
    logged = [r for r in caplog.records if r.name == "explorer.ui.emulate" and r.exc_info]
    assert logged and logged[0].exc_info[0] is RuntimeError and "Traceback" not in tab._error.object
    tab.emulator = SpyEmulator()
    run(tab.refresh())
    assert not tab._error.visible and tab.result is not None and not tab.busy


def test_value_error_is_a_user_error_shown_without_a_traceback(context, caplog):
    context.emulator = SpyEmulator(fail=ValueError("omega_m=0.7 is outside the prior range"))
    tab = EmulateTab(context)
    with caplog.at_level("INFO", logger="explorer.ui.emulate"):
        run(tab.refresh())
    assert tab._error.object == "Sampling failed: omega_m=0.7 is outside the prior range" and tab._error.visible
    assert not tab.busy and not tab.progress_shown
    records = [r for r in caplog.records if r.name == "explorer.ui.emulate"]
    assert records and all(r.exc_info is None and r.levelname == "INFO" for r in records)


def spy_map(omega_m, sigma_8, seed, n=1) -> np.ndarray:
    """The maps ``SpyEmulator.sample`` returns for these arguments."""
    rng = np.random.default_rng(seed)
    return (11.5 + 2 * omega_m + 0.3 * sigma_8 * rng.standard_normal((n, 16, 16))).astype(np.float32)


def test_dragging_previews_one_quick_map_of_the_newest_position(context):
    release = threading.Event()
    context.emulator = spy = SpyEmulator(hold=release)  # the first preview blocks until released
    tab = EmulateTab(context)
    om_slider, _ = tab.controls()[1:3]

    async def scenario():
        om_slider.value = 0.35       # dragging: the slider's value moves, the parameter (release) does not
        while not spy.calls:
            await asyncio.sleep(0.01)
        om_slider.value = 0.36       # while the first preview runs: only the newest position is previewed next
        om_slider.value = 0.37
        await asyncio.sleep(0.05)
        assert len(spy.calls) == 1
        release.set()
        while tab._previewing:
            await asyncio.sleep(0.01)

    run(scenario())
    assert tab.omega_m == 0.3 and tab.result is None  # no full sampling while dragging
    assert [c["omega_m"] for c in spy.calls] == [0.35, 0.37]
    assert spy.calls[-1] == dict(omega_m=0.37, sigma_8=0.8, n=1, seed=0, method="ddpm-strided", steps=10,
                                 network=None)  # the spy has no Gaussian start: the fallback preview sampler
    shown = tab.preview_pane.object
    np.testing.assert_array_equal(shown.data, spy_map(0.37, 0.8, 0)[0][::-1])  # map_image's row order
    assert hv.Store.lookup_options("bokeh", shown, "plot").kwargs["title"].startswith("preview: Ωₘ 0.370, σ₈ 0.800")


def test_release_cancels_a_running_preview_and_samples(context):
    release = threading.Event()
    context.emulator = spy = SpyEmulator(hold=release)
    tab = EmulateTab(context)
    om_slider, _ = tab.controls()[1:3]

    async def scenario():
        om_slider.value = 0.4
        while not spy.calls:
            await asyncio.sleep(0.01)
        tab.omega_m = 0.4            # the release: samples, and the running preview stops
        while tab.result is None:
            await asyncio.sleep(0.01)
        release.set()

    run(scenario())
    title = hv.Store.lookup_options("bokeh", tab.preview_pane.object, "plot").kwargs["title"]
    assert spy.superseded and title == PREVIEW_PLACEHOLDER  # the stale preview was never drawn
    assert [(c["omega_m"], c["n"]) for c in spy.calls] == [(0.4, 1), (0.4, 4)]
    assert tab.result.omega_m == 0.4 and len(images(tab.maps_row.object)) == 4


def test_busy_while_sampling_and_off_after_it(context):
    release = threading.Event()
    context.emulator = spy = SpyEmulator(hold=release)
    tab = EmulateTab(context)

    async def scenario():
        job = asyncio.ensure_future(tab.refresh())
        while not spy.calls:
            await asyncio.sleep(0.01)
        assert tab.busy and tab.progress_shown and tab._status.object.startswith("Sampling 4 map(s)")
        release.set()
        await job

    run(scenario())
    assert not tab.busy and not tab.progress_shown and tab._status.object.startswith("4 map(s) at")


def test_simulated_reference_replaces_nearest(context, monkeypatch):
    from explorer.ui import emulate

    calls = []

    def fake_simulation(omega_m, sigma_8, seed, resolution):
        calls.append((omega_m, sigma_8, seed, resolution))
        return np.full((15, resolution, resolution), 12.0, np.float32) + np.random.default_rng(0).normal(
            0, 0.1, (15, resolution, resolution)).astype(np.float32)

    monkeypatch.setattr(emulate, "simulate_reference", fake_simulation)
    tab = EmulateTab(context)
    assert not tab._simulate_button.disabled  # the tiny reference is suite "PM", like the stand-in
    tab.param.trigger("simulate")
    assert calls == [(0.3, 0.8, 0, 16)] and not tab._simulate_button.loading
    assert "exactly" in tab._reference_info.object and len(context.emulator.calls) == 1


def test_failed_simulation_is_shown_and_ends_loading(context, monkeypatch, caplog):
    from explorer.ui import emulate

    def broken_simulation(omega_m, sigma_8, seed, resolution):
        raise RuntimeError("particle-mesh diverged")

    monkeypatch.setattr(emulate, "simulate_reference", broken_simulation)
    tab = EmulateTab(context)
    with caplog.at_level("ERROR", logger="explorer.ui.emulate"):
        tab.param.trigger("simulate")
    assert tab._error.object == "Simulation failed: particle-mesh diverged" and not tab._simulate_button.loading
    assert [r.exc_info[0] for r in caplog.records if r.name == "explorer.ui.emulate"] == [RuntimeError]
    assert tab._simulated is None and context.emulator.calls == []


def test_downloads(context):
    tab = EmulateTab(context)
    run(tab.refresh())
    maps = np.load(tab._maps_npy(), allow_pickle=False)
    np.testing.assert_array_equal(maps, tab.result.maps)
    assert tab._npy.filename == "generated_maps_Om0.300_s80.800_seed0.npy"
    html = tab._figure_html().getvalue().decode()
    assert "<html" in html.lower() and "Bokeh" in html
    import re

    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
    assert all("icon" in url for url in remote), remote  # code and styles inline: works offline


# ---- parameter response tab ---------------------------------------------------------------------

def test_response_uses_one_seed_and_the_1p_values(context):
    tab = ResponseTab(context)
    run(tab.activate())
    calls = context.emulator.calls
    assert sorted(c["omega_m"] for c in calls) == [0.2, 0.25, 0.3, 0.35, 0.4]
    assert {c["sigma_8"] for c in calls} == {0.8} and {c["seed"] for c in calls} == {0}
    r = tab.result
    assert r.response.mean.shape == (5, r.k.size) and r.response_ref is not None
    np.testing.assert_allclose(r.response.mean[2], 1.0)  # the fiducial against itself, same seeds
    assert len(images(tab.strip_row.object)) == 3 and len(images(tab.ref_strip_row.object)) == 3
    assert tab.power_pane.object is not None and tab.ratio_pane.object is not None
    assert tab.ready and not tab._html.disabled and tab._html.filename == "response_omega_m_seed0.html"
    assert not tab.busy and not tab._progress.visible and not tab.strip_row.pane.loading
    assert tab._status.object.startswith("Response to Ωₘ around Ωₘ = 0.3, σ₈ = 0.8: 4 seeds per value")

    context.emulator.calls.clear()
    tab.vary = "sigma_8"
    assert {c["omega_m"] for c in context.emulator.calls} == {0.3}
    assert sorted(c["sigma_8"] for c in context.emulator.calls) == [0.7, 0.75, 0.8, 0.85, 0.9]


def test_response_failure_is_logged_and_shown(context, caplog):
    context.emulator = SpyEmulator(fail=RuntimeError("worker died"))
    tab = ResponseTab(context)
    with caplog.at_level("ERROR", logger="explorer.ui.response"):
        run(tab.refresh())
    assert tab._error.visible and tab._error.object == "Failed: worker died" and tab.result is None
    assert not tab.busy and not tab._progress.visible and not tab.strip_row.pane.loading
    assert [r.exc_info[0] for r in caplog.records if r.name == "explorer.ui.response"] == [RuntimeError]


# ---- infer tab (real tiny model and real inference) ---------------------------------------------

@pytest.fixture(scope="module")
def infer_context(tiny_weights, tiny_reference, tiny_examples, tmp_path_factory):
    """The tiny model, with a P(k) baseline fitted on the tiny reference set and a random CNN in its folder."""
    import torch

    from explorer.data import Normalization, load_cmd, find_cmd, to_log10
    from explorer.inference import PkBaseline
    from explorer.inference.cnn import CnnEstimator, MomentNet
    from explorer.model import Emulator

    folder = tmp_path_factory.mktemp("weights_pk") / "weights"
    shutil.copytree(tiny_weights, folder)
    cmd = load_cmd(*find_cmd(tiny_reference))
    PkBaseline.fit(cmd.maps_theta(), to_log10(cmd.maps, 16), n_bins=4, degree=2).save(folder / "pk_baseline.json")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        CnnEstimator(MomentNet(16, (4, 8), hidden=8).eval(), Normalization(9.0, 15.0)).save(folder / "cnn")
    ctx = AppContext(settings=Settings(weights=folder), emulator=Emulator.from_folder(folder, device="cpu"),
                     examples=load_examples(tiny_examples), pk_baseline=folder / "pk_baseline.json",
                     cnn=folder / "cnn")
    return ctx


@pytest.fixture()
def small_grids(monkeypatch):
    """The real inference on 5x5 + 5x5 grids (the app's defaults are 7x7 + 9x9): same code, less time."""
    import functools

    import explorer.inference

    monkeypatch.setattr(explorer.inference, "infer", functools.partial(
        explorer.inference.infer, coarse=(5, 5), fine=(5, 5), interpolate_to=(21, 21)))


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_example_gives_contours_marginals_and_json(infer_context, small_grids):
    tab = InferTab(infer_context)
    assert tab.example is not None
    tab.param.trigger("run_example")
    assert not tab._error.visible, tab._error.object
    assert not tab.busy and not tab.posterior_pane.pane.loading and tab._cancel_button.disabled
    post = tab.result.posterior
    assert post.truth == (0.25, 0.75) and post.delta_chi2.shape == (post.omega_m.size, post.sigma_8.size)
    overlay = tab.posterior_pane.object
    paths = [el for el in overlay if isinstance(el, (hv.Contours, hv.Path)) and not isinstance(el, hv.Bounds)]
    assert len(paths) == 3 + 3  # 1/2/3σ of the VLB and of the P(k) baseline
    assert any(isinstance(el, hv.Points) and el.label == "truth" for el in overlay)
    # the surface fills the whole prior box (the coarse scan under the fine window), so contours of
    # the baseline outside the window do not widen the axes onto a blank band
    ims = [el for el in overlay if isinstance(el, hv.Image)]
    assert len(ims) == 2
    (o_lo, o_hi), (s_lo, s_hi) = ((0.1, 0.5), (0.6, 1.0))  # the tiny model's prior box
    assert (post.coarse.omega_m[[0, -1]] == (o_lo, o_hi)).all() and (post.coarse.sigma_8[[0, -1]] == (s_lo, s_hi)).all()
    bg, fine = ims
    assert bg.range(0) == pytest.approx((o_lo, o_hi), abs=0.02) and bg.range(1) == pytest.approx((s_lo, s_hi), abs=0.02)
    assert fine.range(0)[1] - fine.range(0)[0] < o_hi - o_lo  # the window is narrower than the prior here
    corner = bg[float(post.coarse.omega_m[0]) + 1e-6, float(post.coarse.sigma_8[0]) + 1e-6]
    assert corner == pytest.approx(min(post.coarse.delta_chi2[0, 0], 2.5 * post.levels[-1]), rel=0.05, abs=0.05)
    name = tab.result.name.split(" (")[0]  # every figure says whose field it is (without its truth)
    assert overlay.opts.get().kwargs["title"].startswith(f"{name}: ")
    assert tab.field_pane.object.opts.get().kwargs["title"].startswith(f"{name} (")
    assert all(p.object is not None for p in tab.marginal_panes)
    assert "Ωₘ, max [68 %]" in tab.estimates.object and "P(k) baseline" in tab.estimates.object
    cnn = tab.result.cnn  # the CNN's point with its ±1σ bars, its row and its Gaussian marginal
    assert "CNN estimator (mean)" in tab.estimates.object and f"{cnn['omega_m']['mean']:.3f}" in tab.estimates.object
    bars = [el for el in overlay if isinstance(el, hv.Segments)]
    assert len(bars) == 1 and np.allclose(bars[0].array()[0], [cnn["omega_m"]["mean"] - cnn["omega_m"]["std"],
                                                               cnn["sigma_8"]["mean"], cnn["omega_m"]["mean"] + cnn["omega_m"]["std"],
                                                               cnn["sigma_8"]["mean"]])
    assert any(isinstance(el, hv.Curve) and el.label == "CNN" for el in tab.marginal_panes[0].object)

    tab.show_baseline = False  # the toggle redraws without the baseline's three contours
    fewer = [el for el in tab.posterior_pane.object if isinstance(el, (hv.Contours, hv.Path)) and not isinstance(el, hv.Bounds)]
    assert len(fewer) == len(paths) - 3 and "P(k) baseline" not in tab.estimates.object
    assert not [el for el in tab.posterior_pane.object if isinstance(el, hv.Segments)]
    assert "CNN" not in tab.estimates.object

    saved = json.loads(tab._result_json().getvalue())
    assert saved["posterior"]["truth"] == [0.25, 0.75] and saved["pk_baseline"]["method"] == "pk"
    assert saved["cnn"]["sigma_8"]["std"] == pytest.approx(cnn["sigma_8"]["std"])
    assert tab._json.filename == f"posterior_{tab.result.name.rsplit('.', 1)[0].replace(' ', '_')[:60]}.json"


def test_the_coarse_scan_is_drawn_first_then_refined_in_place(infer_context, small_grids):
    """While the fine grid is computed, the tab shows the coarse scan's first look (baselines beside
    it, no spinner over it, downloads and handout off); the refined surface then replaces it."""
    tab = InferTab(infer_context)
    seen = []
    show = tab.show

    seen_result = []

    def spy(result, final=True):
        if not final:
            seen_result.append(result)
        seen.append((result.posterior.settings.get("stage"), final, tab.busy, tab._status.object))
        show(result, final)
        if not final:
            title = tab.posterior_pane.object.opts.get().kwargs["title"]
            seen[-1] += (title, tab._json.disabled, tab.ready, tab.result.baseline is not None,
                         tab._details.styles, [p.object for p in tab.marginal_panes])

    tab.show = spy
    tab.param.trigger("run_example")
    assert not tab._error.visible, tab._error.object
    assert [(stage, final) for stage, final, *_ in seen] == [("coarse", False), (None, True)]
    _, _, busy, _, title, json_off, ready, with_baseline, details, marginals = seen[0]
    assert busy and "coarse scan" in title and json_off and not ready and with_baseline
    assert details["opacity"] != "1" and marginals == [None, None]  # no marginals from 4x4 points: dimmed
    coarse_post = tab.result.posterior.coarse
    assert coarse_post is not None and "network evaluations in" in tab._status.object
    assert "coarse" not in tab.posterior_pane.object.opts.get().kwargs["title"]
    assert not tab._json.disabled and tab.ready and not tab.busy
    assert tab._details.styles["opacity"] == "1" and all(p.object is not None for p in tab.marginal_panes)

    # failing while refining: the status says the surface on screen is only the first look
    tab._failed("other.npy", RuntimeError("boom"))
    assert "first look" not in tab._status.object  # the shown result is a refined one
    tab.show(seen_result[0], final=False)
    tab._failed(seen_result[0].name, RuntimeError("boom"))
    assert "only the coarse first look" in tab._status.object


def test_infer_tab_offers_a_small_network_calibrated_on_its_own(infer_context, small_grids, tmp_path, monkeypatch):
    """Where the weights carry a small network calibrated for its terms (vlb:8), the tab offers it first,
    as its fast default (those terms, the 3x3 + 3x3 grid), and the full network's precise result then
    replaces it in place; the full network brings back the precise preset."""
    import torch

    from explorer.model import Emulator, ParamUNet, save_model

    assert list(InferTab(infer_context).param.network.objects.values()) == ["full"]  # no small network
    folder = tmp_path / "weights"
    shutil.copytree(infer_context.settings.weights, folder)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        net = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                        attention_levels=1, norm_num_groups=4, attention_head_dim=8)

    def context(terms):
        save_model(folder / "small", net, {"normalization": {"lo": 9.0, "hi": 15.0},
                                           "calibration": {"temperature": 2.0, "terms": terms, "n_noise": 1}})
        return AppContext(settings=Settings(weights=folder), emulator=Emulator.from_folder(folder, device="cpu"),
                          examples=infer_context.examples, pk_baseline=infer_context.pk_baseline)

    # calibrated for other terms only: its contours would be raw, so it is not offered
    assert list(InferTab(context(compute.DEFAULT_TERMS)).param.network.objects.values()) == ["full"]
    tab = InferTab(context(compute.FAST_TERMS))
    assert list(tab.param.network.objects.values()) == ["small", "full"]
    assert (tab.network, tab.terms, tab.grid, tab.refine) == ("small", "vlb:8", "3x3+3x3", True)
    shown_controls = [getattr(w, "name", None) for w in tab.controls()]
    assert [n for n in shown_controls if n in ("likelihood network", "then refine with the full network",
                                               "likelihood terms", "grid over the prior")] == [
        "likelihood network", "then refine with the full network", "likelihood terms", "grid over the prior"]
    shown, inferred = [], tab._inferred
    monkeypatch.setattr(tab, "_inferred", lambda result: (shown.append((result, tab._status.object)), inferred(result)))
    tab.param.trigger("run_example")  # the fast result, then the full network's
    assert [r.network for r, _ in shown] == ["small", "full"] and tab.result is shown[1][0]
    refined, fast = shown[1][0].posterior, shown[0][0].posterior
    assert refined.terms == compute.DEFAULT_TERMS and refined.settings["fine"] == [4, 4]
    # no coarse scan of its own: its fine window is the fast posterior's 3σ box, the fast coarse scan its background
    assert refined.settings["window_given"] and refined.n_evaluations == (16 + 1) * 8 and refined.coarse is fast.coarse
    for (lo, hi), name in zip(refined.settings["window"], ("omega_m", "sigma_8")):
        assert lo <= fast.estimates[name]["lo95"] and hi >= fast.estimates[name]["hi95"]
    assert "(full network, " in tab._status.object and "4×4 grid on the fast result's 3σ window" in tab._status.object
    figure = tab.posterior_pane.object  # the window outlined, the other network's coarse scan faded around it
    [edge] = [el for el in figure if isinstance(el, hv.Bounds)]
    assert np.allclose([*edge.range(0), *edge.range(1)], (refined.omega_m[0], refined.omega_m[-1], refined.sigma_8[0], refined.sigma_8[-1]))
    alphas = [hv.Store.lookup_options("bokeh", im, "style").kwargs.get("alpha", 1.0)
              for im in figure if isinstance(im, hv.Image)]
    faded = [im for im in figure if isinstance(im, hv.Image)][alphas.index(min(alphas))]
    assert sorted(alphas) == [posterior_panes.BACKGROUND_ALPHA, 1.0]
    centres = faded.dimension_values(0)  # the whole prior: the fast network's coarse scan
    assert np.allclose((centres.min(), centres.max()), (fast.coarse.omega_m[0], fast.coarse.omega_m[-1]))
    assert not tab.busy and not tab._refining
    tab.refine = False
    tab.param.trigger("run_example")
    assert [r.network for r, _ in shown] == ["small", "full", "small"]
    small = tab.result.posterior
    assert not tab._error.visible, tab._error.object
    assert small.settings["coarse"] == [3, 3] and small.settings["fine"] == [3, 3] and small.terms == "vlb:8"
    assert tab.result.network == "small" and "(small network, vlb:8, 3×3 + 3×3 grid)" in tab._status.object
    assert json.loads(tab._result_json().getvalue())["network"] == "small"
    tab.network = "full"
    assert (tab.terms, tab.grid) == (compute.DEFAULT_TERMS, "4x4+4x4")
    tab.terms = "vlb:8"  # the preset is a starting point: terms and grid stay free
    tab.param.trigger("run_example")
    full = tab.result.posterior
    assert full.settings["coarse"] == [4, 4] and tab.result.network == "full"
    assert full.temperature == 1.0 and small.temperature == 2.0  # each network's own calibration
    assert not np.allclose(small.delta_chi2 * 2.0, full.delta_chi2)  # another network's surface
    with pytest.raises(ValueError, match="grid must look like"):
        compute.grid_shape("4x4")


def test_per_timestep_contours(infer_context, small_grids):
    tab = InferTab(infer_context, terms="sum:5", per_timestep=True, show_baseline=False)
    tab.param.trigger("run_example")
    post = tab.result.posterior
    assert sorted(post.per_timestep) == ["L0", "L1", "L2", "L3", "L4"]
    with_terms = tab.posterior_pane.object.select(hv.Contours) or tab.posterior_pane.object.select(hv.Path)
    tab.per_timestep = False
    without = tab.posterior_pane.object.select(hv.Contours) or tab.posterior_pane.object.select(hv.Path)
    assert len(with_terms) == len(without) + 5  # one 1σ contour per term


@pytest.mark.parametrize("name, data, message", [
    ("field.npy", npy_bytes(np.full((32, 32), np.nan)), "NaN"),
    ("field.txt", b"1 2 3", "unsupported file type"),
    ("cube.npy", npy_bytes(np.ones((4, 32, 32))), "one 2D map"),
    ("empty.npy", b"", "empty"),
    ("negative.npy", npy_bytes(-np.ones((32, 32))), "negative"),
], ids=["nan", "extension", "cube", "empty", "negative"])
def test_bad_file_shows_its_message_and_keeps_the_result(infer_context, name, data, message):
    tab = InferTab(infer_context)
    sentinel = SimpleNamespace(name="earlier.npy")
    tab.result = sentinel
    tab.dropper.value = {name: data}
    assert tab._error.visible and message in tab._error.object
    assert tab.result is sentinel and not tab.progress_shown and not tab.busy
    assert tab._status.object == f"Could not use **{name}**. The result below is still that of **earlier.npy**."
    assert tab._cancel_button.disabled
    assert not tab.posterior_pane.pane.loading


def test_dropping_a_second_file_infers_that_file(context, monkeypatch):
    """The FileDropper keeps earlier files in its ``value`` and adds the new one to the same dict
    (``event.old is event.new``): the tab infers from the file just dropped, not the oldest."""
    inferred = []

    def fake_inference(loaded, field, *, name, **settings):
        inferred.append(name)
        return SimpleNamespace(name=name, kind="density", posterior=SimpleNamespace(n_evaluations=1, seconds=0.1))

    monkeypatch.setattr(compute, "infer_field", fake_inference)
    tab = InferTab(context)
    monkeypatch.setattr(tab, "show", lambda result: setattr(tab, "result", result))
    field = npy_bytes(np.full((32, 32), 1e12))

    tab.dropper.value = {"field_1.npy": field}
    assert inferred == ["field_1.npy"] and tab.result.name == "field_1.npy"
    tab.dropper.value["field_2.npy"] = field  # the next drop, as FileDropper._process_event does it
    tab.dropper.param.trigger("value")
    assert inferred == ["field_1.npy", "field_2.npy"] and tab.result.name == "field_2.npy"
    assert tab._status.object.startswith("**field_2.npy** (density)") and not tab.busy
    tab.dropper.value["field_1.npy"] = npy_bytes(np.full((32, 32), 2e12))  # field_1 dropped again
    tab.dropper.param.trigger("value")
    assert inferred[-1] == "field_1.npy" and tab.result.name == "field_1.npy"
    del tab.dropper.value["field_2.npy"]  # removing a file in the dropper starts nothing
    tab.dropper.param.trigger("value")
    assert len(inferred) == 3


def until_cancelled(started: threading.Event, progress, cancel) -> None:
    """A slow inference's stand-in: reports progress until ``cancel()`` (then InferenceCancelled), at
    most 5 s."""
    from explorer.inference import InferenceCancelled

    started.set()
    for step in range(500):
        if cancel():
            raise InferenceCancelled("cancelled")
        progress(step, 500)
        time.sleep(0.01)
    raise AssertionError("never cancelled")


def test_the_fast_result_stays_in_view_while_the_full_network_refines_it_and_after_a_cancel(infer_context, monkeypatch):
    from explorer.inference import Posterior
    from explorer.ui.panes import SHOWN

    started, calls = threading.Event(), []

    def inference(loaded, field, *, name, network="full", progress=None, cancel=None, **settings):
        calls.append((network, settings["terms"], settings["grid"], settings.get("window") is not None))
        if network == "small":  # the fast preset: a result at once
            om, s8 = np.linspace(0.1, 0.5, 21), np.linspace(0.6, 1.0, 21)
            chi2 = ((om[:, None] - 0.3) / 0.05) ** 2 + ((s8[None, :] - 0.8) / 0.05) ** 2
            return compute.Inference(name, np.zeros((16, 16), np.float32), "log10", Posterior.from_grid(om, s8, chi2),
                                     None, network="small")
        until_cancelled(started, progress, cancel)  # the full network

    monkeypatch.setattr(compute, "infer_field", inference)
    monkeypatch.setattr(compute, "likelihood_networks", lambda emulator: {"small": "small", "full": "full"})
    monkeypatch.setattr(infer_context.emulator, "network", lambda name: None, raising=False)
    tab = InferTab(infer_context)
    assert tab.network == "small" and tab.refine

    async def scenario():
        job = asyncio.ensure_future(tab.run("field.npy", data=npy_bytes(np.full((32, 32), 1e12))))
        for _ in range(1000):
            if started.is_set() or job.done():
                break
            await asyncio.sleep(0.01)
        assert started.is_set(), "the full network never started refining"
        await asyncio.sleep(0.05)
        # the fast result is drawn in full (not dimmed, no spinner), Cancel and the progress bar stay
        assert tab.result.network == "small" and tab._details.styles == SHOWN and not tab.waiting
        assert "Refining with the full network" in tab._status.object and tab.busy and tab.progress_shown
        assert not tab._cancel_button.disabled and not tab._json.disabled
        tab.param.trigger("cancel")
        await job

    run(scenario())
    assert calls == [("small", "vlb:8", "3x3+3x3", False), ("full", compute.DEFAULT_TERMS, "4x4+4x4", True)]
    assert tab.result.network == "small" and tab._status.object.startswith("Refinement cancelled")
    assert not tab.busy and not tab.progress_shown and not tab._error.visible


def test_cancel_stops_inference(infer_context, monkeypatch):
    started = threading.Event()

    def slow_inference(loaded, field, *, progress=None, cancel=None, **kw):
        until_cancelled(started, progress, cancel)

    monkeypatch.setattr(compute, "infer_field", slow_inference)
    tab = InferTab(infer_context)

    async def scenario():
        job = asyncio.ensure_future(tab.run("field.npy", data=npy_bytes(np.full((32, 32), 1e12))))
        while not started.is_set():
            await asyncio.sleep(0.01)
        assert not tab._cancel_button.disabled and tab.progress_shown and tab.posterior_pane.pane.loading
        tab.param.trigger("cancel")
        await job

    run(scenario())
    assert tab.result is None and tab._status.object == "Cancelled." and tab._cancel_button.disabled
    assert not tab.busy and not tab.progress_shown and not tab.posterior_pane.pane.loading
    assert not tab._error.visible  # a cancelled inference is no failure


def test_prefetched_first_sample_is_reused(context):
    tab = EmulateTab(context)
    tab.prefetch()
    run(tab.refresh())
    assert len(context.emulator.calls) == 1 and tab.result.omega_m == 0.3
    tab.prefetch()
    tab.omega_m = 0.2  # settings changed before the page connected: the prefetched job is dropped
    assert tab.result.omega_m == 0.2
    run(tab.refresh())
    assert [c["omega_m"] for c in context.emulator.calls][-1] == 0.2


def test_maps_sampled_once_are_shared_by_sessions_and_other_seeds_are_sampled(context):
    """A class pressing the same preset asks for the same maps (the seed fixes them): sampled once,
    reused by every other session; another seed or sampler samples anew. A page's first maps are
    always sampled (``EmulateTab._cache``)."""
    spy = context.emulator
    first, second = EmulateTab(context), EmulateTab(context)
    run(first.refresh())
    run(second.refresh())
    assert len(spy.calls) == 2 and not first.result.reused and not second.result.reused  # first maps
    first.param.update(omega_m=0.15, sigma_8=0.95)  # a corner preset, in one session ...
    assert len(spy.calls) == 3 and not first.result.reused and "reused" not in first._status.object
    second.param.update(omega_m=0.15, sigma_8=0.95)  # ... then in the other: the same maps, reused
    assert len(spy.calls) == 3 and second.result.reused and "reused" in second._status.object
    np.testing.assert_array_equal(second.result.maps, first.result.maps)
    with pytest.raises(ValueError):
        second.result.maps[0, 0, 0] = 0.0  # shared between sessions: read-only
    second.seed = 7
    assert len(spy.calls) == 4 and spy.calls[-1]["seed"] == 7 and not second.result.reused
    assert not np.array_equal(second.result.maps, first.result.maps)
    second.seed = 0
    assert len(spy.calls) == 4 and second.result.reused
    second.sampler = "DDPM, 50 strided steps"
    assert len(spy.calls) == 5 and spy.calls[-1]["steps"] == 50 and not second.result.reused


def test_sample_cache_setting_off_samples_every_time(context):
    context = dataclasses.replace(context, settings=Settings(sample_cache=False))
    first, second = EmulateTab(context), EmulateTab(context)
    run(first.refresh())
    run(second.refresh())
    first.seed = second.seed = 3
    assert len(context.emulator.calls) == 4 and not second.result.reused


def test_sample_cache_keeps_the_most_recent_results_and_can_be_bypassed():
    spy = SpyEmulator()
    cache = compute.SampleCache(size=2)
    reused = [compute.emulate(spy, omega_m=0.3, sigma_8=0.8, n_maps=2, seed=seed, cache=cache).reused
              for seed in (0, 1, 0, 2, 1)]  # seed 1 was dropped when 2 came in (0 was used more recently)
    assert reused == [False, False, True, False, False] and [c["seed"] for c in spy.calls] == [0, 1, 2, 1]
    assert not compute.emulate(spy, omega_m=0.3, sigma_8=0.8, n_maps=2, seed=1, cache=None).reused
    assert not compute.emulate(spy, omega_m=0.3, sigma_8=0.8, n_maps=3, seed=1, cache=cache).reused
    assert len(spy.calls) == 6
    other = SpyEmulator()  # another model: its own maps
    assert not compute.emulate(other, omega_m=0.3, sigma_8=0.8, n_maps=2, seed=2, cache=cache).reused


def test_app_assembles_tabs(context):
    app = ExplorerApp(context)
    assert [name for name in app.tabs._names] == ["Emulate", "Parameter response", "Infer", "Guess the universe"]
    run(app.start())
    assert app.emulate.result is not None
    app.tabs.active = 3  # the game draws its first round when its tab is first shown
    assert app.game.puzzle is not None and app.game.map_pane.object is not None and not app.intro.dismissed
    app.stop()


def test_header_names_the_sampling_network_and_its_own_training_steps():
    import torch

    from explorer.ui.app import _model_summary

    def network(n_in, n_out, steps):
        return SimpleNamespace(network=torch.nn.Linear(n_in, n_out), device=torch.device("cpu"),
                               metadata={"training": {"steps": steps}, "data": {"suite": "PM", "train_sims": 450}})

    full, small = network(1000, 1000, 3191), network(300, 1000, 2000)  # 1,001,000 and 301,000 parameters
    emu = SimpleNamespace(loaded=full, networks={"full": full, "small": small}, default_network="small", resolution=64)
    text = _model_summary(SimpleNamespace(emulator=emu))
    assert text.startswith("Maps from a 0.3 M-parameter network (2,000 training steps)")
    assert "likelihood from a 1.0 M-parameter network (3,191 training steps)" in text
    assert "450 PM simulations at 64²" in text and "weights" not in text  # words, not file paths
    # a small network calibrated for the fast preset answers the Infer tab first
    emu.network = lambda name: emu.networks[name]
    small.metadata["calibration"] = {"temperature": 9.0, "terms": compute.FAST_TERMS, "n_noise": 1}
    text = _model_summary(SimpleNamespace(emulator=emu))
    assert "likelihood from that network first, refined by a 1.0 M-parameter network (3,191 training steps)" in text
    emu.default_network = "full"
    assert _model_summary(SimpleNamespace(emulator=emu)).startswith("Maps from a 1.0 M-parameter network (3,191")


def test_without_reference_the_worker_computes_the_maps_own_statistics(context):
    from explorer.stats import power_spectrum

    context.reference = None
    tab = EmulateTab(context)
    run(tab.refresh())
    c = tab.result.comparison
    assert not c.has_reference and c.chi2 is None and c.hist_ref is None
    np.testing.assert_allclose(c.power, power_spectrum(tab.result.maps).power)  # the maps' own P(k)
    assert c.structure is not None and tab.power_pane.object is not None and tab.hist_pane.object is not None


def test_release_memory_trims_the_heap_on_glibc():
    import platform

    from explorer.ui.context import release_memory

    trimmed = release_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert trimmed is True  # malloc_trim ran
    else:
        assert trimmed is False


def test_a_new_colour_range_updates_the_maps_in_place():
    from bokeh.document import Document
    from bokeh.models import LinearColorMapper

    from explorer.ui import plots
    from explorer.ui.panes import LivePlot

    rng = np.random.default_rng(0)
    titles = [f"generated #{i + 1}" for i in range(4)]
    live = LivePlot()
    live.update(plots.map_row(rng.normal(11, 0.5, (4, 16, 16)), titles, (10.0, 13.0)))
    pipe, root = live._pipe, live.pane.get_root(Document())
    live.update(plots.map_row(rng.normal(11, 0.5, (4, 16, 16)), titles, (9.0, 14.0)))  # another reference's range
    assert live._pipe is pipe  # the same figure: no new layout in the browser
    assert {(m.low, m.high) for m in root.select({"type": LinearColorMapper})} == {(9.0, 14.0)}


def test_presenter_mode_scales_plot_fonts_and_hides_the_secondary_plots(context):
    from explorer.ui.app import PRESENTER_FONTSCALE

    app = ExplorerApp(context)
    app.toolbar()  # the switch, with its browser-side font callback
    run(app.start())
    view = app.emulate.__panel__()
    def holder(row_or_pane):  # the smallest Column holding it
        return min((c for c in view.select(pn.Column) if any(o is row_or_pane for o in c.select())),
                   key=lambda c: len(c.select()))

    secondary = [holder(app.emulate.zscore_pane.pane), holder(app.emulate.chi2_pane.pane),
                 holder(app.emulate.structure_row._row)]
    assert all(p.visible for p in secondary)
    app.presenter = True
    assert not any(p.visible for p in secondary) and app.emulate.power_pane.pane.visible
    power = app.emulate.power_pane
    assert power.fontscale == PRESENTER_FONTSCALE
    shown = power._pipe.data  # the figure on the page is redrawn at the presenter's font scale
    assert hv.Store.lookup_options("bokeh", shown, "plot").kwargs.get("fontscale") == PRESENTER_FONTSCALE
    assert all(p.fontscale == 1.0 for p in live_plots(app.game))  # a hidden tab is redrawn when shown
    app.tabs.active = 3
    assert all(p.fontscale == PRESENTER_FONTSCALE for p in live_plots(app.game))
    app.tabs.active = 0
    app.presenter = False
    assert all(p.visible for p in secondary) and power.fontscale == 1.0
    app.stop()


def test_handout_is_the_shown_tab_and_waits_for_a_result(context, monkeypatch):
    monkeypatch.setattr("explorer.ui.app._model_summary", lambda _ctx: "the spy model")  # no network to count
    app = ExplorerApp(context)
    button = app._handout_button
    assert button.disabled  # nothing sampled yet
    run(app.start())
    assert not button.disabled
    pdf = run(app._handout()).getvalue()
    assert pdf.startswith(b"%PDF") and button.filename == "emulate_Om0.300_s80.800_seed0.pdf"
    app.tabs.active = 2  # Infer: nothing inferred yet
    assert button.disabled
    app.tabs.active = 3  # the game: a round is drawn but not revealed (a handout would give it away)
    assert button.disabled
    app.game.reveal = True
    app.handout_format = "png"
    png = run(app._handout()).getvalue()
    assert png.startswith(b"\x89PNG") and button.filename.startswith(f"guess_the_universe_seed{app.game.seed}_round1")
    app.stop()


def test_sampler_menu_offers_the_fast_network_and_the_few_call_sampler_only_where_the_weights_have_them(tmp_path):
    from types import SimpleNamespace

    from explorer.ui.compute import SAMPLER_CHOICES, initial_sampler, preview_sampler, sampler_choices

    fast = [label for label, s in SAMPLER_CHOICES.items() if s.network == "fast"]
    assert len(fast) == 1
    few = [label for label, s in SAMPLER_CHOICES.items() if s.method == "sde-translation"]
    assert len(few) == 1
    emu = SimpleNamespace(networks={"full": None, "small": None}, folder=tmp_path,
                          loaded=SimpleNamespace(translation_start=object(), gaussian_start=object()))
    assert fast[0] not in sampler_choices(emu)
    assert len(sampler_choices(emu)) == len(SAMPLER_CHOICES) - 1
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "explorer.json").write_text("{}")
    assert sampler_choices(emu) == list(SAMPLER_CHOICES)
    assert preview_sampler(emu).method == "sde-translation"
    assert initial_sampler("few-call", sampler_choices(emu)) == few[0]  # --sampler few-call
    assert initial_sampler("default", sampler_choices(emu)) == next(iter(SAMPLER_CHOICES))
    emu.loaded.translation_start = None  # weights without `explorer fit-start`: no few-call entry or preview
    assert sampler_choices(emu) == [label for label in SAMPLER_CHOICES if label != few[0]]
    assert preview_sampler(emu).method == "sde-dpmsolver++-karras-gauss"
    assert initial_sampler("few-call", sampler_choices(emu)) == next(iter(SAMPLER_CHOICES))  # falls back


def test_auto_starts_the_sliders_on_the_few_call_sampler_only_where_the_default_is_slow(monkeypatch, tmp_path):
    """"auto" (the setting's default) times the default sampler once per emulator: a discarded draw (the
    kernels' set-up), then the fastest of two; above the threshold the few-call sampler, else the default;
    never the few-call sampler where the weights lack its start, and then without timing anything."""
    import time
    from types import SimpleNamespace

    from explorer.ui import compute

    class SlowEmulator:
        param_ranges = ((0.1, 0.5), (0.6, 1.0))
        networks = {"full": None, "small": None}

        def __init__(self, seconds, start=True):
            self.seconds, self.calls, self.folder = seconds, [], tmp_path
            self.loaded = SimpleNamespace(translation_start=object() if start else None, gaussian_start=object())

        def sample(self, omega_m, sigma_8, n=4, seed=0, **kw):
            self.calls.append((omega_m, sigma_8, n, seed))
            time.sleep(self.seconds * (3 if not self.calls[:-1] else 1))  # the first draw is the slowest

    few, default = compute.SAMPLER_ALIASES["few-call"], compute.SAMPLER_ALIASES["default"]
    monkeypatch.setattr(compute, "AUTO_FEW_CALL_ABOVE_S", 0.05)
    slow = SlowEmulator(0.08)
    assert compute.initial_sampler("auto", compute.sampler_choices(slow), slow) == few
    assert slow.calls == [(0.3, 0.8, 4, 0), (0.3, 0.8, 4, 1), (0.3, 0.8, 4, 2)]  # centre of the prior, 4 maps
    assert 0.08 <= compute.default_sampling_seconds(slow) < 0.2  # the timed draws, not the first one (0.24 s)
    assert compute.initial_sampler("auto", compute.sampler_choices(slow), slow) == few and len(slow.calls) == 3
    assert "0.08 s for 4 maps" in compute.auto_sampler_note("auto", few, slow)
    assert compute.auto_sampler_note("few-call", few, slow) == "" and compute.auto_sampler_note("auto", default, slow) == ""
    fast = SlowEmulator(0.0)
    assert compute.initial_sampler("auto", compute.sampler_choices(fast), fast) == default
    no_start = SlowEmulator(0.08, start=False)
    assert compute.initial_sampler("auto", compute.sampler_choices(no_start), no_start) == default
    assert no_start.calls == []
    assert compute.initial_sampler("auto", compute.sampler_choices(fast)) == default  # no emulator to time
    assert compute.check_sampler_name("auto") == "auto" and Settings().sampler == "auto"
    with pytest.raises(ValueError, match="auto"):
        compute.check_sampler_name("quick")


def test_the_emulate_tab_starts_with_the_sampler_the_server_was_given(context):
    """`--sampler LABEL` (or an alias) selects the Emulate tab's first sampler; one these weights cannot run
    (the spy emulator has no translation start) leaves the model's default."""
    from dataclasses import replace

    label = "DDPM, 50 strided steps"
    tab = EmulateTab(replace(context, settings=Settings(sampler=label)))
    assert tab.sampler == label
    assert EmulateTab(replace(context, settings=Settings(sampler="few-call"))).sampler == "fast (model default)"
    assert EmulateTab(context).sampler == "fast (model default)"
    assert ResponseTab(replace(context, settings=Settings(sampler=label))).sampler == label
