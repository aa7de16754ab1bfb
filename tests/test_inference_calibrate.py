"""Calibration: temperature math on synthetic likelihoods, coverage figures, the weights' JSON
edited in place, and `explorer calibrate` end to end on tiny CMD sets with a tiny model."""

import json

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.data import write_cmd
from explorer.inference import Posterior
from explorer.inference.calibrate import (coverage_metrics, fit_marginal_temperature, fit_temperature, training_split,
                                         write_calibration)
from explorer.inference.grids_file import load_grids, save_grids
from explorer.inference.grid import DEFAULT_TERMS
from explorer.model.gaussian import GaussianStart
from explorer.model.schedule import seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import METADATA_FILE, TENSORS_FILE, save_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_temperature_of_chi2_draws():
    rng = np.random.default_rng(0)
    honest = rng.chisquare(2, 4000)
    assert fit_temperature(honest) == pytest.approx(1.0, rel=0.06)
    tau = fit_temperature(3.0 * honest)
    assert tau == pytest.approx(3.0, rel=0.06)
    assert np.mean(3.0 * honest / tau <= 2.30) == pytest.approx(0.683, abs=0.005)
    with pytest.raises(ValueError):
        fit_temperature([1.0, -1.0, 2.0])


def overconfident_posteriors(n, factor, seed=0, points=161):
    """Gaussian likelihoods centred on truth + N(0, σ) but reporting width σ / factor (one factor
    or one per parameter)."""
    factor = np.broadcast_to(np.asarray(factor, dtype=np.float64), (2,))
    rng = np.random.default_rng(seed)
    sigma = np.array([0.03, 0.04])
    om, s8 = np.linspace(0.1, 0.5, points), np.linspace(0.6, 1.0, points)
    out = []
    for _ in range(n):
        truth = rng.uniform([0.2, 0.7], [0.4, 0.9])
        centre = truth + sigma * rng.normal(size=2)
        d = (factor[0] ** 2 * (om[:, None] - centre[0]) ** 2 / sigma[0] ** 2
             + factor[1] ** 2 * (s8[None, :] - centre[1]) ** 2 / sigma[1] ** 2)
        out.append(Posterior.from_grid(om, s8, d, truth=tuple(truth)))
    return out


def test_calibration_restores_coverage_of_an_overconfident_likelihood():
    raw = overconfident_posteriors(300, factor=2.0)
    before = coverage_metrics(raw)
    assert before["omega_m"]["coverage68"] < 0.45 and before["coverage_2d_1sigma"] < 0.35
    assert before["omega_m"]["mean_abs_z"] == pytest.approx(2 * 0.798, rel=0.15)
    tau = fit_temperature([p.delta_chi2_truth() for p in raw])
    assert tau == pytest.approx(4.0, rel=0.15)
    after = coverage_metrics([p.retempered(tau) for p in overconfident_posteriors(300, 2.0, seed=1)])
    for name in ("omega_m", "sigma_8"):
        assert 0.6 < after[name]["coverage68"] < 0.76
        assert 0.9 < after[name]["coverage95"] <= 1.0
        assert abs(after[name]["bias"]) < 0.01
    assert 0.6 < after["coverage_2d_1sigma"] < 0.76


