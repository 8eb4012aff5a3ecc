"""Load a model for an inference runtime: ONNX Runtime (CPU default), PyTorch or TensorRT.

ONNX and TensorRT need an export of the model. :func:`cached_onnx_export` keeps one
per model fingerprint under the user cache (``$VSIS_CACHE_DIR``, else
``$XDG_CACHE_HOME/vsis``, else ``~/.cache/vsis``), written atomically, so a model is
exported once and not on every ``vsis run`` or node start.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from vis_node.io.errors import InputDataError
from vis_node.perception.checkpoint import load_model, model_name, resolve_model
from vis_node.perception.export_onnx import (
    MANIFEST_FILE,
    OnnxExport,
    export_onnx,
    model_fingerprint,
    read_export,
)
from vis_node.perception.model import S4Net
from vis_node.perception.predictor import Predictor
from vis_node.perception.salient_checkpoint import (
    is_salient_payload,
    read_checkpoint,
    salient_model_from_payload,
)
from vis_node.perception.salient_export import (
    SalientOnnxPredictor,
    export_salient_onnx,
    is_salient_export,
    read_salient_export,
    salient_fingerprint,
)
from vis_node.perception.salient_model import SalientNanoDet
from vis_node.perception.salient_predictor import SalientTorchPredictor

LOG = logging.getLogger(__name__)

RUNTIMES: tuple[str, ...] = ("onnx", "torch", "tensorrt")
"""Runtime names; ``onnx`` (ONNX Runtime) is the default on CPU."""

TENSORRT_PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
"""Precisions :func:`make_predictor` builds without calibration data (INT8 needs
``vsis export --format tensorrt --precision int8 --calib``)."""


def cache_dir() -> Path:
    """Root of VSIS's cache of exports and engines (created on first use)."""
    if os.environ.get("VSIS_CACHE_DIR"):
        return Path(os.environ["VSIS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vsis"


def cached_onnx_export(network: S4Net, *, batch_size: int = 1) -> OnnxExport:
    """The ONNX export of ``network`` from the cache, exporting it on a miss.

    Parameters
    ----------
    network:
        The model; its fingerprint (config and weights) keys the cache entry.
    batch_size:
        Fixed batch size of the dense graph.

    Returns
    -------
    OnnxExport
        A folder ``<cache>/onnx/<fingerprint[:16]>-b<batch_size>``; an entry that is
        unreadable or belongs to other weights is replaced, with a log line.
    """
    fingerprint = model_fingerprint(network)

    def matches(folder: Path) -> bool:
        export = read_export(folder)
        return export.fingerprint == fingerprint and export.batch_size == batch_size

    folder = cached_folder(
        f"{fingerprint[:16]}-b{batch_size}",
        matches,
        lambda staging: export_onnx(network, staging, batch_size=batch_size),
    )
    return read_export(folder)


def cached_folder(
    slot: str, matches: Callable[[Path], bool], write: Callable[[Path], object]
) -> Path:
    """A cache entry ``<cache>/onnx/<slot>``, written by ``write`` on a miss.

    Parameters
    ----------
    slot:
        Folder name of the entry (a fingerprint of what it holds).
    matches:
        Whether an existing entry holds what is asked for; an entry for which it is
        false or raises :class:`InputDataError` is replaced, with a log line.
    write:
        Fills a staging folder, which is then renamed into place atomically.
    """
    root = cache_dir() / "onnx"
    folder = root / slot
    if (folder / MANIFEST_FILE).is_file():
        try:
            if matches(folder):
                return folder
            LOG.warning("replacing cached ONNX export %s: it belongs to other weights", folder)
        except InputDataError as exc:
            LOG.warning("replacing unreadable cached ONNX export %s (%s)", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    LOG.info("exporting the model to ONNX in %s (once per model)", folder)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    try:
        write(staging)
        try:
            staging.rename(folder)
        except OSError:  # another process finished the same export first
            if not (folder / MANIFEST_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def make_predictor(
    model: str | Path,
    runtime: str = "onnx",
    *,
    threads: int = 0,
    device: str = "cpu",
    precision: str = "fp16",
) -> Predictor:
    """Load a model for a runtime.

    Parameters
    ----------
    model:
        Shipped model name, ``model.pt`` path or model folder; for ``onnx`` also an
        export folder holding ``export.json`` (``vsis export --format onnx``).
    runtime:
        One of :data:`RUNTIMES`.
    threads:
        CPU threads (0 = the runtime's default); ignored by TensorRT.
    device:
        Torch device of the ``torch`` runtime (``cpu``, ``cuda``, ``cuda:1``).
    precision:
        TensorRT engine precision, one of :data:`TENSORRT_PRECISIONS`.

    Raises
    ------
    InputDataError
        Missing or unreadable model (the message lists the shipped models).
    ValueError
        Unknown runtime or precision.
    vis_node.perception.tensorrt.TensorRTUnavailableError
        ``tensorrt`` without TensorRT or without a CUDA GPU (the message says how to
        get them).
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime={runtime!r}: choose one of {RUNTIMES}")
    from vis_node.perception.onnx_runtime import OnnxPredictor

    if runtime == "onnx" and (Path(model) / MANIFEST_FILE).is_file():
        if is_salient_export(Path(model)):
            return SalientOnnxPredictor(Path(model), threads=threads)
        return OnnxPredictor(Path(model), threads=threads)
    path, payload = read_checkpoint(model)
    if is_salient_payload(payload):
        return _salient_predictor(salient_model_from_payload(path, payload)[0], runtime,
                                  threads=threads, device=device)
    network, _ = load_model(model, device="cpu")
    if runtime == "torch":
        import torch

        from vis_node.perception.predictor import TorchPredictor

        if threads:
            torch.set_num_threads(threads)
        return TorchPredictor(network, device=device)
    if runtime == "onnx":
        return OnnxPredictor(cached_onnx_export(network), threads=threads)
    return _tensorrt_predictor(network, model, precision)


def _salient_predictor(
    network: SalientNanoDet, runtime: str, *, threads: int, device: str
) -> Predictor:
    """The salient NanoDet model on ONNX Runtime (exported once, cached) or PyTorch."""
    if runtime == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        return SalientTorchPredictor(network, device=device)
    if runtime == "tensorrt":
        raise ValueError(
            "the salient NanoDet model runs on --runtime onnx or torch; TensorRT engines "
            "are built for the S4Net models only"
        )
    fingerprint = salient_fingerprint(network)
    folder = cached_folder(
        f"{fingerprint[:16]}-salient",
        lambda folder: read_salient_export(folder)["fingerprint"] == fingerprint,
        lambda staging: export_salient_onnx(network, staging),
    )
    return SalientOnnxPredictor(folder, threads=threads)


def _tensorrt_predictor(network: S4Net, model: str | Path, precision: str) -> Predictor:
    """TensorRT engines of ``network`` from the cache (built on a miss)."""
    from vis_node.perception.tensorrt import TensorRT10Backend, TensorRTPredictor, build_engines

    if precision not in TENSORRT_PRECISIONS:
        raise ValueError(
            f"precision={precision!r}: choose one of {TENSORRT_PRECISIONS}; INT8 engines "
            "need calibration frames: build them with `vsis export --format tensorrt "
            "--precision int8 --calib DIR`"
        )
    backend = TensorRT10Backend()
    export = cached_onnx_export(network)
    name = model_name(resolve_model(model))
    dense, instance = build_engines(backend, export, cache_dir() / "engines", name, precision)
    return TensorRTPredictor(export, dense, instance)
