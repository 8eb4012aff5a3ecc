"""Frame-in, instances-out inference around the perception network, for every runtime.

Every runtime splits the network into the same two graphs (see
:mod:`vis_node.perception.export_onnx`): a *dense* graph (backbone, FPN, detection
head, P3 compression) and an *instance* graph (RoIMasking, segmentation branch,
class / embedding head on given boxes). :class:`StagedPredictor` holds all the logic
around them, so eager PyTorch (:class:`TorchPredictor`), ONNX Runtime and TensorRT
pre- and post-process identically:

frame -> :func:`preprocess` -> dense graph -> :func:`select_proposals` per image ->
instance graph on the kept proposals -> :func:`to_instances`, which pastes each crop
grid straight into the frame (only inside its box, see :func:`paste_masks_in_frame`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.anchors import pyramid_anchors
from vis_node.perception.backbone import fold_frozen_batchnorm
from vis_node.perception.config import FEATURE_STRIDES, ModelConfig
from vis_node.perception.export_onnx import DenseGraph, InstanceGraph
from vis_node.perception.model import SEG_STRIDE, S4Net
from vis_node.perception.postprocess import (
    paste_masks_in_frame,
    paste_masks_in_image,
    select_proposals,
)
from vis_node.structures.instances import Instances

DenseRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``images float32[B, 3, S, S]`` -> ``(objectness [B, A], box_deltas [B, A, 4],
seg_features [B, Cs, S/8, S/8])``."""

