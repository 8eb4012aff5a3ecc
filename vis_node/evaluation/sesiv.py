"""SESIV semantic-gated J and F: JS, FS and OS (SISO paper, Eq. 1-3).

Per frame and object, ``JS = J * [c_pred == c_gt] * [c_pred > 0] * [c_gt > 0]`` (FS
likewise with F), where an instance's class in a frame is the most common class label
inside its mask. Frames where the object is absent from the ground truth score 0. The
objects counted are those of the first ground-truth frame. Predicted ids are mapped to
ground-truth ids once per video, greedily by IoU at the first frame where the
prediction is non-empty. See ``docs/METRICS.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vis_node.evaluation.davis import f_measure, iou_matrix, jaccard
from vis_node.evaluation.loading import SequencePair


def majority_label(semantics: np.ndarray, mask: np.ndarray) -> int:
    """Most common class id inside a mask (ties: the smaller id); 0 for an empty mask.

    Parameters
    ----------
    semantics:
        ``uint8[H, W]`` class-id map.
    mask:
        ``bool[H, W]``.
    """
    labels = np.asarray(semantics)[np.asarray(mask, bool)]
    if labels.size == 0:
        return 0
    return int(np.bincount(labels.ravel()).argmax())


def greedy_id_mapping(
    pred_ids: np.ndarray, gt_ids: np.ndarray, void: np.ndarray | None = None
) -> dict[int, int]:
    """Map predicted ids to GT ids at the first frame with a non-empty prediction.

    At that frame, repeatedly take the (prediction, GT) pair of largest IoU (> 0),
    record it and remove both; ties go to the smaller prediction id, then GT id.

    Parameters
    ----------
    pred_ids, gt_ids:
        ``int[T, H, W]`` id maps of one video.
    void:
        ``bool[T, H, W]`` ignored pixels, or ``None``.

    Returns
    -------
    dict
        Predicted id -> GT id; empty when the prediction is empty on every frame.
    """
    nonempty = np.flatnonzero(np.asarray(pred_ids).reshape(len(pred_ids), -1).any(axis=1))
    if nonempty.size == 0:
        return {}
    t = int(nonempty[0])
    preds, gts, iou = iou_matrix(pred_ids[t], gt_ids[t], None if void is None else void[t])
    mapping: dict[int, int] = {}
    iou = iou.copy()
    while iou.size and iou.max() > 0:
        a, k = np.unravel_index(int(np.argmax(iou)), iou.shape)
        mapping[preds[a]] = gts[k]
        iou[a, :] = 0
        iou[:, k] = 0
    return mapping


def sequence_scores(pair: SequencePair) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-object per-frame JS and FS of one video.

    Parameters
    ----------
    pair:
        Sequence with ``gt_semantics`` and ``pred_semantics`` set.

    Returns
    -------
    dict
        GT object id (present in the first GT frame) -> (``float[T]`` JS, ``float[T]`` FS).

    Raises
    ------
    ValueError
        If the pair carries no semantics.
    """
    if pair.gt_semantics is None or pair.pred_semantics is None:
        raise ValueError("the sesiv protocol needs both predicted and ground-truth semantics")
    objects = [int(i) for i in np.unique(pair.gt[0]) if i != 0]
    mapping = greedy_id_mapping(pair.pred, pair.gt, pair.void)
    to_pred = {gt_id: pred_id for pred_id, gt_id in mapping.items()}
    num_frames = len(pair.gt)
    scores: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for obj in objects:
        js = np.zeros(num_frames)
        fs = np.zeros(num_frames)
        pred_id = to_pred.get(obj)
        for t in range(num_frames):
            gt_mask = pair.gt[t] == obj
            if pred_id is None or not gt_mask.any():
                continue
            pred_mask = pair.pred[t] == pred_id
            c_gt = majority_label(pair.gt_semantics[t], gt_mask)
            c_pred = majority_label(pair.pred_semantics[t], pred_mask)
            if c_pred != c_gt or c_pred == 0:
                continue
            void = None if pair.void is None else pair.void[t]
            js[t] = jaccard(pred_mask, gt_mask, void)
            fs[t] = f_measure(pred_mask, gt_mask, void)
        scores[obj] = (js, fs)
    return scores


def evaluate_sesiv(pairs: Iterable[SequencePair]) -> dict:
    """SESIV protocol over videos.

    Returns
    -------
    dict
        ``protocol``, ``num_sequences``, ``num_objects``, ``JS``, ``FS``, ``OS``
        (means over all counted objects of their frame means) and ``per_sequence``
        (``seq -> {JS, FS, OS}``).

    Raises
    ------
    ValueError
        If no video has an object in its first GT frame.
    """
    object_js: list[float] = []
    object_fs: list[float] = []
    per_sequence: dict[str, dict[str, float]] = {}
    count = 0
    for pair in pairs:
        count += 1
        scores = sequence_scores(pair)
        if not scores:
            continue
        js = [float(v[0].mean()) for v in scores.values()]
        fs = [float(v[1].mean()) for v in scores.values()]
        object_js += js
        object_fs += fs
        seq_js, seq_fs = float(np.mean(js)), float(np.mean(fs))
        per_sequence[pair.name] = {"JS": seq_js, "FS": seq_fs, "OS": (seq_js + seq_fs) / 2}
    if not object_js:
        raise ValueError("no object in any first ground-truth frame: nothing to score")
    js_all, fs_all = float(np.mean(object_js)), float(np.mean(object_fs))
    return {
        "protocol": "sesiv",
        "num_sequences": count,
        "num_objects": len(object_js),
        "JS": js_all,
        "FS": fs_all,
        "OS": (js_all + fs_all) / 2,
        "per_sequence": per_sequence,
    }
