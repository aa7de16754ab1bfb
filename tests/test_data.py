"""Tests of explorer.data: CMD files, transforms, splits and the map dataset (tiny files, fast)."""

import pickle

import numpy as np
import pytest
import torch

from explorer.data import (
    MAPS_PER_SIM,
    CMDSet,
    MapDataset,
    Normalization,
    block_average,
    dihedral,
    dihedral_inverse,
    find_cmd,
    load_cmd,
    looks_like_log10,
    maps_filename,
    params_filename,
    read_params,
    split_by_simulation,
    to_log10,
    write_cmd,
)

PARAMS = np.array([[0.3, 0.8, 1.0, 1.0, 1.0, 1.0],
                   [0.1755, 0.6215, 2.1, 0.51, 1.3, 0.7]])


def make_maps(n_sims=2, size=256, seed=0):
    """(15 n_sims, size, size) float32 lognormal Σ ~ 1e10, map i scaled by (1 + i) to tell maps apart."""
    rng = np.random.default_rng(seed)
    maps = np.exp(rng.normal(23.0, 1.0, (MAPS_PER_SIM * n_sims, size, size)))
    return (maps * (1.0 + np.arange(len(maps)))[:, None, None]).astype(np.float32)


def write_real_layout(directory, maps, params, header=True, suite="IllustrisTNG", field="Mcdm"):
    """Write files exactly as a CAMELS download names and formats them."""
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / maps_filename(field, suite, "LH"), maps)
    lines = ["# Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2"] if header else []
    lines += [" ".join(f"{v:.5f}" for v in row) for row in params]
    (directory / params_filename(suite.removeprefix("Nbody_"), "LH")).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def maps():
    return make_maps()


# ---------------------------------------------------------------- CMD files


@pytest.mark.parametrize("header", [True, False])
def test_real_camels_layout_loads_as_is(tmp_path, maps, header):
    write_real_layout(tmp_path, maps, PARAMS, header=header)
    mp, pp = find_cmd(tmp_path)
    assert mp.name == "Maps_Mcdm_IllustrisTNG_LH_z=0.00.npy" and pp.name == "params_LH_IllustrisTNG.txt"
    cmd = load_cmd(mp, pp)
    assert isinstance(cmd.maps, np.memmap) and not cmd.maps.flags.writeable
    assert cmd.maps.shape == (30, 256, 256) and cmd.maps.dtype == np.float32
    assert (cmd.field, cmd.suite, cmd.set_name) == ("Mcdm", "IllustrisTNG", "LH")
    assert cmd.n_sims == 2 and cmd.resolution == 256
    np.testing.assert_allclose(cmd.params, PARAMS, atol=1e-5)
    np.testing.assert_allclose(cmd.theta, PARAMS[:, :2], atol=1e-5)
    np.testing.assert_array_equal(cmd.map_indices([1]), np.arange(15, 30))
    np.testing.assert_array_equal(cmd.map_indices([1, 0])[:3], [15, 16, 17])
    assert cmd.sim_of_map(14) == 0 and cmd.sim_of_map(15) == 1
    np.testing.assert_allclose(cmd.maps_theta()[20], cmd.theta[1])
    np.testing.assert_array_equal(cmd.maps[7], maps[7])
    np.testing.assert_allclose(to_log10(cmd.maps, 64, chunk=8),
                               np.log10(block_average(maps.astype(np.float64), 4)), rtol=1e-6)
    with pytest.raises(IndexError, match="30"):
        cmd.sim_of_map(30)
    with pytest.raises(ValueError, match="out of range"):
        cmd.map_indices([2])


def test_nbody_maps_use_hydro_params_file(tmp_path, maps):
    write_real_layout(tmp_path, maps, PARAMS, suite="Nbody_IllustrisTNG", field="Mtot")
    mp, pp = find_cmd(tmp_path, field="Mtot")
    assert mp.name == "Maps_Mtot_Nbody_IllustrisTNG_LH_z=0.00.npy"
    assert pp.name == "params_LH_IllustrisTNG.txt"
    cmd = load_cmd(mp, pp)
    assert cmd.suite == "Nbody_IllustrisTNG" and cmd.field == "Mtot"


