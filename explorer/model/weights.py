"""The weights folder: everything needed to use a trained model, and nothing executable.

Layout (Hugging Face style, loadable with ``ParamUNet.from_pretrained``)::

    weights/
      config.json                          ParamUNet constructor arguments (diffusers ConfigMixin)
      diffusion_pytorch_model.safetensors  the tensors (never a pickle)
      explorer.json                        how to use them (below)

``explorer.json`` keys::

    format            "explorer-weights/1"
    schedule          {"name": "seed", "T": 1000, "beta_start": ..., ...}  (schedule.schedule_from_spec)
    resolution        map side in pixels, int
    normalization     {"lo": float, "hi": float, "method": "minmax" | "percentile", "clip": [lo, hi]}:
                      x = 2 (log10 Σ - lo)/(hi - lo) - 1 whatever the method (it records how lo, hi
                      were chosen); optional "clip" is the x̂_0 clipping range in x units ([-1, 1])
    param_ranges      [[Ω_m lo, hi], [σ_8 lo, hi]]
    prediction_type   "epsilon" | "v_prediction"
    data              provenance (suite, files, number of simulations/maps, ...)
    training          record (steps, batch size, CPU-hours, ...)
    metrics           measured figures (fidelity, ...)
    sampler           optional default {"method": ..., "steps": ...}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explorer.data.transform import Normalization
from explorer.paths import how_to_get_weights, resolve_weights

from .device import pick_device
from .schedule import NoiseSchedule, schedule_from_spec, seed_schedule_spec
from .unet import ParamUNet, make_circular

CONFIG_FILE = "config.json"
TENSORS_FILE = "diffusion_pytorch_model.safetensors"
METADATA_FILE = "explorer.json"
FORMAT = "explorer-weights/1"


class WeightsError(ValueError):
    """A weights folder is missing, incomplete or corrupt (the message says how to get weights)."""


@dataclass
class LoadedModel:
    """A model ready to sample, with everything that travels with it."""

    model: ParamUNet                 # in eval mode, on ``device``, circular padding
    schedule: NoiseSchedule
    metadata: dict                   # the whole explorer.json
    resolution: int                  # map side in pixels
    normalization: Normalization     # log10 Σ <-> x = 2 (log10 Σ − lo)/(hi − lo) − 1, with its clip range
    param_ranges: tuple[tuple[float, float], tuple[float, float]]
    device: torch.device
    gaussian_start: object = None    # explorer.model.gaussian.GaussianStart, from metadata["gaussian_start"]


def _jsonable(obj):
    """``json.dumps`` default: numpy scalars/arrays, tuples, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"metadata value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def _check_normalization(norm, where: str) -> dict:
    """The stored form of a normalisation dict, checked (raises ValueError naming ``where``)."""
    try:
        checked = Normalization.from_dict(norm).to_dict()
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return {**norm, **checked}  # other keys kept as they were


def save_model(folder: str | Path, model: ParamUNet, metadata: dict) -> Path:
    """Write ``model`` and ``metadata`` as a weights folder (created if needed; files overwritten).

    ``metadata`` must hold ``normalization`` {"lo", "hi"[, "method"]}; ``schedule`` defaults to the
    seed schedule with T = 1000, ``resolution`` and ``param_ranges`` to the model's config, and
    ``prediction_type`` is always the model's. Other keys (data, training, metrics, sampler) are
    stored as given. Returns the folder path.
    """
    if not isinstance(model, ParamUNet):
        raise ValueError(f"model must be a ParamUNet, got {type(model).__name__}")
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = dict(metadata)
    meta["normalization"] = _check_normalization(meta.get("normalization"), 'metadata["normalization"]')
    meta.setdefault("schedule", model.config.mean_schedule if model.config.get("mean_head") else seed_schedule_spec(1000))
    schedule_from_spec(meta["schedule"])  # fail now, not at load time
    if model.config.get("mean_head") and dict(model.config.mean_schedule) != dict(meta["schedule"]):
        raise ValueError(f'metadata["schedule"]={meta["schedule"]} differs from the mean head\'s '
                         f"{model.config.mean_schedule}")
    meta.setdefault("resolution", int(model.config.sample_size))
    ranges = [list(map(float, r)) for r in model.config.param_ranges]
    if "param_ranges" in meta and [list(map(float, r)) for r in meta["param_ranges"]] != ranges:
        raise ValueError(f'metadata["param_ranges"]={meta["param_ranges"]} differs from the model\'s {ranges}')
    meta["param_ranges"] = ranges
    if meta.get("prediction_type", model.config.prediction_type) != model.config.prediction_type:
        raise ValueError(f'metadata["prediction_type"]={meta["prediction_type"]!r} differs from the '
                         f"model's {model.config.prediction_type!r}")
    meta["prediction_type"] = model.config.prediction_type
    meta["format"] = FORMAT
    for key in ("data", "training", "metrics"):
        meta.setdefault(key, {})
    text = json.dumps(meta, indent=2, default=_jsonable)  # serialise before touching the folder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / METADATA_FILE).write_text(text + "\n")
    return folder