InstanceRunner = Callable[
    [np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
]
"""``(seg_features, boxes float32[N, 4], image_index int64[N])`` -> ``(mask_logits
[N, 2, K, K], windows [N, 4] in P3 cells, class_logits [N, C], embeddings [N, D])``,
``N >= 1``."""


class Predictor(Protocol):
    """Anything that turns an RGB frame into salient instances."""

    class_names: tuple[str, ...]

    def __call__(self, image: np.ndarray) -> Instances:
        """Detect instances in ``uint8[H, W, 3]`` RGB; masks come back at ``H x W``."""
        ...


def preprocess(image: np.ndarray, input_size: int) -> np.ndarray:
    """Resize an RGB frame to the square network input (aspect not kept, as S4Net).

    Parameters
    ----------
    image:
        ``uint8[H, W, 3]`` RGB.
    input_size:
        Network input side in pixels.

    Returns
    -------
    numpy.ndarray
        ``float32[1, 3, input_size, input_size]`` RGB in [0, 1].
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected uint8[H, W, 3] RGB, got {image.dtype}{list(image.shape)}")
    resized = cv2.resize(image, (input_size, input_size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


@dataclass
class RawDetections:
    """Network outputs for one image before the masks are pasted anywhere.

    Attributes
    ----------
    boxes:
        ``float32[N, 4]`` x1y1x2y2 in input pixels, by decreasing score.
    scores:
        ``float32[N]`` objectness (saliency) probabilities.
    mask_probs:
        ``float32[N, K, K]`` salient-instance probabilities on the crop grids.
    windows:
        ``float32[N, 4]`` x1y1x2y2 in input pixels covered by each crop grid.
    class_probs:
        ``float32[N, C]``.
    embeddings:
        ``float32[N, D]`` L2-normalised.
    """

    boxes: np.ndarray
    scores: np.ndarray
    mask_probs: np.ndarray
    windows: np.ndarray
    class_probs: np.ndarray
    embeddings: np.ndarray


def to_instances(
    raw: RawDetections, frame_size: tuple[int, int], input_size: int, mask_threshold: float
) -> Instances:
    """Map one image's network outputs to the frame they came from.

    Parameters
    ----------
    raw:
        Outputs at input resolution (``input_size`` squared).
    frame_size:
        ``(H, W)`` of the original frame.
    input_size:
        Network input side in pixels.
    mask_threshold:
        Mask probability from which a pixel belongs to the instance.

    Returns
    -------
    Instances
        Masks ``bool[N, H, W]``, boxes in frame pixels, saliency = scores.
    """
    height, width = frame_size
    masks = paste_masks_in_frame(
        raw.mask_probs, raw.windows, raw.boxes, input_size, frame_size, mask_threshold
    )
    scale = np.array([width, height, width, height], dtype=np.float32) / float(input_size)
    return Instances(
        masks=masks,
        boxes=raw.boxes.reshape(-1, 4) * scale,
        class_probs=raw.class_probs,
        saliency=raw.scores,
        embeddings=raw.embeddings,
        scores=raw.scores,
    )


class StagedPredictor:
    """Predictor around a dense and an instance graph runner (any backend).

    Parameters
    ----------
    config:
        Config of the network (thresholds, input size, class names).
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
        raw = self.raw(preprocess(image, self.input_size))[0]
        return to_instances(raw, image.shape[:2], self.input_size, self.config.mask_threshold)

    def raw(self, images: np.ndarray) -> list[RawDetections]:
        """Proposals and their crop-grid outputs for a batch.

        Parameters
        ----------
        images:
            ``float32[B, 3, S, S]`` RGB in [0, 1].

        Returns
        -------
        list of RawDetections
            One per image.
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
        boxes = torch.cat([b for b, _ in proposals]).numpy().astype(np.float32)
        image_index = np.repeat(np.arange(count, dtype=np.int64), sizes)
        mask_logits, windows, class_logits, embeddings = self._instance(
            seg_features, boxes, image_index
        )
        mask_probs = torch.from_numpy(np.asarray(mask_logits)).softmax(dim=1)[:, 1].numpy()
        class_probs = torch.from_numpy(np.asarray(class_logits)).softmax(dim=1).numpy()
        windows_px = np.asarray(windows, np.float32) * SEG_STRIDE
        splits = np.cumsum(sizes)[:-1]
        return [
            RawDetections(
                boxes=b,
                scores=s.numpy(),
                mask_probs=m,
                windows=w,
                class_probs=c,
                embeddings=e,
            )
            for b, (_, s), m, w, c, e in zip(
                np.split(boxes, splits),
                proposals,
                np.split(mask_probs, splits),
                np.split(windows_px, splits),
                np.split(class_probs, splits),
                np.split(np.asarray(embeddings, np.float32), splits),
            )
        ]

    def detect(self, images: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Detections at input resolution for a batch (the output of ``S4Net.forward``).

        Parameters
        ----------
        images:
            ``float32[B, 3, S, S]`` RGB in [0, 1].

        Returns
        -------
        list of dict
            Per image ``masks bool[N, S, S]``, ``boxes float32[N, 4]``, ``scores
            float32[N]``, ``class_probs float32[N, C]``, ``embeddings float32[N, D]``.
        """
        size = (self.input_size, self.input_size)
        results = []
        for raw in self.raw(images):
            probs = paste_masks_in_image(
                torch.from_numpy(raw.mask_probs),
                torch.from_numpy(raw.windows),
                torch.from_numpy(raw.boxes),
                size,
            )
            results.append(
                {
                    "masks": (probs >= self.config.mask_threshold).numpy(),
                    "boxes": raw.boxes,
                    "scores": raw.scores,
                    "class_probs": raw.class_probs,
                    "embeddings": raw.embeddings,
                }
            )
        return results

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

    def _empty(self) -> RawDetections:
        cfg = self.config
        crop = cfg.seg_crop_size
        return RawDetections(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            mask_probs=np.zeros((0, crop, crop), np.float32),
            windows=np.zeros((0, 4), np.float32),
            class_probs=np.zeros((0, cfg.num_classes), np.float32),
            embeddings=np.zeros((0, cfg.embedding_dim), np.float32),
        )


class TorchPredictor(StagedPredictor):
    """Eager PyTorch runtime.

    Parameters
    ----------
    model:
        Network (see :func:`vis_node.perception.checkpoint.load_model`); the predictor
        runs an eval-mode copy with its frozen batch norms folded into the convolutions.
    device:
        Torch device to run on.
    """

    def __init__(self, model: S4Net, *, device: str = "cpu") -> None:
        self.model = fold_frozen_batchnorm(copy.deepcopy(model)).to(device).eval()
        self.device = device
        super().__init__(
            model.config,
            functools.partial(self._run, DenseGraph(self.model)),
            functools.partial(self._run, InstanceGraph(self.model)),
        )

    @torch.inference_mode()
    def _run(self, graph: torch.nn.Module, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs of one exported graph (dense or instance) on NumPy inputs, as NumPy."""
        outputs = graph(*(torch.from_numpy(x).to(self.device) for x in inputs))
        return tuple(out.cpu().numpy() for out in outputs)
