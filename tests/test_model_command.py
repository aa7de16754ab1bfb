"""`explorer sample` through the CLI registry, with a tiny model saved to tmp_path."""

import json

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.model.schedule import seed_schedule_spec
from explorer.model.unet import ParamUNet
from explorer.model.weights import load_model, save_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4)
    meta = {"schedule": seed_schedule_spec(12), "normalization": {"lo": 9.5, "hi": 15.5, "method": "minmax"},
            "sampler": {"method": "ddpm-strided", "steps": 3}}
    return save_model(tmp_path_factory.mktemp("model") / "weights", model, meta)


def run_sample(weights, out, *extra):
    return main(["sample", "--omega-m", "0.3", "--sigma-8", "0.8", "-n", "2", "--seed", "1",
                 "--weights", str(weights), "--out", str(out), "--no-bf16", *extra])


def test_sample_writes_maps_and_sidecar(weights, tmp_path, capsys):
    out = tmp_path / "maps.npy"
    assert run_sample(weights, out) == 0
    maps = np.load(out)
    assert maps.shape == (2, 16, 16) and maps.dtype == np.float32
    assert 9.5 <= maps.min() and maps.max() <= 15.5
    side = json.loads((tmp_path / "maps.json").read_text())
    assert side["omega_m"] == 0.3 and side["sigma_8"] == 0.8 and side["seed"] == 1
    assert (side["method"], side["steps"]) == ("ddpm-strided", 3)
    assert side["weights"] == str(weights.resolve()) and side["seconds"] >= 0
    assert "wrote" in capsys.readouterr().out
    assert run_sample(weights, tmp_path / "again.npy") == 0            # same seed, same maps
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), maps)


def test_sample_ddpm_and_method(weights, tmp_path):
    assert run_sample(weights, tmp_path / "paper.npy", "--ddpm") == 0
    assert json.loads((tmp_path / "paper.json").read_text())["steps"] == 12
    assert run_sample(weights, tmp_path / "ddim.npy", "--method", "ddim", "--steps", "3") == 0
    side = json.loads((tmp_path / "ddim.json").read_text())
    assert (side["method"], side["steps"]) == ("ddim", 3)


def test_sample_errors(weights, tmp_path, capsys):
    assert main(["sample", "--omega-m", "0.9", "--sigma-8", "0.8", "--weights", str(weights),
                 "--out", str(tmp_path / "x.npy")]) == 2
    assert "omega_m=0.9" in capsys.readouterr().err
    assert run_sample(tmp_path / "missing", tmp_path / "x.npy") == 2
    assert "explorer train" in capsys.readouterr().err
    assert run_sample(weights, tmp_path / "x.txt") == 2
    assert not (tmp_path / "x.npy").exists()
    with pytest.raises(SystemExit):
        run_sample(weights, tmp_path / "x.npy", "--ddpm", "--steps", "4")