def test_find_cmd_reports_zero_or_several_candidates(tmp_path, maps):
    with pytest.raises(FileNotFoundError, match="no Maps_"):
        find_cmd(tmp_path)
    small = maps[:, :32, :32]
    write_cmd(tmp_path, small, PARAMS, suite="PM")
    write_cmd(tmp_path, small, PARAMS, suite="PM2")
    with pytest.raises(ValueError, match="Maps_Mcdm_PM2_LH.*suite="):
        find_cmd(tmp_path)
    assert find_cmd(tmp_path, suite="PM2").params.name == "params_LH_PM2.txt"
    with pytest.raises(FileNotFoundError, match="found: .*Maps_Mcdm_PM_LH"):
        find_cmd(tmp_path, field="Mtot")
    (tmp_path / "params_LH_PM.txt").unlink()
    with pytest.raises(FileNotFoundError, match="params_LH_PM.txt"):
        find_cmd(tmp_path, suite="PM")


def test_load_cmd_errors_are_specific(tmp_path, maps):
    pp = tmp_path / "params_LH_X.txt"
    pp.write_text("0.3 0.8\n0.2 0.7\n0.4 0.9\n")
    good = tmp_path / "Maps_Mcdm_X_LH_z=0.00.npy"
    np.save(good, maps[:, :32, :32])
    with pytest.raises(ValueError, match=r"30 maps.*3 rows"):
        load_cmd(good, pp)
    pp.write_text("0.3 0.8\n0.2 0.7\n")
    assert load_cmd(good, pp).resolution == 32

    cases = {
        "nonsquare.npy": (lambda p: np.save(p, maps[:, :32, :16]), "square"),
        "flat.npy": (lambda p: np.save(p, maps[:, 0, :]), "shape"),
        "ints.npy": (lambda p: np.save(p, np.ones((30, 8, 8), np.int32)), "floating point"),
        "objects.npy": (lambda p: np.save(p, np.array([{"a": 1}] * 30, dtype=object), allow_pickle=True),
                        "pickled"),
        "empty.npy": (lambda p: p.write_bytes(b""), "empty"),
        "garbage.npy": (lambda p: p.write_bytes(b"not an array at all" * 10), "no NUMPY header"),
        "pickle.npy": (lambda p: p.write_bytes(pickle.dumps([1, 2])), "Python pickle"),
        "truncated.npy": (lambda p: p.write_bytes((tmp_path / "Maps_Mcdm_X_LH_z=0.00.npy").read_bytes()[:500]), "readable .npy"),
        "maps.txt": (lambda p: p.write_text("1 2 3"), r"\.npy"),
    }
    for name, (make, message) in cases.items():
        make(tmp_path / name)
        with pytest.raises(ValueError, match=message):
            load_cmd(tmp_path / name, pp)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_cmd(tmp_path / "missing.npy", pp)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_cmd(good, tmp_path / "nope.txt")


@pytest.mark.parametrize("text, message", [
    ("0.3 0.8\n0.2 abc\n", "line 2"),
    ("# header\n0.3\n0.2\n", "at least Omega_m and sigma_8"),
    ("0.3 0.8\n0.2 nan\n", "non-finite"),
    ("0.3 0.8 1\n0.2 0.7\n", "columns"),
    ("# only a header\n", "no parameter rows"),
])
def test_read_params_rejects_malformed_files(tmp_path, text, message):
    p = tmp_path / "params_LH_X.txt"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_params(p)


def test_write_then_load_round_trip(tmp_path, maps):
    small = maps[:, :64, :64].astype(np.float64)
    mp, pp = write_cmd(tmp_path / "out", small, PARAMS[:, :2])
    assert mp.name == "Maps_Mcdm_PM_LH_z=0.00.npy" and pp.name == "params_LH_PM.txt"
    assert pp.read_text().splitlines()[0] == "# Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2"
    cmd = load_cmd(*find_cmd(tmp_path / "out", suite="PM"))
    assert cmd.maps.dtype == np.float32
    np.testing.assert_array_equal(cmd.maps, small.astype(np.float32))
    np.testing.assert_array_equal(cmd.theta, PARAMS[:, :2])  # repr() round-trips exactly
    np.testing.assert_array_equal(cmd.params[:, 2:], 1.0)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_cmd(tmp_path / "out", small, PARAMS[:, :2])
    write_cmd(tmp_path / "out", small * 2, PARAMS, overwrite=True)
    np.testing.assert_allclose(load_cmd(mp, pp).params, PARAMS)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([mp.name, pp.name])
    with pytest.raises(ValueError, match=r"30 maps.*1 rows"):
        write_cmd(tmp_path / "bad", small, PARAMS[:1])
    small[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="map 3"):
        write_cmd(tmp_path / "bad", small, PARAMS)


# ---------------------------------------------------------------- transforms