def read_metadata(folder: str | Path | None = None) -> dict:
    """The checked contents of ``folder/explorer.json`` (raises WeightsError); ``folder`` None:
    ``$EXPLORER_WEIGHTS``, else the shipped weights (:func:`explorer.paths.resolve_weights`)."""
    folder = resolve_weights(folder)
    if not folder.is_dir():
        raise WeightsError(f"weights folder {folder} does not exist. {how_to_get_weights()}")
    for name in (CONFIG_FILE, TENSORS_FILE, METADATA_FILE):
        if not (folder / name).is_file():
            raise WeightsError(f"weights folder {folder} has no {name}. {how_to_get_weights()}")
    try:
        meta = json.loads((folder / METADATA_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"{folder / METADATA_FILE} is not valid JSON ({err}). {how_to_get_weights()}") from None
    if not isinstance(meta, dict):
        raise WeightsError(f"{folder / METADATA_FILE} must hold a JSON object. {how_to_get_weights()}")
    missing = [k for k in ("schedule", "resolution", "normalization", "param_ranges") if k not in meta]
    if missing:
        raise WeightsError(f"{folder / METADATA_FILE} lacks {', '.join(missing)}. {how_to_get_weights()}")
    try:
        meta["normalization"] = _check_normalization(meta["normalization"], f"{METADATA_FILE} normalization")
        meta["resolution"] = int(meta["resolution"])
    except (ValueError, TypeError) as err:
        raise WeightsError(f"{err}. {how_to_get_weights()}") from None
    return meta


def set_metadata(folder: str | Path, key: str, value) -> None:
    """Set ``key`` of ``folder/explorer.json`` (atomically); every other key is kept as it was."""
    path = Path(folder) / METADATA_FILE
    meta = json.loads(path.read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    meta[key] = value
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(meta, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def load_model(folder: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a weights folder written by :func:`save_model` (safetensors only; never unpickles).

    ``folder`` None: ``$EXPLORER_WEIGHTS``, else the shipped weights (:func:`explorer.paths.resolve_weights`).

    Raises:
        WeightsError: missing folder or file, malformed JSON, corrupt or mismatching tensors.
        ValueError: ``device`` is not available.
    """
    folder = resolve_weights(folder)
    meta = read_metadata(folder)
    device = pick_device(device)
    try:
        schedule = schedule_from_spec(meta["schedule"])
    except ValueError as err:
        raise WeightsError(f"{folder / METADATA_FILE}: {err}. {how_to_get_weights()}") from None
    try:
        model, info = ParamUNet.from_pretrained(folder, use_safetensors=True, local_files_only=True,
                                                low_cpu_mem_usage=False, output_loading_info=True)
    except Exception as err:  # diffusers/safetensors raise OSError, SafetensorError, RuntimeError...
        raise WeightsError(f"could not load the network from {folder} "
                           f"({type(err).__name__}: {err}). {how_to_get_weights()}") from None
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:  # diffusers only warns and leaves missing tensors randomly initialised
        raise WeightsError(f"{folder / TENSORS_FILE} does not match {CONFIG_FILE}: {bad}. {how_to_get_weights()}")
    make_circular(model)
    model.to(device).eval()
    ranges = tuple(tuple(float(v) for v in r) for r in model.config.param_ranges)
    if [list(r) for r in ranges] != [list(map(float, r)) for r in meta["param_ranges"]]:
        raise WeightsError(f"{folder}: param_ranges in {METADATA_FILE} ({meta['param_ranges']}) and "
                           f"{CONFIG_FILE} ({[list(r) for r in ranges]}) disagree. {how_to_get_weights()}")
    if model.config.get("mean_head") and dict(model.config.mean_schedule) != dict(meta["schedule"]):
        raise WeightsError(f"{folder}: the schedule in {METADATA_FILE} and the mean head's in {CONFIG_FILE} "
                           f"disagree. {how_to_get_weights()}")
    if meta.get("prediction_type", "epsilon") != model.config.prediction_type:
        raise WeightsError(f"{folder}: prediction_type in {METADATA_FILE} and {CONFIG_FILE} disagree. {how_to_get_weights()}")
    start = None
    if meta.get("gaussian_start") is not None:
        from .gaussian import GaussianStart

        try:
            start = GaussianStart.from_dict(meta["gaussian_start"])
        except (ValueError, TypeError) as err:
            raise WeightsError(f"{folder / METADATA_FILE}: {err}. Re-fit it with `explorer calibrate`.") from None
        if start.resolution != meta["resolution"] or [list(r) for r in start.param_ranges] != [list(r) for r in ranges]:
            raise WeightsError(f"{folder / METADATA_FILE}: gaussian_start was fitted for another resolution or "
                               "prior box. Re-fit it with `explorer calibrate`.")
    return LoadedModel(model=model, schedule=schedule, metadata=meta, resolution=meta["resolution"],
                       normalization=Normalization.from_dict(meta["normalization"]), param_ranges=ranges,
                       device=device,
                       gaussian_start=start)
