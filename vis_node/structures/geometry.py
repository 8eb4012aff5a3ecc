"""Mask and box geometry shared by every layer (pixel boxes are end-exclusive).

A box ``x1, y1, x2, y2`` covers columns ``x1 .. x2 - 1`` and rows ``y1 .. y2 - 1``, so
an ``h x w`` mask has a box of area ``w * h``.
"""

from __future__ import annotations

import numpy as np


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight integer box ``(x1, y1, x2, y2)`` of a ``bool[H, W]`` mask, or ``None`` if empty."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    y1, y2 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[y1:y2].any(axis=0))  # only the occupied rows
    return (int(cols[0]), y1, int(cols[-1]) + 1, y2)


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight boxes around binary masks.

    Parameters
    ----------
    masks:
        ``bool[N, H, W]`` instance masks.

    Returns
    -------
    numpy.ndarray
        ``float32[N, 4]`` boxes ``x1, y1, x2, y2`` in pixels, where ``x2, y2`` are one
        past the last covered column / row (so an ``h x w`` mask has area ``w * h``).
        Empty masks get the box ``0, 0, 0, 0``.
    """
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    rows_any = np.asarray(masks.any(axis=2))
    cols_any = np.asarray(masks.any(axis=1))
    for k in range(masks.shape[0]):
        rows = np.flatnonzero(rows_any[k])
        if rows.size == 0:
            continue
        cols = np.flatnonzero(cols_any[k])
        boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes
