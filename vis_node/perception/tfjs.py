"""Reading the weights of a TensorFlow.js graph model without TensorFlow.

A TF.js graph model is a ``model.json`` (``modelTopology``: the GraphDef nodes;
``weightsManifest``: groups of tensors, each group stored in one or more binary shards
listed in ``paths``) plus the shards. Inside a group the shards are one byte stream, the
tensors follow each other in manifest order, and each tensor is stored either in its
``dtype`` or, when it has a ``quantization`` entry, in the quantized dtype:
``float16`` (cast back to float32) or ``uint8``/``uint16`` (affine:
``value = q * scale + min``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vis_node.structures.errors import InputDataError

_STORED_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("bool"),
}
"""Manifest ``dtype`` -> the little-endian NumPy dtype it is stored (and returned) in."""

_QUANTIZED_DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype("<f2"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
}
"""Manifest ``quantization.dtype`` -> the NumPy dtype of the stored values."""


def read_graph_model_json(path: str | Path) -> dict[str, Any]:
    """Parse a TF.js ``model.json`` and check it has a topology and a weights manifest.

    Raises
    ------
    InputDataError
        If the file is missing, is not JSON, or lacks ``modelTopology`` /
        ``weightsManifest``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "no such TF.js model file: give the model's .json path")
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(path, f"not a TF.js model.json ({exc}): re-download it") from exc
    if not isinstance(model, dict) or not {"modelTopology", "weightsManifest"} <= set(model):
        raise InputDataError(
            path,
            "not a TF.js graph model (needs 'modelTopology' and 'weightsManifest'); "
            "layers models and bare GraphDefs are not supported",
        )
    return model


def _decode_tensor(raw: bytes, entry: dict[str, Any], json_path: Path) -> np.ndarray:
    """Decode one manifest entry from its bytes into an array of ``entry['shape']``."""
    shape = tuple(int(s) for s in entry["shape"])
    quantization = entry.get("quantization")
    if quantization is None:
        values = np.frombuffer(raw, dtype=_STORED_DTYPES[entry["dtype"]])
    else:
        stored = np.frombuffer(raw, dtype=_QUANTIZED_DTYPES[quantization["dtype"]])
        if quantization["dtype"] == "float16":
            values = stored.astype(np.float32)
        elif "scale" in quantization and "min" in quantization:
            scale = np.float32(quantization["scale"])
            values = stored.astype(np.float32) * scale + np.float32(quantization["min"])
        else:
            raise InputDataError(
                json_path,
                f"tensor {entry['name']!r}: {quantization['dtype']} quantization without "
                "'scale' and 'min' is not supported",
            )
        values = values.astype(_STORED_DTYPES[entry["dtype"]])
    return values.reshape(shape).copy()


def _stored_nbytes(entry: dict[str, Any], json_path: Path) -> int:
    """Bytes one manifest entry occupies in its shard stream."""
    quantization = entry.get("quantization")
    table, dtype = (
        (_QUANTIZED_DTYPES, quantization["dtype"])
        if quantization
        else (_STORED_DTYPES, entry["dtype"])
    )
    if dtype not in table:
        raise InputDataError(
            json_path,
            f"tensor {entry['name']!r}: {'quantized ' if quantization else ''}dtype {dtype!r} "
            f"is not supported (known: {', '.join(sorted(table))})",
        )
    count = int(np.prod(entry["shape"], dtype=np.int64)) if entry["shape"] else 1
    return count * table[dtype].itemsize


def read_tfjs_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read every tensor of a TF.js graph model's weights manifest.

    Parameters
    ----------
    path:
        The model's ``.json``; the shards named in its manifest are read from the same
        folder.

    Returns
    -------
    dict[str, numpy.ndarray]
        Manifest name -> array in the manifest's ``shape``. Float tensors (quantized or
        not) come back as float32, ``int32`` and ``bool`` graph constants in their own
        dtype.

    Raises
    ------
    InputDataError
        If the json or a shard is missing, a shard is shorter or longer than the
        manifest says (truncated or wrong file), or a dtype is not supported.
    """
    json_path = Path(path)
    model = read_graph_model_json(json_path)
    tensors: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        shard_paths = [json_path.parent / name for name in group["paths"]]
        missing = [str(p) for p in shard_paths if not p.is_file()]
        if missing:
            raise InputDataError(
                json_path,
                f"weight shard(s) {', '.join(missing)} missing: keep them beside the json",
            )
        stream = b"".join(p.read_bytes() for p in shard_paths)
        sizes = [_stored_nbytes(entry, json_path) for entry in group["weights"]]
        if sum(sizes) != len(stream):
            raise InputDataError(
                shard_paths[0],
                f"the manifest expects {sum(sizes)} bytes in {', '.join(group['paths'])} but "
                f"they hold {len(stream)} (truncated or from another model): re-download them",
            )
        offset = 0
        for entry, size in zip(group["weights"], sizes):
            tensors[entry["name"]] = _decode_tensor(
                stream[offset : offset + size], entry, json_path
            )
            offset += size
    return tensors
