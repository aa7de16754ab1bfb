"""Tests of explorer.data.fields: one user field in, with the failure contract of DESIGN.md section 8."""

import gzip
import io
import pickle

import numpy as np
import pytest
from astropy.io import fits

from explorer.data import block_average, prepare_field, read_field


@pytest.fixture
def density():
    """(64, 64) float64 lognormal Σ ~ 1e10..1e12 [(M_sun/h)/(Mpc/h)^2]."""
    return np.random.default_rng(4).lognormal(24.0, 1.5, (64, 64))


def npy_bytes(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_npy_npz_and_bytes_inputs(tmp_path, density):
    p = tmp_path / "field.npy"
    np.save(p, density.astype(np.float32))
    out = read_field(p)
    assert out.shape == (64, 64) and out.dtype == np.float64
    np.testing.assert_array_equal(out, density.astype(np.float32))
    np.testing.assert_array_equal(read_field(npy_bytes(density[None]), filename="up.NPY"), density)
    np.savez(tmp_path / "one.npz", density)
    np.testing.assert_array_equal(read_field(tmp_path / "one.npz"), density)
    np.savez(tmp_path / "two.npz", a=density, b=density)
    with pytest.raises(ValueError, match="exactly one array, found 2"):
        read_field(tmp_path / "two.npz")
    with pytest.raises(ValueError, match="filename is required"):
        read_field(npy_bytes(density))
    with pytest.raises(FileNotFoundError, match="nothere.npy"):
        read_field(tmp_path / "nothere.npy")


def test_fits_input(tmp_path, density):
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(density.astype(">f4"))])
    hdul.writeto(tmp_path / "map.fits")
    np.testing.assert_allclose(read_field(tmp_path / "map.fits"), density, rtol=1e-7)
    raw = (tmp_path / "map.fits").read_bytes()
    (tmp_path / "map.fits.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_allclose(read_field(tmp_path / "map.fits.gz"), density, rtol=1e-7)
    fits.PrimaryHDU(np.ones((3, 32, 32))).writeto(tmp_path / "cube.fit")
    with pytest.raises(ValueError, match=r"one 2D map expected, got shape \(3, 32, 32\)"):
        read_field(tmp_path / "cube.fit")
    with pytest.raises(ValueError, match="malformed FITS"):
        read_field(b"SIMPLE  = nonsense" * 10, filename="bad.fits")
    with pytest.raises(ValueError, match="decompressed size exceeds"):
        read_field(tmp_path / "map.fits.gz", max_bytes=len(raw) - 1)


@pytest.mark.parametrize("make, name, message", [
    (lambda d: npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True), "f.npy", "object array"),
    (lambda d: pickle.dumps(d), "f.npy", "Python pickle"),
    (lambda d: npy_bytes(d)[:200], "f.npy", "malformed .npy"),
    (lambda d: b"", "f.npy", "empty file"),
    (lambda d: b"PK\x03\x04garbage", "f.npz", "malformed .npz"),
    (lambda d: npy_bytes(d), "f.png", r"accepted: \.npy, \.npz, \.fits, \.fit, \.fits\.gz"),
    (lambda d: npy_bytes(np.stack([d, d])), "f.npy", r"one 2D map expected, got shape \(2, 64, 64\)"),
    (lambda d: npy_bytes(d[:, :32]), "f.npy", r"square map expected, got shape \(64, 32\)"),
    (lambda d: npy_bytes(d[:15, :15]), "f.npy", "unsupported map size 15 x 15"),
    (lambda d: npy_bytes(d[:8, :8]), "f.npy", "unsupported map size 8 x 8"),
    (lambda d: npy_bytes(d[:18, :18][1:, 1:]), "f.npy", "unsupported map size 17 x 17"),
    (lambda d: npy_bytes(np.where(d > 1e12, np.inf, d)), "f.npy", "NaN/inf"),
    (lambda d: npy_bytes(d.astype(complex)), "f.npy", "numeric map expected"),
])
def test_bad_inputs_get_specific_messages(tmp_path, density, make, name, message):
    data = make(density)
    with pytest.raises(ValueError, match=message):
        read_field(data, filename=name)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=message):
        read_field(tmp_path / name)


def test_oversized_file_is_refused_before_reading(tmp_path, density):
    p = tmp_path / "big.npy"
    np.save(p, density)
    with pytest.raises(ValueError, match="exceeds the limit of 1000 bytes"):
        read_field(p, max_bytes=1000)
    with pytest.raises(ValueError, match="exceeds the limit"):
        read_field(p.read_bytes(), filename="big.npy", max_bytes=1000)


def test_prepare_field_is_mass_conserving_for_both_kinds(density):
    ref = np.log10(block_average(density, 4))
    out, kind = prepare_field(density, 16)
    assert kind == "density" and out.shape == (16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    out, kind = prepare_field(np.log10(density), 16)
    assert kind == "log10"
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    # block-averaging the log10 directly would be lower (Jensen), which the round trip must avoid
    assert np.abs(np.log10(density).reshape(16, 4, 16, 4).mean((1, 3)) - ref).max() > 0.05
    np.testing.assert_allclose(prepare_field(density, 64, kind="density").log10, np.log10(density), rtol=1e-6)


def test_prepare_field_errors(density):
    zeroed = density.copy()
    zeroed[5, 5] = 0.0
    with pytest.raises(ValueError, match="1 non-positive pixel"):
        prepare_field(zeroed, 16, kind="density")
    with pytest.raises(ValueError, match="negative values"):
        prepare_field(density / density.mean() - 1.0, 16)
    with pytest.raises(ValueError, match="resolution 24 does not divide the field size 64"):
        prepare_field(density, 24)
    with pytest.raises(ValueError, match="smaller than the model resolution 128"):
        prepare_field(density, 128)
    with pytest.raises(ValueError, match="kind must be"):
        prepare_field(density, 16, kind="linear")
    with pytest.raises(ValueError, match="too large"):
        prepare_field(np.full((32, 32), 400.0), 16, kind="log10")
