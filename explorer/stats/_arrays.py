"""Input conversion shared by the statistics modules: array-likes and torch tensors to float64.

The statistics core is pure numpy/scipy. A torch tensor is accepted wherever an array is, and is
converted with ``np.asarray(x.detach().cpu())`` without importing torch.
"""

from __future__ import annotations

import numpy as np


def as_float_array(
    x, name: str, ndims: tuple[int, ...] | None = None, keep_float32: bool = False
) -> np.ndarray:
    """Return ``x`` as a finite float64 numpy array (or float32, if it is and ``keep_float32``).

    Parameters
    ----------
    x : array-like or torch.Tensor
        The input.
    name : str
        Argument name used in error messages.
    ndims : tuple of int, optional
        Allowed numbers of dimensions; any if None.
    keep_float32 : bool, default False
        Return float32 input as is, so a caller can convert large batches chunk by chunk.

    Returns
    -------
    numpy.ndarray
        float64 (or float32) array with the shape of ``x``; a copy only when converted.

    Raises
    ------
    ValueError
        If ``x`` has a dimensionality outside ``ndims``, is empty, or holds NaN or inf.
    """
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = np.asarray(x.detach().cpu())
    try:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(arr.dtype)
        keep = keep_float32 and arr.dtype == np.float32
        arr = np.asarray(arr, dtype=np.float32 if keep else np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a real numeric array, got {type(x).__name__} ({err})"
        ) from err
    if ndims is not None and arr.ndim not in ndims:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {n_bad} NaN or inf values")
    return arr
