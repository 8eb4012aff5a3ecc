"""Training losses of the perception model, as free functions.

Every loss is a scalar tensor connected to its prediction input, and exactly zero
(with a zero gradient) when there is nothing to learn from, e.g. an image without
ground-truth instances gives zero box, mask and class loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.ops import box_iou, roi_align

POSITIVE = 1.0
"""Anchor label of a positive (object) anchor."""
NEGATIVE = 0.0
"""Anchor label of a negative (background) anchor."""
IGNORED = -1.0
"""Anchor label of an anchor left out of the objectness loss."""


def _zero(reference: torch.Tensor) -> torch.Tensor:
    """A zero scalar that keeps ``reference`` in the autograd graph."""
    return reference.sum() * 0.0


def match_anchors(
    anchors: torch.Tensor,
    gt_boxes: torch.Tensor,
    *,
    pos_iou_threshold: float,
    neg_iou_threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label anchors by their IoU with ground-truth boxes.

    Parameters
    ----------
    anchors:
        ``float[A, 4]`` x1y1x2y2.
    gt_boxes:
        ``float[K, 4]`` x1y1x2y2; ``K`` may be 0.
    pos_iou_threshold:
        Best IoU from which an anchor is positive.
    neg_iou_threshold:
        Best IoU below which an anchor is negative; in between it is ignored. Each
        ground-truth box also makes its highest-IoU anchors positive.

    Returns
    -------
    labels:
        ``float[A]``: :data:`POSITIVE`, :data:`NEGATIVE` or :data:`IGNORED`.
    matched:
        ``int64[A]``: index of the matched ground-truth box (0 where not positive).
    """
    num_anchors = anchors.shape[0]
    if gt_boxes.shape[0] == 0:
        return (
            torch.full((num_anchors,), NEGATIVE, device=anchors.device),
            torch.zeros(num_anchors, dtype=torch.int64, device=anchors.device),
        )
    matcher = Matcher(pos_iou_threshold, neg_iou_threshold, allow_low_quality_matches=True)
    matches = matcher(box_iou(gt_boxes, anchors))
    labels = torch.full((num_anchors,), POSITIVE, device=anchors.device)
    labels[matches == Matcher.BELOW_LOW_THRESHOLD] = NEGATIVE
    labels[matches == Matcher.BETWEEN_THRESHOLDS] = IGNORED
    return labels, matches.clamp(min=0)


def objectness_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    negatives: str = "all",
    ohem_negatives: int = 256,
    negative_weight: float = 1.0,
) -> torch.Tensor:
    """Binary cross-entropy with positives and negatives averaged separately (paper Eq. 2).

    Parameters
    ----------
    logits:
        ``float[B, A]`` objectness logits.
    labels:
        ``float[B, A]`` anchor labels from :func:`match_anchors`.
    negatives:
        ``"all"`` averages over every negative; ``"ohem"`` over the ``ohem_negatives``
        negatives with the highest loss in each image.
    ohem_negatives:
        Hard negatives kept per image with ``"ohem"``.
    negative_weight:
        Multiplier of the negative term.

    Returns
    -------
    torch.Tensor
        Scalar: mean over images of ``mean_pos + negative_weight * mean_neg``; a term
        with no anchors contributes 0.
    """
    per_anchor = F.binary_cross_entropy_with_logits(logits, labels.clamp(min=0.0), reduction="none")
    total = _zero(logits)
    for image_loss, image_labels in zip(per_anchor, labels):
        positive = image_loss[image_labels == POSITIVE]
        negative = image_loss[image_labels == NEGATIVE]
        if negatives == "ohem":
            negative = negative.topk(min(ohem_negatives, negative.numel())).values
        elif negatives != "all":
            raise ValueError(f"negatives={negatives!r}: choose 'all' or 'ohem'")
        if positive.numel():
            total = total + positive.mean()
        if negative.numel():
            total = total + negative_weight * negative.mean()
    return total / max(logits.shape[0], 1)


def box_loss(
    deltas: torch.Tensor, target_deltas: torch.Tensor, labels: torch.Tensor, *, beta: float = 1.0
) -> torch.Tensor:
    """Smooth-L1 loss on the encoded deltas of positive anchors.

    Parameters
    ----------
    deltas:
        ``float[B, A, 4]`` predicted ``(dx, dy, dw, dh)``.
    target_deltas:
        ``float[B, A, 4]`` encoded targets (only positive anchors are read).
    labels:
        ``float[B, A]`` anchor labels.
    beta:
        Smooth-L1 transition point.

    Returns
    -------
    torch.Tensor
        Scalar: summed smooth-L1 over the four deltas of every positive anchor, divided
        by the number of positive anchors in the batch; 0 without positives.
    """
    positive = labels == POSITIVE
    count = int(positive.sum())
    if count == 0:
        return _zero(deltas)
    return (
        F.smooth_l1_loss(deltas[positive], target_deltas[positive], beta=beta, reduction="sum")
        / count
    )


