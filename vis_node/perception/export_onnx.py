"""Export S4Net as two ONNX graphs around its data-dependent middle.

S4Net picks proposals with top-k and NMS, whose output size depends on the data, and
then crops one window per proposal. The export therefore cuts the network in two:

* **dense** graph: ``images float[B, 3, S, S]`` (RGB in [0, 1]) ->
  ``objectness float[B, A]`` logits, ``box_deltas float[B, A, 4]``,
  ``seg_features float[B, Cs, S/8, S/8]`` (backbone, FPN, detection head and the 1x1
  compression of P3). ``B`` is fixed or dynamic.
* **instance** graph: ``seg_features``, ``boxes float[N, 4]`` (x1y1x2y2 in input
  pixels) and ``image_index int64[N]`` -> ``mask_logits float[N, 2, K, K]``,
  ``windows float[N, 4]`` (crop windows in P3 cells), ``class_logits float[N, C]``,
  ``embeddings float[N, D]`` (RoIMasking, segmentation branch, instance head; ``N``
  dynamic).

Anchor decoding, top-k and NMS run between the two graphs, and the masks are pasted
afterwards, by the same function as in the eager model
(:func:`~vis_node.perception.detections.decode_detections`).

An export folder holds ``dense.onnx``, ``instance.onnx`` and ``export.json`` (the
model config, its fingerprint and the batch layout).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vis_node.perception.backbone import fold_frozen_batchnorm
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import S4Net

LOG = logging.getLogger(__name__)

EXPORT_FORMAT = "vsis-onnx/1"
"""Version tag of ``export.json``."""

OPSET = 17
"""ONNX opset of the exported graphs (RoiAlign with half-pixel alignment needs >= 16)."""

DENSE_FILE = "dense.onnx"
INSTANCE_FILE = "instance.onnx"
MANIFEST_FILE = "export.json"

DENSE_INPUTS = ("images",)
DENSE_OUTPUTS = ("objectness", "box_deltas", "seg_features")
INSTANCE_INPUTS = ("seg_features", "boxes", "image_index")
INSTANCE_OUTPUTS = ("mask_logits", "windows", "class_logits", "embeddings")


class DenseGraph(nn.Module):
    """Backbone, FPN, detection head and P3 compression of an :class:`S4Net`.

    Parameters
    ----------
    model:
        The network (eval mode); its modules are shared, not copied.
    """

    def __init__(self, model: S4Net) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dense outputs.

        Parameters
        ----------
        images:
            ``float[B, 3, S, S]`` RGB in [0, 1].

        Returns
        -------
        objectness, box_deltas, seg_features:
            ``float[B, A]`` logits, ``float[B, A, 4]`` encoded deltas (anchor order of
            :func:`~vis_node.perception.anchors.pyramid_anchors`) and
            ``float[B, Cs, S/8, S/8]`` compressed P3 features.
        """
        _, logits, deltas, seg_features = self.model.dense(images)
        return logits, deltas, seg_features


