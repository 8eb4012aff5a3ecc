"""Association cues (IoU, MaskTrack Eq. 2/3) and assignment on hand-computed inputs."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.tracking.association import (
    DROPPED,
    NEW_TRACK,
    assign,
    box_iou,
    cosine_similarity,
    mask_iou,
    match_by_iou,
)
from vis_node.tracking.scores import (
    CueFusionScore,
    IoUTrackerPlusScore,
    MatchCues,
    appearance_log_probs,
    cue_fusion_scores,
)


def test_mask_iou_exact() -> None:
    a = np.zeros((2, 4, 4), bool)
    a[0, :2, :2] = True  # 4 px
    b = np.zeros((2, 4, 4), bool)
    b[0, :2, :3] = True  # 6 px, overlaps a[0] by 4
    iou = mask_iou(a, b)
    assert iou.shape == (2, 2)
    assert iou[0, 0] == pytest.approx(4 / 6)
    assert iou[0, 1] == 0.0
    assert iou[1, 1] == 0.0  # both empty
    assert mask_iou(a[:0], b).shape == (0, 2)


def test_box_iou_exact() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])


def test_cosine_similarity_zero_vector() -> None:
    sim = cosine_similarity(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(sim, [[1 / np.sqrt(2)], [0.0]])


def test_appearance_log_probs_is_masktrack_eq2() -> None:
    # Eq. 2 with f_i^T f_n = 0.9, 0.2 and the dummy logit 0: log p = logit - log(1 + e^.9 + e^.2)
    log_p = appearance_log_probs(np.array([[0.9, 0.2]]), temperature=1.0, new_track_similarity=0.0)
    np.testing.assert_allclose(log_p, [[-1.5435130162, -0.6435130162, -1.3435130162]], atol=1e-9)
    assert np.exp(log_p).sum() == pytest.approx(1.0)


def test_cue_fusion_eq3_hand_computed() -> None:
    log_p = appearance_log_probs(np.array([[0.9, 0.2]]), 1.0, 0.0)
    v = cue_fusion_scores(
        log_p,
        np.array([0.8]),
        np.array([[0.5, 0.0]]),
        np.array([[True, False]]),
        alpha=1.0,
        beta=2.0,
        gamma=10.0,
    )
    # new:   -1.5435 + log .8 + 0       + 10 (dummy class term 1, as mmtracking)
    # track1 -0.6435 + log .8 + 2 * 0.5 + 10
    # track2 -1.3435 + log .8 + 0       + 0
    np.testing.assert_allclose(v, [[8.2333434325, 10.1333434325, -1.5666565675]], atol=1e-9)


def test_cue_fusion_score_class_uses_temperature() -> None:
    cues = MatchCues(
        similarity=np.array([[0.9]]),
        det_scores=np.array([1.0]),
        box_iou=np.array([[0.0]]),
        same_class=np.array([[True]]),
    )
    v = CueFusionScore(temperature=0.1, new_track_similarity=0.5)(cues)
    # logits 5 (new) and 9 (track): log p = [5 - lse, 9 - lse]
    lse = np.log(np.exp(5.0) + np.exp(9.0))
    np.testing.assert_allclose(v, [[5 - lse + 10, 9 - lse + 10]])


def test_iou_tracker_plus_gates_on_min_iou() -> None:
    cues = MatchCues(
        similarity=np.zeros((1, 2)),
        det_scores=np.array([0.5]),
        box_iou=np.array([[0.29, 0.4]]),
        same_class=np.array([[True, False]]),
    )
    v = IoUTrackerPlusScore()(cues)
    assert v[0, 0] == pytest.approx(np.log(0.5))
    assert v[0, 1] == -np.inf
    assert v[0, 2] == pytest.approx(np.log(0.5) + 0.8)
    assert assign(v).tolist() == [1]


def test_assign_conflict_keeps_larger_score_and_drops_the_other() -> None:
    # Both detections prefer track 0; detection 1 scores it higher.
    scores = np.array([[0.0, 5.0], [0.0, 7.0]])
    assert assign(scores).tolist() == [DROPPED, 0]
    assert assign(scores, drop_conflicts=False).tolist() == [NEW_TRACK, 0]


def test_assign_taken_track_is_a_lost_conflict() -> None:
    scores = np.array([[0.0, 5.0, 1.0]])
    taken = np.array([True, False])
    assert assign(scores, taken=taken).tolist() == [DROPPED]
    assert assign(scores, drop_conflicts=False, taken=taken).tolist() == [1]
    with pytest.raises(ValueError, match="taken"):
        assign(scores, taken=np.array([True]))


def test_assign_new_track_when_it_scores_best() -> None:
    assert assign(np.array([[3.0, 1.0, -np.inf]])).tolist() == [NEW_TRACK]
    assert assign(np.zeros((0, 3))).tolist() == []


def test_assign_rejects_infinite_new_option() -> None:
    with pytest.raises(ValueError, match="new-track"):
        assign(np.array([[-np.inf, 1.0]]))


def test_match_by_iou_threshold_and_one_to_one() -> None:
    ious = np.array([[0.9, 0.8], [0.85, 0.2], [0.1, 0.69]])
    rows, cols = match_by_iou(ious, 0.7)
    # Hungarian maximises total IoU: (0,1) + (1,0) = 1.65 beats (0,0) alone.
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": -1}, "alpha"),
        ({"temperature": 0}, "temperature"),
        ({"new_track_similarity": 2}, "new_track_similarity"),
    ],
)
def test_cue_fusion_validates(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        CueFusionScore(**kwargs)
