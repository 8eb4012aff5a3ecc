"""Load a model for an inference runtime: ONNX Runtime (CPU default), PyTorch or TensorRT.

Devices: ``cpu``, ``cuda`` or ``cuda:N`` (``auto``: a GPU for ``tensorrt``, the CPU
otherwise). ``onnx`` on a GPU uses ONNX Runtime's CUDA provider, ``tensorrt`` its
TensorRT provider (:mod:`vis_node.perception.tensorrt`), ``torch`` the torch device.
A GPU request this machine cannot serve (no CUDA, a bad index, a CPU-only ONNX
Runtime) falls back to the CPU, or from TensorRT to CUDA, with a warning saying why.

ONNX and TensorRT need an export of the model. :func:`cached_onnx_export` keeps one
per model fingerprint under the user cache (``$VSIS_CACHE_DIR``, else
``$XDG_CACHE_HOME/vsis``, else ``~/.cache/vsis``), written atomically and verified by
hash on every load, so a model is exported once and not on every ``vsis run`` or node
start.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vis_node.perception.cache_slot import cached_slot
from vis_node.perception.checkpoint import (
    model_from_payload,
    model_name,
    read_checkpoint,
    resolve_model,
)
from vis_node.perception.export_onnx import (
    MANIFEST_FILE,
    OnnxExport,
    export_onnx,
    model_fingerprint,
    read_export,
)
from vis_node.perception.device import parse_device, resolve_device
from vis_node.perception.model import S4Net
from vis_node.perception.onnx_runtime import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    TENSORRT_PROVIDER,
    ProviderSpec,
)
from vis_node.perception.predictor import Predictor
from vis_node.perception.salient_checkpoint import is_salient_payload, salient_model_from_payload
from vis_node.perception.salient_config import SalientConfig, SalientOverrides
from vis_node.perception.salient_export import (
    SALIENT_EXPORT_FORMAT,
    SalientOnnxPredictor,
    export_salient_onnx,
    is_salient_export,
    salient_fingerprint,
)
from vis_node.perception.salient_model import SalientNanoDet
from vis_node.perception.salient_predictor import SalientPredictor, SalientTorchPredictor
from vis_node.registry import RUNTIMES

LOG = logging.getLogger(__name__)

TENSORRT_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
"""TensorRT precisions; INT8 needs a calibration table made once by
``vsis export --format tensorrt --precision int8 --calib``."""

AUTO_DEVICE = "auto"
"""Device choice meaning ``cuda`` for the ``tensorrt`` runtime and ``cpu`` otherwise."""


def runtime_device(runtime: str, device: str) -> str:
    """The device a runtime runs on: ``cpu`` or ``cuda:N`` (see the module docstring).

    Raises
    ------
    ValueError
        A malformed device string.
    """
    if device == AUTO_DEVICE:
        device = "cuda" if runtime == "tensorrt" else "cpu"
    if runtime == "tensorrt" and parse_device(device)[0] == "cpu":
        LOG.warning("runtime tensorrt with device cpu: TensorRT needs a GPU; running ONNX "
                    "Runtime on the CPU instead")
        return "cpu"
    return resolve_device(device)


def onnx_providers(device: str, available: list[str]) -> list[ProviderSpec]:
    """ONNX Runtime providers for a resolved device (``cpu`` or ``cuda:N``).

    Parameters
    ----------
    device:
        Resolved device (:func:`runtime_device`).
    available:
        ``onnxruntime.get_available_providers()``.
    """
    if device == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in available:
        LOG.warning(
            "device %s requested but this ONNX Runtime has no CUDA provider (it offers %s; "
            "install onnxruntime-gpu with `pip install 'vis_node[tensorrt]'`): running on "
            "the CPU", device, available,
        )
        return [CPU_PROVIDER]
    return [(CUDA_PROVIDER, {"device_id": parse_device(device)[1] or 0}), CPU_PROVIDER]


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


@dataclass(frozen=True)
class RuntimeRequest:
    """What a runtime builder (:data:`vis_node.registry.RUNTIMES`) loads, and how.

    Attributes
    ----------
    model:
        Shipped model name, ``model.pt`` path or model folder; for ``onnx`` also an
        export folder holding ``export.json``.
    device:
        Resolved device, ``cpu`` or ``cuda:N`` (:func:`runtime_device`).
    threads:
        CPU threads (0 = the runtime's default); ignored on a GPU.
    precision:
        TensorRT engine precision, one of :data:`TENSORRT_PRECISIONS`.
    engine_cache:
        Folder of the TensorRT engine slots (``None`` = ``<cache>/engines``).
    """

    model: str | Path
    device: str
    threads: int = 0
    precision: str = "fp16"
    engine_cache: Path | None = None

    def network(self) -> S4Net | SalientNanoDet:
        """The model's network, read from its checkpoint.

        Raises
        ------
        InputDataError
            Missing or unreadable model (the message lists the shipped models).
        """
        path, payload = read_checkpoint(self.model)
        if is_salient_payload(payload):
            return salient_model_from_payload(path, payload)[0]
        return model_from_payload(path, payload)[0]


def make_predictor(
    model: str | Path,
    runtime: str = RUNTIMES.default,
    *,
    threads: int = 0,
    device: str = AUTO_DEVICE,
    precision: str = "fp16",
    engine_cache: Path | None = None,
    overrides: SalientOverrides | None = None,
) -> Predictor:
    """Load a model for a runtime (the builder of ``runtime`` in :data:`RUNTIMES`).

    Parameters
    ----------
    model:
        Shipped model name, ``model.pt`` path or model folder; for ``onnx`` also an
        export folder holding ``export.json`` (``vsis export --format onnx``).
    runtime:
        One of :data:`RUNTIMES`.
    threads:
        CPU threads (0 = the runtime's default); ignored on a GPU.
    device:
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (see :func:`runtime_device`).
    precision:
        TensorRT engine precision, one of :data:`TENSORRT_PRECISIONS`.
    engine_cache:
        Folder of the TensorRT engine slots (default ``<cache>/engines``).
    overrides:
        Settings of a salient model replaced for this predictor (the mask refiner's
        mirrored pass, the saliency threshold; ``None``: the model's own); other models
        ignore them.

    Raises
    ------
    InputDataError
        Missing or unreadable model (the message lists the shipped models).
    ValueError
        Unknown runtime, precision or device; INT8 without a calibration table; an
        override out of its range.
    vis_node.perception.engine_cache.EngineCacheError
        A corrupt cached TensorRT engine (the message says what to do).
    """
    overrides = overrides or SalientOverrides()
    overrides.apply(SalientConfig())  # a bad value fails before the model loads
    build = RUNTIMES.get(runtime)
    if precision not in TENSORRT_PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {TENSORRT_PRECISIONS}")
    request = RuntimeRequest(
        model, runtime_device(runtime, device), threads, precision, engine_cache
    )
    predictor = build(request)
    if isinstance(predictor, SalientPredictor):
        predictor.config = overrides.apply(predictor.config)
    return predictor


def onnx_runtime(request: RuntimeRequest) -> Predictor:
    """ONNX Runtime: an export folder as it is, else the model's cached export."""
    import onnxruntime as ort

    from vis_node.perception.onnx_runtime import OnnxPredictor

    if (Path(request.model) / MANIFEST_FILE).is_file():
        providers = onnx_providers(request.device, ort.get_available_providers())
        if is_salient_export(Path(request.model)):
            return SalientOnnxPredictor(
                Path(request.model), providers=providers, threads=request.threads
            )
        return OnnxPredictor(Path(request.model), providers=providers, threads=request.threads)
    network = request.network()
    if isinstance(network, SalientNanoDet):
        return _salient_onnx_predictor(network, request)
    providers = onnx_providers(request.device, ort.get_available_providers())
    return OnnxPredictor(
        cached_onnx_export(network), providers=providers, threads=request.threads
    )


def torch_runtime(request: RuntimeRequest) -> Predictor:
    """Eager PyTorch on the request's device."""
    import torch

    from vis_node.perception.predictor import TorchPredictor

    network = request.network()
    if request.threads:
        torch.set_num_threads(request.threads)
    if isinstance(network, SalientNanoDet):
        return SalientTorchPredictor(network, device=request.device)
    return TorchPredictor(network, device=request.device)


def tensorrt_runtime(request: RuntimeRequest) -> Predictor:
    """TensorRT engines through ONNX Runtime's TensorRT provider on a CUDA device.

    Without a GPU (device ``cpu``) or without the provider, the model runs on ONNX
    Runtime instead (CUDA provider or CPU), with a warning; the salient NanoDet model
    has no engines and always runs on ONNX Runtime.
    """
    import onnxruntime as ort

    from vis_node.perception.onnx_runtime import OnnxPredictor

    network = request.network()
    if isinstance(network, SalientNanoDet):
        LOG.warning("the salient NanoDet model has no TensorRT engines: using ONNX Runtime")
        return _salient_onnx_predictor(network, request)
    available = ort.get_available_providers()
    if request.device != "cpu":
        if TENSORRT_PROVIDER in available:
            return _tensorrt_predictor(
                network, request.model, request.precision, request.device, request.engine_cache
            )
        LOG.warning(
            "runtime tensorrt requested but this ONNX Runtime has no TensorRT provider (it "
            "offers %s; `pip install 'vis_node[tensorrt]'` on an NVIDIA GPU): using %s",
            available, "its CUDA provider" if CUDA_PROVIDER in available else "the CPU",
        )
    providers = onnx_providers(request.device, available)
    return OnnxPredictor(
        cached_onnx_export(network), providers=providers, threads=request.threads
    )


def _salient_onnx_predictor(network: SalientNanoDet, request: RuntimeRequest) -> Predictor:
    """The salient NanoDet model on ONNX Runtime, exported once and cached."""
    import onnxruntime as ort

    providers = onnx_providers(request.device, ort.get_available_providers())
    fingerprint = salient_fingerprint(network)
    return cached_slot(
        cache_dir() / "onnx" / f"{fingerprint[:16]}-salient",
        f"{fingerprint}-{SALIENT_EXPORT_FORMAT}",
        lambda folder: export_salient_onnx(network, folder),
        lambda folder: SalientOnnxPredictor(
            folder, providers=providers, threads=request.threads
        ),
    )


def _tensorrt_predictor(
    network: S4Net, model: str | Path, precision: str, device: str, engine_cache: Path | None
) -> Predictor:
    """TensorRT engines of ``network`` on CUDA ``device`` from the cache (built on a miss)."""
    from vis_node.perception.tensorrt import TensorRTPredictor, engine_slot

    export = cached_onnx_export(network)
    index = parse_device(device)[1] or 0
    folder, key = engine_slot(
        export,
        engine_cache or cache_dir() / "engines",
        model_name(resolve_model(model)),
        precision,
        index,
    )
    return TensorRTPredictor(export, folder, key, device_index=index)
