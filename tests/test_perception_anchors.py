"""Anchors and detection head output order."""

from __future__ import annotations

import math

import torch

from vis_node.perception.anchors import cell_anchors, pyramid_anchors
from vis_node.perception.config import FEATURE_STRIDES, ModelConfig
from vis_node.perception.head import DetectionHead


def _anchors_128() -> list[torch.Tensor]:
    cfg = ModelConfig(input_size=128, seg_crop_size=16)
    sizes = [(128 // s, 128 // s) for s in FEATURE_STRIDES]
    return pyramid_anchors(sizes, FEATURE_STRIDES, cfg.anchor_sizes, cfg.anchor_ratios)


def test_anchor_count_per_level() -> None:
    assert [len(a) for a in _anchors_128()] == [16 * 16 * 3, 8 * 8 * 3, 4 * 4 * 3, 2 * 2 * 3]


def test_hand_computed_anchor_coordinates() -> None:
    p3, p4, _, p6 = _anchors_128()
    # P3 (stride 8, size 32), cell (0, 0), ratio 1: centre (4, 4), side 32.
    assert torch.allclose(p3[1], torch.tensor([-12.0, -12.0, 20.0, 20.0]))
    # P3 cell (row 1, col 2), ratio 0.5 (height / width): centre (20, 12).
    half_w, half_h = 32 / math.sqrt(0.5) / 2, 32 * math.sqrt(0.5) / 2
    expected = torch.tensor([20 - half_w, 12 - half_h, 20 + half_w, 12 + half_h])
    assert torch.allclose(p3[(1 * 16 + 2) * 3 + 0], expected)
    # P4 (stride 16, size 64), cell (0, 1), ratio 1: centre (24, 8).
    assert torch.allclose(p4[(0 * 8 + 1) * 3 + 1], torch.tensor([-8.0, -24.0, 56.0, 40.0]))
    # P6 (stride 64, size 256), cell (1, 1), ratio 2: centre (96, 96), 181.02 x 362.04.
    half_w, half_h = 256 / math.sqrt(2) / 2, 256 * math.sqrt(2) / 2
    expected = torch.tensor([96 - half_w, 96 - half_h, 96 + half_w, 96 + half_h])
    assert torch.allclose(p6[(1 * 2 + 1) * 3 + 2], expected)


def test_cell_anchors_keep_area() -> None:
    anchors = cell_anchors(64.0, (0.5, 1.0, 2.0))
    widths = anchors[:, 2] - anchors[:, 0]
    heights = anchors[:, 3] - anchors[:, 1]
    assert torch.allclose(widths * heights, torch.full((3,), 64.0**2))
    assert torch.allclose(heights / widths, torch.tensor([0.5, 1.0, 2.0]))


def test_head_output_order_matches_anchors() -> None:
    torch.manual_seed(0)
    head = DetectionHead(8, 3, 16)
    levels = [torch.rand(2, 8, 16 // 2**k, 16 // 2**k) for k in range(4)]
    logits, deltas = head(levels)
    total = 3 * sum(16 // 2**k * 16 // 2**k for k in range(4))
    assert logits.shape == (2, total) and deltas.shape == (2, total, 4)
    hidden = head.conv(levels[1])
    raw = head.objectness(hidden)  # [2, 3, 8, 8]
    # Level P4 starts after the 16*16*3 P3 anchors; cell (row 2, col 5), anchor 1.
    assert torch.equal(logits[1, 16 * 16 * 3 + (2 * 8 + 5) * 3 + 1], raw[1, 1, 2, 5])
    raw_deltas = head.box_deltas(hidden)  # [2, 12, 8, 8]
    assert torch.equal(deltas[0, 16 * 16 * 3 + (2 * 8 + 5) * 3 + 2], raw_deltas[0, 8:12, 2, 5])
