"""Propose-Reduce: key-frame sequence proposals and category-aware sequence reduction."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.tracking.propose_reduce import key_frame_indices, propose_reduce
from vis_node.structures.instances import Instances

HEIGHT, WIDTH = 32, 40


class _TrueMotion:
    """Flow estimator that knows the scene: everything moves ``velocity`` px right per
    frame, and frames carry their index in pixel (0, 0)."""

    def __init__(self, velocity: int) -> None:
        self.velocity = velocity

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
        flow[..., 0] = self.velocity * (int(target[0, 0, 0]) - int(source[0, 0, 0]))
        return flow


def _frames(count: int) -> list[np.ndarray]:
    frames = []
    for t in range(count):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[0, 0, 0] = t
        frames.append(frame)
    return frames


def _disc(x: float, y: float, radius: float = 5.0) -> np.ndarray:
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    return (xx - x) ** 2 + (yy - y) ** 2 < radius**2


def _detections(objects: list[tuple[np.ndarray, list[float]]], classes: int) -> Instances:
    if not objects:
        return Instances.empty(HEIGHT, WIDTH, classes)
    masks = np.stack([m for m, _ in objects])
    return Instances.from_masks(masks, class_probs=np.array([p for _, p in objects], np.float32))


def test_key_frames_follow_eq_1() -> None:
    assert key_frame_indices(20, 5).tolist() == [0, 4, 8, 12, 16]
    assert key_frame_indices(8, 5).tolist() == [0, 1, 2, 3, 4]
    assert key_frame_indices(3, 5).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="key_frames"):
        key_frame_indices(3, 0)


def test_fills_missed_frames_and_keeps_one_id_per_object() -> None:
    count, velocity = 8, 2
    truth_a = [_disc(6 + velocity * t, 8) for t in range(count)]
    truth_b = [_disc(6 + velocity * t, 22) for t in range(count)]
    instances = []
    for t in range(count):
        objects = []
        if t not in (2, 3):  # the segmenter missed A here
            objects.append((truth_a[t], [0.2, 0.8]))
        if t not in (5, 6):  # and B here
            objects.append((truth_b[t], [0.4, 0.6]))
        instances.append(_detections(objects, 2))
    tracks = propose_reduce(_frames(count), instances, _TrueMotion(velocity), key_frames=2)
    # key frames 0 and 4 each seed A and B; the four proposals reduce to two tracks
    assert [k.track_id for k in tracks] == [1, 2]
    assert [k.category for k in tracks] == [1, 1]
    # Eq. 2: frames filled by flow alone score 0
    assert [k.score for k in tracks] == pytest.approx([0.8 * 6 / 8, 0.6 * 6 / 8])
    np.testing.assert_array_equal(tracks[0].masks, np.stack(truth_a))
    np.testing.assert_array_equal(tracks[1].masks, np.stack(truth_b))
    np.testing.assert_allclose(tracks[0].class_scores[:, 1], [0.8, 0.8, 0, 0, 0.8, 0.8, 0.8, 0.8])


def test_propagation_stops_when_the_mask_leaves_the_image() -> None:
    count, velocity = 12, 4
    truth = [_disc(30 + velocity * t, 16) for t in range(count)]  # gone from t = 4
    instances = [_detections([(truth[0], [0.0, 1.0])], 2)]
    instances += [Instances.empty(HEIGHT, WIDTH, 2) for _ in range(count - 1)]
    tracks = propose_reduce(_frames(count), instances, _TrueMotion(velocity), key_frames=1)
    assert len(tracks) == 1
    np.testing.assert_array_equal(tracks[0].masks, np.stack(truth))
    assert tracks[0].masks.any(axis=(1, 2)).tolist() == [True] * 4 + [False] * 8
    np.testing.assert_allclose(tracks[0].class_scores[:, 1], [1.0] + [0.0] * 11)
    assert tracks[0].score == pytest.approx(1 / 12)


def test_propagation_stops_after_max_gap_unsupported_frames() -> None:
    count = 6
    truth = _disc(20, 16)
    instances = [_detections([(truth, [0.0, 1.0])], 2)]
    instances += [Instances.empty(HEIGHT, WIDTH, 2) for _ in range(count - 1)]
    tracks = propose_reduce(_frames(count), instances, _TrueMotion(0), key_frames=1, max_gap=2)
    assert tracks[0].masks.any(axis=(1, 2)).tolist() == [True] * 3 + [False] * 3


def test_duplicates_from_two_key_frames_reduce_to_the_better_one() -> None:
    count = 8
    small, large = _disc(20, 16, 5.0), _disc(20, 16, 6.0)  # IoU 69 / 109
    # detected only on the key frames 0 and 4, too differently to snap to each other
    instances = [Instances.empty(HEIGHT, WIDTH, 2) for _ in range(count)]
    instances[0] = _detections([(small, [0.3, 0.7])], 2)
    instances[4] = _detections([(large, [0.1, 0.9])], 2)
    tracks = propose_reduce(
        _frames(count), instances, _TrueMotion(0), key_frames=2, snap_iou=0.9
    )
    # two whole-video proposals with sequence IoU 0.63 > 0.5: the one from frame 4 wins
    assert len(tracks) == 1 and tracks[0].track_id == 1
    assert tracks[0].score == pytest.approx(0.9 / 8)
    np.testing.assert_allclose(tracks[0].class_scores[:, 1], [0, 0, 0, 0, 0.9, 0, 0, 0])
    np.testing.assert_array_equal(tracks[0].masks, np.stack([large] * count))


@pytest.mark.parametrize(
    ("probs_b", "expected"), [([0.1, 0.0, 0.9], [1, 2]), ([0.2, 0.7, 0.1], [1])]
)
def test_reduction_is_category_aware(probs_b: list[float], expected: list[int]) -> None:
    count = 4
    mask_a, mask_b = _disc(20, 16, 5.0), _disc(20, 16, 6.0)  # IoU 69 / 109 > 0.5
    instances = [
        _detections([(mask_a, [0.1, 0.9, 0.0]), (mask_b, probs_b)], 3) for _ in range(count)
    ]
    tracks = propose_reduce(_frames(count), instances, _TrueMotion(0), key_frames=1)
    assert sorted(k.category for k in tracks) == expected
    np.testing.assert_array_equal(tracks[0].masks, np.stack([mask_a] * count))


def test_checks_inputs() -> None:
    frames = _frames(2)
    instances = [Instances.empty(HEIGHT, WIDTH, 2)] * 2
    with pytest.raises(ValueError, match="one instance set per frame"):
        propose_reduce(frames, instances[:1], _TrueMotion(0))
    with pytest.raises(ValueError, match="snap_iou"):
        propose_reduce(frames, instances, _TrueMotion(0), snap_iou=1.5)
    with pytest.raises(ValueError, match="max_gap"):
        propose_reduce(frames, instances, _TrueMotion(0), max_gap=-1)
    assert propose_reduce(frames, instances, _TrueMotion(0)) == []
    assert propose_reduce([], [], _TrueMotion(0)) == []


def test_the_best_sequence_stays_when_every_score_is_below_the_threshold() -> None:
    count = 4
    weak, weaker = _disc(10, 16), _disc(30, 16)
    instances = [
        _detections([(weak, [0.2, 0.1]), (weaker, [0.05, 0.15])], 2) for _ in range(count)
    ]
    frames, flow = _frames(count), _TrueMotion(0)
    tracks = propose_reduce(frames, instances, flow, key_frames=1, score_threshold=0.3)
    assert len(tracks) == 1 and tracks[0].score == pytest.approx(0.2)
    np.testing.assert_array_equal(tracks[0].masks, np.stack([weak] * count))
    # one sequence reaching the threshold: only it is kept, as before
    tracks = propose_reduce(frames, instances, flow, key_frames=1, score_threshold=0.18)
    assert len(tracks) == 1 and tracks[0].score == pytest.approx(0.2)
    assert propose_reduce(
        frames, [Instances.empty(HEIGHT, WIDTH, 2)] * count, flow, score_threshold=0.3
    ) == []