@pytest.mark.slow
def test_marginal_temperatures_fix_each_parameter_of_an_unevenly_overconfident_likelihood():
    # Ωₘ reported 4x too narrow, σ₈ 1.25x: one τ cannot fix both, one per marginal can
    raw = overconfident_posteriors(200, factor=(4.0, 1.25), points=81)
    # the default candidates (2 % steps) over the range that matters here: half of them, half the time
    default = np.geomspace(0.1, 1000.0, 466)
    candidates = default[(default > 0.5) & (default < 50.0)]
    taus = [fit_marginal_temperature(raw, name, candidates=candidates) for name in ("omega_m", "sigma_8")]
    # τ_i ≈ factor_i² (the 68.3 % quantile of 200 z² draws scatters by ±14 %)
    assert taus[0] == pytest.approx(16.0, rel=0.35) and taus[1] == pytest.approx(1.5625, rel=0.35)
    tau = fit_temperature([q.delta_chi2_truth() for q in raw])
    one = coverage_metrics([p.retempered(tau) for p in raw])
    assert one["omega_m"]["coverage68"] < 0.62 and one["sigma_8"]["coverage68"] > 0.9
    after = coverage_metrics([p.retempered(1.0, taus) for p in raw])
    for name in ("omega_m", "sigma_8"):  # by construction on the fitted fields, to a field
        assert after[name]["coverage68"] == pytest.approx(0.683, abs=0.005)
    with pytest.raises(ValueError):
        fit_marginal_temperature(raw, "h")


def test_grids_file_round_trip_and_refusals(tmp_path):
    raw = overconfident_posteriors(4, factor=2.0)
    for p in raw:
        p.coarse = Posterior.from_grid(p.omega_m[::40], p.sigma_8[::40], p.delta_chi2[::40, ::40], chi2_min=0.0)
    path = tmp_path / "grids.npz"
    save_grids(path, {"calibration": (np.arange(4), raw)}, terms="vlb:8", n_noise=1)
    maps, back = load_grids(path, "vlb:8", 1)["calibration"]
    assert maps.tolist() == [0, 1, 2, 3]
    for a, b in zip(raw, back):
        np.testing.assert_array_equal(a.delta_chi2, b.delta_chi2)
        np.testing.assert_array_equal(a.coarse.delta_chi2, b.coarse.delta_chi2)
        assert a.truth == b.truth and a.estimates == b.estimates
        assert b.delta_chi2_truth() == pytest.approx(a.delta_chi2_truth())
    with pytest.raises(ValueError, match="terms"):
        load_grids(path, "vlb:4", 1)
    with pytest.raises(ValueError, match="raw"):
        save_grids(tmp_path / "hot.npz", {"calibration": (np.arange(4), [p.retempered(2.0) for p in raw])},
                   terms="vlb:8", n_noise=1)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a grids file"):
        load_grids(other)


def test_write_calibration_keeps_everything_else(tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=16, block_out_channels=(8, 16), layers_per_block=1, attention_levels=0,
                          norm_num_groups=4)
    folder = save_model(tmp_path / "w", model, {"normalization": {"lo": 9.0, "hi": 15.0},
                                                "metrics": {"fidelity": 1.05}})
    before = json.loads((folder / METADATA_FILE).read_text())
    tensors = (folder / TENSORS_FILE).read_bytes()
    write_calibration(folder, {"temperature": 2.5, "terms": "L0"})
    after = json.loads((folder / METADATA_FILE).read_text())
    assert after.pop("calibration") == {"temperature": 2.5, "terms": "L0"}
    assert after == before
    assert (folder / TENSORS_FILE).read_bytes() == tensors
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", TENSORS_FILE, METADATA_FILE])


