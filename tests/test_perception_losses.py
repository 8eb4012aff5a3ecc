"""Loss functions of the perception model."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.losses import (
    IGNORED,
    NEGATIVE,
    POSITIVE,
    box_loss,
    class_loss,
    crop_mask_targets,
    embedding_loss,
    encode_box_targets,
    mask_loss,
    match_anchors,
    objectness_loss,
)


def test_anchor_matching_thresholds() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1
            [5.0, 0.0, 15.0, 10.0],  # IoU 50/150 = 0.33 -> negative
            [2.0, 0.0, 12.0, 10.0],  # IoU 80/120 = 0.67 -> positive
            [4.0, 0.0, 14.0, 10.0],  # IoU 60/140 = 0.43 -> ignored
            [50.0, 50.0, 60.0, 60.0],  # IoU 0
        ]
    )
    labels, matched = match_anchors(anchors, gt, pos_iou_threshold=0.5, neg_iou_threshold=0.4)
    assert labels.tolist() == [POSITIVE, NEGATIVE, POSITIVE, IGNORED, NEGATIVE]
    assert matched.tolist() == [0, 0, 0, 0, 0]


def test_best_anchor_of_a_box_is_positive_even_below_threshold() -> None:
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    anchors = torch.tensor([[5.0, 0.0, 15.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    labels, _ = match_anchors(anchors, gt, pos_iou_threshold=0.5, neg_iou_threshold=0.4)
    assert labels.tolist() == [POSITIVE, NEGATIVE]


def test_empty_targets_give_zero_box_mask_class_losses() -> None:
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 25.0]])
    labels, matched = match_anchors(
        anchors, torch.zeros(0, 4), pos_iou_threshold=0.5, neg_iou_threshold=0.4
    )
    assert labels.tolist() == [NEGATIVE, NEGATIVE]
    logits = torch.randn(1, 2, requires_grad=True)
    deltas = torch.randn(1, 2, 4, requires_grad=True)
    targets = encode_box_targets(
        BoxCoder((1.0, 1.0, 1.0, 1.0)), anchors, torch.zeros(0, 4), matched
    )
    obj = objectness_loss(logits, labels[None])
    assert torch.isfinite(obj) and obj > 0
    assert box_loss(deltas, targets[None], labels[None]).item() == 0.0
    mask_logits = torch.randn(0, 2, 4, 4, requires_grad=True)
    empty = torch.zeros(0, 4, 4, dtype=torch.bool)
    assert mask_loss(mask_logits, empty, empty).item() == 0.0
    assert (
        class_loss(torch.randn(0, 3, requires_grad=True), torch.zeros(0, dtype=torch.int64)).item()
        == 0.0
    )
    assert embedding_loss(torch.randn(0, 4), torch.zeros(0, dtype=torch.int64)).item() == 0.0
    total = obj + box_loss(deltas, targets[None], labels[None])
    total.backward()
    assert torch.equal(deltas.grad, torch.zeros_like(deltas))


def test_hand_computed_smooth_l1() -> None:
    deltas = torch.tensor([[[0.5, -2.0, 0.0, 0.1], [1.0, 1.0, 1.0, 1.0], [9.0, 9.0, 9.0, 9.0]]])
    targets = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    labels = torch.tensor([[POSITIVE, POSITIVE, NEGATIVE]])
    # 0.5 * 0.5**2 + (2 - 0.5) + 0 + 0.5 * 0.1**2 = 1.63 over two positive anchors.
    assert box_loss(deltas, targets, labels, beta=1.0).item() == pytest.approx(1.63 / 2)


def test_hand_computed_objectness() -> None:
    logits = torch.zeros(1, 4)
    labels = torch.tensor([[POSITIVE, NEGATIVE, NEGATIVE, IGNORED]])
    assert objectness_loss(logits, labels).item() == pytest.approx(2 * math.log(2))
    assert objectness_loss(logits, labels, negative_weight=0.5).item() == pytest.approx(
        1.5 * math.log(2)
    )
    logits = torch.tensor([[0.0, 3.0, -3.0, 0.0]])
    hard = math.log1p(math.exp(3.0))
    assert objectness_loss(
        logits, labels, negatives="ohem", ohem_negatives=1
    ).item() == pytest.approx(math.log(2) + hard)


def test_perfect_predictions_beat_wrong_ones() -> None:
    labels = torch.tensor([[POSITIVE, NEGATIVE, NEGATIVE]])
    good = torch.tensor([[8.0, -8.0, -8.0]])
    assert objectness_loss(good, labels) < objectness_loss(-good, labels)

    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, 1:3, 1:3] = True
    in_box = torch.ones(1, 4, 4, dtype=torch.bool)
    right = torch.stack([~target, target], dim=1).float() * 8.0
    assert mask_loss(right, target, in_box) < mask_loss(right.flip(1), target, in_box)
    assert mask_loss(right, target, in_box).item() < 1e-3

    labels = torch.tensor([2, 1])
    assert class_loss(F.one_hot(labels, 3).float() * 8, labels) < class_loss(
        F.one_hot(labels.flip(0), 3).float() * 8, labels
    )

    identities = torch.tensor([7, 7, 9, 9])
    grouped = F.normalize(torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]]), dim=1)
    mixed = grouped[[0, 2, 1, 3]]
    assert embedding_loss(grouped, identities) < embedding_loss(mixed, identities)


def test_mask_loss_ignores_cells_outside_the_box() -> None:
    target = torch.zeros(1, 3, 3, dtype=torch.bool)
    in_box = torch.zeros(1, 3, 3, dtype=torch.bool)
    in_box[0, 1, 1] = True
    logits = torch.zeros(1, 2, 3, 3)
    logits[0, 1] = 5.0  # confidently wrong everywhere...
    logits[0, :, 1, 1] = torch.tensor([3.0, 0.0])  # ...except the in-box cell
    expected = F.cross_entropy(torch.tensor([[3.0, 0.0]]), torch.tensor([0]))
    assert mask_loss(logits, target, in_box).item() == pytest.approx(expected.item())


def test_mask_targets_on_crop_grid() -> None:
    masks = torch.zeros(1, 32, 32, dtype=torch.bool)
    masks[0, 8:24, 0:12] = True  # cell column 1 is half covered (pixels 8..11 of 8..15)
    targets = crop_mask_targets(masks, torch.tensor([[0.0, 0.0, 4.0, 4.0]]), crop_size=4, stride=8)
    expected = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected[0, 1:3, 0:2] = True
    assert torch.equal(targets, expected)
