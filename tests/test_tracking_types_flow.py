"""Instances record, optical flow, mask warping and the colour embedding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vis_node.tracking.embedding import ColourHistogramEmbedder
from vis_node.tracking.flow import (
    DISFlow,
    FarnebackFlow,
    LastPairFlow,
    reduced_flow,
    resize_masks,
    upscale_mask,
    warp_masks,
)
from vis_node.tracking.flow_table import FlowTable
from vis_node.structures.geometry import mask_box
from vis_node.structures.instances import Instances, boxes_from_masks


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def test_boxes_from_masks_exclusive_end() -> None:
    masks = np.zeros((2, 8, 10), bool)
    masks[0, 2:5, 3:7] = True
    np.testing.assert_array_equal(boxes_from_masks(masks), [[3, 2, 7, 5], [0, 0, 0, 0]])


def test_instances_defaults_and_validation() -> None:
    masks = np.zeros((2, 4, 4), bool)
    inst = Instances.from_masks(masks, class_probs=np.array([[0.2, 0.8], [0.6, 0.4]]))
    np.testing.assert_array_equal(inst.track_ids, [0, 0])
    np.testing.assert_allclose(inst.scores, [0.8, 0.6])
    np.testing.assert_array_equal(inst.labels, [1, 0])
    assert len(inst.select(np.array([1]))) == 1
    with pytest.raises(ValueError, match="saliency"):
        Instances(masks, np.zeros((2, 4)), np.ones((2, 1)), np.ones(3))
    with pytest.raises(ValueError, match="class_probs"):
        Instances(masks, np.zeros((2, 4)), np.ones((3, 1)), np.ones(2))


def test_id_map_paints_higher_score_on_top() -> None:
    masks = np.zeros((2, 3, 3), bool)
    masks[0, :, :2] = True
    masks[1, :, 1:] = True
    inst = Instances.from_masks(masks, scores=np.array([0.9, 0.5])).with_track_ids(np.array([4, 7]))
    np.testing.assert_array_equal(inst.id_map(), [[4, 4, 7]] * 3)


def test_warp_masks_translation_and_border() -> None:
    masks = np.zeros((9, 6, 8), bool)  # 9 masks: more than one 8-bit plane
    masks[:, 1:3, 0:2] = True
    masks[8, 1:3, 0:2] = False
    masks[8, 4, 7] = True
    flow = np.zeros((6, 8, 2), np.float32)
    flow[..., 0] = -2.0  # out[y, x] = mask[y, x - 2]: content moves 2 px right
    warped = warp_masks(masks, flow)
    expected = np.zeros((6, 8), bool)
    expected[1:3, 2:4] = True
    for k in range(8):
        np.testing.assert_array_equal(warped[k], expected)
    assert not warped[8].any()  # its pixel moved out of the image


@pytest.mark.parametrize("estimator", [DISFlow(), FarnebackFlow(), DISFlow(max_side=32)])
def test_flow_recovers_a_shift(estimator: object) -> None:
    big = _texture(120, 160)
    previous = big[10:106, 10:138]
    current = big[10:106, 13:141]  # scene moves 3 px left: current[x] = previous[x + 3]
    flow = estimator(current, previous)
    assert flow.shape == (96, 128, 2)
    centre = flow[24:72, 32:96]
    assert np.median(centre[..., 0]) == pytest.approx(3.0, abs=0.5)
    assert np.median(centre[..., 1]) == pytest.approx(0.0, abs=0.5)


def test_reduced_flow_is_the_flow_before_its_upscale() -> None:
    big = _texture(120, 160)
    previous, current = big[10:106, 10:138], big[10:106, 13:141]  # 128 x 96 frames
    estimator = DISFlow(max_side=64)
    small = reduced_flow(estimator, current, previous)
    assert small.shape == (48, 64, 2)
    # In pixels of its own grid: the 3-px shift is 1.5 px at half size.
    assert np.median(small[12:36, 16:48, 0]) == pytest.approx(1.5, abs=0.3)
    np.testing.assert_allclose(estimator(current, previous), _upscaled(small, 96, 128))
    # An estimator without a reduced resolution gives its full flow.
    full = np.ones((96, 128, 2), np.float32)
    assert reduced_flow(lambda a, b: full, current, previous) is full


def _upscaled(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    return out * np.array([width / flow.shape[1], height / flow.shape[0]], np.float32)


def test_flow_of_a_buffer_overwritten_in_place_is_fresh() -> None:
    # Grey frames are kept between calls: looked up by content, not by buffer.
    big = _texture(120, 160)
    previous, current = big[10:106, 10:138].copy(), big[10:106, 13:141].copy()
    estimator = DISFlow(max_side=64)
    estimator(current, previous)
    previous[:] = big[10:106, 16:144]  # now the scene moved 3 px right, not left
    np.testing.assert_array_equal(
        estimator(current, previous), DISFlow(max_side=64)(current, previous)
    )


def test_last_pair_flow_computes_each_pair_once() -> None:
    calls: list[int] = []

    def counting(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        calls.append(1)
        return np.full((*source.shape[:2], 2), float(source[0, 0, 0]), np.float32)

    shared = LastPairFlow(counting)
    a, b = np.zeros((4, 6, 3), np.uint8), np.ones((4, 6, 3), np.uint8)
    first = shared.reduced(a, b)
    assert shared(a, b) is first and len(calls) == 1  # full size already: no upscale
    shared(b.copy(), a)  # another pair: computed
    shared(b, a)
    assert len(calls) == 2


def test_flow_table_computes_each_ordered_pair_of_its_frames_once() -> None:
    calls: list[tuple[int, int]] = []

    def counting(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        calls.append((int(source[0, 0, 0]), int(target[0, 0, 0])))
        return np.full((2, 3, 2), float(source[0, 0, 0]) - float(target[0, 0, 0]), np.float32)

    frames = [np.full((4, 6, 3), k, np.uint8) for k in range(3)]
    table = FlowTable(counting, frames)
    forward = table.reduced(frames[1], frames[0])
    assert table.reduced(frames[1], frames[0]) is forward
    assert table(frames[1], frames[0]).shape == (4, 6, 2)  # upscaled to frame size
    np.testing.assert_allclose(table(frames[1], frames[0]), 2.0)  # 1 px on the 3-wide grid
    backward = table.reduced(frames[0], frames[1])  # the other direction is another pair
    np.testing.assert_allclose(backward, -1.0)
    table.reduced(frames[2], frames[1])
    assert calls == [(1, 0), (0, 1), (2, 1)] and table.computed == 3
    # Another array with the same pixels is not one of the table's frames: computed
    # each time and not kept.
    table.reduced(frames[1].copy(), frames[0])
    table.reduced(frames[1].copy(), frames[0])
    assert len(calls) == 5 and table.computed == 3


def test_resize_and_upscale_masks() -> None:
    masks = np.zeros((9, 8, 12), bool)  # more than one 8-bit plane
    masks[:, 2:6, 4:8] = True
    masks[8] = False
    small = resize_masks(masks, (4, 6))
    expected = np.zeros((4, 6), bool)
    expected[1:3, 2:4] = True
    for k in range(8):
        np.testing.assert_array_equal(small[k], expected)
    assert not small[8].any()
    assert resize_masks(masks, (8, 12)) is masks
    np.testing.assert_array_equal(upscale_mask(expected, (8, 12)), masks[0])


def test_flow_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="preset"):
        DISFlow(preset="slowest")
    with pytest.raises(ValueError, match="max_side"):
        FarnebackFlow(max_side=4)
    with pytest.raises(ValueError, match="differ"):
        DISFlow()(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_colour_embedding_separates_colours() -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :10] = (255, 0, 0)
    image[:, 10:20] = (250, 10, 5)
    image[:, 20:] = (0, 0, 255)
    masks = np.zeros((4, 20, 30), bool)
    masks[0, :, :10] = True
    masks[1, :, 10:20] = True
    masks[2, :, 20:] = True
    embedder = ColourHistogramEmbedder()
    vectors = embedder(image, masks)
    assert vectors.shape == (4, embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-6)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0)
    assert float(vectors[0] @ vectors[2]) == pytest.approx(0.0)
    assert not vectors[3].any()  # empty mask


def test_mask_box_is_tight_and_none_for_an_empty_mask() -> None:
    mask = np.zeros((5, 6), bool)
    assert mask_box(mask) is None
    mask[1:3, 2:5] = True
    assert mask_box(mask) == (2, 1, 5, 3)
