"""TensorRT engines for the exported S4Net graphs: build, cache, INT8 calibration, runtime.

Uses the TensorRT 10 Python API (``pip install 'vis_node[tensorrt]'``; TensorRT 11
removed the FP16/INT8 builder flags and implicit INT8 calibration used here). The
builder is reached only through :class:`TensorRTBackend`, the seam tests replace.

Engine cache
------------
One file per (model name, graph, precision, input shape) *slot*::

    <cache>/<model>.<graph>.<precision>.<shape>.engine

holding ``MAGIC``, a 4-byte little-endian header length, a JSON header (the full
:class:`EngineKey` plus the payload's SHA-256 and size) and the serialised engine.
Files are written to a temporary name in the same folder and renamed, so a reader
never sees half a file. On load:

* missing slot: build;
* header of another model hash: *stale*, rebuilt with a log line;
* header of another TensorRT version, GPU or compute capability: *foreign*, rebuilt
  with a log line;
* bad magic, unreadable header or payload checksum mismatch: *corrupt*,
  :class:`EngineCacheError` telling the user to delete the file or pass ``--rebuild``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vis_node.perception.export_onnx import (
    DENSE_OUTPUTS,
    INSTANCE_OUTPUTS,
    OnnxExport,
)
from vis_node.perception.predictor import StagedPredictor, preprocess

LOG = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
"""Engine precisions; INT8 applies to the dense graph, whose instance graph is FP16."""

MAGIC = b"VSISTRT1"
"""First bytes of every cached engine file."""

INSTALL_HINT = (
    "TensorRT is not installed; install the optional extra with "
    "`pip install 'vis_node[tensorrt]'` (TensorRT 10.x, needs an NVIDIA GPU with CUDA)"
)


class TensorRTUnavailableError(RuntimeError):
    """TensorRT or a CUDA GPU is missing; the message says how to get them."""


class EngineCacheError(RuntimeError):
    """A cached engine file is corrupt; the message names it and says what to do."""


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialised engine depends on.

    Attributes
    ----------
    model_hash:
        :func:`~vis_node.perception.export_onnx.model_fingerprint` of the network.
    graph:
        ``"dense"`` or ``"instance"``.
    tensorrt_version:
        ``tensorrt.__version__`` of the builder.
    device_name:
        GPU name, e.g. ``"NVIDIA H100 80GB HBM3"``.
    compute_capability:
        ``"major.minor"``, e.g. ``"9.0"``.
    precision:
        One of :data:`PRECISIONS`.
    input_shape:
        Shape of the graph's main input (``[B, 3, S, S]`` for the dense graph).
    """

    model_hash: str
    graph: str
    tensorrt_version: str
    device_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: choose one of {PRECISIONS}")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``input_shape`` as a list)."""
        values = dataclasses.asdict(self)
        values["input_shape"] = list(self.input_shape)
        return values

    def digest(self) -> str:
        """SHA-256 hex digest of the key's fields."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def slot_name(self, model_name: str) -> str:
        """File name of this key's cache slot (hash, TensorRT version and GPU excluded)."""
        shape = "x".join(str(s) for s in self.input_shape)
        return f"{model_name}.{self.graph}.{self.precision}.{shape}.engine"


