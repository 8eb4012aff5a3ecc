"""Proposal selection and mask pasting."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.postprocess import (
    box_masks_in_frame,
    paste_masks_in_frame,
    paste_masks_in_image,
    select_proposals,
)

CODER = BoxCoder((1.0, 1.0, 1.0, 1.0))


def _select(
    logits: torch.Tensor, anchors: torch.Tensor, **overrides: float
) -> tuple[torch.Tensor, torch.Tensor]:
    settings = {
        "pre_nms_top_k": 100,
        "nms_iou_threshold": 0.4,
        "num_proposals": 20,
        "score_threshold": 0.0,
        "min_box_size": 1.0,
    }
    settings.update(overrides)
    return select_proposals(
        logits, torch.zeros(len(anchors), 4), anchors, (64, 64), CODER, **settings
    )


def test_nms_removes_an_overlapping_duplicate() -> None:
    anchors = torch.tensor(
        [[10.0, 10.0, 30.0, 30.0], [11.0, 10.0, 31.0, 30.0], [40.0, 40.0, 60.0, 60.0]]
    )
    boxes, scores = _select(torch.tensor([2.0, 1.0, 0.5]), anchors)
    assert torch.equal(boxes, anchors[[0, 2]])
    assert torch.allclose(scores, torch.tensor([2.0, 0.5]).sigmoid())


def test_score_threshold_top_k_and_clipping() -> None:
    anchors = torch.tensor(
        [[-10.0, -10.0, 20.0, 20.0], [40.0, 40.0, 60.0, 60.0], [0.0, 40.0, 20.0, 60.0]]
    )
    logits = torch.tensor([3.0, -3.0, 1.0])
    boxes, _ = _select(logits, anchors, score_threshold=0.5)
    assert torch.equal(boxes, torch.tensor([[0.0, 0.0, 20.0, 20.0], [0.0, 40.0, 20.0, 60.0]]))
    boxes, _ = _select(logits, anchors, num_proposals=1)
    assert len(boxes) == 1
    boxes, _ = _select(logits, anchors, pre_nms_top_k=2)
    assert len(boxes) == 2


def test_decoded_deltas_move_the_box() -> None:
    anchors = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    deltas = torch.tensor([[0.5, 0.0, 0.0, 0.0]])  # shift by half a width
    boxes, _ = select_proposals(
        torch.tensor([1.0]),
        deltas,
        anchors,
        (64, 64),
        CODER,
        pre_nms_top_k=10,
        nms_iou_threshold=0.4,
        num_proposals=5,
        score_threshold=0.0,
        min_box_size=1.0,
    )
    assert torch.allclose(boxes, torch.tensor([[20.0, 10.0, 40.0, 30.0]]))


def test_pasted_mask_fills_exactly_the_box() -> None:
    probs = torch.ones(1, 4, 4)
    pasted = paste_masks_in_image(
        probs,
        torch.tensor([[0.0, 0.0, 32.0, 32.0]]),
        torch.tensor([[8.0, 4.0, 20.0, 30.0]]),
        (32, 32),
    )
    expected = torch.zeros(1, 32, 32, dtype=torch.bool)
    expected[0, 4:30, 8:20] = True
    assert torch.equal(pasted >= 0.5, expected)


def test_pasted_mask_aligns_with_the_crop_grid() -> None:
    # Crop cells are 8 px wide; the left two cells are foreground, so the 0.5 crossing
    # lies at x = 16 px: pixel 15 (centre 15.5) is in, pixel 16 (centre 16.5) is out.
    probs = torch.zeros(1, 4, 4)
    probs[0, :, :2] = 1.0
    pasted = paste_masks_in_image(
        probs,
        torch.tensor([[0.0, 0.0, 32.0, 32.0]]),
        torch.tensor([[0.0, 0.0, 32.0, 32.0]]),
        (32, 32),
    )
    assert pasted[0, 10, 15].item() == 0.5625 and pasted[0, 10, 16].item() == 0.4375
    expected = torch.zeros(1, 32, 32, dtype=torch.bool)
    expected[0, :, :16] = True
    assert torch.equal(pasted >= 0.5, expected)
    # A window offset by 8 px shifts the mask by 8 px.
    shifted = paste_masks_in_image(
        probs,
        torch.tensor([[8.0, 0.0, 40.0, 32.0]]),
        torch.tensor([[0.0, 0.0, 64.0, 32.0]]),
        (32, 64),
    )
    assert torch.equal(shifted[0, :, 8:40], pasted[0])


def test_no_masks() -> None:
    empty = paste_masks_in_image(torch.zeros(0, 4, 4), torch.zeros(0, 4), torch.zeros(0, 4), (8, 8))
    assert empty.shape == (0, 8, 8)


def test_frame_paste_equals_image_paste_at_input_resolution() -> None:
    rng = np.random.default_rng(3)
    probs = rng.random((6, 12, 12)).astype(np.float32)
    corners = rng.uniform(0, 64, (6, 2, 2)).astype(np.float32)
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 4], axis=1)
    sides = rng.uniform(24, 80, (6, 1)).astype(np.float32)
    origins = rng.uniform(-8, 40, (6, 2)).astype(np.float32)
    windows = np.concatenate([origins, origins + sides], axis=1)
    reference = paste_masks_in_image(
        torch.from_numpy(probs), torch.from_numpy(windows), torch.from_numpy(boxes), (64, 64)
    ).numpy()
    ours = paste_masks_in_frame(probs, windows, boxes, 64, (64, 64), 0.5)
    undecided = np.abs(reference - 0.5) < 1e-4
    assert ours.any() and not undecided.all()
    np.testing.assert_array_equal(ours[~undecided], reference[~undecided] >= 0.5)


def test_frame_paste_scales_box_and_grid_to_the_frame() -> None:
    # Input 32 px, frame 64 x 96 (scale 3 in x, 2 in y): the box [4, 8, 12, 16] covers
    # frame columns 12..35 and rows 16..31; the left half of the grid is foreground.
    probs = np.zeros((1, 4, 4), np.float32)
    probs[0, :, :2] = 1.0
    masks = paste_masks_in_frame(
        probs,
        np.array([[4.0, 8.0, 12.0, 16.0]], np.float32),
        np.array([[4.0, 8.0, 12.0, 16.0]], np.float32),
        32,
        (64, 96),
        0.5,
    )
    rows, cols = np.nonzero(masks[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 31, 12, 23)
    outside = paste_masks_in_frame(
        np.ones((1, 4, 4), np.float32),
        np.array([[0.0, 0.0, 32.0, 32.0]], np.float32),
        np.array([[40.0, 40.0, 50.0, 50.0]], np.float32),
        32,
        (64, 96),
        0.5,
    )
    assert not outside.any()
    assert paste_masks_in_frame(np.zeros((0, 4, 4), np.float32), np.zeros((0, 4)),
                                np.zeros((0, 4)), 32, (8, 8), 0.5).shape == (0, 8, 8)


def test_box_masks_cover_the_pixels_a_paste_computes() -> None:
    # The same scaled box as above: frame columns 12..35 and rows 16..31.
    boxes = np.array([[4.0, 8.0, 12.0, 16.0], [40.0, 40.0, 50.0, 50.0]], np.float32)
    masks = box_masks_in_frame(boxes, 32, (64, 96))
    rows, cols = np.nonzero(masks[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 31, 12, 35)
    assert masks[0].sum() == 16 * 24 and not masks[1].any()  # the second lies outside
    pasted = paste_masks_in_frame(np.ones((2, 4, 4), np.float32), boxes, boxes, 32, (64, 96), 0.5)
    np.testing.assert_array_equal(masks, pasted)
