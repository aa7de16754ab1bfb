"""One user-supplied field in, ready for inference: read, check, bring to the model's resolution.

Accepted inputs: ``.npy`` (plain arrays only, never unpickled), ``.npz`` holding exactly one array,
and FITS (``.fits``, ``.fit``, ``.fits.gz``; the first HDU with data). Every bad input raises a
ValueError (FileNotFoundError for a missing path) whose message names the problem
(DESIGN.md section 8): wrong extension, empty, oversized, malformed, pickled, not one 2D map,
non-square, unsupported size, NaN/inf, non-positive density.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .cmd import npy_header_problem
from .transform import block_average, looks_like_log10

ACCEPTED_EXTENSIONS = (".npy", ".npz", ".fits", ".fit", ".fits.gz")
#: Smallest accepted map side in pixels (the model needs an even size at least this large).
MIN_SIZE = 16


class PreparedField(NamedTuple):
    """Result of :func:`prepare_field` (a tuple: ``log10, kind = prepare_field(...)``)."""

    log10: np.ndarray  # (r, r) float32, log10 Σ [(M_⊙/h)/(Mpc/h)²]
    kind: str  # "density" or "log10": how the input was interpreted


def _extension(name: str) -> str:
    lower = name.lower()
    for ext in sorted(ACCEPTED_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return ext
    raise ValueError(
        f"unsupported file type {name!r}; accepted: {', '.join(ACCEPTED_EXTENSIONS)}"
    )


def _pickle_message(name: str, err: Exception) -> str | None:
    msg = str(err)
    if "pickle" in msg or "Object arrays" in msg or "Python objects" in msg:
        return (f"{name}: an object array (pickled Python objects), which is never loaded; "
                "save the map as a plain numeric array")
    return None


def _load_npy(data: bytes, name: str) -> np.ndarray:
    problem = npy_header_problem(data[:6])
    if problem:
        raise ValueError(f"{name} {problem}")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(_pickle_message(name, err) or f"{name}: malformed .npy file ({err})") from None
    return arr


def _load_npz(data: bytes, name: str) -> np.ndarray:
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("not a zip archive of arrays")
        with npz:
            keys = list(npz.files)
            arr = npz[keys[0]] if len(keys) == 1 else None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(_pickle_message(name, err) or f"{name}: malformed .npz file ({err})") from None
    if arr is None:
        raise ValueError(f"{name}: a .npz must hold exactly one array, found {len(keys)}: {keys}")
    return arr


def _load_fits(data: bytes, name: str, max_bytes: int) -> np.ndarray:
    from astropy.io import fits

    if name.lower().endswith(".gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(max_bytes + 1)
        except (OSError, EOFError) as err:
            raise ValueError(f"{name}: malformed gzip file ({err})") from None
        if len(data) > max_bytes:
            raise ValueError(f"{name}: decompressed size exceeds the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False) as hdul:
                for hdu in hdul:
                    if hdu.data is not None and getattr(hdu.data, "ndim", 0) >= 1:
                        return np.array(hdu.data)
    except Exception as err:  # astropy raises OSError, VerifyError, TypeError, ... on bad files
        raise ValueError(f"{name}: malformed FITS file ({type(err).__name__}: {err})") from None
    raise ValueError(f"{name}: no HDU with image data in the FITS file")


def check_map(arr, name: str = "field") -> np.ndarray:
    """Validate one 2D map; returns (H, W) float64. A leading singleton axis (1, H, W) is dropped.

    Requires a real numeric dtype, H == W, H >= 16 and even, all values finite.
    """
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name}: numeric map expected, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name}: one 2D map expected, got shape {arr.shape}")
    h, w = arr.shape
    if h != w:
        raise ValueError(f"{name}: square map expected, got shape {arr.shape}")
    if h < MIN_SIZE or h % 2:
        raise ValueError(f"{name}: unsupported map size {h} x {w}; need an even size >= {MIN_SIZE}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name}: {int(bad.sum())} NaN/inf pixel(s), first at ({i}, {j})")
    return arr


def read_field(path_or_bytes: str | os.PathLike | bytes, filename: str | None = None,
               max_bytes: int = 64 * 2**20) -> np.ndarray:
    """Read one user field from a path or from raw bytes (an upload).

    Parameters
    ----------
    path_or_bytes : path of the file, or its content as bytes.
    filename : name used for the extension and in messages; required with bytes.
    max_bytes : refuse larger files (and larger decompressed .fits.gz).

    Returns
    -------
    field : (H, W) float64, as stored (a density or its log10; see :func:`prepare_field`).
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        if filename is None:
            raise ValueError("filename is required when the field is given as bytes")
        name = str(filename)
        ext = _extension(name)
        data = bytes(path_or_bytes)
        if len(data) > max_bytes:
            raise ValueError(f"{name}: file of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    else:
        path = Path(path_or_bytes)
        name = filename or path.name
        ext = _extension(name)
        if not path.is_file():
            raise FileNotFoundError(f"field file not found: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{name}: file of {size} bytes exceeds the limit of {max_bytes} bytes")
        data = path.read_bytes()
    if not data:
        raise ValueError(f"{name}: empty file")
    if ext == ".npy":
        arr = _load_npy(data, name)
    elif ext == ".npz":
        arr = _load_npz(data, name)
    else:
        arr = _load_fits(data, name, max_bytes)
    return check_map(arr, name)


def prepare_field(field, resolution: int, kind: str = "auto") -> PreparedField:
    """Bring a field to the model's resolution as log10 Σ, conserving mass.

    A density Σ is block-averaged, then log10'd; a log10 field is converted to Σ = 10^x,
    block-averaged and log10'd back, so both give log10 of the block mean of the linear density.

    Parameters
    ----------
    field : (H, W) Σ [(M_⊙/h)/(Mpc/h)²] or log10 Σ; H must be a multiple of ``resolution``.
    resolution : model side r.
    kind : "density", "log10", or "auto" (decided by :func:`looks_like_log10`).

    Returns
    -------
    (log10, kind_used) : (r, r) float32 log10 Σ, and "density" or "log10".
    """
    field = check_map(field)
    if kind not in ("auto", "density", "log10"):
        raise ValueError(f"kind must be 'auto', 'density' or 'log10', got {kind!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    n = field.shape[0]
    if n < resolution:
        raise ValueError(f"field of {n} x {n} pixels is smaller than the model resolution "
                         f"{resolution}; upsampling would invent structure")
    if n % resolution:
        raise ValueError(f"model resolution {resolution} does not divide the field size {n}")
    if kind == "auto":
        kind = "log10" if looks_like_log10(field) else "density"
    if kind == "density":
        if (field <= 0).any():
            raise ValueError(
                f"density field has {int((field <= 0).sum())} non-positive pixel(s) (min "
                f"{field.min():.4g}); a surface density must be > 0 (pass kind='log10' if it is log10 Σ)"
            )
        linear = field
    else:
        with np.errstate(over="ignore"):
            linear = 10.0 ** field
        if not np.isfinite(linear).all():
            raise ValueError(f"log10 field has values too large for log10 Σ (max {field.max():.4g})")
    log10 = np.log10(block_average(linear, n // resolution)).astype(np.float32)
    return PreparedField(log10, kind)
