"""Shared fixtures: a tiny random model folder and tiny CMD-format data sets, made in temporary dirs.

Nothing here depends on the shipped weights or the bundled assets, so tests run anywhere in
seconds. The fields look like CAMELS Mcdm maps (log-normal linear Σ around 10^11.5).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

# Torch's OpenMP threads wait passively, as in the app (explorer/ui/__init__.py): on a shared
# machine busy-waiting threads made sampling several times slower. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest

from explorer.data import MAPS_PER_SIM, write_cmd

TINY_RESOLUTION = 16


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: on the shared 2-core machine, one thread is faster
    than two fighting for cores (tests use tiny models, where threads buy nothing)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_bench(script: str):
    """``bench/<script>.py`` imported as a module (the benchmark scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{script}", Path(__file__).resolve().parents[1] / "bench" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_density_maps(theta, size: int, seed: int = 0) -> np.ndarray:
    """(15 n, size, size) float32 positive linear Σ whose mean and contrast grow with Ωₘ, σ₈."""
    rng = np.random.default_rng(seed)
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    k = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    shape = np.where(k > 0, (k + 1e-3) ** -1.2, 0.0)
    maps = []
    for omega_m, sigma_8 in theta:
        for _ in range(MAPS_PER_SIM):
            noise = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * np.sqrt(shape)).real
            noise *= 0.35 * sigma_8 / noise.std()
            maps.append(10 ** (11.0 + 2 * omega_m + noise))
    return np.asarray(maps, dtype=np.float32)


def make_tiny_weights(folder: Path) -> Path:
    """A weights folder with a tiny random ParamUNet at 16², fast default sampler (10 steps)."""
    import torch

    from explorer.model import ParamUNet, save_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=TINY_RESOLUTION, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                          attention_levels=1, norm_num_groups=4, attention_head_dim=8)
    save_model(folder, model, {"normalization": {"lo": 9.0, "hi": 15.0},
                               "sampler": {"method": "ddpm-strided", "steps": 10},
                               "data": {"suite": "test", "note": "random weights for tests"}})
    return folder


def make_tiny_reference(folder: Path) -> Path:
    """A CMD LH directory: 6 simulations × 15 maps at 32² (suite PM, like the bundled stand-in)."""
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9], [0.15, 0.95], [0.45, 0.65], [0.3, 0.75]])
    write_cmd(folder, fake_density_maps(theta, 32, seed=1), theta, suite="PM", set_name="LH")
    return folder


def make_tiny_onep(folder: Path) -> Path:
    """A CMD 1P directory around (0.3, 0.8): five Ωₘ values, then five σ₈ values, at 32²."""
    theta = [(om, 0.8) for om in (0.2, 0.25, 0.3, 0.35, 0.4)] + [(0.3, s8) for s8 in (0.7, 0.75, 0.8, 0.85, 0.9)]
    write_cmd(folder, fake_density_maps(theta, 32, seed=2), theta, suite="PM", set_name="1P")
    return folder


def make_tiny_examples(folder: Path) -> Path:
    """An examples folder: ``examples.json`` and two 32² density fields with known parameters."""
    entries = []
    for i, (om, s8) in enumerate([(0.25, 0.75), (0.35, 0.85)]):
        name = f"field_{i}.npy"
        np.save(folder / name, fake_density_maps([(om, s8)], 32, seed=10 + i)[0], allow_pickle=False)
        entries.append({"file": name, "omega_m": om, "sigma_8": s8, "kind": "density"})
    (folder / "examples.json").write_text(json.dumps(entries))
    return folder


def _tiny_folder_fixture(name: str, make):
    """A session fixture ``tiny_<name>``: ``make`` (one of the ``make_tiny_*`` above) in a new temporary folder."""
    def fixture(tmp_path_factory):
        return make(tmp_path_factory.mktemp(name))

    fixture.__doc__ = make.__doc__
    return pytest.fixture(scope="session", name=f"tiny_{name}")(fixture)


tiny_weights = _tiny_folder_fixture("weights", make_tiny_weights)
tiny_reference = _tiny_folder_fixture("reference", make_tiny_reference)
tiny_onep = _tiny_folder_fixture("onep", make_tiny_onep)
tiny_examples = _tiny_folder_fixture("examples", make_tiny_examples)


