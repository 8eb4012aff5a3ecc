"""RoIMasking masks on a 6x6 map with stride 8 (a 48x48-pixel input)."""

from __future__ import annotations

import pytest
import torch

from vis_node.perception.roi_masking import expand_boxes, masked_region, roi_masks

SIZE = (6, 6)
STRIDE = 8


def _mask(box: list[float], mode: str) -> torch.Tensor:
    return roi_masks(torch.tensor([box]), SIZE, STRIDE, mode=mode, alpha=1 / 3)[0]


def test_three_modes_on_an_interior_box() -> None:
    # Box 24x24 px -> cells cols 2..4, rows 1..3; grown by 8 px -> cols 1..5, rows 0..4.
    box = [16.0, 8.0, 40.0, 32.0]
    binary = torch.tensor(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 0, 1, 1, 1, 0],
            [0, 0, 1, 1, 1, 0],
            [0, 0, 1, 1, 1, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=torch.float32,
    )
    expanded = torch.tensor(
        [
            [0, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=torch.float32,
    )
    ternary = torch.tensor(
        [
            [0, -1, -1, -1, -1, -1],
            [0, -1, 1, 1, 1, -1],
            [0, -1, 1, 1, 1, -1],
            [0, -1, 1, 1, 1, -1],
            [0, -1, -1, -1, -1, -1],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=torch.float32,
    )
    assert torch.equal(_mask(box, "binary"), binary)
    assert torch.equal(_mask(box, "expanded"), expanded)
    assert torch.equal(_mask(box, "ternary"), ternary)


def test_box_touching_top_left_border() -> None:
    # Cols 0..1 (x < 1.5 cells), rows 0..2 (y < 2.5); grown to [-4, -6.7, 16, 26.7]
    # -> cols 0..1, rows 0..3: the ring survives only below the box.
    expected = torch.zeros(SIZE)
    expected[0:3, 0:2] = 1
    expected[3, 0:2] = -1
    assert torch.equal(_mask([0.0, 0.0, 12.0, 20.0], "ternary"), expected)


def test_box_touching_bottom_right_border() -> None:
    # Cols 4..5 (x > 4.25 cells), rows 3..5; grown x1 = 29.3 px -> col 3 joins the ring,
    # grown y1 = 24 px = row 3 exactly, so no ring row above.
    expected = torch.zeros(SIZE)
    expected[3:6, 4:6] = 1
    expected[3:6, 3] = -1
    assert torch.equal(_mask([34.0, 30.0, 48.0, 48.0], "ternary"), expected)


def test_box_inside_one_cell_covers_that_cell() -> None:
    expected = torch.zeros(SIZE)
    expected[2, 2] = 1
    assert torch.equal(_mask([17.0, 17.0, 18.0, 18.0], "binary"), expected)


def test_expand_boxes_and_region() -> None:
    boxes = torch.tensor([[10.0, 20.0, 40.0, 80.0]])
    assert torch.allclose(expand_boxes(boxes, 1 / 3), torch.tensor([[0.0, 0.0, 50.0, 100.0]]))
    assert torch.equal(masked_region(boxes, mode="binary", alpha=1 / 3), boxes)
    with pytest.raises(ValueError, match="mode='quad'"):
        roi_masks(boxes, SIZE, STRIDE, mode="quad", alpha=0.3)