def test_a_new_terms_calibration_keeps_the_old_terms_calibrated(tmp_path):
    from explorer.inference import records
    from explorer.inference.grid import calibration_temperature
    from explorer.inference.typicality import reference

    folder = tmp_path / "w"
    folder.mkdir()
    (folder / METADATA_FILE).write_text(json.dumps({"metrics": {"fidelity": 1.05}}))
    old = {"temperature": 5.5, "marginal_temperatures": {"omega_m": 7.6, "sigma_8": 3.8}, "terms": "vlb:8", "n_noise": 1}
    new = {"temperature": 3.5, "marginal_temperatures": {"omega_m": 4.4, "sigma_8": 2.8}, "terms": DEFAULT_TERMS,
           "n_noise": 1}
    write_calibration(folder, old)
    assert "calibration" + records.OTHER not in json.loads((folder / METADATA_FILE).read_text())
    write_calibration(folder, new)
    write_calibration(folder, {**new, "temperature": 3.6})            # the same terms again: replaced, not kept
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["metrics"] == {"fidelity": 1.05}
    assert meta["calibration"]["temperature"] == 3.6 and meta["calibration" + records.OTHER] == [old]
    assert calibration_temperature(meta, DEFAULT_TERMS, 1) == (3.6, (4.4, 2.8), None)
    assert calibration_temperature(meta, "vlb:8", 1) == (5.5, (7.6, 3.8), None)
    tau, marginal, note = calibration_temperature(meta, "vlb:4", 1)
    assert (tau, marginal) == (1.0, None) and "vlb:8" in note and DEFAULT_TERMS in note
    assert calibration_temperature(meta, "vlb:8", 2)[0] == 1.0        # other noise draws: not calibrated
    write_calibration(folder, {**old, "temperature": 5.0})              # back to the old terms: the new ones kept
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert calibration_temperature(meta, "vlb:8", 1)[0] == 5.0 and calibration_temperature(meta, DEFAULT_TERMS, 1)[0] == 3.6
    assert len(meta["calibration" + records.OTHER]) == 1
    line = {"terms": "vlb:8", "n_noise": 1, "coef": [1.0, 2.0, 3.0], "scatter": 4.0}
    records.store(folder, "typicality", line)
    records.store(folder, "typicality", {**line, "terms": DEFAULT_TERMS, "scatter": 5.0})
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert reference(meta, "vlb:8", 1)["scatter"] == 4.0 and reference(meta, DEFAULT_TERMS, 1)["scatter"] == 5.0
    with pytest.raises(ValueError, match="terms"):
        records.store(folder, "typicality", {"coef": [1.0, 2.0, 3.0], "scatter": 4.0})


def test_training_split_prefers_the_recorded_one():
    class Cmd:
        n_sims = 40
    train, test = training_split(Cmd, {"data": {"n_sims": 40, "test_sims": [3, 1], "val_sims": [5]}})
    assert test.tolist() == [1, 3] and 5 not in train and len(train) == 37
    train, held = training_split(Cmd, {"data": {"n_sims": 40, "test_sims": [3, 1], "val_sims": [5]}}, with_val=True)
    assert held.tolist() == [1, 3, 5] and len(train) == 37
    train, test = training_split(Cmd, {})
    assert len(test) == 2 and not set(train) & set(test)
    train, held = training_split(Cmd, {}, with_val=True)
    assert len(held) == 4 and set(test) < set(held) and not set(train) & set(held)


def lognormal_maps(n_sims, side, seed):
    rng = np.random.default_rng(seed)
    return 10 ** (12 + 0.3 * rng.normal(size=(15 * n_sims, side, side))).astype(np.float32)


