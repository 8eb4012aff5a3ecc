"""The one inference post-processing path of the S4Net model, for every runtime.

Eager ``S4Net.forward`` (evaluation mode) and
:class:`~vis_node.perception.predictor.StagedPredictor` (eager PyTorch, ONNX Runtime and
TensorRT) turn the dense outputs into detections with the same function,
:func:`decode_detections`:

dense outputs -> :func:`~vis_node.perception.postprocess.select_proposals` per image ->
instance graph on the kept proposals -> :class:`RawDetections` (crop grids, input
pixels).

:class:`RawDetections` then go either to the frame (:func:`to_instances`, what the
predictors return: each crop grid pasted straight into the frame, only inside its box)
or to the square network input (:func:`at_input_resolution`, what ``S4Net.forward``
returns, and what the runtimes are compared on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.config import SEG_STRIDE, ModelConfig
from vis_node.perception.postprocess import (
    paste_masks_in_frame,
    paste_masks_in_image,
    select_proposals,
)
from vis_node.structures.instances import Instances

InstanceOutputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(mask_logits [N, 2, K, K], windows [N, 4] in P3 cells, class_logits [N, C],
embeddings [N, D])`` of the instance graph."""

InstanceFunction = Callable[[torch.Tensor, torch.Tensor], InstanceOutputs]
"""The instance graph on ``boxes float32[N, 4]`` (x1y1x2y2 in input pixels) and
``image_index int64[N]``, ``N >= 1`` (the dense graph's features are bound in)."""


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

    @classmethod
    def empty(cls, config: ModelConfig) -> RawDetections:
        """No detections, with the shapes ``config`` gives the per-instance arrays."""
        crop = config.seg_crop_size
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            mask_probs=np.zeros((0, crop, crop), np.float32),
            windows=np.zeros((0, 4), np.float32),
            class_probs=np.zeros((0, config.num_classes), np.float32),
            embeddings=np.zeros((0, config.embedding_dim), np.float32),
        )


def decode_detections(
    logits: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    config: ModelConfig,
    instance: InstanceFunction,
    *,
    box_coder: BoxCoder,
) -> list[RawDetections]:
    """Proposals of each image and the instance graph's outputs on them.

    Parameters
    ----------
    logits:
        ``float[B, A]`` objectness logits of the dense graph.
    deltas:
        ``float[B, A, 4]`` encoded box deltas.
    anchors:
        ``float[A, 4]`` x1y1x2y2 anchors in input pixels.
    image_size:
        ``(H, W)`` of the network input in pixels; boxes are clipped to it.
    config:
        Proposal thresholds and the per-instance shapes.
    instance:
        The instance graph; not called when no image has a proposal.
    box_coder:
        Decoder of the deltas.

    Returns
    -------
    list of RawDetections
        One per image.
    """
    proposals = [
        select_proposals(
            image_logits,
            image_deltas,
            anchors,
            image_size,
            box_coder,
            pre_nms_top_k=config.pre_nms_top_k,
            nms_iou_threshold=config.nms_iou_threshold,
            num_proposals=config.num_proposals,
            score_threshold=config.score_threshold,
            min_box_size=config.min_box_size,
        )
        for image_logits, image_deltas in zip(logits, deltas)
    ]
    sizes = [len(boxes) for boxes, _ in proposals]
    if sum(sizes) == 0:
        return [RawDetections.empty(config) for _ in proposals]
    boxes = torch.cat([b for b, _ in proposals]).detach().cpu().numpy().astype(np.float32)
    image_index = np.repeat(np.arange(len(proposals), dtype=np.int64), sizes)
    mask_logits, windows, class_logits, embeddings = (
        out.detach().cpu()
        for out in instance(
            torch.from_numpy(boxes).to(anchors.device),
            torch.from_numpy(image_index).to(anchors.device),
        )
    )
    mask_probs = mask_logits.softmax(dim=1)[:, 1].numpy()
    class_probs = class_logits.softmax(dim=1).numpy()
    windows_px = windows.numpy().astype(np.float32, copy=False) * SEG_STRIDE
    splits = np.cumsum(sizes)[:-1]
    return [
        RawDetections(
            boxes=b, scores=s.detach().cpu().numpy(), mask_probs=m, windows=w,
            class_probs=c, embeddings=e,
        )
        for b, (_, s), m, w, c, e in zip(
            np.split(boxes, splits),
            proposals,
            np.split(mask_probs, splits),
            np.split(windows_px, splits),
            np.split(class_probs, splits),
            np.split(embeddings.numpy().astype(np.float32, copy=False), splits),
        )
    ]


def at_input_resolution(
    raw: RawDetections, image_size: tuple[int, int], mask_threshold: float
) -> dict[str, np.ndarray]:
    """One image's detections on the network input.

    Parameters
    ----------
    raw:
        Outputs of :func:`decode_detections`.
    image_size:
        ``(H, W)`` of the network input in pixels.
    mask_threshold:
        Mask probability from which a pixel belongs to the instance.

    Returns
    -------
    dict
        ``masks bool[N, H, W]`` (crop grids pasted inside their boxes and
        thresholded), ``boxes float32[N, 4]``, ``scores float32[N]``, ``class_probs
        float32[N, C]``, ``embeddings float32[N, D]``.
    """
    probs = paste_masks_in_image(
        torch.from_numpy(raw.mask_probs),
        torch.from_numpy(raw.windows),
        torch.from_numpy(raw.boxes),
        image_size,
    )
    return {
        "masks": (probs >= mask_threshold).numpy(),
        "boxes": raw.boxes,
        "scores": raw.scores,
        "class_probs": raw.class_probs,
        "embeddings": raw.embeddings,
    }


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
