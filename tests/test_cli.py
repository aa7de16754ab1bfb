"""The command line as a newcomer meets it: every option explained, `--help` without loading torch,
and the weights found the same way from any working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from explorer.cli import COMMANDS, build_parser
from explorer.paths import REPO, SHIPPED_WEIGHTS, how_to_get_weights, resolve_weights


def _subparser(name):
    parser = build_parser([name])
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[name]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_a_help_text(name):
    missing = [a.option_strings or [a.dest] for a in _subparser(name)._actions if not a.help]
    assert not missing, f"explorer {name}: options without help: {missing}"


def test_help_does_not_load_torch_or_the_app():
    # `--help` must answer at once: building each command's parser imports no heavy package.
    code = ("import sys; from explorer.cli import COMMANDS, build_parser\n"
            "for name in COMMANDS: build_parser([name])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'diffusers', 'panel', 'scipy', 'matplotlib'})\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_weights_resolve_from_the_option_then_the_environment_then_the_package(tmp_path):
    assert SHIPPED_WEIGHTS == REPO / "weights" and (REPO / "explorer" / "__init__.py").is_file()
    assert resolve_weights(tmp_path / "mine", environ={"EXPLORER_WEIGHTS": "/elsewhere"}) == tmp_path / "mine"
    assert resolve_weights(None, environ={"EXPLORER_WEIGHTS": str(tmp_path)}) == tmp_path
    assert resolve_weights(None, environ={}) == SHIPPED_WEIGHTS
    assert resolve_weights("", environ={"EXPLORER_WEIGHTS": ""}) == SHIPPED_WEIGHTS
    text = how_to_get_weights(environ={"EXPLORER_WEIGHTS": "/nowhere"})
    assert "--weights" in text and "EXPLORER_WEIGHTS" in text and "'/nowhere'" in text and str(SHIPPED_WEIGHTS) in text


@pytest.mark.slow
def test_sample_outside_the_repository_uses_the_shipped_weights(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EXPLORER_WEIGHTS"}
    cmd = [sys.executable, "-m", "explorer", "sample", "--omega-m", "0.3", "--sigma-8", "0.8", "-n", "1",
           "--method", "ddpm-strided", "--steps", "2", "--out", "maps.npy"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "maps.npy").shape == (1, 64, 64)
    assert json.loads((tmp_path / "maps.json").read_text())["weights"] == str(SHIPPED_WEIGHTS.resolve())


def test_a_wrong_weights_variable_names_all_three_ways(tmp_path, monkeypatch, capsys):
    from explorer.cli import main

    monkeypatch.setenv("EXPLORER_WEIGHTS", str(tmp_path / "gone"))
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "--omega-m", "0.3", "--sigma-8", "0.8", "--out", "maps.npy"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "gone") in err and "--weights" in err and str(SHIPPED_WEIGHTS) in err
    assert not (tmp_path / "gone").exists() and not (tmp_path / "maps.npy").exists()


def test_the_shipped_weights_are_calibrated_for_the_default_terms_and_every_calibrated_menu_choice():
    # A new DEFAULT_TERMS without `explorer calibrate` would give raw (5-10x overconfident) contours.
    from explorer.inference.defaults import DEFAULT_N_NOISE, DEFAULT_TERMS
    from explorer.inference.grid import calibration_temperature
    from explorer.inference.typicality import reference
    from explorer.ui.compute import TERM_CHOICES

    calibrated = [terms for label, terms in TERM_CHOICES.items() if "calibrated" in label]
    assert DEFAULT_TERMS in calibrated and "vlb:8" in calibrated
    for folder in (SHIPPED_WEIGHTS, SHIPPED_WEIGHTS / "small"):
        meta = json.loads((folder / "explorer.json").read_text())
        for terms in calibrated:
            tau, marginal, note = calibration_temperature(meta, terms, DEFAULT_N_NOISE)
            assert note is None and 1.0 < tau < 20.0 and marginal is not None, (folder, terms, note)
    meta = json.loads((SHIPPED_WEIGHTS / "explorer.json").read_text())
    assert reference(meta, DEFAULT_TERMS, DEFAULT_N_NOISE) is not None  # the typicality check is on by default
