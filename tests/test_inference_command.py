"""`explorer infer`: good fields (.npy, .npz, FITS) give estimates, JSON and a figure; bad files,
bad truth and bad output paths exit with code 2, a message naming the problem, and no output."""

import json
import pickle

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.inference import term_timesteps
from explorer.inference.grid import DEFAULT_TERMS
from explorer.model.schedule import seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import save_model

TERMS = term_timesteps(DEFAULT_TERMS, 100).size  # default terms of the T = 100 test schedule
FAST = ["--coarse", "3", "3", "--fine", "3", "3", "--n-noise", "1", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                          attention_levels=1, norm_num_groups=4, attention_head_dim=8)
    return save_model(tmp_path_factory.mktemp("model") / "weights", model,
                      {"normalization": {"lo": 9.0, "hi": 15.0}, "schedule": seed_schedule_spec(100)})


def density(side=32, seed=0):
    return 10 ** (12 + 0.3 * np.random.default_rng(seed).normal(size=(side, side)))


def test_npy_field_gives_estimates_json_and_plot(weights, tmp_path, capsys):
    np.save(tmp_path / "f.npy", density())
    out, fig = tmp_path / "post.json", tmp_path / "post.png"
    code = main(["infer", str(tmp_path / "f.npy"), "--weights", str(weights), "--truth", "0.3", "0.8",
                 "--json", str(out), "--plot", str(fig), *FAST])
    assert code == 0
    text = capsys.readouterr().out
    assert "omega_m" in text and "sigma_8" in text and "68%" in text and "truth" in text
    doc = json.loads(out.read_text())
    post = doc["posterior"]
    assert doc["kind"] == "density" and post["truth"] == [0.3, 0.8] and post["n_evaluations"] == TERMS * (9 + 1 + 9)
    assert np.asarray(post["delta_chi2"]).shape == (51, 51) and post["levels"] == [2.30, 6.18, 11.83]
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("suffix", [".npz", ".fits"])
def test_npz_and_fits_fields(weights, tmp_path, suffix):
    path = tmp_path / f"f{suffix}"
    if suffix == ".npz":
        np.savez(path, field=np.log10(density()))
    else:
        from astropy.io import fits
        fits.PrimaryHDU(np.log10(density()).astype(np.float32)).writeto(path)
    out = tmp_path / "post.json"
    assert main(["infer", str(path), "--weights", str(weights), "--json", str(out), *FAST]) == 0
    assert json.loads(out.read_text())["kind"] == "log10"


def bad_files(tmp):
    """name -> (file, words the message must contain)."""
    (tmp / "f.txt").write_text("1 2 3")
    (tmp / "empty.npy").write_bytes(b"")
    nan = density()
    nan[3, 4] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "cube.npy", np.ones((4, 32, 32)))
    np.save(tmp / "rect.npy", np.ones((32, 48)))
    np.save(tmp / "neg.npy", -density())
    (tmp / "pickled.npy").write_bytes(pickle.dumps({"a": 1}))
    np.savez(tmp / "two.npz", a=density(), b=density())
    np.save(tmp / "odd.npy", density(24))
    return {
        "extension": (tmp / "f.txt", "unsupported file type"),
        "empty": (tmp / "empty.npy", "empty"),
        "nan": (tmp / "nan.npy", "NaN"),
        "cube": (tmp / "cube.npy", "2D"),
        "rect": (tmp / "rect.npy", "square"),
        "negative": (tmp / "neg.npy", "negative"),
        "pickle": (tmp / "pickled.npy", "pickle"),
        "two arrays": (tmp / "two.npz", "exactly one array"),
        "size": (tmp / "odd.npy", "does not divide"),
        "missing": (tmp / "nope.npy", "not found"),
    }


def test_bad_files_are_refused(weights, tmp_path, capsys):
    for name, (path, words) in bad_files(tmp_path).items():
        out, fig = tmp_path / "out.json", tmp_path / "out.png"
        code = main(["infer", str(path), "--weights", str(weights), "--json", str(out), "--plot", str(fig), *FAST])
        err = capsys.readouterr().err
        assert code == 2, name
        assert words.lower() in err.lower(), (name, err)
        assert not out.exists() and not fig.exists(), name


@pytest.mark.parametrize("extra, words", [
    (["--truth", "0.7", "0.8"], "omega_m"),
    (["--terms", "sum:x"], "terms"),
    (["--plot", "out.gif"], "unsupported file type"),
    (["--json", "no/such/dir/out.json"], "does not exist"),
    (["--weights", "no-such-weights"], "does not exist"),
    (["--network", "no-such-network"], "network must name a sub-folder"),
    (["--fast"], "--fast uses the sub-folder small"),  # these weights have no small network
])
def test_bad_options_are_refused(weights, tmp_path, capsys, monkeypatch, extra, words):
    monkeypatch.chdir(tmp_path)
    np.save("f.npy", density())
    args = ["infer", "f.npy", "--weights", str(weights), "--json", "post.json", *FAST] + extra
    assert main(args) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "post.json").exists()


