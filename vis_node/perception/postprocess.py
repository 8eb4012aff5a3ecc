"""Inference post-processing: proposals from anchor scores, masks pasted into the image."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import clip_boxes_to_image, nms, remove_small_boxes


def select_proposals(
    logits: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    box_coder: BoxCoder,
    *,
    pre_nms_top_k: int,
    nms_iou_threshold: float,
    num_proposals: int,
    score_threshold: float,
    min_box_size: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode, filter and suppress the anchors of one image.

    Parameters
    ----------
    logits:
        ``float[A]`` objectness logits.
    deltas:
        ``float[A, 4]`` encoded box deltas.
    anchors:
        ``float[A, 4]`` x1y1x2y2 anchors in input pixels.
    image_size:
        ``(H, W)`` of the input; boxes are clipped to it.
    box_coder:
        Decoder of the deltas.
    pre_nms_top_k:
        Highest-scoring anchors decoded.
    nms_iou_threshold:
        Class-agnostic NMS IoU threshold.
    num_proposals:
        Boxes kept after NMS (highest scores first).
    score_threshold:
        Boxes whose objectness probability is below this are dropped.
    min_box_size:
        Boxes narrower or shorter than this (pixels) are dropped.

    Returns
    -------
    boxes:
        ``float[N, 4]`` x1y1x2y2 in input pixels, ``N <= num_proposals``, by decreasing
        score.
    scores:
        ``float[N]`` objectness probabilities.
    """
    scores = logits.sigmoid()
    top = scores.topk(min(pre_nms_top_k, scores.numel())).indices
    scores = scores[top]
    boxes = box_coder.decode_single(deltas[top], anchors[top])
    boxes = clip_boxes_to_image(boxes, image_size)
    keep = remove_small_boxes(boxes, min_box_size)
    keep = keep[scores[keep] >= score_threshold]
    boxes, scores = boxes[keep], scores[keep]
    keep = nms(boxes, scores, nms_iou_threshold)
    keep = keep[:num_proposals]
    return boxes[keep], scores[keep]


