"""Shared fixtures: a tiny random model folder and tiny CMD-format data sets, made in temporary dirs.

Nothing here depends on the shipped weights or the bundled assets, so tests run anywhere in
seconds. The fields look like CAMELS Mcdm maps (log-normal linear Σ around 10^11.5).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
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


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A weights folder with a tiny random ParamUNet at 16², fast default sampler (10 steps)."""
    import torch

    from explorer.model import ParamUNet, save_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=TINY_RESOLUTION, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                          attention_levels=1, norm_num_groups=4, attention_head_dim=8)
    folder = tmp_path_factory.mktemp("weights")
    save_model(folder, model, {"normalization": {"lo": 9.0, "hi": 15.0},
                               "sampler": {"method": "ddpm-strided", "steps": 10},
                               "data": {"suite": "test", "note": "random weights for tests"}})
    return folder


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    """A CMD LH directory: 6 simulations × 15 maps at 32² (suite PM, like the bundled stand-in)."""
    theta = np.array([[0.2, 0.7], [0.3, 0.8], [0.4, 0.9], [0.15, 0.95], [0.45, 0.65], [0.3, 0.75]])
    folder = tmp_path_factory.mktemp("reference")
    write_cmd(folder, fake_density_maps(theta, 32, seed=1), theta, suite="PM", set_name="LH")
    return folder


@pytest.fixture(scope="session")
def tiny_onep(tmp_path_factory):
    """A CMD 1P directory around (0.3, 0.8): five Ωₘ values, then five σ₈ values, at 32²."""
    theta = [(om, 0.8) for om in (0.2, 0.25, 0.3, 0.35, 0.4)] + [(0.3, s8) for s8 in (0.7, 0.75, 0.8, 0.85, 0.9)]
    folder = tmp_path_factory.mktemp("onep")
    write_cmd(folder, fake_density_maps(theta, 32, seed=2), theta, suite="PM", set_name="1P")
    return folder


@pytest.fixture(scope="session")
def tiny_examples(tmp_path_factory):
    """An examples folder: ``examples.json`` and two 32² density fields with known parameters."""
    folder = tmp_path_factory.mktemp("examples")
    entries = []
    for i, (om, s8) in enumerate([(0.25, 0.75), (0.35, 0.85)]):
        name = f"field_{i}.npy"
        np.save(folder / name, fake_density_maps([(om, s8)], 32, seed=10 + i)[0], allow_pickle=False)
        entries.append({"file": name, "omega_m": om, "sigma_8": s8, "kind": "density"})
    (folder / "examples.json").write_text(json.dumps(entries))
    return folder


@pytest.fixture(scope="session")
def app_environment(tiny_weights, tiny_reference, tiny_onep, tiny_examples):
    """Environment variables that point the app at the tiny model and data sets."""
    return {"EXPLORER_WEIGHTS": str(tiny_weights), "EXPLORER_REFERENCE": str(tiny_reference),
            "EXPLORER_ONEP": str(tiny_onep), "EXPLORER_EXAMPLES": str(tiny_examples),
            "EXPLORER_DEVICE": "cpu"}


@pytest.fixture(scope="session")
def app_server(app_environment, tiny_weights, tmp_path_factory):
    """``panel serve explorer`` on the tiny weights (with a sharp calibration, so the random model has
    contours): (url, process). Started with the test session by ``conftest.early_background_jobs`` while
    the other tests run (the browser tests run last), and warmed up by a first page request."""
    from explorer.inference.defaults import DEFAULT_N_NOISE, DEFAULT_TERMS
    from test_browser import ARTIFACTS, free_port, start_server, stop_server, wait_for_http

    folder = tmp_path_factory.mktemp("browser") / "weights"
    shutil.copytree(tiny_weights, folder)
    meta = json.loads((folder / "explorer.json").read_text())
    meta["calibration"] = {"temperature": 0.05, "terms": DEFAULT_TERMS, "n_noise": DEFAULT_N_NOISE}
    (folder / "explorer.json").write_text(json.dumps(meta))
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    proc = start_server({**app_environment, "EXPLORER_WEIGHTS": str(folder)}, port, ARTIFACTS / "server.log")
    url = f"http://127.0.0.1:{port}/explorer"
    warm = threading.Thread(target=_quietly, args=(wait_for_http, url, proc, 180.0), daemon=True)
    warm.start()  # the first request imports the app and loads the model
    try:
        yield url, proc
    finally:
        stop_server(proc)


def _quietly(fn, *args):
    try:
        fn(*args)
    except (OSError, RuntimeError, TimeoutError):
        pass  # app_url waits again and reports


def pytest_collection_modifyitems(config, items):
    """Tests that wait for a background job (``early_background_jobs``) late, the browser tests last
    (stable order otherwise): the jobs start with the session and are done or warm by then."""
    def late(item):
        return (item.get_closest_marker("browser") is not None, "tiny_gpu_train" in getattr(item, "fixturenames", ()))

    items.sort(key=late)


ROOT = Path(__file__).resolve().parents[1]
# A GPU node has PyTorch's image only: the CPU smoke run of bench/gpu_train.sh must not need these.
GPU_NODE_LACKS = ("panel", "holoviews", "bokeh", "dask", "distributed", "astropy")


@pytest.fixture(scope="session")
def tiny_gpu_train(tmp_path_factory):
    """``bash bench/gpu_train.sh OUT 1 --tiny --gpus 2`` (test_gpu_train) with the app's packages made
    unimportable, started in the background at the first test (``early_background_jobs``) and niced,
    so its five processes run on the core the other tests leave idle. Yields a function that waits
    for it and returns (OUT, the finished process with its stdout and stderr as text)."""
    tmp = tmp_path_factory.mktemp("gpu_train")
    block = tmp / "block"
    for name in GPU_NODE_LACKS:
        (block / name).mkdir(parents=True)
        (block / name / "__init__.py").write_text(f"raise ImportError('{name} is not on a GPU node')\n")
    out = tmp / "out"
    env = {**os.environ, "PYTHONPATH": str(block), "PYTHON": "python"}
    env.pop("EXPLORER_WEIGHTS", None)
    logs = {name: open(tmp / f"{name}.log", "w+") for name in ("stdout", "stderr")}
    proc = subprocess.Popen(["nice", "-n", "10", "bash", str(ROOT / "bench" / "gpu_train.sh"), str(out), "1", "--tiny",
                             "--gpus", "2"], cwd=tmp, env=env, stdout=logs["stdout"], stderr=logs["stderr"],
                            process_group=0)  # not a new session: that would be its own autogroup, and nice moot

    def finished(timeout: float = 300.0):
        proc.wait(timeout=timeout)
        text = {name: (tmp / f"{name}.log").read_text() for name in logs}
        return out, SimpleNamespace(returncode=proc.returncode, **text)

    try:
        yield finished
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        for f in logs.values():
            f.close()


@pytest.fixture(scope="session", autouse=True)
def early_background_jobs(request):
    """Start, at the first test, what runs in other processes for a long time, so that it overlaps
    the other tests (which leave one of the two cores idle): the browser tests' app server
    (``test_browser.app_server``, when browser tests are selected and Chromium exists) and the GPU
    training's CPU smoke run (``tiny_gpu_train``, when its test is selected)."""
    from test_browser import CHROMIUM

    items = request.session.items
    if any("tiny_gpu_train" in getattr(item, "fixturenames", ()) for item in items):
        request.getfixturevalue("tiny_gpu_train")
    if CHROMIUM.exists() and any(item.get_closest_marker("browser") for item in items):
        request.getfixturevalue("app_server")
