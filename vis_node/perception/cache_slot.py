"""Verified slots of the export cache: what was written is what gets loaded.

A slot is one folder of the cache holding the files of one export (ONNX graphs, a
manifest, anything an exporter writes) plus ``slot.json``, the slot record::

    {"format": "vsis-cache-slot/1", "key": "<what the slot was built for>",
     "files": {"<name>": "<sha256 hex>", ...}}

The record is written last, after every file of the export, and lists the SHA-256
of each. :func:`cached_slot` uses a slot only when its record names the expected key
and every listed file has its recorded hash; a truncated, emptied, replaced or
foreign slot is rebuilt, with one log line that says why. Nothing here knows what
the files are, so any exporter can keep its output in the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from vis_node.structures.errors import InputDataError

LOG = logging.getLogger(__name__)

RECORD_FILE = "slot.json"
"""Name of the slot record inside a slot folder."""

RECORD_FORMAT = "vsis-cache-slot/1"
"""Version tag of the slot record."""

T = TypeVar("T")


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_record(folder: Path, key: str) -> None:
    """Hash every file of ``folder`` into its slot record.

    Parameters
    ----------
    folder:
        A slot folder whose export is complete.
    key:
        What the slot was built for (a model fingerprint and export settings).

    Raises
    ------
    ValueError
        If ``folder`` holds no files (an exporter that wrote nothing).
    """
    files = {
        path.name: file_sha256(path)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != RECORD_FILE
    }
    if not files:
        raise ValueError(f"{folder}: the export wrote no files, so there is nothing to cache")
    record = {"format": RECORD_FORMAT, "key": key, "files": files}
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1))


def slot_problem(folder: Path, key: str) -> str | None:
    """Why the slot ``folder`` cannot be used for ``key``, or ``None`` when it is intact."""
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except FileNotFoundError:
        return f"it has no {RECORD_FILE} (an unfinished or older export)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its {RECORD_FILE} is unreadable ({exc})"
    if (
        not isinstance(record, dict)
        or record.get("format") != RECORD_FORMAT
        or not isinstance(record.get("files"), dict)
        or not record["files"]
    ):
        return f"its {RECORD_FILE} is not a {RECORD_FORMAT} record"
    if record.get("key") != key:
        return f"it holds the export of another model ({record.get('key')!r}, not {key!r})"
    for name, digest in record["files"].items():
        path = folder / str(name)
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its recorded hash (truncated, emptied or replaced)"
    return None


def cached_slot(
    folder: Path, key: str, build: Callable[[Path], object], load: Callable[[Path], T]
) -> T:
    """Load the slot ``folder`` when it is intact, else (re)build it and load that.

    Parameters
    ----------
    folder:
        The slot, ``<cache>/<kind>/<name>``; its parent is created when missing.
    key:
        What the slot must hold; a slot recorded for another key is rebuilt.
    build:
        Writes a complete export into the folder it is given (a fresh staging folder
        beside ``folder``, renamed to ``folder`` once its record is written).
    load:
        Reads an export folder; an :class:`InputDataError` from it on an intact slot
        also makes the slot be rebuilt.

    Returns
    -------
    T
        What ``load`` returns for the verified slot.
    """
    if folder.exists():
        problem = slot_problem(folder, key)
        if problem is None:
            try:
                return load(folder)
            except InputDataError as exc:
                problem = str(exc)
        LOG.warning("rebuilding cached export %s: %s", folder, problem)
        shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    LOG.info("exporting into the cache: %s (once per model)", folder)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        build(staging)
        write_record(staging, key)
        try:
            staging.rename(folder)
        except OSError:  # another process finished the same export first
            if slot_problem(folder, key) is not None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load(folder)
