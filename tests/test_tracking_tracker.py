"""OnlineTracker on synthetic moving discs: propagation, re-id, lifecycle, memory."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vis_node.tracking.scores import IoUTrackerPlusScore
from vis_node.tracking.tracker import OnlineTracker, TrackState
from vis_node.structures.instances import Instances

SIZE = 160
COLOURS = [(230, 40, 40), (40, 200, 60), (50, 80, 240)]


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(60, 200, (SIZE, SIZE, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3.0)


def _render(
    centres: list[tuple[float, float]],
    radius: float = 14.0,
    occluder: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw discs (object k in COLOURS[k], lightly textured) and an optional grey bar
    covering columns ``occluder[0]:occluder[1]``; return the frame and visible masks."""
    image = _background(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    stripes = ((xx // 3) % 2 * 30).astype(np.int16)[..., None]
    visible = []
    for k, (cx, cy) in enumerate(centres):
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
        colour = np.clip(np.array(COLOURS[k], np.int16) - stripes, 0, 255).astype(np.uint8)
        image[mask] = colour[mask]
        visible.append(mask)
    if occluder is not None:
        image[:, occluder[0] : occluder[1]] = (128, 128, 128)
        for mask in visible:
            mask[:, occluder[0] : occluder[1]] = False
    return image, visible


def _detections(
    masks: list[np.ndarray], rng: np.random.Generator, min_area: int = 30
) -> tuple[Instances, np.ndarray]:
    """Detections in shuffled order; returns them and the object index of each."""
    objects = np.array([k for k, m in enumerate(masks) if m.sum() >= min_area], dtype=np.int64)
    objects = objects[rng.permutation(len(objects))]
    if len(objects) == 0:
        return Instances.empty(SIZE, SIZE), objects
    return Instances.from_masks(np.stack([masks[k] for k in objects])), objects


def _run(tracker: OnlineTracker, frames: list, seed: int = 0) -> list[dict[int, int]]:
    """Track and return, per frame, object index -> track id."""
    rng = np.random.default_rng(seed)
    history = []
    for image, masks in frames:
        instances, objects = _detections(masks, rng)
        tracked = tracker.update(instances, image)
        history.append(dict(zip(objects.tolist(), tracked.track_ids.tolist())))
    return history


def _moving_discs(frames: int = 25) -> list:
    return [
        _render([(30 + 3 * t, 50 + 0.5 * t), (130 - 3 * t, 60 + 1.5 * t), (80, 125 - 1 * t)])
        for t in range(frames)
    ]


def test_ids_stable_under_motion_with_shuffled_detections() -> None:
    history = _run(OnlineTracker(), _moving_discs())
    assert sorted(history[0].values()) == [1, 2, 3]
    assert all(frame == history[0] for frame in history)


def _occlusion_scene() -> list:
    """Object 0 moves right at 5 px/frame and passes fully behind a 55 px wide bar."""
    return [_render([(20 + 5 * t, 60), (140, 120 - t)], occluder=(65, 120)) for t in range(28)]


def test_reid_keeps_id_through_full_occlusion() -> None:
    frames = _occlusion_scene()
    history = _run(OnlineTracker(), frames)
    hidden = [t for t, frame in enumerate(history) if 0 not in frame]
    assert len(hidden) >= 6  # a real gap: the object is undetected for several frames
    assert history[-1][0] == history[0][0]
    assert {frame[0] for frame in history if 0 in frame} == {history[0][0]}
    assert {frame[1] for frame in history} == {history[0][1]}


def test_reid_keeps_id_through_an_out_of_view_gap() -> None:
    # Object 0 leaves the image on the right (fully out for several frames) and returns.
    path = [130 + 6 * t if t <= 10 else 190 - 6 * (t - 10) for t in range(24)]
    frames = [_render([(x, 50), (40, 110 - t)]) for t, x in enumerate(path)]
    history = _run(OnlineTracker(), frames)
    hidden = [t for t, frame in enumerate(history) if 0 not in frame]
    assert len(hidden) >= 5
    assert {frame[0] for frame in history if 0 in frame} == {history[0][0]}
    assert {frame[1] for frame in history} == {history[0][1]}
    without_reid = _run(OnlineTracker(association=None, max_lost_age=0), frames)
    assert without_reid[-1][0] != without_reid[0][0]


def test_plain_iou_tracker_loses_the_occluded_object() -> None:
    frames = _occlusion_scene()
    iou_plus = _run(OnlineTracker(flow=None, association=IoUTrackerPlusScore(), min_hits=1), frames)
    propagation_only = _run(OnlineTracker(association=None, max_lost_age=0), frames)
    for history in (iou_plus, propagation_only):
        assert history[-1][0] != history[0][0]  # a new id after the gap
        assert history[-1][1] == history[0][1]  # the unoccluded object is kept


def test_lifecycle_tentative_confirmed_lost_removed() -> None:
    # Without flow nothing coasts: a confirmed track is lost on its first miss. A
    # tentative track survives misses until its confirmation window runs out (issue 11;
    # the issue-4 tracker removed it on the first miss).
    tracker = OnlineTracker(min_hits=3, confirm_window=4, max_lost_age=2, flow=None)
    frames = _moving_discs(12)
    states = []
    for t, (image, masks) in enumerate(frames):
        present = [masks[0]] if t < 5 else []
        if t == 1:
            present.append(masks[1])  # a one-frame detection: tentative, then removed
        tracker.update(Instances.from_masks(np.array(present).reshape(-1, SIZE, SIZE)), image)
        states.append({tr.track_id: tr.state for tr in tracker.tracks})
    assert states[0] == {1: TrackState.TENTATIVE}
    assert states[1] == {1: TrackState.TENTATIVE, 2: TrackState.TENTATIVE}
    assert states[2] == {1: TrackState.CONFIRMED, 2: TrackState.TENTATIVE}  # 3 hits; 2 waits
    assert states[3] == {1: TrackState.CONFIRMED, 2: TrackState.TENTATIVE}
    assert states[4] == {1: TrackState.CONFIRMED}  # 1 hit in its 4-frame window: removed
    assert states[5] == {1: TrackState.LOST}
    assert states[6] == {1: TrackState.LOST}
    assert states[7] == {}  # lost for 3 > max_lost_age frames


def test_lost_track_is_confirmed_again_when_reidentified() -> None:
    tracker = OnlineTracker(min_hits=1, coast=False)  # the still-visible disc would coast
    image, masks = _render([(40, 40)])
    detection = Instances.from_masks(np.array(masks))
    assert tracker.update(detection, image).track_ids.tolist() == [1]
    tracker.update(Instances.empty(SIZE, SIZE), image)
    assert tracker.tracks[0].state is TrackState.LOST
    assert tracker.update(detection, image).track_ids.tolist() == [1]
    assert tracker.tracks[0].state is TrackState.CONFIRMED


def test_memory_is_bounded_over_a_long_stream() -> None:
    rng = np.random.default_rng(3)
    tracker = OnlineTracker(min_hits=1, max_lost_age=10_000, max_memory=5)
    yy, xx = np.mgrid[:48, :48]
    image = np.zeros((48, 48, 3), np.uint8)
    last_ids = []
    for t in range(400):
        cx, cy = rng.uniform(8, 40, 2)
        image[:] = rng.integers(0, 256, 3, dtype=np.uint8)  # a new colour every frame
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < 36
        detections = Instances.from_masks(mask[None]) if t % 2 == 0 else Instances.empty(48, 48)
        tracked = tracker.update(detections, image)
        last_ids += tracked.track_ids.tolist()
        assert len(tracker.tracks) <= 5 + 1
        assert sum(tr.state is TrackState.LOST for tr in tracker.tracks) <= 5
    assert tracker.frame_index == 399
    assert max(last_ids) > 20  # many objects were seen, few remembered


def test_max_lost_age_forgets() -> None:
    tracker = OnlineTracker(min_hits=1, max_lost_age=3, coast=False)  # else it would coast
    image, masks = _render([(40, 40)])
    detection = Instances.from_masks(np.array(masks))
    tracker.update(detection, image)
    for _ in range(4):
        tracker.update(Instances.empty(SIZE, SIZE), image)
    assert tracker.tracks == ()
    assert tracker.update(detection, image).track_ids.tolist() == [2]


def test_trackers_have_independent_id_counters_and_reset() -> None:
    frames = _moving_discs(3)
    first, second = OnlineTracker(), OnlineTracker()
    for image, masks in frames:
        ids_a = first.update(Instances.from_masks(np.array(masks)), image).track_ids
        ids_b = second.update(Instances.from_masks(np.array(masks)), image).track_ids
        assert ids_a.tolist() == ids_b.tolist() == [1, 2, 3]
    first.reset()
    assert first.tracks == () and first.frame_index == -1
    image, masks = frames[0]
    assert first.update(Instances.from_masks(np.array(masks[:1])), image).track_ids.tolist() == [1]


@pytest.mark.parametrize("with_flow", [True, False])
def test_duplicate_detection_dropped_as_masktrack(with_flow: bool) -> None:
    image, masks = _render([(40, 40)])
    single = Instances.from_masks(np.array(masks))
    shrunk = masks[0] & ((np.mgrid[:SIZE, :SIZE][1] - 40) ** 2 < 100)
    duplicated = Instances.from_masks(np.array([masks[0], shrunk]), scores=np.array([0.9, 0.6]))
    flow = {} if with_flow else {"flow": None}
    tracker = OnlineTracker(min_hits=1, **flow)
    tracker.update(single, image)
    assert tracker.update(duplicated, image).track_ids.tolist() == [1, 0]
    # Without dropping, both are tracked (without flow, equal appearance and position
    # make either one the track's continuation).
    tracker = OnlineTracker(min_hits=1, drop_conflicts=False, **flow)
    tracker.update(single, image)
    assert sorted(tracker.update(duplicated, image).track_ids.tolist()) == [1, 2]


def test_publish_tentative_off_hides_unconfirmed_ids() -> None:
    tracker = OnlineTracker(min_hits=2, publish_tentative=False)
    image, masks = _render([(40, 40)])
    detection = Instances.from_masks(np.array(masks))
    assert tracker.update(detection, image).track_ids.tolist() == [0]
    assert tracker.update(detection, image).track_ids.tolist() == [1]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"propagation_iou": 0.0}, "propagation_iou"),
        ({"min_hits": 0}, "min_hits"),
        ({"max_lost_age": -1}, "max_lost_age"),
        ({"max_memory": 1.5}, "max_memory"),
        ({"confirm_window": 1, "min_hits": 2}, "confirm_window"),
        ({"coast_min_similarity": 2.0}, "coast_min_similarity"),
        ({"min_hit": 2}, "min_hit"),
        ({"flow": 3}, "flow"),
        ({"association": lambda cues: cues}, "association"),
        ({"embedder": "hsv"}, "embedder"),
    ],
)
def test_constructor_names_the_bad_argument(kwargs: dict, name: str) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        OnlineTracker(**kwargs)


def test_update_rejects_size_change_without_reset() -> None:
    tracker = OnlineTracker()
    tracker.update(Instances.empty(SIZE, SIZE), np.zeros((SIZE, SIZE, 3), np.uint8))
    with pytest.raises(ValueError, match="reset"):
        tracker.update(Instances.empty(8, 8), np.zeros((8, 8, 3), np.uint8))
