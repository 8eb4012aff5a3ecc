"""DAVIS J / F / statistics tests.

Hand-counted cases, a real DAVIS frame pair, and the unsupervised protocol
cross-checked against trackeval's J&F (adapted from davis2017-evaluation).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from vis_node.evaluation.davis import (
    boundary_map,
    boundary_radius,
    disk,
    evaluate_davis2016,
    evaluate_davis2017_unsupervised,
    f_measure,
    jaccard,
    statistics,
    unsupervised_sequence_scores,
)
from vis_node.evaluation.loading import SequencePair


def _pixels(shape: tuple[int, int], *points: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for r, c in points:
        mask[r, c] = True
    return mask


def _pair(name: str, gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None):
    return SequencePair(
        name=name,
        frame_names=[f"{t:05d}" for t in range(len(gt))],
        gt=gt.astype(np.uint16),
        void=void,
        pred=pred.astype(np.uint16),
    )


def test_jaccard_hand_counts_and_void() -> None:
    pred = np.array([[1, 1, 0], [0, 0, 0]], bool)
    gt = np.array([[0, 1, 1], [0, 0, 0]], bool)
    assert jaccard(pred, gt) == pytest.approx(1 / 3)
    void = np.array([[0, 0, 1], [0, 0, 0]], bool)
    assert jaccard(pred, gt, void) == pytest.approx(1 / 2)
    empty = np.zeros((2, 3), bool)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(empty, gt) == 0.0
    assert jaccard(pred, empty) == 0.0
    # The prediction lies only on void pixels and GT is empty: union 0 -> 1.
    assert jaccard(_pixels((2, 3), (0, 2)), empty, void) == 1.0


def test_boundary_map_of_a_square_by_hand() -> None:
    seg = np.zeros((4, 4), bool)
    seg[1:3, 1:3] = True
    expected = np.array(
        [[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]],
        bool,
    )
    np.testing.assert_array_equal(boundary_map(seg), expected)


def test_disk_matches_skimage_shapes() -> None:
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(
        disk(2),
        [[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]],
    )
    np.testing.assert_array_equal(
        disk(3),
        [
            [0, 0, 0, 1, 0, 0, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 0, 0, 1, 0, 0, 0],
        ],
    )
    assert disk(8).dtype == np.uint8
    assert boundary_radius((480, 854)) == 8
    assert boundary_radius((10, 10)) == 1


def test_f_measure_hand_cases() -> None:
    shape = (10, 10)  # diagonal 14.1 px -> radius 1 (a 3x3 cross)
    gt = _pixels(shape, (2, 2))  # boundary {(1,1),(1,2),(2,1),(2,2)}
    # Shift by 2 columns: half of each boundary lies within 1 px of the other -> P = R = 0.5.
    assert f_measure(_pixels(shape, (2, 4)), gt) == pytest.approx(0.5)
    # Shift by 4 columns: nothing within tolerance.
    assert f_measure(_pixels(shape, (2, 6)), gt) == 0.0
    assert f_measure(gt, gt) == 1.0


def test_f_measure_empty_mask_conventions() -> None:
    shape = (10, 10)
    empty = np.zeros(shape, bool)
    obj = _pixels(shape, (4, 4), (4, 5))
    assert f_measure(empty, empty) == 1.0
    assert f_measure(empty, obj) == 0.0
    assert f_measure(obj, empty) == 0.0


def test_void_pixels_are_excluded_from_j_and_f() -> None:
    shape = (10, 10)
    gt = _pixels(shape, (2, 2))
    pred = _pixels(shape, (2, 2), (7, 7))
    void = _pixels(shape, (7, 7))
    # Without void: P = 4/8 (one of two squares' boundaries), R = 1 -> F = 2/3; J = 1/2.
    assert f_measure(pred, gt) == pytest.approx(2 / 3)
    assert jaccard(pred, gt) == pytest.approx(1 / 2)
    assert f_measure(pred, gt, void) == 1.0
    assert jaccard(pred, gt, void) == 1.0


def test_statistics_on_a_hand_made_sequence() -> None:
    values = np.array([1.0, 1.0, 0.4, 0.6, 0.2, 0.0, 0.9, 0.3])
    # Bins from round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: first [0:3], last [5:8].
    stats = statistics(values)
    assert stats.mean == pytest.approx(0.55)
    assert stats.recall == pytest.approx(0.5)
    assert stats.decay == pytest.approx(0.8 - 0.4)
    single = statistics(np.array([0.7]))
    assert (single.mean, single.recall, single.decay) == (pytest.approx(0.7), 1.0, 0.0)


def test_jaccard_on_real_davis_frames(davis2016_root) -> None:
    folder = davis2016_root / "Annotations" / "480p" / "blackswan"
    first = np.array(Image.open(folder / "00000.png")) > 0
    fifth = np.array(Image.open(folder / "00005.png")) > 0
    inter = int(np.logical_and(first, fifth).sum())
    union = int(np.logical_or(first, fifth).sum())
    assert 0 < inter < union
    assert jaccard(fifth, first) == inter / union


def test_f_on_real_davis_frames_matches_trackeval(davis2016_root, monkeypatch) -> None:
    _install_skimage_disk(monkeypatch)
    from trackeval.metrics import JAndF

    folder = davis2016_root / "Annotations" / "480p" / "blackswan"
    first = (np.array(Image.open(folder / "00000.png")) > 0).astype(np.uint8)
    fifth = (np.array(Image.open(folder / "00005.png")) > 0).astype(np.uint8)
    gt = [[mask_utils.encode(np.asfortranarray(first))]]
    pred = [[mask_utils.encode(np.asfortranarray(fifth))]]
    expected = JAndF._compute_f(gt, pred, 0, 0, 0.008)[0]
    assert 0.0 < expected < 1.0
    assert f_measure(fifth.astype(bool), first.astype(bool)) == pytest.approx(expected, abs=1e-12)


def test_davis2016_unites_instances_and_reports_statistics() -> None:
    gt = np.zeros((2, 10, 10), int)
    gt[:, 2:6, 2:6] = 1
    pred = np.zeros_like(gt)
    pred[0, 2:6, 2:4] = 3  # two instances that together cover the object
    pred[0, 2:6, 4:6] = 7
    pred[1, 2:6, 2:4] = 1  # half the object
    report = evaluate_davis2016([_pair("seq", gt, pred)])
    assert report["protocol"] == "davis2016"
    assert report["num_sequences"] == 1
    assert report["J"]["mean"] == pytest.approx((1.0 + 0.5) / 2)
    assert report["J"]["recall"] == pytest.approx(0.5)
    assert report["J"]["decay"] == pytest.approx(0.5)
    assert report["per_sequence"]["seq"]["J"] == pytest.approx(0.75)
    assert report["JF"] == pytest.approx((report["J"]["mean"] + report["F"]["mean"]) / 2)


def _install_skimage_disk(monkeypatch) -> None:
    """Provide skimage's ``disk``: trackeval's F imports ``skimage.morphology.disk``."""

    def skimage_disk(radius: float) -> np.ndarray:
        r = int(radius)
        rows = [[int(x * x + y * y <= r * r) for x in range(-r, r + 1)] for y in range(-r, r + 1)]
        return np.array(rows, np.uint8)

    skimage = types.ModuleType("skimage")
    morphology = types.ModuleType("skimage.morphology")
    morphology.disk = skimage_disk
    skimage.morphology = morphology
    monkeypatch.setitem(sys.modules, "skimage", skimage)
    monkeypatch.setitem(sys.modules, "skimage.morphology", morphology)


def _trackeval_jandf(gt: np.ndarray, pred: np.ndarray) -> dict:
    """J&F by trackeval (Hungarian on mean (J + F) / 2) on ``int[T, H, W]`` id maps."""
    from trackeval.metrics import JAndF

    def dets(ids: np.ndarray) -> tuple[list, list, int]:
        labels = [int(i) for i in np.unique(ids) if i != 0]
        index = {k: i for i, k in enumerate(labels)}
        frame_ids, frame_dets = [], []
        for frame in ids:
            present = [k for k in labels if (frame == k).any()]
            frame_ids.append(np.array([index[k] for k in present], int))
            frame_dets.append(
                [mask_utils.encode(np.asfortranarray(frame == k, np.uint8)) for k in present]
            )
        return frame_ids, frame_dets, len(labels)

    gt_ids, gt_dets, num_gt = dets(gt)
    tr_ids, tr_dets, num_tr = dets(pred)
    data = {
        "num_timesteps": len(gt),
        "num_gt_ids": num_gt,
        "num_tracker_ids": num_tr,
        "gt_ids": gt_ids,
        "tracker_ids": tr_ids,
        "gt_dets": gt_dets,
        "tracker_dets": tr_dets,
    }
    metric = JAndF()
    metric.optim_type = "J&F"
    return metric.eval_sequence(data)


def _moving_boxes(rng: np.random.Generator, num_frames: int, num_objects: int) -> np.ndarray:
    """``int[T, 48, 64]`` maps of boxes drifting over time (later ids drawn on top)."""
    ids = np.zeros((num_frames, 48, 64), int)
    for obj in range(1, num_objects + 1):
        r, c = rng.integers(4, 30), rng.integers(4, 40)
        h, w = rng.integers(6, 16), rng.integers(6, 20)
        dr, dc = rng.integers(-1, 2), rng.integers(-1, 3)
        for t in range(num_frames):
            if rng.random() < 0.15:
                continue  # object absent in this frame
            rt, ct = max(0, r + dr * t), max(0, c + dc * t)
            ids[t, rt : rt + h, ct : ct + w] = obj
    return ids


@pytest.mark.parametrize(("seed", "num_pred"), [(0, 4), (1, 3), (2, 1)])
def test_unsupervised_protocol_matches_trackeval(monkeypatch, seed: int, num_pred: int) -> None:
    _install_skimage_disk(monkeypatch)
    rng = np.random.default_rng(seed)
    gt = _moving_boxes(rng, 9, 3)
    pred = gt.copy()
    pred[:, ::7, :] = 0  # damage every 7th row
    pred = np.where(pred > 0, (pred % 3) + 1, 0)  # permute ids
    pred[pred > num_pred] = 0
    noise = _moving_boxes(rng, 9, 1)
    if num_pred > 3:
        pred[noise > 0] = 4
    expected = _trackeval_jandf(gt, pred)
    report = evaluate_davis2017_unsupervised([_pair("s", gt, pred)])
    assert report["num_objects"] == 3
    assert report["J"]["mean"] == pytest.approx(expected["J-Mean"], abs=1e-9)
    assert report["J"]["recall"] == pytest.approx(expected["J-Recall"], abs=1e-9)
    assert report["J"]["decay"] == pytest.approx(expected["J-Decay"], abs=1e-9)
    assert report["F"]["mean"] == pytest.approx(expected["F-Mean"], abs=1e-9)
    assert report["F"]["recall"] == pytest.approx(expected["F-Recall"], abs=1e-9)
    assert report["F"]["decay"] == pytest.approx(expected["F-Decay"], abs=1e-9)
    assert report["JF"] == pytest.approx(expected["J&F"], abs=1e-9)


def test_unsupervised_pads_missing_proposals_and_rejects_too_many() -> None:
    gt = np.zeros((3, 10, 10), int)
    gt[:, 1:4, 1:4] = 1
    gt[:, 6:9, 6:9] = 2
    pred = np.zeros_like(gt)
    pred[:, 6:9, 6:9] = 5  # one proposal, matching object 2
    scores = unsupervised_sequence_scores(_pair("s", gt, pred))
    np.testing.assert_array_equal(scores[2][0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(scores[1][0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(scores[1][1], [0.0, 0.0, 0.0])
    many = np.arange(100).reshape(1, 10, 10) % 22
    with pytest.raises(ValueError, match="at most 20 proposals"):
        unsupervised_sequence_scores(_pair("s", gt[:1], many))