def write_engine(path: str | Path, key: EngineKey, engine: bytes) -> Path:
    """Atomically write a serialised engine with its key header.

    Parameters
    ----------
    path:
        Destination file; its folder is created.
    key:
        What the engine was built from.
    engine:
        Serialised TensorRT engine.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps(
        {
            **key.to_dict(),
            "payload_sha256": hashlib.sha256(engine).hexdigest(),
            "payload_bytes": len(engine),
        },
        sort_keys=True,
    ).encode()
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as handle:
        temporary = Path(handle.name)
    try:
        with temporary.open("wb") as stream:
            stream.write(MAGIC + struct.pack("<I", len(header)) + header + engine)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def read_engine(path: str | Path, key: EngineKey) -> bytes | None:
    """Read a cached engine if it matches ``key``.

    Returns
    -------
    bytes or None
        The serialised engine; ``None`` when the file is missing, stale (built from
        another model) or foreign (another TensorRT version or GPU), each logged.

    Raises
    ------
    EngineCacheError
        When the file is corrupt (bad magic, header or checksum).
    """
    path = Path(path)
    if not path.is_file():
        LOG.info("no cached TensorRT engine at %s; building one", path)
        return None
    data = path.read_bytes()
    header = _parse_header(path, data)
    payload = data[len(MAGIC) + 4 + header["_length"] :]
    if len(payload) != header.get("payload_bytes") or (
        hashlib.sha256(payload).hexdigest() != header.get("payload_sha256")
    ):
        raise EngineCacheError(
            f"{path}: corrupt TensorRT engine (payload checksum mismatch); delete the file "
            "or rebuild it with --rebuild"
        )
    stored = {name: header.get(name) for name in key.to_dict()}
    expected = key.to_dict()
    if stored == expected:
        return payload
    if stored["model_hash"] != expected["model_hash"] or stored["graph"] != expected["graph"]:
        LOG.warning("stale TensorRT engine %s (built from another model); rebuilding", path)
    else:
        changed = sorted(name for name in expected if stored[name] != expected[name])
        LOG.warning(
            "foreign TensorRT engine %s (%s differ: %s); rebuilding",
            path,
            ", ".join(changed),
            ", ".join(f"{stored[n]} != {expected[n]}" for n in changed),
        )
    return None


def _parse_header(path: Path, data: bytes) -> dict[str, Any]:
    """The JSON header of an engine file plus its byte length under ``"_length"``."""
    corrupt = (
        f"{path}: corrupt TensorRT engine cache file ({{}}); delete it or rebuild with --rebuild"
    )
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise EngineCacheError(corrupt.format("not a VSIS engine file"))
    (length,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    raw = data[len(MAGIC) + 4 : len(MAGIC) + 4 + length]
    try:
        header = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EngineCacheError(corrupt.format("unreadable header")) from None
    if not isinstance(header, dict):
        raise EngineCacheError(corrupt.format("unreadable header"))
    header["_length"] = length
    return header


class TensorRTBackend(Protocol):
    """What the cache needs from TensorRT (replaced by a fake in tests)."""

    version: str

    def device(self) -> tuple[str, str]:
        """``(GPU name, "major.minor" compute capability)``."""
        ...

    def build(
        self,
        onnx_path: Path,
        precision: str,
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
        calibrator: object | None,
    ) -> bytes:
        """Serialised engine of an ONNX graph.

        ``shapes`` maps dynamic inputs to (min, opt, max) shapes; ``calibrator`` is
        an INT8 calibrator (``precision == "int8"``) or ``None``.
        """
        ...


def load_or_build(
    backend: TensorRTBackend,
    cache_dir: str | Path,
    model_name: str,
    key_fields: dict[str, Any],
    onnx_path: Path,
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
    *,
    calibrator: object | None = None,
    rebuild: bool = False,
) -> tuple[bytes, Path]:
    """A serialised engine from the cache, built and cached when needed.

    Parameters
    ----------
    backend:
        TensorRT access (version, device, builder).
    cache_dir:
        Folder of the engine files.
    model_name:
        Name used in the slot file name (e.g. ``"synth"``).
    key_fields:
        ``model_hash``, ``graph``, ``precision`` and ``input_shape`` of the
        :class:`EngineKey`; the TensorRT version and GPU come from ``backend``.
    onnx_path:
        Graph to build from.
    shapes:
        Dynamic input shapes, see :meth:`TensorRTBackend.build`.
    calibrator:
        INT8 calibrator, or ``None``.
    rebuild:
        Ignore (and replace) any cached file, corrupt ones included.

    Returns
    -------
    engine, path:
        Serialised engine and its cache file.
    """
    device_name, capability = backend.device()
    key = EngineKey(
        tensorrt_version=backend.version,
        device_name=device_name,
        compute_capability=capability,
        **key_fields,
    )
    path = Path(cache_dir) / key.slot_name(model_name)
    engine = None if rebuild else read_engine(path, key)
    if engine is None:
        LOG.info("building TensorRT %s engine for %s (%s)", key.precision, key.graph, path)
        engine = backend.build(onnx_path, key.precision, shapes, calibrator)
        write_engine(path, key, engine)
    return engine, path


def build_engines(
    backend: TensorRTBackend,
    export: OnnxExport,
    cache_dir: str | Path,
    model_name: str,
    precision: str,
    *,
    calibrator: object | None = None,
    rebuild: bool = False,
) -> tuple[tuple[bytes, Path], tuple[bytes, Path]]:
    """Dense and instance engines of a fixed-batch export, cached in ``cache_dir``.

    The dense engine gets ``precision`` (and ``calibrator`` for INT8); the instance
    engine, small and fed with few proposals, is FP16 when ``precision`` is INT8.

    Returns
    -------
    dense, instance:
        ``(serialised engine, cache path)`` each.
    """
    if export.batch_size is None:
        raise ValueError("TensorRT engines need a fixed-batch ONNX export (batch_size=N)")
    if precision == "int8" and calibrator is None:
        raise ValueError("INT8 needs a calibrator (pass --calib DIR|BAG)")
    cfg = export.config
    batch, size = export.batch_size, cfg.input_size
    dense = load_or_build(
        backend,
        cache_dir,
        model_name,
        {
            "model_hash": export.fingerprint,
            "graph": "dense",
            "precision": precision,
            "input_shape": (batch, 3, size, size),
        },
        export.dense_path,
        {},
        calibrator=calibrator,
        rebuild=rebuild,
    )
    most = batch * cfg.num_proposals
    instance = load_or_build(
        backend,
        cache_dir,
        model_name,
        {
            "model_hash": export.fingerprint,
            "graph": "instance",
            "precision": "fp16" if precision == "int8" else precision,
            "input_shape": (batch, cfg.seg_in_channels, size // 8, size // 8),
        },
        export.instance_path,
        {
            "boxes": ((1, 4), (cfg.num_proposals, 4), (most, 4)),
            "image_index": ((1,), (cfg.num_proposals,), (most,)),
        },
        rebuild=rebuild,
    )
    return dense, instance


class CalibrationBatches:
    """Network-input batches for INT8 calibration.

    Parameters
    ----------
    images:
        ``uint8[H, W, 3]`` RGB frames (any sizes), e.g. from
        :func:`~vis_node.io.sources.open_source` or an image folder.
    input_size:
        Network input side ``S``.
    batch_size:
        Images per batch (the dense engine's batch size).
    max_images:
        Most images used; a last incomplete batch is dropped.

    Iterating yields ``float32[batch_size, 3, S, S]`` arrays (RGB in [0, 1], as
    :func:`~vis_node.perception.predictor.preprocess`), reading the frames lazily.
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


def make_entropy_calibrator(
    trt: Any, batches: Iterable[np.ndarray], cache_file: Path, input_name: str = "images"
) -> Any:
    """A ``tensorrt.IInt8EntropyCalibrator2`` fed from ``batches`` (GPU copies via torch).

    Parameters
    ----------
    trt:
        The imported ``tensorrt`` module.
    batches:
        ``float32[B, 3, S, S]`` arrays, e.g. :class:`CalibrationBatches`.
    cache_file:
        Calibration table file, read when present and written after calibration.
    input_name:
        Name of the calibrated input.
    """
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self._batches = iter(batches)
            self._device: torch.Tensor | None = None
            self._size = 0

        def get_batch_size(self) -> int:
            return self._size or 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._size = int(batch.shape[0])
            self._device = torch.from_numpy(batch).cuda()
            return [int(self._device.data_ptr())] if input_name in names else None

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: bytes) -> None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_bytes(bytes(cache))

    return EntropyCalibrator()


