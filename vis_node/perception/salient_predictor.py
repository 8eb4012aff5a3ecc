"""Frame-in, instances-out inference of the salient NanoDet model, for every runtime.

Like the S4Net predictor, the network runs as graphs around data-dependent steps
(see :mod:`vis_node.perception.salient_export`):

frame -> :func:`~vis_node.perception.nanodet.letterbox` (aspect kept) -> **dense**
graph (NanoDet-g: P3, P4, class probabilities, box distributions) ->
:func:`select_candidates` (decode, class-aware NMS) -> **saliency** graph on every
candidate -> **mask** graph on the salient ones -> masks pasted into the frame inside
each window (a fallback detection's mask is its box), parts of a stronger instance
dropped (:func:`drop_parts`), refined at full resolution, labels from the detector
(:func:`~vis_node.perception.salient_model.class_distribution`).

:class:`SalientPredictor` holds everything but the graph runners, so eager PyTorch and
ONNX Runtime pre- and post-process identically.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms, box_iou

from vis_node.perception.mask_refiner import RefineRunner, refine_masks
from vis_node.perception.nanodet import cell_centers, decode_boxes, letterbox
from vis_node.perception.postprocess import box_masks_in_frame, paste_masks_in_frame
from vis_node.perception.roi_masking import expand_boxes
from vis_node.perception.salient_config import SalientConfig
from vis_node.perception.salient_model import (
    SalientNanoDet,
    candidate_geometry,
    class_distribution,
)
from vis_node.structures.instances import Instances

DenseRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
"""``images float32[1, 3, H, W]`` -> ``(p3, p4, class_probs [1, N, 80],
box_dists [1, N, 44])``."""

SaliencyRunner = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray
]
"""``(p3, p4, rois float32[K, 5], geometry float32[K, G])`` -> ``saliency_logits [K]``,
``K >= 1``."""

MaskRunner = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]
"""``(p3, p4, images, rois float32[K, 5])`` -> ``(mask_logits [K, S, S], embeddings
[K, C])``, ``K >= 1``."""


@dataclass
class Candidates:
    """Detector boxes of one frame kept for the instance heads.

    Attributes
    ----------
    boxes:
        ``float32[K, 4]`` x1y1x2y2 in input pixels, clipped to the image.
    scores:
        ``float32[K]`` best class probability, decreasing.
    class_probs:
        ``float32[K, 80]`` detector class probabilities of each box.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_probs: np.ndarray


def select_candidates(
    class_probs: np.ndarray,
    box_dists: np.ndarray,
    input_hw: tuple[int, int],
    valid_hw: tuple[float, float],
    config: SalientConfig,
) -> Candidates:
    """Decode NanoDet's outputs of one image into at most ``max_candidates`` boxes.

    Parameters
    ----------
    class_probs:
        ``float32[N, 80]`` sigmoid probabilities per cell.
    box_dists:
        ``float32[N, 44]`` box-side distributions per cell.
    input_hw:
        ``(H, W)`` of the network input.
    valid_hw:
        ``(h, w)`` of the image inside the input (the rest is padding).
    config:
        Thresholds.
    """
    probs = torch.from_numpy(np.asarray(class_probs, np.float32))
    scores, labels = probs.max(dim=1)
    keep = torch.nonzero(scores >= config.candidate_threshold)[:, 0]
    centers, strides = cell_centers(*input_hw)
    dists = torch.from_numpy(np.asarray(box_dists, np.float32))[keep]  # only cells kept
    boxes = decode_boxes(dists[None], centers[keep], strides[keep])[0]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0.0, float(valid_hw[1]))
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0.0, float(valid_hw[0]))
    sizes = boxes[:, 2:] - boxes[:, :2]
    large = torch.nonzero((sizes >= 4.0).all(dim=1))[:, 0]
    keep, boxes = keep[large], boxes[large]
    order = batched_nms(boxes, scores[keep], labels[keep], config.candidate_nms_iou)
    order = order[: config.max_candidates]
    keep, boxes = keep[order], boxes[order]
    return Candidates(
        boxes=boxes.numpy().astype(np.float32),
        scores=scores[keep].numpy().astype(np.float32),
        class_probs=probs[keep].numpy().astype(np.float32),
    )


