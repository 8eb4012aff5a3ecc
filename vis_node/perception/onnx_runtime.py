"""ONNX Runtime predictor for the two exported S4Net graphs (CPU by default).

Per batch: dense graph -> :func:`select_proposals` per image (torchvision NMS) ->
instance graph on all proposals -> :func:`paste_masks_in_image`. The middle and last
steps are the model's own functions, so every runtime (eager, ONNX Runtime,
TensorRT) post-processes identically; :class:`StagedPredictor` holds that logic and
takes the two graph runners as callables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.anchors import pyramid_anchors
from vis_node.perception.config import FEATURE_STRIDES, ModelConfig
from vis_node.perception.export_onnx import (
    DENSE_OUTPUTS,
    INSTANCE_OUTPUTS,
    OnnxExport,
    read_export,
)
from vis_node.perception.model import SEG_STRIDE
from vis_node.perception.postprocess import paste_masks_in_image, select_proposals
from vis_node.perception.predictor import postprocess, preprocess
from vis_node.tracking.types import Instances

DenseRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``images float32[B, 3, S, S]`` -> ``(objectness [B, A], box_deltas [B, A, 4],
seg_features [B, Cs, S/8, S/8])``."""

InstanceRunner = Callable[
    [np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
]
"""``(seg_features, boxes float32[N, 4], image_index int64[N])`` -> ``(mask_logits
[N, 2, K, K], windows [N, 4], class_logits [N, C], embeddings [N, D])``, ``N >= 1``."""


class StagedPredictor:
    """Predictor around a dense and an instance graph runner (any backend).

    Parameters
    ----------
    config:
        Config of the exported network (thresholds, input size, class names).
    dense:
        Runs the dense graph.
    instance:
        Runs the instance graph.
    batch_size:
        Fixed batch size of the dense runner (inputs are zero-padded up to it), or
        ``None`` when it takes any batch.
    """

    def __init__(
        self,
        config: ModelConfig,
        dense: DenseRunner,
        instance: InstanceRunner,
        *,
        batch_size: int | None = None,
    ) -> None:
        self.config = config
        self.class_names: tuple[str, ...] = tuple(config.class_names)
        self.input_size = int(config.input_size)
        self.batch_size = batch_size
        self._dense = dense
        self._instance = instance
        self._box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        size = self.input_size
        self._anchors = torch.cat(
            pyramid_anchors(
                [(size // stride, size // stride) for stride in FEATURE_STRIDES],
                FEATURE_STRIDES,
                config.anchor_sizes,
                config.anchor_ratios,
            )
        )

    def __call__(self, image: np.ndarray) -> Instances:
        """Detect instances in ``uint8[H, W, 3]`` RGB; masks come back at ``H x W``."""
        detections = self.detect(preprocess(image, self.input_size))[0]
        return postprocess(detections, image.shape[:2], self.input_size)

    def detect(self, images: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Detections at input resolution for a batch.

        Parameters
        ----------
        images:
            ``float32[B, 3, S, S]`` RGB in [0, 1].

        Returns
        -------
        list of dict
            Per image the keys of :meth:`S4Net.forward` in evaluation mode as NumPy
            arrays: ``masks bool[N, S, S]``, ``boxes float32[N, 4]``, ``scores
            float32[N]``, ``class_probs float32[N, C]``, ``embeddings float32[N, D]``.
        """
        count = images.shape[0]
        if self.batch_size is not None and count > self.batch_size:
            raise ValueError(
                f"batch of {count} images exceeds the exported batch {self.batch_size}"
            )
        padded = images
        if self.batch_size is not None and count < self.batch_size:
            padding = np.zeros((self.batch_size - count, *images.shape[1:]), np.float32)
            padded = np.concatenate([images, padding])
        logits, deltas, seg_features = self._dense(np.ascontiguousarray(padded, np.float32))
        if logits.shape[1] != self._anchors.shape[0]:
            raise ValueError(
                f"dense graph gives {logits.shape[1]} anchors, the config implies "
                f"{self._anchors.shape[0]}: the export and its config do not match"
            )
        proposals = [self._proposals(logits[i], deltas[i]) for i in range(count)]
        sizes = [len(boxes) for boxes, _ in proposals]
        if sum(sizes) == 0:
            return [self._empty() for _ in range(count)]
        boxes = torch.cat([b for b, _ in proposals])
        image_index = np.repeat(np.arange(count, dtype=np.int64), sizes)
        mask_logits, windows, class_logits, embeddings = self._instance(
            seg_features, boxes.numpy().astype(np.float32), image_index
        )
        probs = torch.from_numpy(np.asarray(mask_logits)).softmax(dim=1)[:, 1]
        pasted = paste_masks_in_image(
            probs,
            torch.from_numpy(np.asarray(windows)) * SEG_STRIDE,
            boxes,
            (self.input_size, self.input_size),
        )
        masks = (pasted >= self.config.mask_threshold).numpy()
        class_probs = torch.from_numpy(np.asarray(class_logits)).softmax(dim=1).numpy()
        splits = np.cumsum(sizes)[:-1]
        return [
            {
                "masks": m,
                "boxes": b.numpy(),
                "scores": s.numpy(),
                "class_probs": c,
                "embeddings": e,
            }
            for m, (b, s), c, e in zip(
                np.split(masks, splits),
                proposals,
                np.split(class_probs, splits),
                np.split(np.asarray(embeddings, np.float32), splits),
            )
        ]

    def _proposals(
        self, logits: np.ndarray, deltas: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return select_proposals(
            torch.from_numpy(np.asarray(logits, np.float32)),
            torch.from_numpy(np.asarray(deltas, np.float32)),
            self._anchors,
            (self.input_size, self.input_size),
            self._box_coder,
            pre_nms_top_k=cfg.pre_nms_top_k,
            nms_iou_threshold=cfg.nms_iou_threshold,
            num_proposals=cfg.num_proposals,
            score_threshold=cfg.score_threshold,
            min_box_size=cfg.min_box_size,
        )

    def _empty(self) -> dict[str, np.ndarray]:
        size = self.input_size
        return {
            "masks": np.zeros((0, size, size), bool),
            "boxes": np.zeros((0, 4), np.float32),
            "scores": np.zeros(0, np.float32),
            "class_probs": np.zeros((0, self.config.num_classes), np.float32),
            "embeddings": np.zeros((0, self.config.embedding_dim), np.float32),
        }


class OnnxPredictor(StagedPredictor):
    """ONNX Runtime predictor of an export folder (see :func:`export_onnx`).

    Parameters
    ----------
    export:
        The export (``OnnxExport``) or its folder.
    providers:
        ONNX Runtime execution providers, in order of preference.
    threads:
        Intra-op threads per session; 0 lets ONNX Runtime choose.
    """

    def __init__(
        self,
        export: OnnxExport | str | Path,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort

        if not isinstance(export, OnnxExport):
            export = read_export(export)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.export = export
        self._dense_session = ort.InferenceSession(
            str(export.dense_path), options, providers=list(providers)
        )
        self._instance_session = ort.InferenceSession(
            str(export.instance_path), options, providers=list(providers)
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
