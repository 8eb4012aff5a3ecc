"""The TensorRT engine cache: one checked, sealed folder per slot.

One folder per (model name, precision, dense input shape) *slot*::

    <cache>/<model>.<precision>.<shape>/dense/      engines of the dense graph (+ INT8 table)
    <cache>/<model>.<precision>.<shape>/instance/   engines of the instance graph
    <cache>/<model>.<precision>.<shape>/vsis-engines.json

ONNX Runtime writes the engines; ``vsis-engines.json`` records what they were built
for (:class:`EngineKey`: model fingerprint, TensorRT and ONNX Runtime versions, GPU
and compute capability) and the SHA-256 of every file. On load:

* no manifest: build (logged, with the time it took);
* another key (other weights, GPU or TensorRT version): engines deleted and rebuilt,
  with a log line naming what changed;
* a file missing or not matching its checksum, or an unreadable manifest: *corrupt*,
  :class:`EngineCacheError` naming the folder and saying to delete it or pass
  ``--rebuild``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
"""Engine precisions; INT8 applies to the dense graph, whose instance graph is FP16."""

MANIFEST = "vsis-engines.json"
"""File of an engine folder recording its :class:`EngineKey` and file checksums."""

CALIBRATION_TABLE = "calibration.flatbuffers"
"""INT8 calibration table in the dense engine folder (ONNX Runtime's flatbuffers format)."""

ENGINE_SUFFIXES: tuple[str, ...] = (".engine", ".profile", ".timing", ".flatbuffers")
"""Files of an engine folder covered by the manifest checksums."""


class EngineCacheError(RuntimeError):
    """A cached engine folder is corrupt; the message names it and says what to do."""


@dataclass(frozen=True)
class EngineKey:
    """Everything the engines of a slot depend on.

    Attributes
    ----------
    model_hash:
        :func:`~vis_node.perception.export_onnx.model_fingerprint` of the network.
    precision:
        One of :data:`PRECISIONS`.
    input_shape:
        Dense graph input shape ``[B, 3, S, S]``.
    tensorrt_version:
        Version of the TensorRT libraries.
    onnxruntime_version:
        Version of ONNX Runtime.
    device_name:
        GPU name, e.g. ``"NVIDIA H100 80GB HBM3"``.
    compute_capability:
        ``"major.minor"``, e.g. ``"9.0"``.
    """

    model_hash: str
    precision: str
    input_shape: tuple[int, ...]
    tensorrt_version: str
    onnxruntime_version: str
    device_name: str
    compute_capability: str

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: choose one of {PRECISIONS}")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``input_shape`` as a list)."""
        values = dataclasses.asdict(self)
        values["input_shape"] = list(self.input_shape)
        return values

    def slot_name(self, model_name: str) -> str:
        """Folder name of this key's cache slot (hash, versions and GPU excluded)."""
        shape = "x".join(str(s) for s in self.input_shape)
        return f"{model_name}.{self.precision}.{shape}"


def _checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every engine-cache file below ``folder``, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix in ENGINE_SUFFIXES
    }


def open_engine_folder(folder: Path, key: EngineKey, *, rebuild: bool = False) -> bool:
    """Check an engine folder against ``key``; returns whether its engines can be reused.

    A folder without manifest, of another key, or with ``rebuild`` is emptied (engine
    files only; the INT8 table is kept unless the model changed) and ``False``
    returned: ONNX Runtime then builds the engines, and :func:`seal_engine_folder`
    records them.

    Raises
    ------
    EngineCacheError
        Unreadable manifest, or a recorded file missing or changed.
    """
    manifest_path = folder / MANIFEST
    if rebuild or not manifest_path.is_file():
        if rebuild:
            LOG.info("rebuilding TensorRT engines in %s (--rebuild)", folder)
        _clear(folder, keep_table=not rebuild)
        return False
    hint = f"delete {folder} or pass --rebuild to build the engines again"
    try:
        manifest = json.loads(manifest_path.read_text())
        recorded = dict(manifest["key"])
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineCacheError(
            f"engine cache {manifest_path} is unreadable ({exc}): {hint}"
        ) from None
    current = key.to_dict()
    changed = sorted(name for name in current if recorded.get(name) != current[name])
    if changed:
        LOG.warning(
            "rebuilding TensorRT engines in %s: they were built for another %s (%s)",
            folder,
            ", ".join(changed),
            ", ".join(f"{name}={recorded.get(name)!r}" for name in changed),
        )
        _clear(folder, keep_table="model_hash" not in changed)
        return False
    found = _checksums(folder)
    bad = sorted(name for name, digest in files.items() if found.get(name) != digest)
    if bad:
        raise EngineCacheError(
            f"engine cache {folder} is corrupt ({', '.join(bad)} missing or changed since "
            f"it was built): {hint}"
        )
    return True


def _clear(folder: Path, *, keep_table: bool) -> None:
    """Delete the engines and manifest of ``folder`` (and the INT8 table unless kept)."""
    for path in folder.rglob("*") if folder.is_dir() else ():
        if not path.is_file() or (keep_table and path.name == CALIBRATION_TABLE):
            continue
        if path.suffix in ENGINE_SUFFIXES or path.name == MANIFEST:
            path.unlink()


def seal_engine_folder(folder: Path, key: EngineKey) -> Path:
    """Record ``key`` and the checksums of the engine files in ``folder``'s manifest."""
    manifest = {"key": key.to_dict(), "files": _checksums(folder)}
    path = folder / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(path)
    return path