@pytest.fixture(scope="module")
def two_networks(tmp_path_factory):
    """Main weights whose sampler names a smaller network in the sub-folder "small"."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        full = ParamUNet(sample_size=16, block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4)
        small = ParamUNet(sample_size=16, block_out_channels=(4, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    meta = {"schedule": seed_schedule_spec(12), "normalization": {"lo": 9.5, "hi": 15.5, "method": "minmax"}}
    root = tmp_path_factory.mktemp("two")
    folder = save_model(root / "weights", full, {**meta, "sampler": {"method": "ddpm-strided", "steps": 3}})
    run = save_model(root / "run" / "best", small, meta)  # what `explorer train` exports
    assert main(["attach-network", str(run), "--weights", str(folder)]) == 0
    return folder


def test_sampler_network_small_is_the_default_and_full_is_selectable(two_networks, tmp_path):
    from explorer.model import Emulator

    emu = Emulator.from_folder(two_networks, device="cpu", bf16=False)
    assert emu.default_network == "small" and set(emu.networks) == {"full", "small"}
    main_meta = json.loads((two_networks / "explorer.json").read_text())
    small_meta = json.loads((two_networks / "small" / "explorer.json").read_text())
    assert main_meta["sampler"] == {"method": "ddpm-strided", "steps": 3, "network": "small"}
    assert small_meta["sampler"] == {"method": "ddpm-strided", "steps": 3} and "role" in small_meta
    alone = {name: Emulator(load_model(path), bf16=False)  # each network on its own
             for name, path in (("full", two_networks), ("small", two_networks / "small"))}
    for name in ("full", "small"):
        assert alone[name].default_network == "full"
        np.testing.assert_array_equal(emu.sample(0.3, 0.8, n=2, seed=1, network=name),
                                      alone[name].sample(0.3, 0.8, n=2, seed=1))
    np.testing.assert_array_equal(emu.sample(0.3, 0.8, n=2, seed=1), emu.sample(0.3, 0.8, n=2, seed=1, network="small"))
    assert not np.array_equal(emu.sample(0.3, 0.8, n=2, seed=1), emu.sample(0.3, 0.8, n=2, seed=1, network="full"))
    with pytest.raises(ValueError, match="network"):
        emu.sample(0.3, 0.8, network="tiny")
    assert run_sample(two_networks, tmp_path / "s.npy") == 0
    assert json.loads((tmp_path / "s.json").read_text())["network"] == "small"
    assert run_sample(two_networks, tmp_path / "p.npy", "--ddpm") == 0
    assert json.loads((tmp_path / "p.json").read_text())["network"] == "full"
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), emu.sample(0.3, 0.8, n=2, seed=1))


def test_small_network_must_describe_the_same_maps(two_networks, tmp_path):
    import shutil

    from explorer.model import Emulator
    from explorer.model.weights import WeightsError

    bad = tmp_path / "weights"
    shutil.copytree(two_networks, bad)
    meta_path = bad / "small" / "explorer.json"
    meta = json.loads(meta_path.read_text())
    meta["normalization"]["hi"] = 16.0
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="other maps"):
        Emulator.from_folder(bad, device="cpu")
    shutil.rmtree(bad / "small")
    with pytest.raises(WeightsError, match="does not exist"):
        Emulator.from_folder(bad, device="cpu")
    main_meta = json.loads((bad / "explorer.json").read_text())
    main_meta["sampler"]["network"] = "../elsewhere"
    (bad / "explorer.json").write_text(json.dumps(main_meta))
    with pytest.raises(WeightsError, match="sub-folder"):
        Emulator.from_folder(bad, device="cpu")


def test_refit_mean_level_fits_the_training_maps_means(tiny_weights, tiny_reference, tmp_path):
    """`explorer refit-mean-level`: μ(θ) follows the training maps' mean levels, the old model is kept
    in the record, the network's tensors are untouched, and --scatter constant gives one s."""
    import shutil

    import torch

    from explorer.cli import main
    from explorer.data import find_cmd, load_cmd, to_log10

    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    assert main(["refit-mean-level", str(folder), "--data", str(tiny_reference)]) == 0
    den = load_model(folder)
    record = den.metadata["mean_level_fit"]
    assert record["previous"] is None and record["scatter"] == "theta" and record["maps"] % 15 == 0
    cmd = load_cmd(*find_cmd(tiny_reference))
    means = den.encode(to_log10(cmd.maps, 16).astype(np.float64)).mean(axis=(-2, -1))
    with torch.no_grad():
        mu, s = den.mean_prior(torch.tensor(cmd.maps_theta(), dtype=torch.float32))
    assert np.ptp(means) > 0.1  # the level moves with Ωₘ: the check below has teeth
    assert np.sqrt(np.mean((mu.numpy() - means) ** 2)) < 1.5 * means.reshape(-1, 15).std(axis=1).mean() + 0.01
    assert torch.equal(den.network.state_dict()["theta_mlp.0.weight"],
                       load_model(tiny_weights).network.state_dict()["theta_mlp.0.weight"])
    assert main(["refit-mean-level", str(folder), "--data", str(tiny_reference), "--scatter", "constant"]) == 0
    again = load_model(folder)
    assert again.metadata["mean_level_fit"]["previous"] == den.metadata["mean_level"]
    lo, hi = again.metadata["mean_level_fit"]["s_range"]
    assert lo == pytest.approx(hi)
    assert den.metadata["mean_level"]["omega"] == "log" and record["omega"] == "log"
    assert main(["refit-mean-level", str(folder), "--data", str(tiny_reference), "--omega", "linear"]) == 0
    assert "omega" not in load_model(folder).metadata["mean_level"]  # the form of weights before session 17