class TensorRT10Backend:
    """The real :class:`TensorRTBackend` (TensorRT 10 Python API, CUDA via torch).

    Raises
    ------
    TensorRTUnavailableError
        When TensorRT or a CUDA device is missing.
    """

    def __init__(self) -> None:
        try:
            import tensorrt as trt
        except ImportError:
            raise TensorRTUnavailableError(INSTALL_HINT) from None
        import torch

        if not torch.cuda.is_available():
            raise TensorRTUnavailableError(
                "TensorRT needs an NVIDIA GPU with CUDA, and torch sees none here; run on a "
                "GPU machine or use --format onnx"
            )
        if int(trt.__version__.split(".")[0]) != 10:
            raise TensorRTUnavailableError(
                f"TensorRT {trt.__version__} found; this builder needs TensorRT 10.x "
                "(`pip install 'vis_node[tensorrt]'`)"
            )
        self.trt = trt
        self.version = str(trt.__version__)
        self.logger = trt.Logger(trt.Logger.WARNING)

    def device(self) -> tuple[str, str]:
        """``(GPU name, "major.minor")`` of the current CUDA device."""
        import torch

        major, minor = torch.cuda.get_device_capability()
        return torch.cuda.get_device_name(), f"{major}.{minor}"

    def build(
        self,
        onnx_path: Path,
        precision: str,
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
        calibrator: object | None,
    ) -> bytes:
        """Parse the ONNX file and build a serialised engine (see the protocol)."""
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(Path(onnx_path).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"{onnx_path}: TensorRT cannot parse this graph ({errors})")
        config = builder.create_builder_config()
        if shapes:
            profile = builder.create_optimization_profile()
            for name, (low, opt, high) in shapes.items():
                profile.set_shape(name, low, opt, high)
            config.add_optimization_profile(profile)
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = calibrator
        serialised = builder.build_serialized_network(network, config)
        if serialised is None:
            raise RuntimeError(f"{onnx_path}: TensorRT failed to build a {precision} engine")
        return bytes(serialised)


