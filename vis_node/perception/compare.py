"""Runtime accuracy: how closely one runtime's instances agree with another's.

:func:`compare_predictions` runs two predictors (e.g. eager FP32 and ONNX Runtime or a
TensorRT INT8 engine) on the same frames and reports instance counts, mask IoU, score,
box and class differences of the instances it pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from vis_node.perception.predictor import Predictor
from vis_node.structures.instances import Instances


def compare_predictions(
    reference: Predictor, candidate: Predictor, images: Sequence[np.ndarray]
) -> dict[str, float]:
    """Agreement of a candidate runtime with a reference on the same frames.

    Instances are paired per frame by a Hungarian assignment on mask IoU (two empty
    masks count as identical).

    Parameters
    ----------
    reference, candidate:
        Predictors (e.g. eager FP32 and a TensorRT INT8 engine).
    images:
        ``uint8[H, W, 3]`` RGB frames.

    Returns
    -------
    dict
        ``frames``; ``reference_instances`` and ``candidate_instances`` (totals);
        ``matched_fraction`` (reference instances paired with mask IoU >= 0.5);
        ``mean_mask_iou`` over the pairs; ``max_score_diff`` and
        ``mean_box_diff_px`` (mean absolute corner difference) over the pairs;
        ``class_agreement`` (pairs with the same argmax class).
    """
    counts = [0, 0]
    ious: list[float] = []
    score_diffs: list[float] = []
    box_diffs: list[float] = []
    same_class: list[bool] = []
    for image in images:
        ref, cand = reference(image), candidate(image)
        counts[0] += len(ref)
        counts[1] += len(cand)
        if not len(ref) or not len(cand):
            continue
        iou = _mask_iou(ref, cand)
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] < 0.5:
                continue
            ious.append(float(iou[r, c]))
            score_diffs.append(abs(float(ref.scores[r] - cand.scores[c])))
            box_diffs.append(float(np.abs(ref.boxes[r] - cand.boxes[c]).mean()))
            same_class.append(bool(ref.labels[r] == cand.labels[c]))
    return {
        "frames": float(len(images)),
        "reference_instances": float(counts[0]),
        "candidate_instances": float(counts[1]),
        "matched_fraction": len(ious) / counts[0] if counts[0] else 1.0,
        "mean_mask_iou": float(np.mean(ious)) if ious else 0.0,
        "max_score_diff": float(np.max(score_diffs)) if score_diffs else 0.0,
        "mean_box_diff_px": float(np.mean(box_diffs)) if box_diffs else 0.0,
        "class_agreement": float(np.mean(same_class)) if same_class else 0.0,
    }


def _mask_iou(a: Instances, b: Instances) -> np.ndarray:
    """``float64[len(a), len(b)]`` mask IoU; two empty masks are identical (IoU 1)."""
    fa = a.masks.reshape(len(a), -1).astype(np.float64)
    fb = b.masks.reshape(len(b), -1).astype(np.float64)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
