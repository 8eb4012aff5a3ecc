"""Association geometry and assignment: mask / box IoU, cosine similarity, Hungarian.

Score matrices for the memory (re-identification) stage have shape ``[N, M + 1]``: row
``i`` is a detection, column 0 is the option "start a new track" and column ``n >= 1``
is the ``n``-th candidate track. Higher is better; ``-inf`` forbids a pair. The scores
that fill them (MaskTrack R-CNN cue fusion, IoUTracker+, relative re-identification)
are in :mod:`vis_node.tracking.scores`; :func:`assign` turns them into tracks.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

NEW_TRACK = -1
"""Assignment code: the detection starts a new track."""
DROPPED = -2
"""Assignment code: the detection lost a conflict for its best track and is dropped."""


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of binary masks.

    Parameters
    ----------
    a, b:
        ``bool[N, H, W]`` and ``bool[M, H, W]``.

    Returns
    -------
    numpy.ndarray
        ``float64[N, M]``; 0 where both masks are empty.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"mask sizes differ: {a.shape[1:]} vs {b.shape[1:]}")
    if a.ndim == 3 and a.shape[0] and b.shape[0]:
        # Only the box where any mask is set matters (much less than a frame).
        rows = np.flatnonzero(a.any(axis=(0, 2)) | b.any(axis=(0, 2)))
        cols = np.flatnonzero(a.any(axis=(0, 1)) | b.any(axis=(0, 1)))
        if rows.size == 0:
            return np.zeros((a.shape[0], b.shape[0]))
        a = a[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        b = b[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    pixels = int(np.prod(a.shape[1:]))
    flat_a = a.reshape(a.shape[0], pixels).astype(np.float32)
    flat_b = b.reshape(b.shape[0], pixels).astype(np.float32)
    inter = (flat_a @ flat_b.T).astype(np.float64)
    union = flat_a.sum(1, dtype=np.float64)[:, None] + flat_b.sum(1, dtype=np.float64)[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``x1, y1, x2, y2`` boxes.

    Parameters
    ----------
    a, b:
        ``float[N, 4]`` and ``float[M, 4]`` boxes in pixels.

    Returns
    -------
    numpy.ndarray
        ``float64[N, M]``; 0 where the union is empty.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    height = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of embeddings.

    Parameters
    ----------
    a, b:
        ``float[N, D]`` and ``float[M, D]``.

    Returns
    -------
    numpy.ndarray
        ``float64[N, M]`` in ``[-1, 1]``; 0 for a zero vector.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norm_a = np.linalg.norm(a, axis=1, keepdims=True)
    norm_b = np.linalg.norm(b, axis=1, keepdims=True)
    a = np.divide(a, norm_a, out=np.zeros_like(a), where=norm_a > 0)
    b = np.divide(b, norm_b, out=np.zeros_like(b), where=norm_b > 0)
    return a @ b.T


def match_by_iou(ious: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching that maximises total IoU, keeping pairs at ``>= threshold``.

    Parameters
    ----------
    ious:
        ``float[N, M]`` IoU of rows with columns.
    threshold:
        Smallest IoU kept.

    Returns
    -------
    rows, cols:
        ``int64[K]`` matched row and column indices.
    """
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    gated = np.where(ious >= threshold, ious, 0.0)
    rows, cols = linear_sum_assignment(gated, maximize=True)
    keep = ious[rows, cols] >= threshold
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def assign(
    scores: np.ndarray, drop_conflicts: bool = True, taken: np.ndarray | None = None
) -> np.ndarray:
    """Give each detection a track, a new track, or nothing, maximising the total score.

    Solves one Hungarian problem over ``[N, M + N]``: the ``M`` candidate tracks plus
    one private new-track column per detection, so at most one detection takes each
    track. MaskTrack R-CNN resolves two detections wanting the same track by keeping
    the larger score ``v`` and discarding the others; with ``drop_conflicts`` a
    detection whose best option was a track now held by another detection is likewise
    dropped instead of starting a duplicate track.

    Parameters
    ----------
    scores:
        ``float[N, M + 1]``, column 0 = new track (must be finite); ``-inf`` forbids a
        pair.
    drop_conflicts:
        Drop conflict losers (``True``) or let them start new tracks.
    taken:
        ``bool[M]``: candidates already held by detections matched earlier (by
        propagation). Nobody is assigned to them; with ``drop_conflicts`` a detection
        whose best option is one of them has lost a conflict and is dropped.

    Returns
    -------
    numpy.ndarray
        ``int64[N]``: candidate index ``0..M-1``, :data:`NEW_TRACK` or :data:`DROPPED`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must be [N, M + 1], got shape {scores.shape}")
    if not np.isfinite(scores[:, 0]).all():
        raise ValueError("every detection needs a finite new-track score (column 0)")
    n, m = scores.shape[0], scores.shape[1] - 1
    result = np.full(n, NEW_TRACK, dtype=np.int64)
    if n == 0:
        return result
    tracks = scores[:, 1:].copy()
    active = np.arange(n)
    if taken is not None:
        taken = np.asarray(taken, dtype=bool)
        if taken.shape != (m,):
            raise ValueError(f"taken must be bool[{m}], got shape {taken.shape}")
        tracks[:, taken] = -np.inf
        if drop_conflicts:
            best = np.argmax(scores, axis=1)
            lost = (best > 0) & taken[np.maximum(best - 1, 0)]
            result[lost] = DROPPED
            active = np.flatnonzero(~lost)
    new_block = np.full((active.size, active.size), -np.inf)
    np.fill_diagonal(new_block, scores[active, 0])
    rows, cols = linear_sum_assignment(
        np.concatenate([tracks[active], new_block], axis=1), maximize=True
    )
    for row, col in zip(rows, cols):
        det = active[row]
        if col < m:
            result[det] = col
        elif drop_conflicts and np.argmax(scores[det]) > 0:
            result[det] = DROPPED
    return result