class _EngineRunner:
    """Runs one deserialised engine on torch CUDA tensors."""

    def __init__(self, trt: Any, engine_bytes: bytes, path: Path) -> None:
        import torch

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise EngineCacheError(
                f"{path}: TensorRT could not deserialise this engine; delete it or pass --rebuild"
            )
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()

    def __call__(self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]) -> list[np.ndarray]:
        import torch

        held = {}
        for name, array in inputs.items():
            tensor = torch.from_numpy(np.ascontiguousarray(array)).cuda()
            held[name] = tensor
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        results = []
        for name in outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            tensor = torch.empty(shape, dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(name, tensor.data_ptr())
            results.append(tensor)
        with torch.cuda.stream(self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return [t.cpu().numpy() for t in results]


class TensorRTPredictor(StagedPredictor):
    """Predictor running the dense and instance engines of an export on the GPU.

    Parameters
    ----------
    export:
        The ONNX export the engines were built from (config, batch size).
    dense, instance:
        Serialised engines and their cache paths (from :func:`load_or_build`).
    """

    def __init__(
        self, export: OnnxExport, dense: tuple[bytes, Path], instance: tuple[bytes, Path]
    ) -> None:
        backend = TensorRT10Backend()
        self._dense_runner = _EngineRunner(backend.trt, *dense)
        self._instance_runner = _EngineRunner(backend.trt, *instance)
        super().__init__(
            export.config, self._run_dense, self._run_instance, batch_size=export.batch_size
        )

    def _run_dense(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, deltas, features = self._dense_runner({"images": images}, DENSE_OUTPUTS)
        return logits, deltas, features

    def _run_instance(
        self, seg_features: np.ndarray, boxes: np.ndarray, image_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mask_logits, windows, class_logits, embeddings = self._instance_runner(
            {"seg_features": seg_features, "boxes": boxes, "image_index": image_index},
            INSTANCE_OUTPUTS,
        )
        return mask_logits, windows, class_logits, embeddings