def test_block_average_conserves_mass():
    rng = np.random.default_rng(1)
    x = rng.lognormal(23.0, 2.0, (3, 64, 64))
    for f in (1, 2, 4, 8):
        y = block_average(x, f)
        assert y.shape == (3, 64 // f, 64 // f) and y.dtype == np.float64
        np.testing.assert_allclose(y.sum(axis=(1, 2)) * f * f, x.sum(axis=(1, 2)), rtol=1e-13)
    np.testing.assert_allclose(block_average(x, 2)[0, 0, 0], x[0, :2, :2].mean(), rtol=1e-15)
    t = block_average(torch.from_numpy(x), 4)
    assert torch.is_tensor(t) and t.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), block_average(x, 4), rtol=1e-14)
    assert block_average(x.astype(np.float32), 2).dtype == np.float32
    with pytest.raises(ValueError, match="factor 3"):
        block_average(x, 3)


def test_to_log10_matches_block_average_and_names_bad_maps(maps):
    ref = np.log10(block_average(maps.astype(np.float64), 4))
    out = to_log10(maps, 64, chunk=7)
    assert out.shape == (30, 64, 64) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    sub = to_log10(maps, 64, chunk=4, indices=[16, 17, 18, 3, 29])
    np.testing.assert_allclose(sub, ref[[16, 17, 18, 3, 29]], rtol=1e-6)

    bad = maps[:, :16, :16].copy()
    bad[17, 3, 4] = np.nan
    with pytest.raises(ValueError, match="map 17 contains NaN"):
        to_log10(bad, 8, chunk=4)
    bad[17, 3, 4] = 1.0
    bad[9, 0, 0] = 0.0
    bad[21, 0, 0] = -1.0
    with pytest.raises(ValueError, match="map 9 has non-positive"):
        to_log10(bad, 8, chunk=4)
    with pytest.raises(ValueError, match="resolution 48 must divide"):
        to_log10(maps, 48)
    with pytest.raises(ValueError, match="resolution 512"):
        to_log10(maps, 512)


