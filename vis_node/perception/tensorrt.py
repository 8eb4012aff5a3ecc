"""TensorRT inference of the exported S4Net graphs through ONNX Runtime's TensorRT provider.

Why ONNX Runtime rather than torch-tensorrt: VSIS already exports the network as two
ONNX graphs and runs them with ONNX Runtime on the CPU. ``onnxruntime-gpu`` runs the
*same* graphs with its TensorRT execution provider (nodes TensorRT cannot take run on
its CUDA provider, so a graph never fails to load for one unsupported operator); the
engine cache, FP16 and INT8 are provider options, and the INT8 calibration table is
computed by ``onnxruntime.quantization`` on any machine, the CPU included. One graph
format and one pre/post-processing path
(:class:`~vis_node.perception.predictor.StagedPredictor`) serve the CPU, CUDA and
TensorRT runtimes and whatever perception model is exported to those two graphs.
torch-tensorrt would compile the eager modules a second way, beside the ONNX graphs.

The engines are cached per slot, checked and sealed by
:mod:`vis_node.perception.engine_cache`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vis_node.perception.engine_cache import (
    CALIBRATION_TABLE,
    EngineCacheError,
    EngineKey,
    open_engine_folder,
    seal_engine_folder,
)
from vis_node.perception.export_onnx import OnnxExport
from vis_node.perception.onnx_runtime import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    TENSORRT_PROVIDER,
    OnnxPredictor,
    ProviderSpec,
)
from vis_node.perception.predictor import preprocess

LOG = logging.getLogger(__name__)

INSTALL_HINT = (
    "ONNX Runtime's TensorRT provider is not available; on an NVIDIA GPU install the "
    "optional extra with `pip install 'vis_node[tensorrt]'` (onnxruntime-gpu and the "
    "TensorRT 10 libraries)"
)


class TensorRTUnavailableError(RuntimeError):
    """ONNX Runtime's TensorRT provider or a CUDA GPU is missing; the message says how
    to get them."""


def tensorrt_version() -> str:
    """Version of the installed TensorRT Python/libraries wheel, or ``"system"``."""
    for name in ("tensorrt", "tensorrt-cu12-libs", "tensorrt-libs"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "system"


def gpu_identity(device_index: int) -> tuple[str, str]:
    """Name and ``"major.minor"`` compute capability of CUDA GPU ``device_index``."""
    import torch

    major, minor = torch.cuda.get_device_capability(device_index)
    return torch.cuda.get_device_name(device_index), f"{major}.{minor}"


class CalibrationBatches:
    """Network-input batches for INT8 calibration (an ONNX Runtime ``CalibrationDataReader``).

    Parameters
    ----------
    images:
        ``uint8[H, W, 3]`` RGB frames (any sizes), e.g. from
        :func:`~vis_node.io.sources.open_source`.
    input_size:
        Network input side ``S``.
    batch_size:
        Images per batch (the dense graph's batch size).
    max_images:
        Most images used; a last incomplete batch is dropped.

    Iterating yields ``float32[batch_size, 3, S, S]`` arrays (RGB in [0, 1], as
    :func:`~vis_node.perception.predictor.preprocess`), reading the frames lazily;
    :meth:`get_next` yields them as ``{"images": batch}`` feeds.
    """

    def __init__(
        self, images: Iterable[np.ndarray], input_size: int, batch_size: int, max_images: int
    ) -> None:
        if batch_size < 1 or max_images < batch_size:
            raise ValueError(
                f"need batch_size >= 1 and max_images >= batch_size, got {batch_size}, {max_images}"
            )
        self.images = images
        self.input_size = input_size
        self.batch_size = batch_size
        self.max_images = max_images
        self._feeds: Iterator[np.ndarray] | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        used = 0
        for image in self.images:
            if used + self.batch_size > self.max_images:
                break
            pending.append(preprocess(image, self.input_size))
            if len(pending) == self.batch_size:
                used += self.batch_size
                yield np.concatenate(pending)
                pending = []

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Next ``{"images": batch}`` feed, or ``None`` when the frames are used up."""
        if self._feeds is None:
            self._feeds = iter(self)
        batch = next(self._feeds, None)
        return None if batch is None else {"images": batch}


def write_calibration_table(
    export: OnnxExport,
    batches: CalibrationBatches,
    folder: Path,
    *,
    providers: Sequence[str] = (CPU_PROVIDER,),
) -> Path:
    """Calibrate the dense graph on ``batches`` (entropy method) and write the table.

    Uses ``onnxruntime.quantization``'s calibrator, which runs on any provider (the
    CPU by default), so a table can be made off the GPU.

    Returns
    -------
    Path
        ``<folder>/calibration.flatbuffers`` (beside it ``calibration.json`` and
        ``calibration.cache``, the same ranges as text).

    Raises
    ------
    ValueError
        If ``batches`` yields no batch.
    """
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization import write_calibration_table as write_table

    folder.mkdir(parents=True, exist_ok=True)
    calibrator = create_calibrator(
        export.dense_path,
        augmented_model_path=folder / "augmented.onnx",
        calibrate_method=CalibrationMethod.Entropy,
        providers=list(providers),
    )
    first = batches.get_next()
    if first is None:
        raise ValueError("no calibration frames: give --calib a folder, video or bag with frames")

    class _Reader:
        def __init__(self) -> None:
            self.pending: dict[str, np.ndarray] | None = first

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed, self.pending = self.pending, batches.get_next()
            return feed

    calibrator.collect_data(_Reader())
    write_table(calibrator.compute_data(), dir=str(folder))
    (folder / "augmented.onnx").unlink(missing_ok=True)
    LOG.info("wrote the INT8 calibration table %s", folder / CALIBRATION_TABLE)
    return folder / CALIBRATION_TABLE


def instance_profile(export: OnnxExport, batch_size: int) -> dict[str, str]:
    """TensorRT optimisation-profile options of the instance graph (dynamic box count).

    The box count ranges from 1 to ``batch_size * num_proposals`` (the most the
    predictor passes); the other axes are the graph's static sizes.
    """
    import onnx

    graph = onnx.load(str(export.instance_path), load_external_data=False).graph
    most = batch_size * export.config.num_proposals
    shapes: dict[str, tuple[list[int], list[int]]] = {}
    for value in graph.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        low, high = list(dims), list(dims)
        low[0] = batch_size if value.name == "seg_features" else 1
        high[0] = batch_size if value.name == "seg_features" else most
        shapes[value.name] = (low, high)

    def spec(which: int) -> str:
        return ",".join(
            f"{name}:{'x'.join(str(d) for d in dims[which])}" for name, dims in shapes.items()
        )

    return {
        "trt_profile_min_shapes": spec(0),
        "trt_profile_opt_shapes": spec(1),
        "trt_profile_max_shapes": spec(1),
    }


def tensorrt_options(
    device_index: int, folder: Path, precision: str, *, int8_table: bool = False
) -> dict[str, Any]:
    """TensorRT provider options of one graph.

    Parameters
    ----------
    device_index:
        CUDA GPU index.
    folder:
        The graph's engine folder (engine and timing caches; the INT8 table).
    precision:
        ``fp32``, ``fp16`` or ``int8`` (INT8 layers fall back to FP16 where faster).
    int8_table:
        Read INT8 ranges from ``folder / CALIBRATION_TABLE`` (dense graph only).
    """
    int8 = precision == "int8" and int8_table
    options: dict[str, Any] = {
        "device_id": device_index,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(folder),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(folder),
        "trt_fp16_enable": precision in ("fp16", "int8"),
        "trt_int8_enable": int8,
    }
    if int8:
        options["trt_int8_calibration_table_name"] = CALIBRATION_TABLE
        options["trt_int8_use_native_calibration_table"] = False
    return options


class TensorRTPredictor(OnnxPredictor):
    """The two exported graphs on ONNX Runtime's TensorRT provider, engines cached.

    Parameters
    ----------
    export:
        The ONNX export (fixed batch size).
    folder:
        Engine folder of the slot (see the module docstring).
    key:
        What the engines depend on.
    device_index:
        CUDA GPU index.
    rebuild:
        Ignore cached engines.
    calibration:
        Frames for the INT8 table, used when ``key.precision == "int8"`` and the folder
        has no table yet.

    Raises
    ------
    EngineCacheError
        A corrupt cached engine (the message says what to do).
    ValueError
        INT8 without a calibration table or frames.
    """

    def __init__(
        self,
        export: OnnxExport,
        folder: Path,
        key: EngineKey,
        *,
        device_index: int = 0,
        rebuild: bool = False,
        calibration: CalibrationBatches | None = None,
    ) -> None:
        if export.batch_size is None:
            raise ValueError("TensorRT engines need an export with a fixed batch size")
        cached = open_engine_folder(folder, key, rebuild=rebuild)
        dense_dir, instance_dir = folder / "dense", folder / "instance"
        dense_dir.mkdir(parents=True, exist_ok=True)
        instance_dir.mkdir(parents=True, exist_ok=True)
        if key.precision == "int8" and not (dense_dir / CALIBRATION_TABLE).is_file():
            if calibration is None:
                raise ValueError(
                    f"INT8 engines need a calibration table in {dense_dir}: build them once "
                    "with `vsis export MODEL --format tensorrt --precision int8 --calib DIR|BAG`"
                )
            write_calibration_table(export, calibration, dense_dir)
        fallback: list[ProviderSpec] = [(CUDA_PROVIDER, {"device_id": device_index}), CPU_PROVIDER]
        dense_options = tensorrt_options(device_index, dense_dir, key.precision, int8_table=True)
        dense: list[ProviderSpec] = [(TENSORRT_PROVIDER, dense_options), *fallback]
        instance_options = tensorrt_options(
            device_index, instance_dir, "fp16" if key.precision == "int8" else key.precision
        )
        instance_options.update(instance_profile(export, export.batch_size))
        instance: list[ProviderSpec] = [(TENSORRT_PROVIDER, instance_options), *fallback]
        if not cached:
            LOG.info(
                "building TensorRT %s engines for %s in %s (first use of this model, "
                "precision and GPU; takes minutes)",
                key.precision, key.device_name, folder,
            )
        started = time.monotonic()
        try:
            super().__init__(export, providers=dense, instance_providers=instance)
            # engines of dynamic-shape graphs are built on the first run
            self(np.zeros((export.config.input_size, export.config.input_size, 3), np.uint8))
        except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
            if "deserialize" in str(exc).lower():
                raise EngineCacheError(
                    f"TensorRT could not load a cached engine in {folder} ({exc}): delete "
                    "the folder or pass --rebuild"
                ) from None
            raise
        if not cached:
            seal_engine_folder(folder, key)
            LOG.info(
                "built TensorRT engines in %.0f s; cached in %s", time.monotonic() - started, folder
            )


def engine_slot(
    export: OnnxExport, cache: Path, model_name: str, precision: str, device_index: int
) -> tuple[Path, EngineKey]:
    """Engine folder and key of a model export on GPU ``device_index``."""
    import onnxruntime as ort

    if export.batch_size is None:
        raise ValueError("TensorRT engines need an export with a fixed batch size")
    name, capability = gpu_identity(device_index)
    size = export.config.input_size
    key = EngineKey(
        model_hash=export.fingerprint,
        precision=precision,
        input_shape=(export.batch_size, 3, size, size),
        tensorrt_version=tensorrt_version(),
        onnxruntime_version=ort.__version__,
        device_name=name,
        compute_capability=capability,
    )
    return cache / key.slot_name(model_name), key


def require_tensorrt(available: Sequence[str]) -> None:
    """Raise :class:`TensorRTUnavailableError` unless the TensorRT provider is ``available``."""
    if TENSORRT_PROVIDER not in available:
        raise TensorRTUnavailableError(
            f"{INSTALL_HINT}; this ONNX Runtime offers {list(available)}"
        )