def test_calibrate_command_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_cmd(tmp_path / "train", lognormal_maps(60, 32, 1), rng.uniform([0.1, 0.6], [0.5, 1.0], (60, 2)))
    write_cmd(tmp_path / "valid", lognormal_maps(4, 32, 2), rng.uniform([0.1, 0.6], [0.5, 1.0], (4, 2)))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=16, block_out_channels=(8, 16), layers_per_block=1, attention_levels=0,
                          norm_num_groups=4)
    weights = save_model(tmp_path / "w", model, {"normalization": {"lo": 11.0, "hi": 13.0},
                                                 "schedule": seed_schedule_spec(100)})
    before = json.loads((weights / METADATA_FILE).read_text())
    out, saved = tmp_path / "report.json", tmp_path / "grids.npz"
    grids = ["--coarse", "3", "3", "--fine", "3", "3", "--n-noise", "1"]
    assert main(["calibrate", "--weights", str(weights), "--data", str(tmp_path / "train"),
                 "--valid", str(tmp_path / "valid"), "--json", str(out), "--grids", str(saved), *grids]) == 0
    report = json.loads(out.read_text())
    ev = report["evaluation"]
    assert ev["n_fields"] == 4 and report["calibration"]["n_fields"] == 6  # test + validation splits
    for key in ("vlb_raw", "vlb_calibrated", "pk", "pk_calibrated"):
        assert set(ev[key]["omega_m"]) >= {"coverage68", "coverage95", "bias", "rel_error", "mean_abs_z"}
    meta = json.loads((weights / METADATA_FILE).read_text())
    cal = meta.pop("calibration")
    start = GaussianStart.from_dict(meta.pop("gaussian_start"))  # the fast sampler's start, fitted here too
    assert start.resolution == 16 and start.n_maps == 15 * 54 and start.sigma == report["gaussian_start"]["sigma"]
    assert start.mean_omega == "log"  # its map-mean model takes Ωₘ in its log
    assert meta == before
    assert cal["temperature"] == report["temperature"] > 0 and cal["terms"] == DEFAULT_TERMS and cal["n_noise"] == 1
    assert "evaluation" in cal and (weights / "pk_baseline.json").is_file()
    assert cal["evaluation"]["grid"] == {"coarse": [3, 3], "fine": [3, 3]}  # what the held-out figures were measured on
    assert set(cal["marginal_temperatures"]) == {"omega_m", "sigma_8"}
    assert min(cal["marginal_temperatures"].values()) > 0

    # the saved surfaces give the same report without a network evaluation; other seeds are refused
    again = tmp_path / "again.json"
    assert main(["calibrate", "--weights", str(weights), "--data", str(tmp_path / "train"),
                 "--valid", str(tmp_path / "valid"), "--json", str(again), "--from-grids", str(saved),
                 "--no-write", *grids]) == 0
    redo = json.loads(again.read_text())
    assert redo["temperature"] == report["temperature"]
    assert redo["marginal_temperatures"] == report["marginal_temperatures"]
    assert redo["evaluation"]["vlb_calibrated"] == ev["vlb_calibrated"]
    assert main(["calibrate", "--weights", str(weights), "--data", str(tmp_path / "train"), "--seed", "1",
                 "--valid", str(tmp_path / "valid"), "--from-grids", str(saved), "--no-write", *grids]) == 2
    assert "not the ones" in capsys.readouterr().err

    # `explorer infer` with the same settings applies the stored temperature
    field = tmp_path / "field.npy"
    np.save(field, lognormal_maps(1, 32, 3)[0])
    post_json = tmp_path / "post.json"
    assert main(["infer", str(field), "--weights", str(weights), "--json", str(post_json), "--quiet", *grids]) == 0
    doc = json.loads(post_json.read_text())
    assert doc["posterior"]["temperature"] == pytest.approx(cal["temperature"])
    assert doc["pk_baseline"]["method"] == "pk"

    # several maps per calibration simulation: that many calibration fields; 16 of 15 maps is refused
    many = tmp_path / "many.json"
    assert main(["calibrate", "--weights", str(weights), "--data", str(tmp_path / "train"), "--maps-per-sim", "2",
                 "--max-fields", "3", "--valid", str(tmp_path / "valid"), "--json", str(many), "--no-write", *grids]) == 0
    cal2 = json.loads(many.read_text())["calibration"]
    assert cal2["n_fields"] == 6 and cal2["maps_per_sim"] == 2 and "2 maps each" in cal2["split"]
    assert main(["calibrate", "--weights", str(weights), "--data", str(tmp_path / "train"), "--maps-per-sim", "16",
                 "--valid", str(tmp_path / "valid"), "--no-write", *grids]) == 2
    assert "1 … 15" in capsys.readouterr().err


