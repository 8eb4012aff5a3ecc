"""Propose-Reduce (paper 004) offline tracking, with optical flow for propagation.

* :func:`sequence_nms`: sequence reduction (section 3.2), i.e. non-maximum suppression
  over whole instance sequences with the sequence score of Eq. 2 and the sequence mask
  IoU of Eq. 3.
* :func:`propose_reduce`: the whole paradigm (section 3) with optical flow in place of
  the Seq-Prop head: key-frame instances are propagated through the video into
  sequence proposals, which category-aware sequence NMS reduces to the final tracks
  (:class:`SequenceTrack`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vis_node.structures.geometry import mask_box
from vis_node.structures.instances import Instances
from vis_node.tracking.flow import FlowEstimator, warp_masks


def sequence_score(class_scores: np.ndarray) -> float:
    """Propose-Reduce Eq. 2: the largest class score averaged over all ``T`` frames.

    Parameters
    ----------
    class_scores:
        ``float[T, C]`` per-frame class scores of one sequence (zeros where absent).
    """
    class_scores = np.asarray(class_scores, dtype=np.float64)
    return float(class_scores.mean(axis=0).max()) if class_scores.size else 0.0


def sequence_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Propose-Reduce Eq. 3: summed intersections over summed unions of two sequences.

    Parameters
    ----------
    a, b:
        ``bool[T, H, W]`` mask sequences (empty frames where an instance is absent).
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"sequence shapes differ: {a.shape} vs {b.shape}")
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else 0.0


def sequence_nms(
    masks: Sequence[np.ndarray], class_scores: Sequence[np.ndarray], iou_threshold: float = 0.5
) -> np.ndarray:
    """Propose-Reduce sequence reduction: NMS over instance sequences.

    Parameters
    ----------
    masks:
        ``K`` mask sequences ``bool[T, H, W]``.
    class_scores:
        ``K`` class-score sequences ``float[T, C]``.
    iou_threshold:
        A sequence is suppressed when its :func:`sequence_iou` with a kept,
        higher-scoring sequence exceeds this.

    Returns
    -------
    numpy.ndarray
        ``int64[K']`` indices of the kept sequences, best score first.
    """
    if len(masks) != len(class_scores):
        raise ValueError(f"got {len(masks)} mask sequences but {len(class_scores)} score sequences")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    scores = np.array([sequence_score(c) for c in class_scores])
    kept: list[int] = []
    for index in np.argsort(-scores, kind="stable").tolist():
        if all(sequence_iou(masks[index], masks[k]) <= iou_threshold for k in kept):
            kept.append(index)
    return np.array(kept, dtype=np.int64)


@dataclass(frozen=True)
class SequenceTrack:
    """One instance sequence kept by :func:`propose_reduce`.

    Attributes
    ----------
    track_id:
        Id in ``1..N``, in descending order of ``score``.
    masks:
        ``bool[T, H, W]`` mask per frame (empty where the instance is absent).
    class_scores:
        ``float32[T, C]`` class probabilities of the supporting detection per frame
        (zeros where absent or carried by optical flow alone).
    category:
        Class id: argmax over ``C`` of ``class_scores`` summed over frames.
    score:
        Sequence score (Eq. 2, :func:`sequence_score`) in ``[0, 1]``.
    """

    track_id: int
    masks: np.ndarray
    class_scores: np.ndarray
    category: int
    score: float


def key_frame_indices(count: int, key_frames: int) -> np.ndarray:
    """Propose-Reduce Eq. 1: ``K`` key frames at the fixed interval ``max(T // K, 1)``.

    Parameters
    ----------
    count:
        Number of frames ``T``.
    key_frames:
        Number of key frames ``K`` (>= 1); fewer are returned when ``K > T``.

    Returns
    -------
    numpy.ndarray
        ``int64[min(K, T)]`` increasing frame indices, the first being 0.
    """
    if key_frames < 1:
        raise ValueError(f"key_frames must be >= 1, got {key_frames}")
    step = max(count // key_frames, 1)
    return np.arange(min(key_frames, count), dtype=np.int64) * step


def _mask_ious(mask: np.ndarray, masks: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """IoU of one mask with each of several, counting intersections in its box only.

    Parameters
    ----------
    mask:
        ``bool[H, W]`` non-empty mask.
    masks:
        ``bool[N, H, W]`` masks.
    areas:
        ``int[N]`` pixel counts of ``masks``.

    Returns
    -------
    numpy.ndarray
        ``float64[N]`` IoUs.
    """
    box = mask_box(mask)
    if box is None:
        return np.zeros(len(masks))
    x1, y1, x2, y2 = box
    window = (slice(y1, y2), slice(x1, x2))
    inter = np.count_nonzero(masks[:, window[0], window[1]] & mask[window], axis=(1, 2))
    return inter / np.maximum(areas + np.count_nonzero(mask) - inter, 1)


def propose_reduce(
    frames_rgb: Sequence[np.ndarray],
    per_frame_instances: Sequence[Instances],
    flow: FlowEstimator,
    *,
    key_frames: int = 5,
    snap_iou: float = 0.5,
    nms_iou: float = 0.5,
    score_threshold: float = 0.0,
    max_gap: int = 10,
) -> list[SequenceTrack]:
    """Propose-Reduce (paper 004, section 3) with optical-flow propagation.

    1. Key frames are chosen by Eq. 1 (:func:`key_frame_indices`).
    2. Every instance of a key frame seeds a sequence proposal: its mask is warped
       frame by frame forwards to the end and backwards to the start of the video. At
       each frame the warped mask is replaced by the frame's best-overlapping
       detection (mask and class probabilities) when their IoU is at least
       ``snap_iou``; otherwise the warped mask is kept with class scores 0 (no
       detection supports it, so it adds nothing to the sequence score). A direction
       stops when the mask vanishes or after ``max_gap`` frames in a row without
       support.
    3. Sequences scored below ``score_threshold`` (Eq. 2) are dropped, except that
       the best-scoring one stays when all would go: a video whose frames hold
       detections never comes out empty (with the ``real`` model the threshold emptied
       whole held-out sequences, e.g. an airborne motorbike whose class probability
       stays low). The rest are reduced by :func:`sequence_nms` (Eq. 3 IoU)
       separately per category, so sequences of different categories never suppress
       each other.

    Parameters
    ----------
    frames_rgb:
        ``T`` frames ``uint8[H, W, 3]`` RGB.
    per_frame_instances:
        ``T`` per-frame detections with ``C`` classes (masks ``bool[N_t, H, W]``).
    flow:
        Optical-flow estimator; flows between consecutive frames are computed once, on
        first use.
    key_frames:
        Number of key frames ``K``.
    snap_iou:
        Smallest IoU in ``[0, 1]`` between a warped mask and a detection to adopt the
        detection.
    nms_iou:
        Sequence IoU above which the lower-scoring sequence of a category is
        suppressed.
    score_threshold:
        Smallest sequence score kept (the best sequence stays when none reaches it).
    max_gap:
        Most consecutive frames a mask is carried by flow alone (>= 0).

    Returns
    -------
    list of SequenceTrack
        Kept sequences, best score first, with ids ``1..N``.

    Raises
    ------
    ValueError
        If the frame and instance counts differ, a threshold lies outside ``[0, 1]``
        or ``max_gap`` is negative.
    """
    count = len(frames_rgb)
    if count != len(per_frame_instances):
        raise ValueError(
            f"need one instance set per frame, got {count} frames and "
            f"{len(per_frame_instances)} instance sets"
        )
    for name, value in (("snap_iou", snap_iou), ("nms_iou", nms_iou)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    if count == 0:
        return []
    height, width = per_frame_instances[0].image_size
    classes = per_frame_instances[0].class_probs.shape[1]
    flows: dict[tuple[int, int], np.ndarray] = {}

    def warp(mask: np.ndarray, source: int, target: int) -> np.ndarray:
        if (source, target) not in flows:
            flows[(source, target)] = flow(frames_rgb[target], frames_rgb[source])
        return warp_masks(mask[None], flows[(source, target)])[0]

    areas = [np.count_nonzero(i.masks, axis=(1, 2)) for i in per_frame_instances]
    proposals: list[tuple[np.ndarray, np.ndarray]] = []
    best_dropped: tuple[float, np.ndarray, np.ndarray] | None = None
    for key in key_frame_indices(count, key_frames).tolist():
        seeds = per_frame_instances[key]
        for seed in np.flatnonzero(seeds.masks.any(axis=(1, 2))).tolist():
            masks = np.zeros((count, height, width), dtype=bool)
            scores = np.zeros((count, classes), dtype=np.float32)
            masks[key] = seeds.masks[seed]
            scores[key] = seeds.class_probs[seed]
            for step in (1, -1):
                mask, t, gap = seeds.masks[seed], key + step, 0
                while 0 <= t < count:
                    mask = warp(mask, t - step, t)
                    if not mask.any():
                        break
                    detected = per_frame_instances[t]
                    ious = _mask_ious(mask, detected.masks, areas[t])
                    if len(detected) and ious.max() >= snap_iou:
                        best = int(ious.argmax())
                        mask, scores[t] = detected.masks[best], detected.class_probs[best]
                        gap = 0
                    else:
                        gap += 1
                        if gap > max_gap:
                            break
                    masks[t] = mask
                    t += step
            score = sequence_score(scores)
            if score >= score_threshold:
                proposals.append((masks, scores))
            elif best_dropped is None or score > best_dropped[0]:
                best_dropped = (score, masks, scores)
    if not proposals and best_dropped is not None:
        proposals.append(best_dropped[1:])
    categories = np.array([int(s.sum(axis=0).argmax()) for _, s in proposals], dtype=np.int64)
    kept: list[int] = []
    for category in np.unique(categories).tolist():
        members = np.flatnonzero(categories == category)
        chosen = sequence_nms(
            [proposals[i][0] for i in members], [proposals[i][1] for i in members], nms_iou
        )
        kept.extend(members[chosen].tolist())
    ranked = sorted(kept, key=lambda i: (-sequence_score(proposals[i][1]), i))
    return [
        SequenceTrack(
            track_id=rank + 1,
            masks=proposals[i][0],
            class_scores=proposals[i][1],
            category=int(categories[i]),
            score=sequence_score(proposals[i][1]),
        )
        for rank, i in enumerate(ranked)
    ]
