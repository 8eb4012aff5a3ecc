"""Tracking metrics HOTA, IDF1 and ID switches through the ``trackeval`` package.

Each non-zero id of a label map is one track (class-agnostic). The similarity of a
ground-truth and a predicted mask in a frame is their IoU over non-void pixels; a
predicted id with no non-void pixel in a frame is absent there. trackeval's ``HOTA``,
``Identity`` and ``CLEAR`` metrics score each sequence (``eval_sequence``) and are
combined with their ``combine_sequences``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vis_node.evaluation.davis import iou_matrix
from vis_node.evaluation.loading import SequencePair


def sequence_data(gt_ids: np.ndarray, pred_ids: np.ndarray, void: np.ndarray | None = None) -> dict:
    """Build the per-sequence data dict trackeval metrics expect.

    Parameters
    ----------
    gt_ids, pred_ids:
        ``int[T, H, W]`` ground-truth and predicted id maps (0 = background).
    void:
        ``bool[T, H, W]`` ignored pixels, or ``None``.

    Returns
    -------
    dict
        ``num_timesteps``, ``num_gt_ids``, ``num_tracker_ids``, ``num_gt_dets``,
        ``num_tracker_dets``, ``gt_ids`` and ``tracker_ids`` (per frame ``int[n_t]``
        indices 0..num_ids-1), ``similarity_scores`` (per frame ``float[n_gt_t,
        n_tracker_t]`` mask IoU).
    """
    per_frame = [
        iou_matrix(pred_ids[t], gt_ids[t], None if void is None else void[t])
        for t in range(len(gt_ids))
    ]
    gt_index = {k: i for i, k in enumerate(sorted({g for _, gts, _ in per_frame for g in gts}))}
    pred_index = {k: i for i, k in enumerate(sorted({p for ps, _, _ in per_frame for p in ps}))}
    gt_frames = [np.array([gt_index[g] for g in gts], int) for _, gts, _ in per_frame]
    pred_frames = [np.array([pred_index[p] for p in ps], int) for ps, _, _ in per_frame]
    return {
        "num_timesteps": len(per_frame),
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(pred_index),
        "num_gt_dets": int(sum(len(g) for g in gt_frames)),
        "num_tracker_dets": int(sum(len(p) for p in pred_frames)),
        "gt_ids": gt_frames,
        "tracker_ids": pred_frames,
        "similarity_scores": [iou.T.copy() for _, _, iou in per_frame],
    }


def evaluate_tracking_data(sequences: dict[str, dict]) -> dict:
    """HOTA, IDF1 and IDSW of prepared sequence data.

    Parameters
    ----------
    sequences:
        Sequence name -> data dict from :func:`sequence_data`.

    Returns
    -------
    dict
        ``HOTA`` (mean over the 19 alphas), ``DetA``, ``AssA``, ``IDF1``, ``MOTA``
        (fractions), ``IDSW`` (int), ``num_sequences`` and ``per_sequence``
        (``seq -> {HOTA, IDF1, IDSW}``).
    """
    from trackeval.metrics import CLEAR, HOTA, Identity

    hota = HOTA()
    identity = Identity({"PRINT_CONFIG": False})
    clear = CLEAR({"PRINT_CONFIG": False})
    results: dict[str, dict[str, dict]] = {"HOTA": {}, "Identity": {}, "CLEAR": {}}
    for name, data in sequences.items():
        results["HOTA"][name] = hota.eval_sequence(data)
        results["Identity"][name] = identity.eval_sequence(data)
        results["CLEAR"][name] = clear.eval_sequence(data)
    combined_hota = hota.combine_sequences(results["HOTA"])
    combined_id = identity.combine_sequences(results["Identity"])
    combined_clear = clear.combine_sequences(results["CLEAR"])
    per_sequence = {
        name: {
            "HOTA": float(np.mean(results["HOTA"][name]["HOTA"])),
            "IDF1": float(results["Identity"][name]["IDF1"]),
            "IDSW": int(results["CLEAR"][name]["IDSW"]),
        }
        for name in sequences
    }
    return {
        "num_sequences": len(sequences),
        "HOTA": float(np.mean(combined_hota["HOTA"])),
        "DetA": float(np.mean(combined_hota["DetA"])),
        "AssA": float(np.mean(combined_hota["AssA"])),
        "IDF1": float(combined_id["IDF1"]),
        "MOTA": float(combined_clear["MOTA"]),
        "IDSW": int(combined_clear["IDSW"]),
        "per_sequence": per_sequence,
    }


def evaluate_tracking(pairs: Iterable[SequencePair]) -> dict:
    """HOTA / IDF1 / IDSW protocol over PNG sequences.

    Returns
    -------
    dict
        The keys of :func:`evaluate_tracking_data` plus ``protocol = "hota"``.
    """
    data = {pair.name: sequence_data(pair.gt, pair.pred, pair.void) for pair in pairs}
    return {"protocol": "hota", **evaluate_tracking_data(data)}