def encode_box_targets(
    box_coder: BoxCoder, anchors: torch.Tensor, gt_boxes: torch.Tensor, matched: torch.Tensor
) -> torch.Tensor:
    """Deltas that turn every anchor into its matched ground-truth box.

    Parameters
    ----------
    box_coder:
        Encoder of ``(dx, dy, dw, dh)`` deltas.
    anchors:
        ``float[A, 4]`` x1y1x2y2.
    gt_boxes:
        ``float[K, 4]`` x1y1x2y2.
    matched:
        ``int64[A]`` ground-truth index per anchor.

    Returns
    -------
    torch.Tensor
        ``float[A, 4]``; zeros when ``K == 0``.
    """
    if gt_boxes.shape[0] == 0:
        return torch.zeros_like(anchors)
    return box_coder.encode_single(gt_boxes[matched], anchors)


def crop_mask_targets(
    gt_masks: torch.Tensor, windows: torch.Tensor, crop_size: int, stride: int
) -> torch.Tensor:
    """Ground-truth masks sampled on the crop grids of the segmentation branch.

    Parameters
    ----------
    gt_masks:
        ``bool[K, H, W]`` instance masks at input resolution.
    windows:
        ``float[K, 4]`` crop windows x1y1x2y2 in cells (see
        :func:`vis_node.perception.seg_branch.crop_windows`).
    crop_size:
        Side of the crop grid.
    stride:
        Input pixels per cell.

    Returns
    -------
    torch.Tensor
        ``bool[K, crop_size, crop_size]``: a crop cell is foreground when at least half
        of the input pixels it covers are.
    """
    if gt_masks.shape[0] == 0:
        return torch.zeros((0, crop_size, crop_size), dtype=torch.bool, device=gt_masks.device)
    index = torch.arange(gt_masks.shape[0], dtype=windows.dtype, device=windows.device)
    rois = torch.cat([index[:, None], windows * stride], dim=1)
    coverage = roi_align(
        gt_masks[:, None].to(windows.dtype),
        rois,
        output_size=crop_size,
        spatial_scale=1.0,
        sampling_ratio=0,
        aligned=True,
    )
    return coverage[:, 0] >= 0.5


def mask_loss(logits: torch.Tensor, targets: torch.Tensor, in_box: torch.Tensor) -> torch.Tensor:
    """Two-class cross-entropy of the mask logits, inside the box only.

    Parameters
    ----------
    logits:
        ``float[K, 2, h, w]`` (channel 1 = salient instance).
    targets:
        ``bool[K, h, w]`` ground-truth mask on the same grid.
    in_box:
        ``bool[K, h, w]`` cells inside the instance box.

    Returns
    -------
    torch.Tensor
        Scalar mean over all in-box cells; 0 when there are none.
    """
    count = int(in_box.sum())
    if count == 0:
        return _zero(logits)
    per_cell = F.cross_entropy(logits, targets.long(), reduction="none")
    return (per_cell * in_box).sum() / count


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the class logits.

    Parameters
    ----------
    logits:
        ``float[K, C]``.
    labels:
        ``int64[K]`` class ids in ``[0, C)``.

    Returns
    -------
    torch.Tensor
        Scalar mean; 0 when ``K == 0``.
    """
    if labels.numel() == 0:
        return _zero(logits)
    return F.cross_entropy(logits, labels)


def embedding_loss(
    embeddings: torch.Tensor, identities: torch.Tensor, *, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised contrastive loss: same identity close, different identities apart.

    Parameters
    ----------
    embeddings:
        ``float[K, D]`` L2-normalised embeddings of the instances of a batch.
    identities:
        ``int64[K]`` identity of each instance (e.g. track ids shared across the frames
        of a batch).
    temperature:
        Softmax temperature of the cosine similarities.

    Returns
    -------
    torch.Tensor
        Scalar: for every instance with at least one other instance of its identity,
        the mean negative log-probability of those instances under a softmax over all
        others; averaged over such instances. 0 when no identity occurs twice.
    """
    count = embeddings.shape[0]
    same = identities[:, None] == identities[None, :]
    eye = torch.eye(count, dtype=torch.bool, device=embeddings.device)
    positives = same & ~eye
    anchors = positives.any(dim=1)
    if not bool(anchors.any()):
        return _zero(embeddings)
    logits = (embeddings @ embeddings.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits.log_softmax(dim=1).masked_fill(eye, 0.0)
    per_anchor = -(log_prob * positives).sum(dim=1) / positives.sum(dim=1).clamp(min=1)
    return per_anchor[anchors].mean()


def mask_bce_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE plus soft Dice of mask logits against 0/1 targets (Dice smoothed by 1 px).

    Parameters
    ----------
    logits:
        ``float[N, ...]`` mask logits, one mask per row.
    targets:
        ``float[N, ...]`` of the same shape, 1 inside the object.

    Returns
    -------
    torch.Tensor
        Scalar: mean BCE over every pixel + mean over masks of ``1 - Dice``.
    """
    probs = torch.sigmoid(logits).flatten(1)
    flat = targets.flatten(1)
    dice = 1.0 - (2.0 * (probs * flat).sum(1) + 1.0) / (probs.sum(1) + flat.sum(1) + 1.0)
    return F.binary_cross_entropy_with_logits(logits, targets) + dice.mean()
