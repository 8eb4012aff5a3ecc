"""Segmentation branch on crop windows versus on the full RoIMasked map."""

from __future__ import annotations

import torch

from vis_node.perception.roi_masking import box_cells, masked_region, roi_masks
from vis_node.perception.seg_branch import (
    RECEPTIVE_FIELD_RADIUS,
    MaxPool3x3,
    SegmentationBranch,
    crop_to_windows,
    crop_windows,
)

MAP = (32, 32)
STRIDE = 8
CROP = 26


def _full_and_cropped(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Branch logits on the full masked maps and on the crops, plus the windows."""
    torch.manual_seed(0)
    branch = SegmentationBranch(8, 8, 4).eval()
    features = torch.rand(1, 8, *MAP)
    masks = roi_masks(boxes, MAP, STRIDE, mode="ternary", alpha=1 / 3)
    windows = crop_windows(
        masked_region(boxes, mode="ternary", alpha=1 / 3),
        MAP,
        STRIDE,
        crop_size=CROP,
        margin=RECEPTIVE_FIELD_RADIUS,
    )
    index = torch.zeros(len(boxes), dtype=torch.int64)
    crops = crop_to_windows(features, index, windows, CROP)
    mask_crops = crop_to_windows(masks[:, None], torch.arange(len(boxes)), windows, CROP)
    with torch.no_grad():
        full = branch(features * masks[:, None])
        cropped = branch(crops * mask_crops)
    return full, cropped, windows


def test_crops_with_receptive_field_margin_match_the_full_map() -> None:
    # Interior box, a box at the top-left corner and one at the bottom-right corner.
    boxes = torch.tensor(
        [[104.0, 112.0, 128.0, 136.0], [0.0, 0.0, 40.0, 24.0], [216.0, 230.0, 256.0, 256.0]]
    )
    full, cropped, windows = _full_and_cropped(boxes)
    inside = box_cells(boxes, MAP, STRIDE)
    for k in range(len(boxes)):
        x0, y0 = int(windows[k, 0]), int(windows[k, 1])
        assert windows[k, 2] - windows[k, 0] == CROP  # native resolution
        full_window = full[k, :, y0 : y0 + CROP, x0 : x0 + CROP]
        box_in_window = inside[k, y0 : y0 + CROP, x0 : x0 + CROP]
        assert box_in_window.sum() == inside[k].sum()
        diff = (cropped[k] - full_window).abs()[:, box_in_window]
        assert diff.max() < 1e-5


def test_native_crop_copies_cells_exactly() -> None:
    maps = torch.rand(1, 3, *MAP)
    windows = torch.tensor([[4.0, 2.0, 4.0 + CROP, 2.0 + CROP]])
    crop = crop_to_windows(maps, torch.zeros(1, dtype=torch.int64), windows, CROP)
    assert torch.equal(crop[0], maps[0, :, 2 : 2 + CROP, 4 : 4 + CROP])


def test_windows_are_square_inside_the_map_and_contain_the_region() -> None:
    regions = torch.tensor(
        [
            [100.0, 100.0, 120.0, 110.0],  # small: native window of CROP cells
            [8.0, 16.0, 240.0, 200.0],  # large: cells 1..29 plus margin -> 31-cell window
            [-40.0, 200.0, 30.0, 300.0],  # partly outside the input
        ]
    )
    windows = crop_windows(regions, MAP, STRIDE, crop_size=16, margin=1)
    sides = windows[:, 2:] - windows[:, :2]
    assert torch.equal(sides[:, 0], sides[:, 1])
    assert sides[:, 0].tolist() == [16.0, 31.0, 16.0]
    assert (windows >= 0).all() and (windows <= 32).all()
    assert torch.equal(windows, windows.round())
    cells = torch.stack(
        [
            (regions[:, 0] / STRIDE).floor().clamp(min=0),
            (regions[:, 1] / STRIDE).floor().clamp(min=0),
            (regions[:, 2] / STRIDE).ceil().clamp(max=32),
            (regions[:, 3] / STRIDE).ceil().clamp(max=32),
        ],
        dim=1,
    )
    assert (windows[:, :2] <= cells[:, :2]).all() and (windows[:, 2:] >= cells[:, 2:]).all()
    # The small region (cells 12..15 x 12..14) is centred: origin round(13.5 - 8) = 6.
    assert windows[0].tolist() == [6.0, 5.0, 22.0, 21.0]


def test_maxpool_equals_torch_max_pool() -> None:
    x = torch.randn(2, 3, 7, 5)
    assert torch.equal(MaxPool3x3()(x), torch.nn.functional.max_pool2d(x, 3, 1, 1))


def test_branch_keeps_spatial_size() -> None:
    branch = SegmentationBranch(16, 8, 4)
    assert branch(torch.rand(5, 16, 12, 12)).shape == (5, 2, 12, 12)
    assert branch(torch.rand(0, 16, 12, 12)).shape == (0, 2, 12, 12)
