"""SESIV JS / FS / OS on hand-made cases: class gate, absent frames, greedy matching."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.evaluation.davis import f_measure, iou_matrix
from vis_node.evaluation.loading import SequencePair
from vis_node.evaluation.sesiv import (
    evaluate_sesiv,
    greedy_id_mapping,
    majority_label,
    sequence_scores,
)


def _pair(name, gt, pred, gt_sem, pred_sem) -> SequencePair:
    return SequencePair(
        name=name,
        frame_names=[str(t) for t in range(len(gt))],
        gt=np.asarray(gt, np.uint16),
        void=None,
        pred=np.asarray(pred, np.uint16),
        gt_semantics=np.asarray(gt_sem, np.uint8),
        pred_semantics=np.asarray(pred_sem, np.uint8),
    )


def test_majority_label() -> None:
    sem = np.array([[0, 3, 3, 5, 5, 5]], np.uint8)
    assert majority_label(sem, np.array([[0, 1, 1, 1, 1, 1]], bool)) == 5
    assert majority_label(sem, np.array([[1, 1, 1, 1, 0, 0]], bool)) == 3  # labels 0, 3, 3, 5
    assert majority_label(sem, np.array([[0, 1, 1, 1, 1, 0]], bool)) == 3  # tie 3/5 -> smaller
    assert majority_label(sem, np.zeros((1, 6), bool)) == 0


def test_greedy_mapping_uses_first_nonempty_prediction_frame() -> None:
    gt_row = np.zeros(20, int)
    gt_row[0:5] = 1
    gt_row[5:10] = 2
    pred_row = np.zeros(20, int)
    pred_row[3:9] = 5  # IoU with GT 1: 2/9, with GT 2: 4/7
    pred_row[9:13] = 6  # IoU with GT 2: 1/8, with GT 1: 0
    preds, gts, iou = iou_matrix(pred_row[None], gt_row[None])
    assert (preds, gts) == ([5, 6], [1, 2])
    np.testing.assert_allclose(iou, [[2 / 9, 4 / 7], [0, 1 / 8]])
    later = np.zeros(20, int)
    later[0:5] = 6  # would map 6 -> 1 if matching happened here
    pred = np.stack([np.zeros(20, int), pred_row, later])[:, None, :]
    gt = np.stack([gt_row, gt_row, gt_row])[:, None, :]
    # Largest IoU first: 5 -> 2; then 6 has IoU 0 with the remaining GT 1 -> unmatched.
    assert greedy_id_mapping(pred, gt) == {5: 2}
    assert greedy_id_mapping(np.zeros_like(pred), gt) == {}


def test_class_gate_absent_frames_and_counted_objects() -> None:
    h, w = 12, 12
    num_frames = 5
    gt = np.zeros((num_frames, h, w), int)
    pred = np.zeros_like(gt)
    gt_sem = np.zeros_like(gt)
    pred_sem = np.zeros_like(gt)
    box = (slice(2, 8), slice(2, 8))
    for t in (0, 1, 3, 4):
        gt[t][box] = 1
    gt[1:, 9:11, 9:11] = 2  # appears after the first frame: not counted
    gt_sem[gt == 1] = 3
    pred[0][box] = 4  # perfect, same class -> 1
    pred_sem[0][box] = 3
    pred[1][box] = 4  # perfect mask, wrong class -> 0
    pred_sem[1][box] = 7
    # frame 2: object absent from GT, prediction empty -> 0 (DAVIS would give 1)
    pred[3][2:8, 2:5] = 4  # half the object, right class -> J = 0.5
    pred_sem[3][2:8, 2:5] = 3
    pred[4][box] = 4  # perfect mask but both classes background -> 0
    gt_sem[4] = 0
    scores = sequence_scores(_pair("s", gt, pred, gt_sem, pred_sem))
    assert list(scores) == [1]
    js, fs = scores[1]
    np.testing.assert_allclose(js, [1.0, 0.0, 0.0, 0.5, 0.0])
    half_f = f_measure(pred[3] == 4, gt[3] == 1)
    assert 0 < half_f < 1
    np.testing.assert_allclose(fs, [1.0, 0.0, 0.0, half_f, 0.0])


def test_evaluate_sesiv_averages_over_objects() -> None:
    gt = np.zeros((2, 8, 8), int)
    gt[:, 0:4, 0:4] = 1
    gt[:, 4:8, 4:8] = 2
    sem = np.where(gt > 0, 1, 0)
    perfect = _pair("a", gt, gt * 3, sem, sem)  # ids relabelled 1->3, 2->6: both objects 1.0
    missed = _pair("b", gt, np.zeros_like(gt), sem, np.zeros_like(sem))
    report = evaluate_sesiv([perfect, missed])
    assert report["protocol"] == "sesiv"
    assert report["num_sequences"] == 2
    assert report["num_objects"] == 4
    assert report["JS"] == pytest.approx(0.5)
    assert report["FS"] == pytest.approx(0.5)
    assert report["OS"] == pytest.approx(0.5)
    assert report["per_sequence"]["a"] == {"JS": 1.0, "FS": 1.0, "OS": 1.0}
    assert report["per_sequence"]["b"] == {"JS": 0.0, "FS": 0.0, "OS": 0.0}


def test_sesiv_needs_semantics() -> None:
    gt = np.ones((1, 4, 4), np.uint16)
    pair = SequencePair("s", ["0"], gt, None, gt)
    with pytest.raises(ValueError, match="semantics"):
        sequence_scores(pair)