def weights_with_sub_network(weights, tmp_path, name: str, **metadata):
    """A copy of ``weights`` with another tiny network (seed 1) in the sub-folder ``name``."""
    import shutil

    with torch.random.fork_rng():
        torch.manual_seed(1)  # another network for the same maps
        other = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
                          attention_levels=1, norm_num_groups=4, attention_head_dim=8)
    folder = tmp_path / "weights"
    shutil.copytree(weights, folder)
    save_model(folder / name, other, {"normalization": {"lo": 9.0, "hi": 15.0}, "schedule": seed_schedule_spec(100),
                                      **metadata})
    return folder


def test_network_option_takes_the_likelihood_from_a_sub_folder(weights, tmp_path):
    folder = weights_with_sub_network(weights, tmp_path, "other")
    np.save(tmp_path / "f.npy", density())
    runs = {}
    for name, extra in (("main", ["--weights", str(folder)]), ("sub", ["--weights", str(folder), "--network", "other"]),
                        ("direct", ["--weights", str(folder / "other")])):
        out = tmp_path / f"{name}.json"
        assert main(["infer", str(tmp_path / "f.npy"), *extra, "--json", str(out), "--seed", "3", *FAST]) == 0
        runs[name] = np.asarray(json.loads(out.read_text())["posterior"]["delta_chi2"])
    np.testing.assert_allclose(runs["sub"], runs["direct"], rtol=1e-5, atol=1e-6)  # that network's surface
    assert not np.allclose(runs["sub"], runs["main"], atol=1e-3)


def test_fast_preset_is_the_small_network_every_scale_alike_on_3x3_grids(weights, tmp_path):
    """``--fast`` = --network small --terms vlb:8 --coarse 3 3 --fine 3 3; options given explicitly win."""
    folder = weights_with_sub_network(weights, tmp_path, "small")
    np.save(tmp_path / "f.npy", density())
    common = [str(tmp_path / "f.npy"), "--weights", str(folder), "--seed", "3", "--quiet"]
    runs = {}
    for name, extra in (("fast", ["--fast"]), ("spelled", ["--network", "small", "--terms", "vlb:8", *FAST]),
                        ("fast_vlb4", ["--fast", "--terms", "vlb:4"])):
        out = tmp_path / f"{name}.json"
        assert main(["infer", *common, *extra, "--json", str(out)]) == 0
        doc = json.loads(out.read_text())
        runs[name] = {**doc["posterior"], "network": doc["network"]}
    assert runs["fast"]["network"] == "small" and runs["fast"]["terms"] == "vlb:8" and runs["fast"]["settings"]["coarse"] == [3, 3]
    assert runs["fast"]["settings"]["fine"] == [3, 3] and runs["fast"]["n_evaluations"] == 18 * 8
    np.testing.assert_allclose(runs["fast"]["delta_chi2"], runs["spelled"]["delta_chi2"], rtol=1e-6, atol=1e-9)
    assert runs["fast_vlb4"]["terms"] == "vlb:4" and runs["fast_vlb4"]["n_evaluations"] == 18 * 4


def test_a_calibrated_small_network_places_the_full_networks_fine_window(weights, tmp_path, capsys):
    """With weights/small calibrated for the fast preset, ``explorer infer`` runs the fast preset first and
    the full network on its 3σ box only (no coarse scan); ``--one-stage`` or other terms scan coarse to fine."""
    from explorer.inference.defaults import FAST_TERMS

    folder = weights_with_sub_network(weights, tmp_path, "small", calibration={
        "temperature": 3.0, "marginal_temperatures": {"omega_m": 3.0, "sigma_8": 3.0}, "terms": FAST_TERMS, "n_noise": 1})
    np.save(tmp_path / "f.npy", density())
    common = [str(tmp_path / "f.npy"), "--weights", str(folder), "--seed", "3", "--truth", "0.3", "0.8"]
    docs = {}
    for name, extra in (("two", []), ("one", ["--one-stage"]), ("vlb4", ["--terms", "vlb:4"]),
                        ("coarse5", ["--coarse", "5", "5"])):
        out = tmp_path / f"{name}.json"
        assert main(["infer", *common, *extra, "--quiet", "--json", str(out)]) == 0
        docs[name] = json.loads(out.read_text())["posterior"]
    two, one = docs["two"], docs["one"]
    first = two["settings"]["window_from"]
    assert first["network"] == "small" and first["terms"] == FAST_TERMS and first["n_evaluations"] == (9 + 9 + 1) * 8
    assert two["settings"]["window_given"] and two["coarse"] is None and two["n_evaluations"] == (16 + 1) * 8
    assert one["settings"]["coarse"] == [4, 4] and "window_from" not in one["settings"]
    assert docs["vlb4"]["settings"]["coarse"] == [4, 4] and "window_from" not in docs["vlb4"]["settings"]
    assert docs["coarse5"]["settings"]["coarse"] == [5, 5]  # a coarse grid asked for is scanned
    assert "fine window: the calibrated 3σ box of the small network's fast preset" in capsys.readouterr().out
    for (lo, hi), t in zip(two["settings"]["window"], (0.3, 0.8)):  # the window is inside the prior
        assert 0.1 <= lo < hi <= 1.0

