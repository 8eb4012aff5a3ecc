"""ONNX Runtime predictor for the two exported S4Net graphs (CPU by default).

Pre- and post-processing are :class:`vis_node.perception.predictor.StagedPredictor`'s,
shared with eager PyTorch and TensorRT; this module only runs the two graphs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vis_node.structures.errors import InputDataError
from vis_node.perception.export_onnx import (
    DENSE_OUTPUTS,
    INSTANCE_OUTPUTS,
    OnnxExport,
    read_export,
)
from vis_node.perception.predictor import StagedPredictor

ProviderSpec = str | tuple[str, dict[str, Any]]
"""An ONNX Runtime execution provider: its name, or its name and provider options."""

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"


def session_options(threads: int) -> object:
    """ONNX Runtime options of VSIS's sessions: all graph optimisations, quiet, and no
    spin-waiting (several sessions share the cores: one's spinning workers would starve
    the others).

    Parameters
    ----------
    threads:
        Intra-op threads per session; 0 lets ONNX Runtime choose.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def onnx_session(path: Path, options: object, providers: Sequence[ProviderSpec]) -> object:
    """An ONNX Runtime session of one graph file.

    Raises
    ------
    InputDataError
        If ONNX Runtime cannot load the file; the message carries its reason.
    """
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # ONNX Runtime's errors share no base class but Exception
        raise InputDataError(
            path,
            f"ONNX Runtime cannot load this graph ({exc}); export the model again with "
            f"`vsis export MODEL --format onnx --out {path.parent}`",
        ) from None


class OnnxPredictor(StagedPredictor):
    """ONNX Runtime predictor of an export folder (see :func:`export_onnx`).

    Parameters
    ----------
    export:
        The export (``OnnxExport``) or its folder.
    providers:
        ONNX Runtime execution providers (names, or ``(name, options)`` pairs), in
        order of preference.
    instance_providers:
        Providers of the instance graph when they differ from ``providers``.
    threads:
        Intra-op threads per session; 0 lets ONNX Runtime choose.
    """

    def __init__(
        self,
        export: OnnxExport | str | Path,
        *,
        providers: Sequence[ProviderSpec] = (CPU_PROVIDER,),
        instance_providers: Sequence[ProviderSpec] | None = None,
        threads: int = 0,
    ) -> None:
        if not isinstance(export, OnnxExport):
            export = read_export(export)
        options = session_options(threads)
        self.export = export
        self._dense_session = onnx_session(export.dense_path, options, providers)
        self._instance_session = onnx_session(
            export.instance_path,
            options,
            providers if instance_providers is None else instance_providers,
        )
        super().__init__(
            export.config, self._run_dense, self._run_instance, batch_size=export.batch_size
        )

    def _run_dense(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, deltas, features = self._dense_session.run(list(DENSE_OUTPUTS), {"images": images})
        return logits, deltas, features

    def _run_instance(
        self, seg_features: np.ndarray, boxes: np.ndarray, image_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        mask_logits, windows, class_logits, embeddings = self._instance_session.run(
            list(INSTANCE_OUTPUTS),
            {"seg_features": seg_features, "boxes": boxes, "image_index": image_index},
        )
        return mask_logits, windows, class_logits, embeddings
