"""RoIMasking (S4Net Sec. 3.3): per-proposal masks over the stride-8 feature map.

A feature cell ``(i, j)`` of a map with stride ``s`` covers the input pixels
``[j*s, (j+1)*s) x [i*s, (i+1)*s)``. A cell belongs to a box when it overlaps the box
(``j < x2/s`` and ``j + 1 > x1/s``, likewise for rows), so every non-empty box covers
at least one cell and nothing is quantised beyond the cell grid itself.
"""

from __future__ import annotations

import torch

from vis_node.perception.config import ROI_MASKING_MODES


def expand_boxes(boxes: torch.Tensor, alpha: float) -> torch.Tensor:
    """Grow boxes by ``alpha`` times their width / height on every side.

    Parameters
    ----------
    boxes:
        ``float[N, 4]`` x1y1x2y2.
    alpha:
        Ring width as a fraction of the box size; the result is
        ``(1 + 2 * alpha)`` times as wide and tall.

    Returns
    -------
    torch.Tensor
        ``float[N, 4]`` x1y1x2y2 (not clipped).
    """
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    grow = torch.stack([-widths, -heights, widths, heights], dim=1) * alpha
    return boxes + grow


def box_cells(boxes: torch.Tensor, feature_size: tuple[int, int], stride: int) -> torch.Tensor:
    """Cells of a feature map overlapped by each box.

    Parameters
    ----------
    boxes:
        ``float[N, 4]`` x1y1x2y2 in input pixels; parts outside the map are ignored.
    feature_size:
        ``(h, w)`` of the map.
    stride:
        Input pixels per cell.

    Returns
    -------
    torch.Tensor
        ``bool[N, h, w]``.
    """
    height, width = feature_size
    scaled = boxes / stride
    cols = torch.arange(width, dtype=boxes.dtype, device=boxes.device)
    rows = torch.arange(height, dtype=boxes.dtype, device=boxes.device)
    in_x = (cols[None, :] < scaled[:, 2:3]) & (cols[None, :] + 1 > scaled[:, 0:1])
    in_y = (rows[None, :] < scaled[:, 3:4]) & (rows[None, :] + 1 > scaled[:, 1:2])
    return in_y[:, :, None] & in_x[:, None, :]


def roi_masks(
    boxes: torch.Tensor,
    feature_size: tuple[int, int],
    stride: int,
    *,
    mode: str,
    alpha: float,
) -> torch.Tensor:
    """RoIMasking masks, one per box.

    Parameters
    ----------
    boxes:
        ``float[N, 4]`` x1y1x2y2 in input pixels.
    feature_size:
        ``(h, w)`` of the masked map.
    stride:
        Input pixels per cell (8 for P3).
    mode:
        ``"binary"``: 1 on the box cells, 0 elsewhere. ``"expanded"``: 1 on the cells of
        the box grown by ``alpha`` (see :func:`expand_boxes`). ``"ternary"``: 1 on the box
        cells, -1 on the other cells of the grown box, 0 elsewhere.
    alpha:
        Ring width as a fraction of the box width / height.

    Returns
    -------
    torch.Tensor
        ``float[N, h, w]`` with values in {-1, 0, 1}; multiply it with the features.
    """
    if mode not in ROI_MASKING_MODES:
        raise ValueError(f"mode={mode!r}: choose one of {ROI_MASKING_MODES}")
    inside = box_cells(boxes, feature_size, stride).to(boxes.dtype)
    if mode == "binary":
        return inside
    grown = box_cells(expand_boxes(boxes, alpha), feature_size, stride).to(boxes.dtype)
    if mode == "expanded":
        return grown
    return 2.0 * inside - grown


def masked_region(boxes: torch.Tensor, *, mode: str, alpha: float) -> torch.Tensor:
    """Box outside of which the RoIMasking mask of ``mode`` is zero.

    Parameters
    ----------
    boxes:
        ``float[N, 4]`` x1y1x2y2.
    mode, alpha:
        See :func:`roi_masks`.

    Returns
    -------
    torch.Tensor
        ``float[N, 4]``: ``boxes`` for ``"binary"``, the grown boxes otherwise.
    """
    return boxes if mode == "binary" else expand_boxes(boxes, alpha)
