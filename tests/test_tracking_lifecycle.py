"""Issue 11 rules of OnlineTracker: lifecycle, look-alike-resistant re-id, gallery, coasting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vis_node.tracking.scores import MatchCues, RelativeReidScore
from vis_node.tracking.gallery import Gallery
from vis_node.tracking.tracker import OnlineTracker, TrackState
from vis_node.structures.instances import Instances

SIZE = 160
RED = (230, 40, 40)
BLUE = (40, 60, 230)


def _background() -> np.ndarray:
    noise = np.random.default_rng(0).integers(60, 200, (SIZE, SIZE, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3.0)


def _frame(discs: list[tuple[float, float, tuple[int, int, int]]], radius: float = 14.0):
    """Textured discs ``(x, y, colour)`` over a blurred-noise background."""
    image = _background()
    yy, xx = np.mgrid[:SIZE, :SIZE]
    stripes = ((xx // 3) % 2 * 30).astype(np.int16)[..., None]
    masks = []
    for cx, cy, colour in discs:
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
        painted = np.clip(np.array(colour, np.int16) - stripes, 0, 255).astype(np.uint8)
        image[mask] = painted[mask]
        masks.append(mask)
    return image, masks


def _dets(masks: list[np.ndarray], **kwargs: object) -> Instances:
    if not masks:
        return Instances.empty(SIZE, SIZE)
    return Instances.from_masks(np.stack(masks), **kwargs)


def test_a_missed_second_detection_keeps_the_id() -> None:
    tracker = OnlineTracker()
    ids = []
    for t in range(5):
        image, masks = _frame([(40 + 3 * t, 60, RED)])
        detections = _dets([] if t == 1 else masks)
        ids.append(tracker.update(detections, image).track_ids.tolist())
    # Frame 1: the tentative track is kept (not output: only confirmed tracks coast).
    assert ids == [[1], [], [1], [1], [1]]
    assert tracker.tracks[0].state is TrackState.CONFIRMED


def test_a_look_alike_does_not_take_a_free_track_outside_its_plausible_region() -> None:
    tracker = OnlineTracker(coast=False)
    for t in range(5):
        image, masks = _frame([(30 + 2 * t, 40, RED)])
        assert tracker.update(_dets(masks), image).track_ids.tolist() == [1]
    # Object 1 disappears; an identical-looking object appears far away.
    for t in range(5, 9):
        image, masks = _frame([(130, 125, RED)])
        assert tracker.update(_dets(masks), image).track_ids.tolist() == [2]
    # Object 1 comes back near where it left: it gets its id back.
    image, masks = _frame([(130, 125, RED), (42, 42, RED)])
    assert tracker.update(_dets(masks), image).track_ids.tolist() == [2, 1]


def test_a_track_re_identified_frame_to_frame_keeps_its_velocity() -> None:
    # Without flow every match is a re-identification. The disc speeds up (steps of
    # 8, 18, 28 and 38 px, more than the gate radius of about 20 px from frame 3 on):
    # only a track that keeps its measured velocity across re-identifications in
    # consecutive frames finds it inside its motion gate.
    tracker = OnlineTracker(flow=None)
    for x in (20, 28, 46, 74, 112):
        image, masks = _frame([(x, 60, RED)])
        assert tracker.update(_dets(masks), image).track_ids.tolist() == [1], x


def _relative_scores(similarity: list[list[float]], motion: list[list[float]]) -> np.ndarray:
    score = RelativeReidScore(min_similarity=0.5, margin=0.05, motion_weight=0.2)
    similarity_array = np.array(similarity)
    n, m = similarity_array.shape
    return score(
        MatchCues(
            similarity=similarity_array,
            det_scores=np.ones(n),
            box_iou=np.zeros((n, m)),
            same_class=np.ones((n, m), bool),
            motion_cost=np.array(motion),
        )
    )


def test_relative_test_refuses_an_ambiguous_best_match() -> None:
    scores = _relative_scores(
        [[0.90, 0.88], [0.95, 0.60], [0.40, 0.30]], [[0.0, 0.0], [0.0, 0.0], [0.0, np.inf]]
    )
    assert scores[1, 1:].tolist() == [0.95, 0.60]  # a clear best: both stay admissible
    assert np.isneginf(scores[2, 1:]).all()  # below min_similarity / outside the gate
    assert (scores[:, 0] < 0.5).all()
    # Detection 0 cannot tell the tracks apart (0.90 vs 0.88), but detection 1 clearly
    # holds track 0: by elimination detection 0 takes track 1, as a lone candidate would.
    assert scores[0, 1:].tolist() == [0.90, 0.88]
    alone = _relative_scores([[0.90, 0.88]], [[0.0, 0.0]])
    assert np.isneginf(alone[0, 1:]).all()  # without detection 1: too close, new track


def test_relative_test_adds_up_the_evidence_of_look_alike_pairs() -> None:
    # Two look-alike detections, two look-alike tracks: each detection leans to a
    # different track by less than the margin (0.04 and 0.03), the pairing as a whole
    # beats the swapped one by 0.07.
    leaning = _relative_scores([[0.92, 0.88], [0.70, 0.73]], [[0.0, 0.0], [0.0, 0.0]])
    assert np.isfinite(leaning[:, 1:]).all()
    # Both lean to the same track: the swap costs as much as it gains; new tracks win.
    torn = _relative_scores([[0.92, 0.88], [0.90, 0.87]], [[0.0, 0.0], [0.0, 0.0]])
    assert np.isneginf(torn[:, 1:]).all()


def test_gallery_is_not_overwritten_by_a_thief() -> None:
    tracker = OnlineTracker(min_hits=1, gallery_every=1)
    image, masks = _frame([(60, 60, RED)])
    for _ in range(3):
        tracker.update(_dets(masks), image)
    track = tracker.tracks[0]
    entries, area = len(track.gallery), track.area
    # A bigger blue object takes the place (propagation IoU 0.56: matched, not confident).
    thief_image, thief = _frame([(60, 60, BLUE)], radius=18.7)
    assert tracker.update(_dets(thief), thief_image).track_ids.tolist() == [1]
    assert len(track.gallery) == entries and track.area == area
    red = tracker.embedder(image, masks[0][None])[0]
    blue = tracker.embedder(thief_image, thief[0][None])[0]
    assert track.gallery.similarity(("colour", len(red)), red) > 0.99
    assert track.gallery.similarity(("colour", len(blue)), blue) < 0.5


def test_gallery_is_bounded_and_keeps_spaces_apart() -> None:
    gallery = Gallery(size=2)
    for value in (1.0, 2.0, 3.0):
        gallery.add(("model", 2), np.array([value, 1.0]))
    assert len(gallery) == 2
    assert gallery.similarity(("colour", 2), np.array([1.0, 1.0])) is None
    assert gallery.similarity(("model", 2), np.array([2.0, 1.0])) == pytest.approx(1.0)
    assert gallery.similarity(("model", 2), np.array([1.0, 1.0])) < 0.99  # [1, 1] was dropped


def test_coasted_mask_is_predicted_and_ends_when_implausible() -> None:
    tracker = OnlineTracker()
    outputs = []
    for t in range(12):
        visible = t < 8  # the disc vanishes from the image at frame 8
        image, masks = _frame([(40 + 3 * t, 70, RED)] if visible else [])
        detected = t < 5  # detections stop at frame 5 while the disc is still there
        out = tracker.update(_dets(masks if detected else []), image)
        outputs.append((out, masks))
    for t in (5, 6, 7):
        out, masks = outputs[t]
        assert out.track_ids.tolist() == [1] and out.predicted.tolist() == [True]
        inter = np.count_nonzero(out.masks[0] & masks[0])
        assert inter / np.count_nonzero(out.masks[0] | masks[0]) > 0.6
    assert all(len(out) == 0 for out, _ in outputs[9:])  # no phantom on the background
    assert tracker.tracks[0].state is TrackState.LOST


@pytest.mark.parametrize("surround", [0.9, 1.0])
def test_coasting_on_the_background_ends_when_the_mask_looks_like_its_surroundings(
    surround: float,
) -> None:
    # A "false detection": a patch of the background itself, detected twice (so the
    # track is confirmed), then no more. The background is static, so the warped
    # patch passes the flow and area tests and matches the gallery (it is what was
    # detected); only its likeness to its surroundings ends the coast at once.
    image = _background()
    patch = np.zeros((SIZE, SIZE), bool)
    patch[60:90, 50:80] = True
    tracker = OnlineTracker(coast_max_surround_similarity=surround)
    for _ in range(2):
        assert tracker.update(_dets([patch]), image).track_ids.tolist() == [1]
    coasted = [len(tracker.update(_dets([]), image)) for _ in range(4)]
    assert coasted == ([0, 0, 0, 0] if surround < 1.0 else [1, 1, 1, 1])


def test_mixed_embedding_lengths_do_not_crash() -> None:
    tracker = OnlineTracker(min_hits=1, flow=None)
    image, masks = _frame([(60, 60, RED)])
    rng = np.random.default_rng(0)
    for embeddings in (rng.normal(size=(1, 16)), None, rng.normal(size=(1, 8))):
        out = tracker.update(_dets(masks, embeddings=embeddings), image)
        # Model embeddings of different lengths are never compared; the colour
        # embedding every track also keeps re-identifies the object.
        assert out.track_ids.tolist() == [1]


def test_spatial_duplicate_is_the_only_detection_left_at_id_0() -> None:
    tracker = OnlineTracker()
    image, masks = _frame([(60, 60, RED), (120, 110, BLUE)])
    tracker.update(_dets(masks), image)
    inner = masks[0] & (np.mgrid[:SIZE, :SIZE][1] < 60)
    out = tracker.update(_dets([masks[0], inner, masks[1]]), image)
    assert out.track_ids.tolist() == [1, 0, 2]
