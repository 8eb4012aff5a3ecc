"""Export the salient NanoDet model as three ONNX graphs, and run them in ONNX Runtime.

* **dense**: ``images float[1, 3, H, W]`` (letterboxed, normalised BGR; ``H`` and
  ``W`` dynamic multiples of 32) -> ``p3``, ``p4``, ``class_probs float[1, N, 80]``,
  ``box_dists float[1, N, 44]`` (NanoDet-g);
* **saliency**: ``p3``, ``p4``, ``rois float[K, 5]``, ``geometry float[K, G]`` ->
  ``saliency_logits float[K]``;
* **mask**: ``p3``, ``p4``, ``images``, ``rois`` -> ``mask_logits float[K, S, S]``,
  ``embeddings float[K, C]``;
* **refiner** (only when the model has one, ``refiner_size > 0``): ``crops float[N, 3,
  R, R]``, ``coarse float[N, 1, R, R]`` -> ``refined_logits float[N, R, R]``
  (:mod:`vis_node.perception.mask_refiner`).

Candidate selection, mask pasting and the refiner's crops run between them in
:class:`~vis_node.perception.salient_predictor.SalientPredictor`. An export folder
holds the graphs and ``export.json`` (type, config, fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vis_node.structures.errors import InputDataError
from vis_node.perception.onnx_runtime import onnx_session, session_options
from vis_node.perception.salient_config import GEOMETRY_FEATURES, MODEL_TYPE, SalientConfig
from vis_node.perception.salient_model import SalientNanoDet
from vis_node.perception.salient_predictor import DenseRunner, SalientPredictor

OPSET = 17
MANIFEST_FILE = "export.json"
SALIENT_EXPORT_FORMAT = "vsis-salient-onnx/2"
"""Version of the graphs' layout, part of the export cache key: 2 aligns the heads'
P3 / P4 crops by matrix products (:mod:`vis_node.perception.roi_align`) instead of
ONNX ``RoiAlign``; an export of version 1 is rebuilt on its next load."""
GRAPHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dense": (("images",), ("p3", "p4", "class_probs", "box_dists")),
    "saliency": (("p3", "p4", "rois", "geometry"), ("saliency_logits",)),
    "mask": (("p3", "p4", "images", "rois"), ("mask_logits", "embeddings")),
    "refiner": (("crops", "coarse"), ("refined_logits",)),
}
"""Graph name -> (input names, output names); each graph is ``<name>.onnx``."""


def model_graphs(config: SalientConfig) -> tuple[str, ...]:
    """The graphs a model with ``config`` exports (the refiner only when it has one)."""
    return tuple(name for name in GRAPHS if name != "refiner" or config.refiner_size)


_SPATIAL = {2: "height", 3: "width"}
DENSE_AXES: dict[str, dict[int, str]] = {
    "images": _SPATIAL, "p3": _SPATIAL, "p4": _SPATIAL, "class_probs": {1: "cells"},
    "box_dists": {1: "cells"},
}
"""Dynamic axes of the dense graph (any input size that is a multiple of 32)."""


def _example_images(input_size: int) -> torch.Tensor:
    """``float[1, 3, h, input_size]`` tracing input with a 16:10 letterbox shape."""
    return torch.randn(1, 3, input_size * 5 // 8 // 32 * 32, input_size)


class _DenseGraph(nn.Module):
    """NanoDet-g without P5 (the heads do not use it)."""

    def __init__(self, model: SalientNanoDet) -> None:
        super().__init__()
        self.detector = model.detector

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p3, p4, _, class_probs, box_dists = self.detector(images)
        return p3, p4, class_probs, box_dists


def salient_fingerprint(model: SalientNanoDet) -> str:
    """SHA-256 hex digest of the model type, config and weights."""
    digest = hashlib.sha256(MODEL_TYPE.encode())
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_salient_onnx(model: SalientNanoDet, folder: str | Path) -> Path:
    """Write the three graphs and ``export.json`` of ``model`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    images = _example_images(model.config.input_size)
    with torch.no_grad():
        p3, p4, _, _ = _DenseGraph(model)(images)
    rois = torch.tensor([[0.0, 10.0, 12.0, 120.0, 90.0], [0.0, 200.0, 40.0, 380.0, 200.0]])
    geometry = torch.rand(2, GEOMETRY_FEATURES)
    examples = {
        "dense": (_DenseGraph(model), (images,), DENSE_AXES),
        "saliency": (model.saliency_head, (p3, p4, rois, geometry),
                     {"p3": _SPATIAL, "p4": _SPATIAL, "rois": {0: "k"}, "geometry": {0: "k"},
                      "saliency_logits": {0: "k"}}),
        "mask": (model.mask_head, (p3, p4, images, rois),
                 {"p3": _SPATIAL, "p4": _SPATIAL, "images": _SPATIAL, "rois": {0: "k"},
                  "mask_logits": {0: "k"}, "embeddings": {0: "k"}}),
    }
    if model.refiner is not None:
        size = model.config.refiner_size
        examples["refiner"] = (
            model.refiner, (torch.rand(2, 3, size, size), torch.rand(2, 1, size, size)),
            {"crops": {0: "n"}, "coarse": {0: "n"}, "refined_logits": {0: "n"}},
        )
    for name, (module, args, axes) in examples.items():
        _export_graph(name, module, args, axes, folder)
    manifest = {
        "format": SALIENT_EXPORT_FORMAT,
        "type": MODEL_TYPE,
        "config": model.config.to_dict(),
        "fingerprint": salient_fingerprint(model),
        "opset": OPSET,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    return folder


def _export_graph(
    name: str,
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    axes: dict[str, dict[int, str]],
    folder: Path,
) -> Path:
    """TorchScript-based ONNX export of one of :data:`GRAPHS` into ``folder/<name>.onnx``."""
    inputs, outputs = GRAPHS[name]
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), dynamo=False, input_names=list(inputs),
            output_names=list(outputs), dynamic_axes=axes, opset_version=OPSET,
            do_constant_folding=True,
        )
    return path


def onnx_dense_runner(
    model: SalientNanoDet, folder: str | Path, *, threads: int = 0
) -> DenseRunner:
    """ONNX Runtime runner of the detector alone (several times faster than eager).

    Exports the dense graph of ``model`` into ``folder`` and returns a function
    ``images float32[1, 3, H, W] -> (p3, p4, class_probs, box_dists)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = _example_images(model.config.input_size)
    path = _export_graph("dense", _DenseGraph(model.eval()), (images,), DENSE_AXES, folder)
    session = onnx_session(path, session_options(threads), ["CPUExecutionProvider"])
    outputs = list(GRAPHS["dense"][1])
    return lambda images: tuple(session.run(outputs, {"images": images}))


def read_salient_export(folder: str | Path) -> dict[str, Any]:
    """The manifest of a salient export folder, checked to hold every graph.

    Raises
    ------
    InputDataError
        Missing graph, unreadable or foreign manifest.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(folder / MANIFEST_FILE, f"not readable JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("type") != MODEL_TYPE:
        raise InputDataError(folder / MANIFEST_FILE, f"not a {MODEL_TYPE} ONNX export")
    try:
        graphs = model_graphs(SalientConfig.from_dict(manifest["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(folder / MANIFEST_FILE, f"bad model config ({exc})") from None
    for name in graphs:
        if not (folder / f"{name}.onnx").is_file():
            raise InputDataError(folder, f"missing {name}.onnx; export the model again")
    return manifest


def is_salient_export(folder: Path) -> bool:
    """Whether an export folder's manifest names this model type."""
    try:
        return json.loads((folder / MANIFEST_FILE).read_text()).get("type") == MODEL_TYPE
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


class SalientOnnxPredictor(SalientPredictor):
    """ONNX Runtime predictor of a salient export folder (CPU by default).

    Parameters
    ----------
    folder:
        Export folder (:func:`export_salient_onnx`).
    providers:
        ONNX Runtime execution providers, in order of preference.
    threads:
        Intra-op threads per session; 0 lets ONNX Runtime choose.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        threads: int = 0,
    ) -> None:
        manifest = read_salient_export(folder)
        config = SalientConfig.from_dict(manifest["config"])
        options = session_options(threads)
        self._sessions = {
            name: onnx_session(Path(folder) / f"{name}.onnx", options, providers)
            for name in model_graphs(config)
        }
        super().__init__(
            config,
            lambda images: tuple(self._run("dense", images)),
            lambda *inputs: self._run("saliency", *inputs)[0],
            lambda *inputs: tuple(self._run("mask", *inputs)),
            (lambda *inputs: self._run("refiner", *inputs)[0]) if config.refiner_size else None,
        )

    def _run(self, graph: str, *inputs: np.ndarray) -> list[np.ndarray]:
        names, outputs = GRAPHS[graph]
        feed = {name: np.ascontiguousarray(x, np.float32) for name, x in zip(names, inputs)}
        return self._sessions[graph].run(list(outputs), feed)
