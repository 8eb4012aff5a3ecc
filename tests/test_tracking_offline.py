"""Offline refinements: SISO recurrent instance propagation and sequence NMS."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.tracking.offline import recurrent_propagation
from vis_node.tracking.propose_reduce import sequence_iou, sequence_nms, sequence_score
from vis_node.structures.instances import Instances

SIZE = 32
VELOCITY = 3  # pixels per frame, to the right


class _TrueMotion:
    """Flow estimator that knows the scene: frames carry their index in pixel (0, 0)."""

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        flow = np.zeros((SIZE, SIZE, 2), np.float32)
        flow[..., 0] = VELOCITY * (int(target[0, 0, 0]) - int(source[0, 0, 0]))
        return flow


def _scene(count: int = 5, missing: int = 2):
    yy, xx = np.mgrid[:SIZE, :SIZE]
    frames, instances, salient = [], [], []
    for t in range(count):
        frame = np.zeros((SIZE, SIZE, 3), np.uint8)
        frame[0, 0, 0] = t
        disc = (xx - 8 - VELOCITY * t) ** 2 + (yy - 16) ** 2 < 25
        frames.append(frame)
        salient.append(disc)
        if t == missing:  # the segmenter missed the object here
            instances.append(Instances.empty(SIZE, SIZE, 2))
        else:
            instances.append(Instances.from_masks(disc[None], class_probs=np.array([[0.2, 0.8]])))
    return frames, instances, salient


def test_recurrent_propagation_recovers_a_missed_instance() -> None:
    frames, instances, salient = _scene()
    result = recurrent_propagation(frames, instances, salient, _TrueMotion())
    # every complete frame: IoU 1, S_cls 0.8 -> CS = 1.3 * 0.8 / (0.3 + 0.8)
    expected = 1.3 * 0.8 / 1.1
    assert result.mean_confidence[0] == pytest.approx(expected * 4 / 5)
    np.testing.assert_allclose(result.frame_confidence, [expected] * 5)
    assert len(result.confident[2]) == 1
    np.testing.assert_array_equal(result.confident[2].masks[0], salient[2])
    assert result.confident[2].labels.tolist() == [1]
    assert result.mean_confidence[-1] == pytest.approx(expected)
    assert len(result.mean_confidence) == 3  # one improving sweep, one to confirm


def test_recurrent_propagation_computes_only_the_flows_it_uses_once() -> None:
    """Flows are computed when a frame first sends to a neighbour, not for every pair
    up front (each full-resolution flow kept for a whole video costs memory)."""
    frames, instances, salient = _scene()
    pairs: list[tuple[int, int]] = []

    class _Counting(_TrueMotion):
        def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
            pairs.append((int(source[0, 0, 0]), int(target[0, 0, 0])))
            return super().__call__(source, target)

    result = recurrent_propagation(frames, instances, salient, _Counting())
    assert len(result.confident[2]) == 1
    # Only frame 2 missed its instance: the one neighbour that sent first filled it, and
    # afterwards no frame is more confident than a neighbour.
    assert pairs in ([(2, 1)], [(2, 3)])


def test_recurrent_propagation_checks_lengths() -> None:
    frames, instances, salient = _scene()
    with pytest.raises(ValueError, match="as many"):
        recurrent_propagation(frames, instances[:-1], salient, _TrueMotion())


def test_sequence_score_and_iou_hand_computed() -> None:
    assert sequence_score(np.array([[0.2, 0.8], [0.6, 0.0]])) == pytest.approx(0.4)
    a = np.zeros((2, 4, 4), bool)
    b = np.zeros((2, 4, 4), bool)
    a[0, :2, :2] = True  # 4 px
    b[0, :2, :1] = True  # 2 px inside a
    a[1, 0, 0] = True  # only a in frame 1
    assert sequence_iou(a, b) == pytest.approx(2 / 5)
    assert sequence_iou(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4), bool)) == 0.0


def test_sequence_nms_suppresses_duplicates() -> None:
    base = np.zeros((3, 8, 8), bool)
    base[:, 2:6, 2:6] = True
    shifted = np.roll(base, 1, axis=2)  # IoU 12 / 20 = 0.6 with base
    other = np.zeros((3, 8, 8), bool)
    other[:, 6:, :2] = True
    scores = [np.full((3, 2), [0.1, 0.7]), np.full((3, 2), [0.1, 0.9]), np.full((3, 2), 0.3)]
    kept = sequence_nms([base, shifted, other], scores, iou_threshold=0.5)
    assert kept.tolist() == [1, 2]
    assert sequence_nms([base, shifted, other], scores, iou_threshold=0.7).tolist() == [1, 0, 2]