def paste_masks_in_image(
    probs: torch.Tensor,
    windows: torch.Tensor,
    boxes: torch.Tensor,
    image_size: tuple[int, int],
) -> torch.Tensor:
    """Resample crop-grid mask probabilities to the input image, inside each box.

    Parameters
    ----------
    probs:
        ``float[N, S, S]`` probabilities on the crop grids.
    windows:
        ``float[N, 4]`` x1y1x2y2 in input pixels covered by each crop grid.
    boxes:
        ``float[N, 4]`` x1y1x2y2 in input pixels; the result is 0 at pixels whose centre
        lies outside the box.
    image_size:
        ``(H, W)`` of the result.

    Returns
    -------
    torch.Tensor
        ``float[N, H, W]``: bilinear interpolation of ``probs`` at every pixel centre
        (edge values continue past the window's outer half-cell), 0 outside the box.
    """
    height, width = image_size
    count = probs.shape[0]
    if count == 0:
        return probs.new_zeros((0, height, width))
    xs = torch.arange(width, dtype=probs.dtype, device=probs.device) + 0.5
    ys = torch.arange(height, dtype=probs.dtype, device=probs.device) + 0.5
    gx = 2.0 * (xs[None, :] - windows[:, 0:1]) / (windows[:, 2:3] - windows[:, 0:1]) - 1.0
    gy = 2.0 * (ys[None, :] - windows[:, 1:2]) / (windows[:, 3:4] - windows[:, 1:2]) - 1.0
    grid = torch.stack(
        [gx[:, None, :].expand(count, height, width), gy[:, :, None].expand(count, height, width)],
        dim=-1,
    )
    pasted = F.grid_sample(
        probs[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )[:, 0]
    in_x = (xs[None, :] >= boxes[:, 0:1]) & (xs[None, :] <= boxes[:, 2:3])
    in_y = (ys[None, :] >= boxes[:, 1:2]) & (ys[None, :] <= boxes[:, 3:4])
    return pasted * (in_y[:, :, None] & in_x[:, None, :])


def paste_masks_in_frame(
    probs: np.ndarray,
    windows: np.ndarray,
    boxes: np.ndarray,
    input_size: int | tuple[float, float],
    frame_size: tuple[int, int],
    threshold: float,
) -> np.ndarray:
    """Binary frame-resolution masks from crop-grid probabilities, computed only in each box.

    The frame-resolution counterpart of :func:`paste_masks_in_image`: each frame pixel
    centre is mapped to input coordinates (the frame was resized to ``input_size``
    squared), the crop grid is sampled there bilinearly (edge values continue past the
    window, as ``padding_mode="border"``) and thresholded. Only the pixels whose centre
    lies in the box are computed (one ``cv2.warpAffine`` per mask), so the cost grows
    with the box area in the frame, not with the frame.

    Parameters
    ----------
    probs:
        ``float32[N, K, K]`` probabilities on the crop grids.
    windows:
        ``float32[N, 4]`` x1y1x2y2 in input pixels covered by each crop grid.
    boxes:
        ``float32[N, 4]`` x1y1x2y2 in input pixels; pixels outside stay ``False``.
    input_size:
        Side of the square network input the frame was resized to, in pixels, or the
        ``(h, w)`` in input pixels that the whole frame covers (a letterboxed input).
    frame_size:
        ``(H, W)`` of the frame.
    threshold:
        Probability from which a pixel belongs to the mask.

    Returns
    -------
    numpy.ndarray
        ``bool[N, H, W]``.
    """
    height, width = frame_size
    count = len(probs)
    masks = np.zeros((count, height, width), dtype=bool)
    if count == 0:
        return masks
    sx, sy = _frame_scale(input_size, frame_size)
    cells = probs.shape[-1]
    for k in range(count):
        region_box = _frame_pixels(boxes[k], sx, sy, frame_size)
        if region_box is None:
            continue
        x_lo, y_lo, x_hi, y_hi = region_box
        wx1, wy1, wx2, wy2 = (float(v) for v in windows[k])
        cell_w, cell_h = (wx2 - wx1) / cells, (wy2 - wy1) / cells
        # Inverse map: region pixel (i, j) -> crop-grid coordinates (cell centres at c).
        matrix = np.array(
            [
                [1.0 / (sx * cell_w), 0.0, ((x_lo + 0.5) / sx - wx1) / cell_w - 0.5],
                [0.0, 1.0 / (sy * cell_h), ((y_lo + 0.5) / sy - wy1) / cell_h - 0.5],
            ]
        )
        region = cv2.warpAffine(
            np.ascontiguousarray(probs[k], dtype=np.float32),
            matrix,
            (x_hi - x_lo + 1, y_hi - y_lo + 1),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        masks[k, y_lo : y_hi + 1, x_lo : x_hi + 1] = region >= threshold
    return masks


def box_masks_in_frame(
    boxes: np.ndarray, input_size: int | tuple[float, float], frame_size: tuple[int, int]
) -> np.ndarray:
    """Frame-resolution masks filling boxes given in input pixels.

    Parameters
    ----------
    boxes:
        ``float32[N, 4]`` x1y1x2y2 in input pixels.
    input_size, frame_size:
        As :func:`paste_masks_in_frame`.

    Returns
    -------
    numpy.ndarray
        ``bool[N, H, W]``: the frame pixels whose centre lies in each box (the pixels
        :func:`paste_masks_in_frame` computes for it).
    """
    height, width = frame_size
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    sx, sy = _frame_scale(input_size, frame_size)
    for k, box in enumerate(boxes):
        region_box = _frame_pixels(box, sx, sy, frame_size)
        if region_box is not None:
            x_lo, y_lo, x_hi, y_hi = region_box
            masks[k, y_lo : y_hi + 1, x_lo : x_hi + 1] = True
    return masks


def _frame_scale(
    input_size: int | tuple[float, float], frame_size: tuple[int, int]
) -> tuple[float, float]:
    """Frame pixels per input pixel, ``(sx, sy)``; ``input_size`` as in
    :func:`paste_masks_in_frame`."""
    input_h, input_w = (
        (float(input_size), float(input_size))
        if np.isscalar(input_size)
        else (float(input_size[0]), float(input_size[1]))
    )
    return frame_size[1] / input_w, frame_size[0] / input_h


def _frame_pixels(
    box: np.ndarray, sx: float, sy: float, frame_size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Inclusive ``x_lo, y_lo, x_hi, y_hi`` of the frame pixels whose centre lies in
    ``box`` (x1y1x2y2, input pixels), or ``None`` when there is none."""
    bx1, by1, bx2, by2 = (float(v) for v in box)
    x_lo = max(int(np.ceil(bx1 * sx - 0.5)), 0)
    x_hi = min(int(np.floor(bx2 * sx - 0.5)), frame_size[1] - 1)
    y_lo = max(int(np.ceil(by1 * sy - 0.5)), 0)
    y_hi = min(int(np.floor(by2 * sy - 0.5)), frame_size[0] - 1)
    if x_hi < x_lo or y_hi < y_lo:
        return None
    return x_lo, y_lo, x_hi, y_hi