def app_environment_of(weights: Path, reference: Path, onep: Path, examples: Path) -> dict:
    """Environment variables that point the app at a model and data sets."""
    return {"EXPLORER_WEIGHTS": str(weights), "EXPLORER_REFERENCE": str(reference),
            "EXPLORER_ONEP": str(onep), "EXPLORER_EXAMPLES": str(examples), "EXPLORER_DEVICE": "cpu"}


@pytest.fixture(scope="session")
def app_environment(tiny_weights, tiny_reference, tiny_onep, tiny_examples):
    """Environment variables that point the app at the tiny model and data sets."""
    return app_environment_of(tiny_weights, tiny_reference, tiny_onep, tiny_examples)


# --- the app server and the GPU training's CPU run: started with the session, before collection ---------

CHROMIUM = Path(os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
# A GPU node has PyTorch's image only: the CPU smoke run of bench/gpu_train.sh must not need these.
GPU_NODE_LACKS = ("panel", "holoviews", "bokeh", "dask", "distributed", "astropy")
# Set by the process that starts a job (the only one, or pytest-xdist's controller) for every test process.
APP_URL_ENV, GPU_TRAIN_ENV = "EXPLORER_TEST_APP_URL", "EXPLORER_TEST_GPU_TRAIN"
BROWSER_TESTS, GPU_TRAIN_TESTS = "test_browser.py::", "test_gpu_train.py::"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    """``panel serve explorer`` from the repository root, bound to localhost, in its own process group."""
    from explorer.ui.context import REPO

    cmd = [sys.executable, "-m", "panel", "serve", "explorer", "--port", str(port), "--address", "127.0.0.1",
           "--allow-websocket-origin", f"127.0.0.1:{port}"]
    log = open(log_path, "w")
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> None:
    """Until ``url`` answers 200 (``proc``, when given: the server, which must not have exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"panel serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop_group(proc: subprocess.Popen) -> None:
    """End ``proc`` and its process group (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _quietly(fn, *args):
    try:
        fn(*args)
    except (OSError, RuntimeError, TimeoutError):
        pass  # app_url waits again and reports


def start_app_server(folder: Path) -> tuple[str, subprocess.Popen]:
    """``panel serve explorer`` on tiny weights and data made in ``folder`` (with a sharp calibration, so
    the random model has contours), warmed up by a first page request in a thread: (url, process)."""
    from explorer.inference.defaults import DEFAULT_N_NOISE, DEFAULT_TERMS

    for name in ("weights", "reference", "onep", "examples"):
        (folder / name).mkdir()
    weights = make_tiny_weights(folder / "weights")
    meta = json.loads((weights / "explorer.json").read_text())
    meta["calibration"] = {"temperature": 0.05, "terms": DEFAULT_TERMS, "n_noise": DEFAULT_N_NOISE}
    (weights / "explorer.json").write_text(json.dumps(meta))
    env = app_environment_of(weights, *(make(folder / name) for make, name in (
        (make_tiny_reference, "reference"), (make_tiny_onep, "onep"), (make_tiny_examples, "examples"))))
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    proc = start_server(env, port, ARTIFACTS / "server.log")
    url = f"http://127.0.0.1:{port}/explorer"
    threading.Thread(target=_quietly, args=(wait_for_http, url, proc, 180.0), daemon=True).start()
    return url, proc


def start_gpu_train(folder: Path) -> subprocess.Popen:
    """``bash bench/gpu_train.sh OUT 1 --tiny --gpus 2`` in ``folder`` with the app's packages made
    unimportable, niced so that its five processes take the core the tests leave idle. It writes
    ``out/``, ``stdout.log``, ``stderr.log`` and, when it ends, its exit status to ``rc``."""
    block = folder / "block"
    for name in GPU_NODE_LACKS:
        (block / name).mkdir(parents=True)
        (block / name / "__init__.py").write_text(f"raise ImportError('{name} is not on a GPU node')\n")
    env = {**os.environ, "PYTHONPATH": str(block), "PYTHON": "python"}
    for name in ("EXPLORER_WEIGHTS", APP_URL_ENV, GPU_TRAIN_ENV):
        env.pop(name, None)
    script = 'bash "$0" "$@" > stdout.log 2> stderr.log; echo $? > rc.part && mv rc.part rc'
    return subprocess.Popen(["nice", "-n", "10", "bash", "-c", script, str(ROOT / "bench" / "gpu_train.sh"),
                             str(folder / "out"), "1", "--tiny", "--gpus", "2"], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            process_group=0)  # not a new session: that would be its own autogroup, and nice moot


def _jobs_the_command_line_selects(config) -> set[str]:
    """Which of the two jobs the tests this command line selects will probably need, judged before
    collection from its paths, ``-m`` and ``-k`` (a job not started here starts with its first test)."""
    from _pytest.mark.expression import Expression

    if config.option.collectonly or config.option.keyword or os.environ.get(APP_URL_ENV):
        return set()
    wanted = set()
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        for job, test_file in (("app_server", "test_browser.py"), ("gpu_train", "test_gpu_train.py")):
            if path == ROOT / "tests" / test_file or path in (ROOT / "tests", ROOT):
                wanted.add(job)
    if not CHROMIUM.exists():
        wanted.discard("app_server")
    if config.option.markexpr:
        selects, marks = Expression.compile(config.option.markexpr), {"app_server": {"browser"}, "gpu_train": {"slow"}}
        wanted = {job for job in wanted if selects.evaluate(lambda name, **kwargs: name in marks[job])}
    return wanted


def pytest_sessionstart(session):
    """Start the browser tests' app server and the GPU training's CPU run before collection, when the
    command line selects their tests: collection (imports, ~15 s) leaves one core idle, and so does most
    of the suite after it. Under pytest-xdist only the controller starts them; every test process
    finds them through environment variables."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    wanted = _jobs_the_command_line_selects(config)
    if "gpu_train" in wanted:
        folder = config._tmp_path_factory.mktemp("gpu_train")
        proc = _STARTED[GPU_TRAIN_TESTS] = start_gpu_train(folder)
        config.add_cleanup(lambda: stop_group(proc))
        os.environ[GPU_TRAIN_ENV] = str(folder)
    if "app_server" in wanted:
        url, server = start_app_server(config._tmp_path_factory.mktemp("app"))
        _STARTED[BROWSER_TESTS] = server
        config.add_cleanup(lambda: stop_group(server))
        os.environ[APP_URL_ENV] = url
    config.add_cleanup(lambda: [os.environ.pop(name, None) for name in (APP_URL_ENV, GPU_TRAIN_ENV)])


_STARTED: dict[str, subprocess.Popen] = {}  # a job started by pytest_sessionstart, by the tests it serves


def pytest_collection_finish(session):
    """Stop a job that no selected test needs (deselected by --deselect, --lf, ...)."""
    for tests, proc in _STARTED.items():
        if not any(tests in item.nodeid for item in session.items):
            stop_group(proc)


#: Tests that start processes of their own (a 2-process Dask cluster importing torch): run after the others,
#: once the GPU training's CPU run started with the session has finished with the idle core (in the middle of
#: the suite the Dask test took 17 s on an AMD EPYC, alone 8 s).
MULTIPROCESS_TESTS = "test_dask_cluster"


def pytest_collection_modifyitems(config, items):
    """The browser tests last, the GPU training's test just before them, the multi-process tests before
    that (stable order otherwise): the jobs started with the session are done or warm by then."""
    items.sort(key=lambda item: (item.get_closest_marker("browser") is not None, GPU_TRAIN_TESTS in item.nodeid,
                                 MULTIPROCESS_TESTS in item.nodeid))


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The URL of ``panel serve explorer`` on the tiny model (``start_app_server``): the one started with
    the session, else one started now and stopped with the session."""
    if os.environ.get(APP_URL_ENV):
        yield os.environ[APP_URL_ENV]
        return
    url, proc = start_app_server(tmp_path_factory.mktemp("app"))
    try:
        yield url
    finally:
        stop_group(proc)


@pytest.fixture(scope="session")
def tiny_gpu_train(tmp_path_factory):
    """Yields a function that waits for the GPU training's CPU run (``start_gpu_train``; the one started
    with the session, else one started now) and returns (OUT, its exit status, stdout and stderr as text)."""
    proc = None
    folder = Path(os.environ[GPU_TRAIN_ENV]) if os.environ.get(GPU_TRAIN_ENV) else None
    if folder is None:
        folder = tmp_path_factory.mktemp("gpu_train")
        proc = start_gpu_train(folder)

    def finished(timeout: float = 300.0):
        deadline = time.monotonic() + timeout
        while not (folder / "rc").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"bench/gpu_train.sh did not finish within {timeout} s")
            time.sleep(0.2)
        text = {name: (folder / f"{name}.log").read_text() for name in ("stdout", "stderr")}
        return folder / "out", SimpleNamespace(returncode=int((folder / "rc").read_text()), **text)

    try:
        yield finished
    finally:
        if proc is not None:
            stop_group(proc)
