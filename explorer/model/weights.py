"""The weights folder: everything needed to rebuild a trained :class:`Denoiser`, nothing executable.

Layout (Hugging Face style; the network alone loads with ``ParamUNet.from_pretrained``)::

    weights/
      config.json                          ParamUNet constructor arguments (diffusers ConfigMixin)
      diffusion_pytorch_model.safetensors  the network's tensors (never a pickle)
      explorer.json                        how to use them (below)

``explorer.json`` keys::

    format            "explorer-weights/1"
    schedule          {"name": "seed", "T": 1000, "beta_start": ..., ...}  (schedule.schedule_from_spec)
    resolution        map side in pixels, int
    normalization     {"lo": float, "hi": float, "method": "minmax" | "percentile", "clip": [lo, hi]}:
                      x = 2 (log10 Σ - lo)/(hi - lo) - 1 whatever the method (it records how lo, hi
                      were chosen); optional "clip" is the x̂_0 clipping range in x units ([-1, 1])
    param_ranges      [[Ωₘ lo, hi], [σ₈ lo, hi]]
    prediction_type   "epsilon" | "v_prediction"
    mean_level        optional {"model": "quadratic-gaussian", "coef": [6], "log_s": [3] (or one number),
                      "omega": "log" (Ωₘ scaled in its log; absent: linearly)}
                      (denoiser.MeanLevel: the map-mean prior that gives the output's k = 0 mode)
    data              provenance (suite, files, number of simulations/maps, ...)
    training          record (steps, batch size, CPU-hours, ...)
    metrics           measured figures (fidelity, ...)
    sampler           optional default {"method": ..., "steps": ...}

Folders written before the Denoiser existed kept the mean level inside the network (config
``mean_head``/``mean_schedule``, tensors ``mean_coef``/``mean_log_s``); ``explorer upgrade-weights
FOLDER`` converts them once, moving those numbers unchanged into ``mean_level``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from explorer.data.transform import Normalization
from explorer.paths import how_to_get_weights, resolve_weights

from .denoiser import Denoiser, MeanLevel
from .device import pick_device
from .schedule import schedule_from_spec, seed_schedule_spec
from .unet import ParamUNet, make_circular

CONFIG_FILE = "config.json"
TENSORS_FILE = "diffusion_pytorch_model.safetensors"
METADATA_FILE = "explorer.json"
FORMAT = "explorer-weights/1"


class WeightsError(ValueError):
    """A weights folder is missing, incomplete or corrupt (the message says how to get weights)."""


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


def save_model(folder: str | Path, model: Denoiser | ParamUNet, metadata: dict | None = None) -> Path:
    """Write a :class:`Denoiser` as a weights folder (created if needed; files overwritten).

    The denoiser owns the schedule, normalisation, prior box, prediction type and mean level; those
    keys of ``metadata`` (merged over ``model.metadata``) must agree with it or be absent. Other keys
    (data, training, metrics, sampler, ...) are stored as given. A bare ``ParamUNet`` is first
    wrapped by :func:`denoiser_from_metadata` (``metadata["normalization"]`` then required; the
    schedule defaults to the seed schedule with T = 1000). Returns the folder path.
    """
    if isinstance(model, ParamUNet):
        model = denoiser_from_metadata(model, dict(metadata or {}))
    if not isinstance(model, Denoiser) or not isinstance(model.network, ParamUNet):
        raise ValueError(f"model must be a Denoiser around a ParamUNet (or a ParamUNet), got {type(model).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = {**model.metadata, **(metadata or {})}
    network = model.network
    spec = meta.get("schedule") or seed_schedule_spec(model.schedule.T)
    if not np.array_equal(schedule_from_spec(spec).betas, model.schedule.betas):
        raise ValueError(f'metadata["schedule"]={spec} is not the denoiser\'s schedule')
    meta["schedule"] = spec
    norm = model.normalization.to_dict()
    if "normalization" in meta and Normalization.from_dict(meta["normalization"]) != model.normalization:
        raise ValueError(f'metadata["normalization"]={meta["normalization"]} differs from the denoiser\'s {norm}')
    meta["normalization"] = {**meta.get("normalization", {}), **norm}
    meta.setdefault("resolution", int(network.config.sample_size))
    ranges = [list(map(float, r)) for r in network.config.param_ranges]
    if "param_ranges" in meta and [list(map(float, r)) for r in meta["param_ranges"]] != ranges:
        raise ValueError(f'metadata["param_ranges"]={meta["param_ranges"]} differs from the model\'s {ranges}')
    meta["param_ranges"] = ranges
    if meta.get("prediction_type", network.config.prediction_type) != network.config.prediction_type:
        raise ValueError(f'metadata["prediction_type"]={meta["prediction_type"]!r} differs from the '
                         f"model's {network.config.prediction_type!r}")
    meta["prediction_type"] = network.config.prediction_type
    meta.pop("mean_level", None)
    if model.mean_level is not None:
        meta["mean_level"] = model.mean_level.to_dict()
    meta["format"] = FORMAT
    for key in ("data", "training", "metrics"):
        meta.setdefault(key, {})
    text = json.dumps(meta, indent=2, default=_jsonable)  # serialise before touching the folder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    network.save_pretrained(folder, safe_serialization=True)
    (folder / METADATA_FILE).write_text(text + "\n")
    return folder


def denoiser_from_metadata(network: ParamUNet, meta: dict) -> Denoiser:
    """A :class:`Denoiser` around ``network`` from the explorer.json keys ``schedule`` (default: the seed
    schedule, T = 1000), ``normalization`` (required), ``mean_level``, ``gaussian_start`` and ``translation_start`` (optional).

    Raises ValueError naming the key that is malformed.
    """
    from .gaussian import GaussianStart

    schedule = schedule_from_spec(meta.get("schedule") or seed_schedule_spec(1000))
    if "normalization" not in meta:
        raise ValueError('metadata["normalization"] is required: {"lo": log10 Σ, "hi": log10 Σ}')
    norm = Normalization.from_dict(_check_normalization(meta["normalization"], 'metadata["normalization"]'))
    mean_level = None
    if meta.get("mean_level") is not None:
        mean_level = MeanLevel.from_dict(meta["mean_level"], network.config.param_ranges)
    start = None
    if meta.get("gaussian_start") is not None:
        try:
            start = GaussianStart.from_dict(meta["gaussian_start"])
        except (ValueError, TypeError) as err:
            raise ValueError(f"gaussian_start: {err}") from None
    denoiser = Denoiser(network, schedule, norm, mean_level, metadata=dict(meta), gaussian_start=start)
    if meta.get("translation_start") is not None:
        from .translation import TranslationStart

        try:
            denoiser.translation_start = TranslationStart.from_dict(meta["translation_start"])
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"translation_start: {err}") from None
    return denoiser


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
    update_metadata(folder, {key: value})


def update_metadata(folder: str | Path, updates: dict) -> None:
    """Set every key of ``updates`` in ``folder/explorer.json`` in one atomic write; the other keys are kept."""
    path = Path(folder) / METADATA_FILE
    meta = json.loads(path.read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    meta.update(updates)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(meta, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def load_model(folder: str | Path | None = None, device: str | torch.device = "cpu") -> Denoiser:
    """Load a weights folder written by :func:`save_model` as a :class:`Denoiser` in eval mode
    (safetensors only; never unpickles).

    ``folder`` None: ``$EXPLORER_WEIGHTS``, else the shipped weights (:func:`explorer.paths.resolve_weights`).

    Raises:
        WeightsError: missing folder or file, malformed JSON, corrupt or mismatching tensors, a
            folder in the old layout (the message names ``explorer upgrade-weights``).
        ValueError: ``device`` is not available.
    """
    folder = resolve_weights(folder)
    meta = read_metadata(folder)
    device = pick_device(device)
    if _is_old_layout(folder):
        raise WeightsError(f"{folder} is in the old layout (the map-mean model inside the network); convert it "
                           f"once with `explorer upgrade-weights {folder}`")
    try:
        schedule_from_spec(meta["schedule"])
    except ValueError as err:
        raise WeightsError(f"{folder / METADATA_FILE}: {err}. {how_to_get_weights()}") from None
    try:
        network, info = ParamUNet.from_pretrained(folder, use_safetensors=True, local_files_only=True,
                                                  low_cpu_mem_usage=False, output_loading_info=True)
    except Exception as err:  # diffusers/safetensors raise OSError, SafetensorError, RuntimeError...
        raise WeightsError(f"could not load the network from {folder} "
                           f"({type(err).__name__}: {err}). {how_to_get_weights()}") from None
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:  # diffusers only warns and leaves missing tensors randomly initialised
        raise WeightsError(f"{folder / TENSORS_FILE} does not match {CONFIG_FILE}: {bad}. {how_to_get_weights()}")
    make_circular(network)
    ranges = [[float(v) for v in r] for r in network.config.param_ranges]
    if ranges != [list(map(float, r)) for r in meta["param_ranges"]]:
        raise WeightsError(f"{folder}: param_ranges in {METADATA_FILE} ({meta['param_ranges']}) and "
                           f"{CONFIG_FILE} ({ranges}) disagree. {how_to_get_weights()}")
    if meta.get("prediction_type", "epsilon") != network.config.prediction_type:
        raise WeightsError(f"{folder}: prediction_type in {METADATA_FILE} and {CONFIG_FILE} disagree. {how_to_get_weights()}")
    try:
        denoiser = denoiser_from_metadata(network, meta)
    except (ValueError, TypeError) as err:
        hint = ("Re-fit it with `explorer calibrate`." if str(err).startswith("gaussian_start") else
                "Re-fit it with `explorer fit-start`." if str(err).startswith("translation_start") else how_to_get_weights())
        raise WeightsError(f"{folder / METADATA_FILE}: {err}. {hint}") from None
    for name, start, command in (("gaussian_start", denoiser.gaussian_start, "calibrate"),
                                 ("translation_start", denoiser.translation_start, "fit-start")):
        prior = None if start is None else getattr(start, "base", start).param_ranges
        if start is not None and (start.resolution != meta["resolution"] or [list(r) for r in prior] != ranges):
            raise WeightsError(f"{folder / METADATA_FILE}: {name} was fitted for another resolution or "
                               f"prior box. Re-fit it with `explorer {command}`.")
    return denoiser.to(device).eval()


_OLD_KEYS = ("mean_head", "mean_schedule")


def _is_old_layout(folder: Path) -> bool:
    try:
        config = json.loads((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False  # from_pretrained reports it
    return isinstance(config, dict) and any(k in config for k in _OLD_KEYS)


def upgrade_weights(folder: str | Path) -> bool:
    """Convert a weights folder of the old layout in place; False if it already is current.

    The old network carried the map-mean model (config ``mean_head``/``mean_schedule``, tensors
    ``mean_coef``/``mean_log_s``). Their values move unchanged to ``explorer.json`` ``mean_level``;
    every other tensor is rewritten bit for bit. The head's schedule must equal ``explorer.json``'s.
    """
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    meta = read_metadata(folder)
    if not _is_old_layout(folder):
        return False
    config = json.loads((folder / CONFIG_FILE).read_text())
    tensors = load_file(folder / TENSORS_FILE)
    if config.get("mean_head"):
        if dict(config.get("mean_schedule") or seed_schedule_spec(1000)) != dict(meta["schedule"]):
            raise WeightsError(f"{folder}: the mean head's schedule {config.get('mean_schedule')} is not the one in "
                               f"{METADATA_FILE} ({meta['schedule']}); cannot convert")
        if not {"mean_coef", "mean_log_s"} <= set(tensors):
            raise WeightsError(f"{folder / TENSORS_FILE} lacks mean_coef/mean_log_s of its mean head")
        meta["mean_level"] = {"model": "quadratic-gaussian",
                              "coef": [float(c) for c in tensors.pop("mean_coef")],
                              "log_s": float(tensors.pop("mean_log_s"))}
    for key in _OLD_KEYS:
        config.pop(key, None)
    parts = {CONFIG_FILE: json.dumps(config, indent=2, sort_keys=True) + "\n",
             METADATA_FILE: json.dumps(meta, indent=2, default=_jsonable) + "\n"}
    save_file(tensors, folder / (TENSORS_FILE + ".part"), metadata={"format": "pt"})
    for name, text in parts.items():
        (folder / (name + ".part")).write_text(text)
    for name in (TENSORS_FILE, CONFIG_FILE, METADATA_FILE):
        os.replace(folder / (name + ".part"), folder / name)
    return True