class InstanceGraph(nn.Module):
    """RoIMasking, segmentation branch and instance head for given boxes.

    :meth:`S4Net.segment_boxes`: the image of each box is given as a tensor
    (``image_index``) instead of a Python list, so ``N`` can stay dynamic.

    Parameters
    ----------
    model:
        The network (eval mode); its modules are shared, not copied.
    """

    def __init__(self, model: S4Net) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, seg_features: torch.Tensor, boxes: torch.Tensor, image_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-proposal outputs.

        Parameters
        ----------
        seg_features:
            ``float[B, Cs, h, w]`` compressed P3 features.
        boxes:
            ``float[N, 4]`` x1y1x2y2 in input pixels.
        image_index:
            ``int64[N]`` image of each box in ``0..B-1``.

        Returns
        -------
        mask_logits, windows, class_logits, embeddings:
            ``float[N, 2, K, K]``, ``float[N, 4]`` windows in P3 cells,
            ``float[N, C]`` and ``float[N, D]`` (see :class:`SegmentationOutput`).
        """
        return self.model.segment_boxes(seg_features, boxes, image_index).instance_outputs()


@dataclass(frozen=True)
class OnnxExport:
    """An export folder and what it holds.

    Attributes
    ----------
    folder:
        Folder with ``dense.onnx``, ``instance.onnx`` and ``export.json``.
    config:
        Model config of the exported network.
    fingerprint:
        :func:`model_fingerprint` of the exported network.
    batch_size:
        Fixed batch size of the dense graph, or ``None`` when it is dynamic.
    """

    folder: Path
    config: ModelConfig
    fingerprint: str
    batch_size: int | None

    @property
    def dense_path(self) -> Path:
        """The dense graph file."""
        return self.folder / DENSE_FILE

    @property
    def instance_path(self) -> Path:
        """The instance graph file."""
        return self.folder / INSTANCE_FILE


def model_fingerprint(model: S4Net) -> str:
    """SHA-256 hex digest of a network's config and weights.

    Parameters
    ----------
    model:
        The network.

    Returns
    -------
    str
        64 hex characters; equal for equal configs and bit-identical weights.
    """
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_onnx(
    model: S4Net, folder: str | Path, *, batch_size: int | None = 1, opset: int = OPSET
) -> OnnxExport:
    """Export the dense and instance graphs of a network.

    Parameters
    ----------
    model:
        The network (left unchanged: an eval-mode copy with its frozen batch norms
        folded into the convolutions is exported).
    folder:
        Output folder (created); existing export files are replaced.
    batch_size:
        Fixed batch size of the dense graph, or ``None`` for a dynamic batch axis.
    opset:
        ONNX opset version (at least 16).

    Returns
    -------
    OnnxExport
        Description of the written folder.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None (dynamic), got {batch_size}")
    if opset < 16:
        raise ValueError(f"opset must be >= 16 (RoiAlign half-pixel alignment), got {opset}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint = model_fingerprint(model)
    # Frozen batch norms folded into the convolutions: plain Conv nodes run faster.
    model = fold_frozen_batchnorm(copy.deepcopy(model)).eval()
    cfg = model.config
    size = cfg.input_size
    example_batch = batch_size or 2
    images = torch.rand(example_batch, 3, size, size)
    with torch.no_grad():
        _, _, seg_features = DenseGraph(model).eval()(images)
    boxes = torch.tensor(
        [[8.0, 8.0, size / 2, size / 2], [size / 4, size / 8, size - 4.0, size - 8.0]]
    )
    image_index = torch.tensor([0, example_batch - 1], dtype=torch.int64)
    dense_axes = (
        {}
        if batch_size is not None
        else {name: {0: "batch"} for name in (*DENSE_INPUTS, *DENSE_OUTPUTS)}
    )
    _export(
        DenseGraph(model).eval(),
        (images,),
        folder / DENSE_FILE,
        DENSE_INPUTS,
        DENSE_OUTPUTS,
        dense_axes,
        opset,
    )
    instance_axes: dict[str, dict[int, str]] = {
        name: {0: "proposals"} for name in ("boxes", "image_index", *INSTANCE_OUTPUTS)
    }
    instance_axes["seg_features"] = {0: "batch"}
    _export(
        InstanceGraph(model).eval(),
        (seg_features, boxes, image_index),
        folder / INSTANCE_FILE,
        INSTANCE_INPUTS,
        INSTANCE_OUTPUTS,
        instance_axes,
        opset,
    )
    manifest = {
        "format": EXPORT_FORMAT,
        "config": cfg.to_dict(),
        "fingerprint": fingerprint,
        "batch_size": batch_size,
        "opset": opset,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    LOG.info("exported %s and %s to %s", DENSE_FILE, INSTANCE_FILE, folder)
    return OnnxExport(folder, cfg, fingerprint, batch_size)


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    """TorchScript-based ONNX export of one graph (no onnxscript needed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
        )


def read_export(folder: str | Path) -> OnnxExport:
    """Describe an export folder written by :func:`export_onnx`.

    Raises
    ------
    InputDataError
        If a file is missing or ``export.json`` is not a VSIS export manifest.
    """
    from vis_node.structures.errors import InputDataError

    folder = Path(folder)
    for name in (DENSE_FILE, INSTANCE_FILE, MANIFEST_FILE):
        if not (folder / name).is_file():
            raise InputDataError(
                folder, f"missing {name}; run `vsis export MODEL --format onnx --out {folder}`"
            )
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(folder / MANIFEST_FILE, f"not readable JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise InputDataError(
            folder / MANIFEST_FILE, f"not a VSIS ONNX export manifest (expected {EXPORT_FORMAT})"
        )
    try:
        config = ModelConfig.from_dict(manifest["config"])
        return OnnxExport(folder, config, str(manifest["fingerprint"]), manifest["batch_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(folder / MANIFEST_FILE, f"invalid export manifest ({exc})") from None
