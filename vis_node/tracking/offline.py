"""Offline (whole-video) refinement by SISO 4.3 recurrent instance propagation.

:func:`recurrent_propagation`: instances of frames with a higher frame confidence
(Algorithm 1) are flow-warped into their neighbours; a neighbour adopts them when that
raises its frame confidence. Sweeps repeat until the mean frame confidence stops
rising. The other offline method, Propose-Reduce, is in
:mod:`vis_node.tracking.propose_reduce`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vis_node.structures.geometry import boxes_from_masks
from vis_node.structures.instances import Instances
from vis_node.tracking.flow import FlowEstimator, warp_masks
from vis_node.tracking.flow_table import FlowTable
from vis_node.tracking.fusion import FusionConfig, fuse_instances
from vis_node.tracking.offline_config import OfflineConfig


@dataclass(frozen=True)
class PropagationResult:
    """Output of :func:`recurrent_propagation`.

    Attributes
    ----------
    instances:
        Per frame, the instance set after propagation (own and adopted instances, full
        regions ``R_i``).
    confident:
        Per frame, the confident instances of Algorithm 1 on that set, masks cut to the
        salient region and ``saliency`` = their IoU score.
    frame_confidence:
        ``float64[T]`` final frame confidences.
    mean_confidence:
        Mean frame confidence before the first sweep and after each sweep.
    """

    instances: list[Instances]
    confident: list[Instances]
    frame_confidence: np.ndarray
    mean_confidence: list[float]


def _concat(a: Instances, b: Instances) -> Instances:
    """Instances of ``a`` followed by those of ``b`` (embeddings dropped if either lacks them)."""
    embeddings = (
        None
        if a.embeddings is None or b.embeddings is None
        else np.concatenate([a.embeddings, b.embeddings])
    )
    return Instances(
        masks=np.concatenate([a.masks, b.masks]),
        boxes=np.concatenate([a.boxes, b.boxes]),
        class_probs=np.concatenate([a.class_probs, b.class_probs]),
        saliency=np.concatenate([a.saliency, b.saliency]),
        embeddings=embeddings,
        track_ids=np.concatenate([a.track_ids, b.track_ids]),
        scores=np.concatenate([a.scores, b.scores]),
    )


def recurrent_propagation(
    frames: Sequence[np.ndarray],
    instances: Sequence[Instances],
    salient: Sequence[np.ndarray],
    flow: FlowEstimator,
    theta: float = FusionConfig.theta,
    beta2: float = FusionConfig.beta2,
    max_sweeps: int = OfflineConfig.max_sweeps,
    tolerance: float = 1e-4,
) -> PropagationResult:
    """SISO recurrent instance propagation (section 4.3).

    Frames are visited in descending order of frame confidence. A frame whose
    confidence exceeds that of a neighbour (``t - 1`` or ``t + 1``) sends its confident
    instances (their full regions, warped by optical flow) to that neighbour; the
    neighbour re-runs Algorithm 1 on its instances plus the propagated ones and keeps
    them if its frame confidence increases. Sweeps repeat until the mean frame
    confidence rises by less than ``tolerance`` or after ``max_sweeps`` sweeps (the
    paper observes about five).

    Parameters
    ----------
    frames:
        ``T`` RGB frames ``uint8[H, W, 3]``.
    instances:
        ``T`` per-frame semantic instances (``labels`` and ``scores`` are ``C_i`` and
        ``S_cls``).
    salient:
        ``T`` salient-region masks ``bool[H, W]``.
    flow:
        Optical-flow estimator; the flow of each neighbouring pair that propagation uses
        is computed once, when first needed.
    theta, beta2:
        Algorithm 1 parameters (:class:`~vis_node.tracking.fusion.FusionConfig`).
    max_sweeps:
        Most propagation sweeps.
    tolerance:
        Smallest rise of the mean frame confidence that continues the sweeps.

    Returns
    -------
    PropagationResult
    """
    count = len(frames)
    if not count == len(instances) == len(salient):
        raise ValueError(
            f"need as many instance sets and salient masks as frames, got {count}, "
            f"{len(instances)} and {len(salient)}"
        )
    if max_sweeps < 1:
        raise ValueError(f"max_sweeps must be >= 1, got {max_sweeps}")
    # Each pair's flow is computed on first use and kept on the estimator's reduced grid
    # (upscaled for each warp): full-resolution flows of every pair would take about
    # 6.6 MB per 854 x 480 frame.
    pairs = FlowTable(flow, frames)
    current = list(instances)
    fused = [fuse_instances(inst, sal, theta, beta2) for inst, sal in zip(current, salient)]
    confident = [c for c, _, _ in fused]
    confidence = np.array([fc for _, fc, _ in fused], dtype=np.float64)
    selected = [sel for _, _, sel in fused]
    history = [float(confidence.mean()) if count else 0.0]
    for _ in range(max_sweeps):
        for source in np.argsort(-confidence, kind="stable").tolist():
            for target in (source - 1, source + 1):
                if not 0 <= target < count or confidence[source] <= confidence[target]:
                    continue
                sent = current[source].select(selected[source])
                moved = warp_masks(sent.masks, pairs(frames[target], frames[source]))
                present = moved.any(axis=(1, 2))
                if not present.any():
                    continue
                sent = dataclasses.replace(
                    sent.select(present),
                    masks=moved[present],
                    boxes=boxes_from_masks(moved[present]),
                )
                merged = _concat(current[target], sent)
                new_confident, new_confidence, new_selected = fuse_instances(
                    merged, salient[target], theta, beta2
                )
                if new_confidence > confidence[target]:
                    current[target] = merged
                    confident[target] = new_confident
                    confidence[target] = new_confidence
                    selected[target] = new_selected
        history.append(float(confidence.mean()))
        if history[-1] - history[-2] < tolerance:
            break
    return PropagationResult(current, confident, confidence, history)
