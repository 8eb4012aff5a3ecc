"""Load a model for an inference runtime: ONNX Runtime (CPU default), PyTorch or TensorRT.

ONNX and TensorRT need an export of the model. :func:`cached_onnx_export` keeps one
per model fingerprint under the user cache (``$VSIS_CACHE_DIR``, else
``$XDG_CACHE_HOME/vsis``, else ``~/.cache/vsis``), written atomically and verified by
hash on every load, so a model is exported once and not on every ``vsis run`` or node
start.
"""

from __future__ import annotations

import os
from pathlib import Path

from vis_node.perception.cache_slot import cached_slot
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
    salient_fingerprint,
)
from vis_node.perception.salient_model import SalientNanoDet
from vis_node.perception.salient_predictor import SalientTorchPredictor

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
        A verified slot ``<cache>/onnx/<fingerprint[:16]>-b<batch_size>``
        (:mod:`vis_node.perception.cache_slot`); a slot that is damaged or holds other
        weights is rebuilt, with a log line saying why.
    """
    fingerprint = model_fingerprint(network)
    return cached_slot(
        cache_dir() / "onnx" / f"{fingerprint[:16]}-b{batch_size}",
        f"{fingerprint}-b{batch_size}",
        lambda folder: export_onnx(network, folder, batch_size=batch_size),
        read_export,
    )


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
    return cached_slot(
        cache_dir() / "onnx" / f"{fingerprint[:16]}-salient",
        f"{fingerprint}-salient",
        lambda folder: export_salient_onnx(network, folder),
        lambda folder: SalientOnnxPredictor(folder, threads=threads),
    )


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