def fused_class_probs(candidates: Candidates, index: np.ndarray, iou: float) -> np.ndarray:
    """Class evidence of each kept candidate, fused with the boxes it duplicates.

    Class-aware NMS keeps one box per class on an object (a dog also found as "bear"),
    and the saliency head may prefer any of them; each kept box takes, per class, the
    highest probability among the candidates whose box overlaps it by at least ``iou``.

    Parameters
    ----------
    candidates:
        All candidates of the frame.
    index:
        ``int[M]`` the kept ones.
    iou:
        Box IoU from which two candidates frame the same object.

    Returns
    -------
    numpy.ndarray
        ``float32[M, 80]``.
    """
    boxes = torch.from_numpy(candidates.boxes)
    same = (box_iou(boxes[index], boxes) >= iou).numpy()
    probs = candidates.class_probs
    return np.stack([probs[row].max(axis=0) for row in same]).astype(np.float32).reshape(
        len(index), probs.shape[1]
    )


def drop_parts(masks: np.ndarray, order: np.ndarray, max_overlap: float) -> np.ndarray:
    """Indices of masks that are not mostly covered by stronger ones.

    Parameters
    ----------
    masks:
        ``bool[K, H, W]``.
    order:
        ``int[K]`` indices from strongest to weakest.
    max_overlap:
        A mask lying by at least this fraction inside the union of the stronger kept
        masks (or empty) is dropped.

    Returns
    -------
    numpy.ndarray
        ``int64[M]`` kept indices, strongest first.
    """
    if len(order) == 0:
        return np.zeros(0, np.int64)
    covered = np.zeros(masks.shape[1:], dtype=bool)
    kept = []
    for k in order:
        area = int(masks[k].sum())
        if area == 0 or np.count_nonzero(masks[k] & covered) >= max_overlap * area:
            continue
        kept.append(int(k))
        covered |= masks[k]
    return np.asarray(kept, dtype=np.int64)


def salient_candidates(
    saliency: np.ndarray, scores: np.ndarray, config: SalientConfig
) -> np.ndarray:
    """Indices of the candidates reported as salient instances.

    Parameters
    ----------
    saliency:
        ``float[K]`` saliency probability of each candidate.
    scores:
        ``float[K]`` detector class probability of each candidate.
    config:
        ``saliency_threshold`` and ``fallback_score``.

    Returns
    -------
    numpy.ndarray
        ``int64[M]`` every candidate at or above the saliency threshold; if there is
        none, the most confident detection if its class probability reaches
        ``fallback_score`` (``M = 1``; the saliency head's ranking among candidates it
        all rejects is uninformative), else nothing.
    """
    salient = np.flatnonzero(saliency >= config.saliency_threshold)
    if len(salient):
        return salient
    if len(scores) == 0 or config.fallback_score >= 1.0:
        return np.zeros(0, np.int64)
    best = int(np.argmax(scores))
    if scores[best] < config.fallback_score:
        return np.zeros(0, np.int64)
    return np.asarray([best], np.int64)


