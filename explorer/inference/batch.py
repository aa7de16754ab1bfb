"""Inference on many fields: one row per field in a table, resumable, on Dask distributed.

    explorer infer assets/valid/Maps_Mcdm_PM_LH_z=0.00.npy --select one-per-sim --out runs/valid50
    explorer infer fields/ --out runs/mine --workers 2
    explorer infer a.npy b.fits c.npz --out runs/three --scheduler tcp://10.0.0.5:8786

What is a field (:func:`collect`):

* a field file (.npy, .npz, .fits; as for one field), or several on the command line;
* a folder: its field files, sorted by name (truths from an ``examples.json`` beside them, the
  app's examples format, when there is one), or, when it holds a CMD set (``Maps_*.npy`` +
  ``params_*.txt``), that set's maps;
* a CMD maps file (``Maps_{field}_{suite}_{set}_z=0.00.npy``, its params file beside it gives the
  truths), with ``--select``: ``all``, ``one-per-sim`` (one map per simulation, the maps
  `explorer calibrate` evaluates), a slice ``A:B[:STEP]`` or a list ``i,j,k`` of map indices.

What comes out, in ``--out DIR``:

* ``results.csv``: one row per field: id, source, map index, truth, ``status`` ("ok" or "error")
  and ``error``, seconds, then mean, σ and the 68 % interval of Ωₘ and σ₈ for each estimator
  (``vlb_``: the diffusion likelihood as ``explorer infer`` computes it; ``pk_``: the P(k)
  baseline; ``cnn_``: the CNN estimator, when the weights carry one), Δχ² at the truth, the
  typicality z and p and the notes. A row is appended (and flushed) as each field finishes.
* ``fields/ID.json``: the whole result of each field, the JSON ``explorer infer --json`` writes.

Running again with the same ``--out`` skips the fields whose row says "ok" and retries the failed
ones (the table is rewritten once, compacted, at the start and at the end). A bad field (unreadable,
NaN, wrong size) is reported in its row and never stops the batch.

Where it runs: ``--workers 0`` in this process, one field after another; otherwise on Dask
distributed, a local cluster of ``--workers`` processes by default (one torch thread each), or the
cluster at ``--scheduler ADDRESS``. The workers only compute: this process reads the fields, sends
each (a few hundred kB) with its options, and writes every file. A worker needs the package and
the weights folder at the same path (a shared file system or the same install). Each worker loads
the model once. Dask moves the task and its result between processes with pickle, as it always
does: connect only to a scheduler you trust. Results are the same as sequential ones: each field's
noise draws come from its own values (:func:`.vlb.field_seed`), not from the order or the worker.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .defaults import PARAM_NAMES

FIELD_SUFFIXES = (".npy", ".npz", ".fits", ".fit", ".fits.gz")
RESULTS = "results.csv"
ESTIMATORS = ("vlb", "pk", "cnn")
STATS = ("mean", "std", "lo68", "hi68")
COLUMNS = (["id", "source", "map_index", "truth_omega_m", "truth_sigma_8", "status", "error", "seconds"]
           + [f"{e}_{p}_{s}" for e in ESTIMATORS for p in PARAM_NAMES for s in STATS]
           + ["vlb_delta_chi2_truth", "vlb_typicality_z", "vlb_typicality_p", "notes"])


@dataclass(frozen=True)
class FieldSpec:
    """One field of a batch: where it is read from, and its truth if known."""

    id: str                          # unique in the batch; names fields/ID.json
    source: str                      # file path
    map_index: int | None = None     # map of a CMD maps file, else None
    truth: tuple | None = None       # (Ωₘ, σ₈) from a CMD params file


def _is_field_file(p: Path) -> bool:
    return p.is_file() and any(p.name.lower().endswith(s) for s in FIELD_SUFFIXES)


def _selection(select: str, cmd) -> np.ndarray:
    from .calibrate import one_map_per_simulation

    n = cmd.n_maps
    if select == "all":
        return np.arange(n)
    if select == "one-per-sim":
        return one_map_per_simulation(np.arange(cmd.n_sims), 1)  # `explorer calibrate`'s evaluation maps
    if re.fullmatch(r"-?\d*:-?\d*(:-?\d+)?", select):
        parts = [int(v) if v else None for v in select.split(":")]
        idx = np.arange(n)[slice(*parts)]
    elif re.fullmatch(r"\d+(,\d+)*", select):
        idx = np.array([int(v) for v in select.split(",")])
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise ValueError(f"--select: map index {bad[0]} out of range [0, {n})")
    else:
        raise ValueError(f"--select {select!r}: use all, one-per-sim, a slice A:B[:STEP] or a list i,j,k")
    if idx.size == 0:
        raise ValueError(f"--select {select!r} selects no map of {n}")
    return idx


def _cmd_specs(cmd, select: str) -> list[FieldSpec]:
    from explorer.data import MAPS_PER_SIM

    stem = cmd.maps_path.stem
    return [FieldSpec(f"{stem}-{i:05d}", str(cmd.maps_path), int(i), tuple(float(v) for v in cmd.theta[i // MAPS_PER_SIM]))
            for i in _selection(select, cmd)]


def _folder_truths(folder: Path) -> dict:
    """{file name: (Ωₘ, σ₈)} from the folder's ``examples.json`` (the app's examples format), if any."""
    index = folder / "examples.json"
    if not index.is_file():
        return {}
    try:
        entries = json.loads(index.read_text())
        return {str(e["file"]): (float(e["omega_m"]), float(e["sigma_8"])) for e in entries}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{index}: not a list of {{file, omega_m, sigma_8}} entries ({err})") from None


def collect(paths, select: str | None = None) -> list[FieldSpec]:
    """The fields named by ``paths`` (files, folders, CMD maps files; module docstring), in order.

    Raises FileNotFoundError for a path that does not exist and ValueError for a folder without
    fields, a CMD file without its params file, a bad ``select`` or ``select`` without a CMD set.
    """
    from explorer.data import find_cmd, load_cmd, parse_maps_filename

    specs, used_select = [], False
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"no such file or folder: {raw}")
        cmd = None
        if p.is_dir() and any(p.glob("Maps_*.npy")):
            cmd = load_cmd(*find_cmd(p))
        elif p.is_file() and parse_maps_filename(p.name):
            info = parse_maps_filename(p.name)
            try:
                found = find_cmd(p.parent, field=info["field"], suite=info["suite"], set_name=info["set_name"],
                                 redshift=info["redshift"])
            except FileNotFoundError as err:
                raise ValueError(f"{raw} looks like a CMD maps file but its params file is missing ({err})") from None
            cmd = load_cmd(p, found.params)
        if cmd is not None:
            specs += _cmd_specs(cmd, select or "all")
            used_select = True
        elif p.is_dir():
            files = sorted(f for f in p.iterdir() if _is_field_file(f))
            if not files:
                raise ValueError(f"{raw}: no field files ({', '.join(FIELD_SUFFIXES)}) and no CMD set in this folder")
            truths = _folder_truths(p)
            specs += [FieldSpec(f.name, str(f), None, truths.get(f.name)) for f in files]
        else:
            specs.append(FieldSpec(p.name, str(p)))
    if select is not None and not used_select:
        raise ValueError("--select applies to a CMD maps file or a folder holding a CMD set; none was given")
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):  # same file name in two folders: fall back to the whole paths
        specs = [FieldSpec(re.sub(r"[^\w.=-]+", "_", s.source.strip("/")) + ("" if s.map_index is None else
                                                                            f"-{s.map_index:05d}"),
                           s.source, s.map_index, s.truth) for s in specs]
    return specs


def read_spec(spec: FieldSpec) -> np.ndarray:
    """The field of a spec: a file read with :func:`explorer.data.read_field`, or one map of a CMD file."""
    from explorer.data import check_map, read_field

    if spec.map_index is None:
        return read_field(spec.source)
    maps = np.load(spec.source, mmap_mode="r", allow_pickle=False)
    return check_map(np.array(maps[spec.map_index]), f"{spec.source}[{spec.map_index}]")


# ---- one field, on any process -----------------------------------------------------------------

_MODELS: dict = {}


def likelihood_folder(weights, network: str | None = None) -> Path:
    """The folder of the network the likelihood uses: ``weights`` itself, or its sub-folder
    ``network`` (e.g. "small": a smaller network for the same maps, calibrated on its own)."""
    if network is None:
        return Path(weights)
    from explorer.model.sampling import network_folder

    folder = network_folder(weights, network)
    if folder is None:
        hint = " (--fast uses the sub-folder small, as the shipped weights have it)" if network == "small" else ""
        raise ValueError(f"network must name a sub-folder of {weights} holding a network, got {network!r}{hint}")
    return folder


def _models(weights: str, device: str, network: str | None = None):
    """(diffusion model, P(k) baseline or None, CNN or None), loaded once per process."""
    key = (weights, device, network)
    if key not in _MODELS:
        from explorer.model import load_model

        from .cnn import CnnEstimator, find_cnn
        from .pk_baseline import FILENAME, PkBaseline

        loaded = load_model(likelihood_folder(weights, network), device=device)
        pk_file = Path(weights) / FILENAME
        baseline = PkBaseline.load(pk_file) if pk_file.is_file() else None
        cnn_dir = find_cnn(weights)
        cnn = CnnEstimator.load(cnn_dir, device=loaded.device) if cnn_dir else None
        _MODELS.clear()
        _MODELS[key] = (loaded, baseline, cnn)
    return _MODELS[key]


_FAST_MODELS: dict = {}


def window_network(weights, options: dict) -> str | None:
    """The sub-network whose fast preset places the fine window (``window_from`` in :func:`analyse`):
    "small" where ``weights`` carry one calibrated for the fast preset's terms and ``options`` are
    the full network's default likelihood (no --network, --fast or --one-stage, the default terms
    and grids); else None (the coarse-to-fine scan)."""
    from .defaults import DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_TERMS, FAST_NETWORK
    from .grid import calibrated_for_fast_preset

    if (options.get("one_stage") or options.get("network") or options.get("terms") != DEFAULT_TERMS
            or int(options.get("n_noise", DEFAULT_N_NOISE)) != DEFAULT_N_NOISE
            or list(options.get("coarse", DEFAULT_COARSE)) != list(DEFAULT_COARSE)
            or list(options.get("fine", DEFAULT_FINE)) != list(DEFAULT_FINE)):
        return None
    meta_file = Path(weights) / FAST_NETWORK / "explorer.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return None
    return FAST_NETWORK if calibrated_for_fast_preset(meta) else None


def _fast_model(weights: str, device: str, network: str):
    """The window's network, loaded once per process (beside :func:`_models`' own)."""
    key = (weights, device, network)
    if key not in _FAST_MODELS:
        from explorer.model import load_model

        _FAST_MODELS.clear()
        _FAST_MODELS[key] = load_model(likelihood_folder(weights, network), device=device)
    return _FAST_MODELS[key]


def default_options(weights, **overrides) -> dict:
    """The options of :func:`analyse` that ``explorer infer`` uses by default, for ``weights``."""
    from .defaults import DEFAULT_COARSE, DEFAULT_FINE, DEFAULT_N_NOISE, DEFAULT_TERMS

    return {"weights": str(weights), "network": None, "device": "cpu", "kind": "auto", "terms": DEFAULT_TERMS,
            "n_noise": DEFAULT_N_NOISE, "coarse": list(DEFAULT_COARSE), "fine": list(DEFAULT_FINE), "seed": None,
            "calibrated": True, "per_timestep": False, "baseline": True, "cnn": True, **overrides}


def analyse(field, options: dict, truth=None, models=None) -> dict:
    """Everything ``explorer infer`` computes for one field, as the JSON document it writes.

    ``options``: weights, device, kind, terms, n_noise, coarse, fine, seed (or noise_replicate r:
    the seed :func:`.vlb.field_seed` + r, as ``bench/bench_coverage.py``), calibrated,
    per_timestep, baseline (bool), cnn (bool), window_from (a sub-network whose fast preset places
    the fine window, :func:`window_network`; None: the coarse-to-fine scan). ``models``: (model, baseline, cnn) to use instead of
    loading them. Returns {"kind", "weights", "network", "posterior", "pk_baseline", "cnn"} with the
    :class:`Posterior` objects themselves under "_vlb" and "_pk" (dropped before JSON).
    """
    from explorer.data import prepare_field

    from .grid import check_truth, infer
    from .vlb import field_seed

    loaded, baseline, cnn = models or _models(options["weights"], options.get("device", "cpu"), options.get("network"))
    truth = check_truth(truth, loaded.param_ranges)
    prepared = prepare_field(field, loaded.resolution, options.get("kind", "auto"))
    seed = options.get("seed")
    if seed is None and options.get("noise_replicate"):  # the field's own draws, replicate r
        seed = (field_seed(prepared.log10) + int(options["noise_replicate"])) % 2 ** 63
    window, first = None, options.get("window_from")
    if first:  # the fast preset of that network first: its calibrated 3σ box is the fine window
        from .defaults import FAST_COARSE, FAST_FINE, FAST_TERMS
        from .grid import window_from

        fast = infer(_fast_model(options["weights"], options.get("device", "cpu"), first), prepared,
                     terms=FAST_TERMS, coarse=FAST_COARSE, fine=FAST_FINE, seed=seed, truth=truth)
        window = window_from(fast)
    post = infer(loaded, prepared, terms=options["terms"], n_noise=options["n_noise"],
                 coarse=tuple(options["coarse"]), fine=tuple(options["fine"]), seed=seed,
                 calibrated=options.get("calibrated", True), truth=truth, window=window,
                 per_timestep=options.get("per_timestep", False), progress=options.get("progress"))
    if window is not None:
        post.seconds += fast.seconds  # the whole likelihood's time
        post.settings["window_from"] = {"network": first, "terms": FAST_TERMS, "coarse": list(FAST_COARSE),
                                        "fine": list(FAST_FINE), "n_evaluations": fast.n_evaluations}
    pk_post = baseline.posterior(prepared.log10, truth=truth) if baseline is not None and options.get("baseline", True) else None
    cnn_est = None
    if cnn is not None and options.get("cnn", True):
        cnn_field = prepare_field(field, cnn.resolution, options.get("kind", "auto")).log10
        cnn_est = cnn.estimate(cnn_field)
    return {"kind": prepared.kind, "weights": str(options["weights"]), "network": options.get("network") or "full",
            "posterior": post.to_dict(),
            "pk_baseline": pk_post.to_dict() if pk_post is not None else None, "cnn": cnn_est,
            "_vlb": post, "_pk": pk_post}


def row_of(spec: FieldSpec, doc: dict | None, seconds: float, error: str | None = None) -> dict:
    """The table row of one field (``doc`` from :func:`analyse`, or None with ``error``)."""
    row = {c: "" for c in COLUMNS}
    row.update(id=spec.id, source=spec.source, map_index="" if spec.map_index is None else spec.map_index,
               status="error" if error else "ok", error=error or "", seconds=round(seconds, 2))
    if spec.truth is not None:
        row["truth_omega_m"], row["truth_sigma_8"] = spec.truth
    if doc is None:
        return row
    ests = {"vlb": doc["posterior"]["estimates"],
            "pk": (doc.get("pk_baseline") or {}).get("estimates"), "cnn": doc.get("cnn")}
    for e, est in ests.items():
        for p in PARAM_NAMES:
            for s in STATS:
                if est:
                    row[f"{e}_{p}_{s}"] = round(float(est[p][s]), 6)
    post = doc["_vlb"]
    if post.truth is not None:
        row["vlb_delta_chi2_truth"] = round(post.delta_chi2_truth(), 3)
    row["vlb_typicality_z"] = post.settings.get("typicality_z", "")
    row["vlb_typicality_p"] = post.settings.get("typicality_p", "")
    row["notes"] = " | ".join(post.notes)
    return row


def run_one(spec: FieldSpec, field, options: dict) -> tuple[dict, dict | None]:
    """(row, JSON document or None) of one field; never raises for a bad field (the row says why).

    ``field``: the array, or an exception raised while reading it."""
    import torch

    threads = options.get("threads")
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        if isinstance(field, BaseException):
            raise field
        doc = analyse(field, options, truth=spec.truth)
    except (ValueError, OSError) as err:
        return row_of(spec, None, time.perf_counter() - t0, f"{type(err).__name__}: {err}"), None
    row = row_of(spec, doc, time.perf_counter() - t0)
    doc = {"field": spec.source if spec.map_index is None else f"{spec.source}[{spec.map_index}]",
           **{k: v for k, v in doc.items() if not k.startswith("_")}}
    return row, doc


# ---- the table ---------------------------------------------------------------------------------

def read_table(path: Path) -> dict[str, dict]:
    """Rows of a results table by id (the last row of an id wins); {} if there is none."""
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames or "status" not in reader.fieldnames:
            raise ValueError(f"{path} is not a results table of explorer infer (no id/status columns); "
                             "choose another --out")
        return {row["id"]: row for row in reader}


def _write_table(path: Path, rows) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


class Table:
    """``results.csv`` in ``out``: resumed from what is there, appended one flushed row at a time."""

    def __init__(self, out: Path):
        self.path = out / RESULTS
        self.rows = read_table(self.path)  # refuses a foreign file before anything is written
        (out / "fields").mkdir(parents=True, exist_ok=True)
        _write_table(self.path, self.rows.values())  # compacted: one row per id
        self._f = self.path.open("a", newline="")
        self._w = csv.DictWriter(self._f, fieldnames=COLUMNS, extrasaction="ignore")

    def done(self, spec: FieldSpec, out: Path) -> bool:
        row = self.rows.get(spec.id)
        return row is not None and row["status"] == "ok" and (out / "fields" / f"{spec.id}.json").is_file()

    def add(self, row: dict) -> None:
        self.rows[row["id"]] = row
        self._w.writerow(row)
        self._f.flush()

    def close(self, order) -> None:
        self._f.close()
        known = [self.rows[i] for i in order if i in self.rows]
        others = [r for i, r in self.rows.items() if i not in set(order)]
        _write_table(self.path, known + others)


# ---- the batch -----------------------------------------------------------------------------------

def _read_or_error(spec: FieldSpec):
    try:
        return read_spec(spec)
    except (ValueError, OSError) as err:
        return err


def run_batch(specs: list[FieldSpec], out: str | Path, options: dict, *, workers: int = 2,
              scheduler: str | None = None, progress: bool = True, log=None) -> dict:
    """Infer every field of ``specs``; write ``out/results.csv`` and ``out/fields/*.json``.

    ``workers=0`` and no ``scheduler``: in this process. Otherwise Dask: the cluster at
    ``scheduler``, else a local cluster of ``workers`` single-threaded processes. Returns a summary
    {"fields", "skipped", "ok", "failed", "seconds", "seconds_per_field", "table"}.
    """
    out = Path(out)
    table = Table(out)
    todo = [s for s in specs if not table.done(s, out)]
    skipped = len(specs) - len(todo)
    counts = {"ok": 0, "failed": 0}
    per_field = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), initial=skipped, desc="fields", unit="field", file=sys.stderr)
    t0 = time.perf_counter()

    def finish(row, doc):
        if doc is not None:
            p = out / "fields" / f"{row['id']}.json"
            tmp = p.with_name(p.name + ".part")
            tmp.write_text(json.dumps(doc) + "\n")
            os.replace(tmp, p)
        table.add(row)
        counts["ok" if row["status"] == "ok" else "failed"] += 1
        per_field.append(float(row["seconds"]))
        if bar is not None:
            bar.set_postfix(ok=counts["ok"], failed=counts["failed"], s_per_field=f"{np.mean(per_field):.1f}")
            bar.update(1)
        if log is not None:
            log(row)

    try:
        if workers == 0 and scheduler is None:
            opts = {**options, "threads": None}
            for spec in todo:
                finish(*run_one(spec, _read_or_error(spec), opts))
        elif todo:
            _run_dask(todo, options, workers, scheduler, finish)
    finally:
        if bar is not None:
            bar.close()
        table.close([s.id for s in specs])
    seconds = time.perf_counter() - t0
    return {"fields": len(specs), "skipped": skipped, **counts, "seconds": round(seconds, 2),
            "seconds_per_field": round(float(np.mean(per_field)), 2) if per_field else None,
            "table": str(table.path)}


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None = None):
    """(client, torch threads per task): the cluster at ``scheduler``, else a local cluster of
    ``workers`` single-threaded processes, closed on exit. Threads is None on a given cluster (its
    workers keep their own setting; Dask's nannies start them with OMP_NUM_THREADS=1)."""
    import logging

    from dask.distributed import Client, LocalCluster

    if scheduler:
        client, cluster, threads = Client(scheduler), None, None
    else:
        if workers < 1:
            raise ValueError(f"a local Dask cluster needs workers >= 1, got {workers}")
        import dask

        # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
        # threshold: every large torch buffer was then mmap'd and unmapped again, and a field took
        # ~55 s of a worker (half of it system time) against ~28 s single-threaded in this process.
        # Large thresholds keep the buffers in the heap (measured: 4 fields 123 s -> 64 s, sys 104 -> 4 s).
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 2 ** 30,
                              "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 2 ** 25}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        client, threads = Client(cluster), 1
    try:
        yield client, threads
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dask_map(client, fn, items, name: str = "task"):
    """Run ``fn(*item)`` for each item of ``items`` on the cluster; yield ``(index, result, error)`` as
    tasks finish (error: the exception, result None). At most twice the cluster's threads are in
    flight, so the items not yet sent wait here (and are made lazily, e.g. read from disk)."""
    from dask.distributed import as_completed

    window = 2 * max(1, sum(client.nthreads().values()))
    pending = enumerate(items)
    futures, index = as_completed(), {}

    def submit_next() -> None:
        nxt = next(pending, None)
        if nxt is not None:
            fut = client.submit(fn, *nxt[1], pure=False, key=f"{name}-{nxt[0]}-{time.monotonic_ns()}")
            index[fut.key] = nxt[0]
            futures.add(fut)

    for _ in range(window):
        submit_next()
    for fut in futures:
        try:
            yield index.pop(fut.key), fut.result(), None
        except Exception as err:  # the task raised, or its worker died
            yield index.pop(fut.key, -1), None, err
        submit_next()


def _run_dask(todo, options, workers, scheduler, finish) -> None:
    with dask_client(workers, scheduler) as (client, threads):
        opts = {**options, "threads": threads, "progress": None}
        items = ((spec, _read_or_error(spec), opts) for spec in todo)
        for i, result, err in dask_map(client, run_one, items, name="infer"):
            if err is not None:  # a failure outside run_one's net (e.g. the worker died)
                result = row_of(todo[i], None, 0.0, f"{type(err).__name__}: {err}"), None
            finish(*result)


# ---- raw posteriors for `explorer calibrate` ---------------------------------------------------------

def _posterior_task(field, truth, kw: dict, weights: str, threads):
    """The ``infer`` posterior of one field as a dict (on a worker)."""
    import torch

    from .grid import infer

    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    loaded = _models(weights, "cpu")[0]
    return infer(loaded, field, truth=truth, **kw).to_dict()


def posteriors(weights, fields, truths, *, workers: int = 2, scheduler: str | None = None, show: bool = True,
               desc: str = "fields", **kw) -> list:
    """:func:`.grid.infer` of every field (``fields: (N, r, r)`` log10 at the model resolution, with
    ``truths``; ``kw`` as for ``infer``) on Dask, in order: what `explorer calibrate --workers N`
    computes. A failed field raises (calibration needs them all)."""
    from tqdm.auto import tqdm

    from .posterior import Posterior

    out = [None] * len(fields)
    kw = {"kind": "log10", **kw, "progress": None}
    with dask_client(workers, scheduler) as (client, threads):
        items = ((f, tuple(t), kw, str(weights), threads) for f, t in zip(fields, truths))
        with tqdm(total=len(fields), desc=desc, unit="field", disable=not show) as bar:
            for i, result, err in dask_map(client, _posterior_task, items, name="posterior"):
                if err is not None:
                    raise RuntimeError(f"{desc}: field {i} failed on the cluster: {type(err).__name__}: {err}") from err
                out[i] = Posterior.from_dict(result)
                bar.update(1)
    return out
