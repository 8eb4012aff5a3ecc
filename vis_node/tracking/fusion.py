"""SISO two-stream fusion: sequential fusion (Algorithm 1) and frame confidence.

Any semantic instance segmenter becomes salient-only by fusing its instances with a
salient-region mask; the mask can come from a saliency network or, with
:func:`~vis_node.tracking.motion_gate.motion_saliency`, from optical flow against a
background-motion model; :class:`~vis_node.tracking.motion_gate.MotionSaliencyGate`
applies the fusion online, frame by frame.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vis_node.structures.instances import Instances, boxes_from_masks


@dataclass(frozen=True)
class FusionConfig:
    """Settings of SISO's sequential fusion (Algorithm 1), online and offline.

    The one place their defaults are written (the paper's values); every function and
    class of this module and :func:`~vis_node.tracking.offline.recurrent_propagation`
    default to them.

    Attributes
    ----------
    theta:
        SISO fusion: IoU with the remaining salient region an instance must exceed to
        be selected (fraction, paper 0.1).
    beta2:
        SISO fusion: beta^2 of the instance confidence, weighting the salient-region
        IoU against the class score (paper 0.3).
    motion_gate:
        Keep only the instances covering the frame's moving salient region
        (:class:`~vis_node.tracking.motion_gate.MotionSaliencyGate`, SISO fusion with
        motion saliency from optical
        flow); its frame confidence is the SISO one. On by default: on the 12 shared
        DAVIS-2016 sequences, held out by 3-fold cross-validation, it drops spectators,
        parked cars and other still objects the model marks salient (J&F 0.469 ->
        0.502, models/real/MODEL_CARD.md). Offline mode gates every frame's detections
        the same way before its own fusion (held out with the shipped model: SISO
        propagation 0.602 -> 0.652, Propose-Reduce 0.554 -> 0.575).
    """

    theta: float = 0.1
    beta2: float = 0.3
    motion_gate: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.theta < 1.0:
            raise ValueError(f"theta must lie in [0, 1), got {self.theta}")
        if self.beta2 < 0.0:
            raise ValueError(f"beta2 must be >= 0, got {self.beta2}")


def binarise_saliency(saliency: np.ndarray) -> np.ndarray:
    """SISO adaptive threshold: pixels above mean + standard deviation are salient.

    Parameters
    ----------
    saliency:
        ``float[H, W]`` saliency map.

    Returns
    -------
    numpy.ndarray
        ``bool[H, W]`` salient-region mask (empty for a constant map).
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.ndim != 2:
        raise ValueError(f"saliency must be a 2-D [H, W] map, got shape {saliency.shape}")
    return saliency > saliency.mean() + saliency.std()


def confidence_score(
    seg_score: float, cls_score: float, beta2: float = FusionConfig.beta2
) -> float:
    """SISO instance confidence ``CS = (1 + b2) S_seg S_cls / (b2 S_seg + S_cls)``.

    Parameters
    ----------
    seg_score:
        ``S_seg``, IoU of the instance with the salient-region mask.
    cls_score:
        ``S_cls``, the instance's classification score.
    beta2:
        ``beta^2`` (paper: 0.3, weighting the segmentation score more).

    Returns
    -------
    float
        The confidence, 0 when both scores are 0.
    """
    denominator = beta2 * seg_score + cls_score
    if denominator <= 0:
        return 0.0
    return (1.0 + beta2) * seg_score * cls_score / denominator


@dataclass(frozen=True)
class FusionResult:
    """Output of :func:`sequential_fusion`.

    Attributes
    ----------
    fusion_map:
        ``int64[H, W]`` class id of the selected instance at each pixel, 0 elsewhere.
    selected:
        ``int64[K]`` indices of the confident instances, in selection order.
    regions:
        ``bool[K, H, W]`` their new regions ``R_j ∩ M`` (M the remaining salient mask
        when ``j`` was selected).
    seg_scores:
        ``float64[K]`` their IoU with the remaining salient mask when selected.
    confidences:
        ``float64[K]`` their confidence scores CS.
    frame_confidence:
        Mean of ``confidences``; 0 when nothing was selected.
    """

    fusion_map: np.ndarray
    selected: np.ndarray
    regions: np.ndarray
    seg_scores: np.ndarray
    confidences: np.ndarray
    frame_confidence: float


def sequential_fusion(
    salient: np.ndarray,
    masks: np.ndarray,
    labels: np.ndarray,
    cls_scores: np.ndarray,
    theta: float = FusionConfig.theta,
    beta2: float = FusionConfig.beta2,
) -> FusionResult:
    """SISO Algorithm 1: sequential fusion and frame confidence.

    Repeatedly take the instance with the largest IoU against the *remaining* salient
    mask ``M``, paint its overlap ``R_j ∩ M`` with its class in the fusion map, remove
    that overlap from ``M`` and drop the instance, until the best IoU is at most
    ``theta`` (the paper regards such instances as not in the salient region) or no
    instance is left. The frame confidence is the mean CS of the selected instances.

    Parameters
    ----------
    salient:
        ``bool[H, W]`` salient-region mask ``M``.
    masks:
        ``bool[N, H, W]`` instance regions ``R_i``.
    labels:
        ``int[N]`` class ids ``C_i`` (> 0).
    cls_scores:
        ``float[N]`` classification scores ``S_cls``.
    theta:
        IoU threshold (paper: 0.1).
    beta2:
        ``beta^2`` of the confidence score (paper: 0.3).

    Returns
    -------
    FusionResult
    """
    remaining = np.array(salient, dtype=bool)
    masks = np.asarray(masks, dtype=bool)
    labels = np.asarray(labels, dtype=np.int64)
    cls_scores = np.asarray(cls_scores, dtype=np.float64)
    if masks.ndim != 3 or masks.shape[1:] != remaining.shape:
        raise ValueError(
            f"masks must be bool[N, {remaining.shape[0]}, {remaining.shape[1]}], got {masks.shape}"
        )
    n = masks.shape[0]
    if labels.shape != (n,) or cls_scores.shape != (n,):
        raise ValueError(f"labels and cls_scores must have shape ({n},)")
    flat = masks.reshape(n, remaining.size)
    areas = flat.sum(axis=1).astype(np.float64)
    fusion_map = np.zeros(remaining.shape, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    selected: list[int] = []
    regions: list[np.ndarray] = []
    seg_scores: list[float] = []
    confidences: list[float] = []
    while alive.any():
        m_flat = remaining.ravel()
        inter = flat[:, m_flat].sum(axis=1).astype(np.float64)
        union = areas + m_flat.sum() - inter
        ious = np.divide(inter, union, out=np.zeros(n), where=union > 0)
        ious[~alive] = -1.0
        j = int(np.argmax(ious))
        if ious[j] <= theta:
            break
        region = masks[j] & remaining
        fusion_map[region] = labels[j]
        remaining &= ~region
        alive[j] = False
        selected.append(j)
        regions.append(region)
        seg_scores.append(float(ious[j]))
        confidences.append(confidence_score(float(ious[j]), float(cls_scores[j]), beta2))
    return FusionResult(
        fusion_map=fusion_map,
        selected=np.array(selected, dtype=np.int64),
        regions=np.array(regions, dtype=bool).reshape(len(selected), *remaining.shape),
        seg_scores=np.array(seg_scores, dtype=np.float64),
        confidences=np.array(confidences, dtype=np.float64),
        frame_confidence=float(np.mean(confidences)) if confidences else 0.0,
    )


def fuse_instances(
    instances: Instances,
    salient: np.ndarray,
    theta: float = FusionConfig.theta,
    beta2: float = FusionConfig.beta2,
) -> tuple[Instances, float, np.ndarray]:
    """Keep only the salient instances, cut to the salient region (Algorithm 1).

    Parameters
    ----------
    instances:
        Semantic instances of one frame; ``labels`` and ``scores`` give ``C_i`` and
        ``S_cls``.
    salient:
        ``bool[H, W]`` salient-region mask.
    theta, beta2:
        As in :func:`sequential_fusion`.

    Returns
    -------
    instances, frame_confidence, selected:
        The selected instances in selection order with masks ``R_j ∩ M``, recomputed
        boxes and ``saliency`` set to ``S_seg``; the frame confidence; and ``int[K]``
        indices of the selected instances in the input.
    """
    result = sequential_fusion(
        salient, instances.masks, instances.labels, instances.scores, theta, beta2
    )
    kept = dataclasses.replace(
        instances.select(result.selected),
        masks=result.regions,
        boxes=boxes_from_masks(result.regions),
        saliency=result.seg_scores.astype(np.float32),
    )
    return kept, result.frame_confidence, result.selected
