"""The tracker's boundary checks: one clear InvalidDataError, never a NumPy shape error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vis_node.structures.errors import InvalidDataError
from vis_node.tracking.tracker import OnlineTracker
from vis_node.structures.instances import Instances
from vis_node.tracking.validate import MIN_DETECTION_SCORE, validate_instances

IMAGE = np.zeros((20, 30, 3), np.uint8)


def _instances(**changes) -> Instances:
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:8, 3:12] = True
    masks[1, 10:19, 15:29] = True
    instances = Instances.from_masks(
        masks,
        class_probs=np.array([[0.1, 0.9], [0.6, 0.4]], np.float32),
        saliency=np.array([0.0, 1.0]),
        scores=np.array([0.0, 0.5]),
        embeddings=np.eye(2, 4, dtype=np.float32),
    )
    return dataclasses.replace(instances, **changes) if changes else instances


def test_valid_instances_pass_with_scores_floored_for_the_logarithm():
    checked = validate_instances(_instances(), IMAGE)
    np.testing.assert_array_equal(checked.scores, np.float32([MIN_DETECTION_SCORE, 0.5]))
    np.testing.assert_array_equal(checked.saliency, [0.0, 1.0])  # saliency 0.0 is legal
    assert np.isfinite(np.log(checked.scores)).all()
    rounding = _instances(class_probs=np.array([[-1e-6, 1.00001], [0.6, 0.4]], np.float32))
    np.testing.assert_array_equal(validate_instances(rounding, IMAGE).class_probs[0], [0.0, 1.0])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"saliency": np.array([-0.5, 1.0], np.float32)}, "saliency"),
        ({"saliency": np.array([0.5, 1.5], np.float32)}, "saliency"),
        ({"scores": np.array([np.nan, 0.5], np.float32)}, "scores"),
        ({"class_probs": np.array([[0.1, np.inf], [0.6, 0.4]], np.float32)}, "class_probs"),
        ({"boxes": np.array([[0, 0, np.nan, 4], [0, 0, 4, 4]], np.float32)}, "boxes"),
        ({"embeddings": np.array([[0, np.nan, 0, 1], [1, 0, 0, 0]], np.float32)}, "embeddings"),
        ({"embeddings": np.array([[0, -np.inf, 0, 1], [1, 0, 0, 0]], np.float32)}, "embeddings"),
        ({"embeddings": np.zeros((2, 0), np.float32)}, "length 0"),
        ({"embeddings": np.zeros((3, 4), np.float32)}, "embeddings must have 2 rows"),
        ({"saliency": np.zeros(3, np.float32)}, "saliency must have 2 rows"),
        ({"boxes": np.zeros((1, 4), np.float32)}, "boxes must have 2 rows"),
    ],
)
def test_bad_fields_raise_the_data_error_naming_them(changes, field):
    instances = _instances()
    for name, value in changes.items():
        object.__setattr__(instances, name, value)
    with pytest.raises(InvalidDataError, match=field):
        validate_instances(instances, IMAGE)


def test_masks_of_another_frame_size_are_rejected():
    with pytest.raises(InvalidDataError, match=r"masks are \(20, 30\) but the image is \(10, 30\)"):
        validate_instances(_instances(), IMAGE[:10])


def test_tracker_accepts_zero_saliency_and_rejects_nan_embeddings():
    tracker = OnlineTracker(flow=None)
    first = tracker.update(_instances(), IMAGE)
    assert first.track_ids.tolist() == [1, 2]
    second = tracker.update(_instances(), IMAGE)  # score 0.0 meets a live track
    assert second.track_ids.tolist() == [1, 2]
    poisoned = _instances(embeddings=np.array([[0, np.nan, 0, 1], [1, 0, 0, 0]], np.float32))
    with pytest.raises(InvalidDataError, match="embeddings"):
        tracker.update(poisoned, IMAGE)
    assert tracker.update(_instances(), IMAGE).track_ids.tolist() == [1, 2]