def test_normalization_round_trip_and_fit():
    norm = Normalization(9.42, 15.45)
    x = np.linspace(9.42, 15.45, 11)
    np.testing.assert_allclose(norm.encode(x)[[0, 5, -1]], [-1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(norm.decode(norm.encode(x)), x, rtol=1e-14)
    t = torch.tensor(x, dtype=torch.float32)
    assert norm.encode(t).dtype == torch.float32
    assert Normalization.from_dict(norm.to_dict()) == norm
    with pytest.raises(ValueError, match="hi > lo"):
        Normalization(2.0, 1.0)
    with pytest.raises(ValueError, match="lacks"):
        Normalization.from_dict({"lo": 1.0})

    rng = np.random.default_rng(2)
    maps = rng.normal(11.0, 0.3, (4, 64, 64))
    maps[0, 0, 0] = 20.0  # one bright pixel
    mm = Normalization.fit(maps)
    assert (mm.lo, mm.hi) == (maps.min(), 20.0)
    pc = Normalization.fit(maps, "percentile")
    assert pc.hi < 13.0 and pc.lo > mm.lo
    assert np.abs(pc.encode(maps)).max() > 1.0  # not clipped
    with pytest.raises(ValueError, match="unknown normalization method 'std'"):
        Normalization.fit(maps, "std")


def test_dihedral_group():
    x = np.arange(9.0).reshape(3, 3) ** 2  # no symmetry of the square maps it onto itself
    images = [dihedral(x, k) for k in range(8)]
    assert len({im.tobytes() for im in images}) == 8
    np.testing.assert_array_equal(images[0], x)
    for a in range(8):
        np.testing.assert_array_equal(dihedral_inverse(images[a], a), x)
        for b in range(8):  # closure: D_b D_a is one of the eight
            ab = dihedral(images[a], b)
            assert any(np.array_equal(ab, im) for im in images)
    batch = np.stack([x, x + 1])[:, None]  # (2, 1, 3, 3): acts on the last two axes only
    for k in range(8):
        tk = dihedral(torch.from_numpy(batch), k)
        np.testing.assert_array_equal(tk.numpy(), dihedral(batch, k))
        np.testing.assert_array_equal(tk.numpy()[1, 0], images[k] + 1)
    with pytest.raises(ValueError, match="0..7"):
        dihedral(x, 8)


def test_looks_like_log10():
    rng = np.random.default_rng(3)
    log10 = rng.normal(11.0, 0.5, (32, 32))
    assert looks_like_log10(log10) is True
    assert looks_like_log10(10.0 ** log10) is False
    with pytest.raises(ValueError, match="negative values.*overdensity"):
        looks_like_log10(10.0 ** log10 / 1e11 - 1.0)
    with pytest.raises(ValueError, match="cannot tell"):
        looks_like_log10(np.full((32, 32), 50.0))


# ---------------------------------------------------------------- splits and dataset


def test_split_by_simulation():
    s = split_by_simulation(1000, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (900, 50, 50)
    everything = np.concatenate([s.train, s.val, s.test])
    np.testing.assert_array_equal(np.sort(everything), np.arange(1000))  # disjoint and covering
    again = split_by_simulation(1000, seed=0)
    for a, b in ((s.train, again.train), (s.val, again.val), (s.test, again.test)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(split_by_simulation(1000, seed=1).val, s.val)
    tiny = split_by_simulation(5, (0.8, 0.1, 0.1))
    assert (len(tiny.train), len(tiny.val), len(tiny.test)) == (3, 1, 1)
    with pytest.raises(ValueError, match="summing to 1"):
        split_by_simulation(10, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="too few"):
        split_by_simulation(2, (0.5, 0.25, 0.25))


def test_map_dataset_values_and_theta(maps):
    params = np.array([[0.3, 0.8], [0.2, 0.7], [0.45, 0.95]])
    cmd = CMDSet(maps=np.concatenate([maps, maps[:15] * 3.0]), params=params)
    ds = MapDataset(cmd, [2, 0, 1], resolution=32, augment=False)
    assert len(ds) == 45 and ds.log10_maps.shape == (45, 32, 32)
    np.testing.assert_array_equal(ds.map_indices // MAPS_PER_SIM, [2] * 15 + [0] * 15 + [1] * 15)
    thetas = torch.stack([ds[i][1] for i in range(len(ds))]).numpy()
    np.testing.assert_allclose(thetas, params[ds.map_indices // 15], rtol=1e-6)  # theta of map i = params[i // 15]
    ref = np.log10(block_average(cmd.maps[ds.map_indices].astype(np.float64), 8))
    for i in (0, 14, 15, 29, 44):
        x, theta = ds[i]
        assert x.shape == (1, 32, 32) and x.dtype == torch.float32
        assert theta.dtype == torch.float32
        np.testing.assert_allclose(theta.numpy(), params[ds.map_indices[i] // 15], rtol=1e-6)
        np.testing.assert_allclose(ds.normalization.decode(x[0].double()).numpy(), ref[i], rtol=1e-6)
    np.testing.assert_allclose([ds.normalization.lo, ds.normalization.hi], [ref.min(), ref.max()], rtol=1e-6)
    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    assert xs.min() >= -1.0 - 1e-6 and xs.max() <= 1.0 + 1e-6

    val = MapDataset(cmd, [1], 32, ds.normalization, augment=True)
    assert val.normalization is ds.normalization
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        x, _ = val[3]
        plain = ds.normalization.encode(torch.from_numpy(val.log10_maps[3]))
        k = [k for k in range(8) if torch.allclose(x[0], dihedral(plain, k))]
        assert k, "augmented map is not a dihedral image of the map"
        seen.add(k[0])
    assert len(seen) >= 6
    batch = next(iter(torch.utils.data.DataLoader(val, batch_size=4)))
    assert batch[0].shape == (4, 1, 32, 32) and batch[1].shape == (4, 2)
    with pytest.raises(ValueError, match="unique"):
        MapDataset(cmd, [1, 1], 32)


def test_normalization_round_trips_with_its_method_and_clip_range():
    from explorer.data.transform import Normalization

    n = Normalization.from_dict({"lo": 9.5, "hi": 15.0, "method": "percentile", "clip": [-1.1, 1.05]})
    assert (n.lo, n.hi, n.method, n.clip, n.clip_range) == (9.5, 15.0, "percentile", (-1.1, 1.05), (-1.1, 1.05))
    assert Normalization.from_dict(n.to_dict()) == n
    assert Normalization.from_dict({"lo": 9, "hi": 15}).clip_range == (-1.0, 1.0)
    x = np.linspace(9.5, 15.0, 5)
    np.testing.assert_allclose(n.encode(x), [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(n.decode(n.encode(x)), x)
    for bad in ({"lo": 9}, {"lo": 15, "hi": 9}, {"lo": 9, "hi": 15, "clip": [1, -1]}, {"lo": "a", "hi": 15}, [9, 15]):
        with pytest.raises(ValueError):
            Normalization.from_dict(bad)