class SalientPredictor:
    """Predictor around a dense and an instance graph runner (any backend).

    Parameters
    ----------
    config:
        Model settings (input size, thresholds).
    dense, saliency, mask:
        Run the three graphs.
    refine:
        Runs the mask refiner; required when ``config.refiner_size`` is set.
    """

    def __init__(
        self,
        config: SalientConfig,
        dense: DenseRunner,
        saliency: SaliencyRunner,
        mask: MaskRunner,
        refine: RefineRunner | None = None,
    ) -> None:
        if config.refiner_size and refine is None:
            raise ValueError("the model has a mask refiner (refiner_size > 0): pass its runner")
        self.config = config
        self.class_names: tuple[str, ...] = tuple(config.class_names)
        self._dense = dense
        self._saliency = saliency
        self._mask = mask
        self._refine = refine if config.refiner_size else None

    def __call__(self, image: np.ndarray) -> Instances:
        """Salient instances of ``uint8[H, W, 3]`` RGB; masks come back at ``H x W``."""
        cfg = self.config
        height, width = image.shape[:2]
        inputs, scale = letterbox(image, cfg.input_size)
        valid_hw = (height * scale, width * scale)
        p3, p4, class_probs, box_dists = self._dense(inputs)
        candidates = select_candidates(
            class_probs[0], box_dists[0], inputs.shape[2:], valid_hw, cfg
        )
        count = len(candidates.boxes)
        if count == 0:
            return Instances.empty(height, width, cfg.num_classes)
        rois = np.concatenate([np.zeros((count, 1), np.float32), candidates.boxes], axis=1)
        geometry = candidate_geometry(
            torch.from_numpy(candidates.boxes), torch.from_numpy(candidates.scores), valid_hw
        ).numpy()
        saliency_logits = self._saliency(p3, p4, rois, geometry.astype(np.float32))
        saliency = 1.0 / (1.0 + np.exp(-np.asarray(saliency_logits, np.float64)))
        salient = salient_candidates(saliency, candidates.scores, cfg)
        if len(salient) == 0:
            return Instances.empty(height, width, cfg.num_classes)
        mask_logits, embeddings = self._mask(p3, p4, inputs, rois[salient])
        if cfg.fallback_box_mask and saliency[salient].max() < cfg.saliency_threshold:
            masks = box_masks_in_frame(candidates.boxes[salient], valid_hw, (height, width))
        else:
            windows = expand_boxes(
                torch.from_numpy(candidates.boxes[salient]), cfg.context_ratio
            ).numpy()
            probs = 1.0 / (1.0 + np.exp(-np.asarray(mask_logits, np.float32)))
            masks = paste_masks_in_frame(
                probs, windows, windows, valid_hw, (height, width), cfg.mask_threshold
            )
        order = np.argsort(-saliency[salient], kind="stable")
        kept = drop_parts(masks, order, cfg.duplicate_overlap)[: cfg.max_instances]
        if len(kept) == 0:
            return Instances.empty(height, width, cfg.num_classes)
        index = salient[kept]
        masks = masks[kept]
        boxes = candidates.boxes[index] / scale
        if self._refine is not None:
            masks = refine_masks(
                self._refine, image, masks, size=cfg.refiner_size, margin=cfg.refiner_margin,
                threshold=cfg.mask_threshold, boxes=boxes,
                flip=cfg.refiner_mirrors(len(masks)),
            )
        classes = class_distribution(
            torch.from_numpy(fused_class_probs(candidates, index, cfg.candidate_nms_iou)),
            cfg.min_class_probability,
            cfg.class_sharpness,
        ).numpy()
        scores = saliency[index].astype(np.float32)
        return Instances(
            masks=masks,
            boxes=boxes,
            class_probs=classes,
            saliency=scores,
            embeddings=np.asarray(embeddings, np.float32)[kept],
            scores=scores,
        )


class SalientTorchPredictor(SalientPredictor):
    """Eager PyTorch runtime of :class:`SalientNanoDet`.

    Parameters
    ----------
    model:
        The network (run in eval mode on ``device``).
    device:
        Torch device.
    """

    def __init__(self, model: SalientNanoDet, *, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = device
        super().__init__(
            model.config,
            self._run_dense,
            functools.partial(self._run, model.saliency_head),
            functools.partial(self._run, model.mask_head),
            None if model.refiner is None else functools.partial(self._run, model.refiner),
        )

    @torch.inference_mode()
    def _run_dense(self, images: np.ndarray) -> tuple[np.ndarray, ...]:
        p3, p4, _, class_probs, box_dists = self.model.detector(
            torch.from_numpy(images).to(self.device)
        )
        return tuple(t.cpu().numpy() for t in (p3, p4, class_probs, box_dists))

    @torch.inference_mode()
    def _run(self, head: torch.nn.Module, *inputs: np.ndarray) -> np.ndarray | tuple:
        outputs = head(*(torch.from_numpy(x).to(self.device) for x in inputs))
        if isinstance(outputs, torch.Tensor):
            return outputs.cpu().numpy()
        return tuple(t.cpu().numpy() for t in outputs)
