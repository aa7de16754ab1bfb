"""The browser benchmarks (bench/bench_app.py, bench_app_reuse.py, screenshots.py) take the server and
Chromium helpers from the tests: moving a helper must not break them (it once did, unnoticed)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", ["bench_app", "bench_app_reuse", "screenshots"])
def test_browser_benchmarks_import(script, monkeypatch):
    pytest.importorskip("playwright")
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{script}", BENCH / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # their imports only: main() runs under __main__
    assert callable(module.main) and callable(module.wait_for_http) and callable(module.free_port)
