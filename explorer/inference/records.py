"""Records stored per likelihood setting in a weights folder's ``explorer.json``.

A calibration (temperatures, :mod:`.calibrate`) or a typicality line (:mod:`.typicality`) holds for
one setting of the likelihood only: its ``terms`` (e.g. "vlb:8/k4:0.7,5.5:0.5") and noise draws
``n_noise``. The folder keeps the most recently written record of each kind under its key
("calibration", "typicality") and the records of other settings under ``KEY + OTHER`` (a list), so
that writing the calibration of new terms keeps the old terms calibrated. Plain JSON, no torch.
"""

from __future__ import annotations

from pathlib import Path

OTHER = "_other_terms"


def _records(metadata: dict, key: str) -> list:
    """The current record of ``key`` and the ones kept beside it, in that order (any may be malformed)."""
    meta = metadata or {}
    archive = meta.get(key + OTHER)
    return [meta.get(key)] + (archive if isinstance(archive, list) else [])


def _setting(record) -> tuple[str, int] | None:
    if not isinstance(record, dict) or "terms" not in record:
        return None
    return str(record["terms"]), int(record.get("n_noise", 1))


def for_terms(metadata: dict, key: str, terms: str, n_noise: int) -> dict | None:
    """The record of ``key`` stored for ``terms`` and ``n_noise``, or None."""
    for record in _records(metadata, key):
        if _setting(record) == (str(terms), int(n_noise)):
            return record
    return None


def stored_terms(metadata: dict, key: str) -> list[str]:
    """The term settings that have a record of ``key`` (for messages), the current one first."""
    return [f"{s[0]} (n_noise={s[1]})" for s in map(_setting, _records(metadata, key)) if s is not None]


def with_record(metadata: dict, key: str, record: dict) -> dict:
    """``{key: record, key + OTHER: [...]}``: the keys to set so that ``record`` becomes the current one
    and the current record of another setting moves to the archive (one record per setting; no
    archive key while there is nothing to keep)."""
    setting = _setting(record)
    if setting is None:
        raise ValueError(f"a {key} record needs 'terms' (and 'n_noise'), got keys {sorted(record) if isinstance(record, dict) else record!r}")
    kept = [r for r in _records(metadata, key) if _setting(r) is not None and _setting(r) != setting]
    return {key: record, key + OTHER: kept} if kept or key + OTHER in (metadata or {}) else {key: record}


def store(folder: str | Path, key: str, record: dict) -> None:
    """Write ``record`` as the current record of ``key`` in ``folder/explorer.json`` (:func:`with_record`)."""
    import json

    from explorer.model.weights import METADATA_FILE, update_metadata

    update_metadata(folder, with_record(json.loads((Path(folder) / METADATA_FILE).read_text()), key, record))