def test_several_maps_per_simulation_are_distinct_maps_of_that_simulation():
    from explorer.inference.calibrate import maps_per_simulation, one_map_per_simulation

    sims = np.array([0, 7, 12, 40, 41])
    assert maps_per_simulation(sims, 4, 1).tolist() == one_map_per_simulation(sims, 4).tolist()
    idx = maps_per_simulation(sims, 4, 6)
    assert idx[:5].tolist() == one_map_per_simulation(sims, 4).tolist()
    assert (idx // 15).tolist() == np.tile(sims, 6).tolist()  # simulation s's maps are 15 s … 15 s + 14
    for s in sims:
        assert len(set(idx[idx // 15 == s].tolist())) == 6
    assert maps_per_simulation(sims, 4, 15)[idx.size:].size == 45 and len(set(maps_per_simulation(sims, 4, 15).tolist())) == 75
    assert maps_per_simulation(sims, 5, 6).tolist() != idx.tolist()  # the seed chooses


def test_calibrated_posteriors_say_how_their_intervals_did_on_held_out_fields(tiny_weights, tmp_path):
    """The calibration's held-out coverage travels with each calibrated posterior (settings, CLI line,
    app text); a raw posterior, another term choice or a calibration without it says nothing."""
    import shutil

    from explorer.inference import infer
    from explorer.model import load_model
    from explorer.ui.posterior import estimates_markdown

    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    meta = json.loads((folder / METADATA_FILE).read_text())
    evaluation = {"vlb_calibrated": {"n_fields": 50, "omega_m": {"coverage68": 0.74}, "sigma_8": {"coverage68": 0.7}}}
    meta["calibration"] = {"temperature": 2.5, "terms": "vlb:4", "n_noise": 1, "evaluation": evaluation}
    meta["calibration_other_terms"] = [{"temperature": 3.0, "terms": "L0", "n_noise": 1}]
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    loaded = load_model(folder)
    field = 11.0 + 0.3 * np.random.default_rng(0).standard_normal((16, 16))
    small = dict(kind="log10", coarse=(3, 3), fine=(3, 3), interpolate_to=None)

    post = infer(loaded, field, terms="vlb:4", **small)
    assert post.temperature == 2.5
    assert post.settings["held_out_coverage68"] == {"omega_m": 0.74, "sigma_8": 0.7, "n_fields": 50}
    assert post.held_out_label() == ("on 50 held-out simulations these 68 % intervals held the truth "
                                     "74 % (Ωₘ) and 70 % (σ₈) of the time")
    assert "Calibration check: on 50 held-out" in estimates_markdown(post)
    assert Posterior.from_dict(json.loads(json.dumps(post.to_dict()))).held_out_label() == post.held_out_label()

    # measured on another grid than the answer's: the label says which (the fast preset's 3×3 + 3×3)
    evaluation["grid"] = {"coarse": [4, 4], "fine": [4, 4]}
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    loaded = load_model(folder)
    coarser = infer(loaded, field, terms="vlb:4", **small)
    assert coarser.settings["held_out_coverage68"]["grid"] == {"coarse": [4, 4], "fine": [4, 4]}
    assert coarser.held_out_label().endswith(
        "of the time, with the calibration's 4×4 + 4×4 grid (this answer's: 3×3 + 3×3)")
    same = infer(loaded, field, terms="vlb:4", **{**small, "coarse": (4, 4), "fine": (4, 4)})
    assert same.held_out_label().endswith("of the time")
    windowed = infer(loaded, field, terms="vlb:4", **{**small, "fine": (4, 4)}, window=((0.2, 0.4), (0.7, 0.9)))
    assert windowed.held_out_label().endswith("of the time")  # the same fine grid on a given window

    for other in (infer(loaded, field, terms="vlb:4", calibrated=False, **small),   # raw
                  infer(loaded, field, terms="vlb:4", temperature=4.0, **small),    # a temperature of one's own
                  infer(loaded, field, terms="L0", **small)):                       # calibrated, not measured
        assert "held_out_coverage68" not in other.settings and other.held_out_label() == ""
        assert "Calibration check" not in estimates_markdown(other)
