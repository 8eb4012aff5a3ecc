"""Association cues and assignment: mask / box IoU, MaskTrack R-CNN cue fusion, Hungarian.

Score matrices for the memory (re-identification) stage have shape ``[N, M + 1]``: row
``i`` is a detection, column 0 is the option "start a new track" and column ``n >= 1``
is the ``n``-th candidate track. Higher is better; ``-inf`` forbids a pair.

Longer than 400 lines: the mask / box geometry, the three association scores and the
assignment they feed are one unit, and splitting it would only move imports around.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import log_softmax

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


def appearance_log_probs(
    similarity: np.ndarray, temperature: float = 1.0, new_track_similarity: float = 0.0
) -> np.ndarray:
    """MaskTrack R-CNN Eq. 2 on cosine similarities: ``log p_i(n)`` over ``n = 0..M``.

    ``p_i(n) = exp(s_in / T) / (exp(s_0 / T) + sum_j exp(s_ij / T))`` with ``s_0`` the
    similarity that makes "new track" as likely as a candidate. With ``T = 1``,
    ``s_0 = 0`` and dot products instead of cosines this is exactly Eq. 2.

    Parameters
    ----------
    similarity:
        ``float[N, M]`` cosine similarities, detection x candidate track.
    temperature:
        Softmax temperature ``T > 0``.
    new_track_similarity:
        ``s_0``, the logit (times ``T``) of the new-track option, column 0.

    Returns
    -------
    numpy.ndarray
        ``float64[N, M + 1]`` log probabilities; each row's exponentials sum to 1.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    logits = np.concatenate(
        [np.full((similarity.shape[0], 1), new_track_similarity, np.float64), similarity], axis=1
    )
    return log_softmax(logits / temperature, axis=1)


def cue_fusion_scores(
    log_p_app: np.ndarray,
    det_scores: np.ndarray,
    box_ious: np.ndarray,
    same_class: np.ndarray,
    alpha: float = 1.0,
    beta: float = 2.0,
    gamma: float = 10.0,
) -> np.ndarray:
    """MaskTrack R-CNN Eq. 3: ``v_i(n) = log p_i(n) + alpha log s_i + beta IoU + gamma delta``.

    For the new-track column the IoU term is 0 and the class term is 1, as in the
    reference implementation (mmtracking ``MaskTrackRCNNTracker.compute_match_score``),
    so matching a track of another class must beat starting a new one by ``gamma``.

    Parameters
    ----------
    log_p_app:
        ``float[N, M + 1]`` appearance log probabilities (column 0 = new track).
    det_scores:
        ``float[N]`` detection confidences ``s_i`` in ``(0, 1]``.
    box_ious:
        ``float[N, M]`` box IoU of each detection with each candidate track's box.
    same_class:
        ``bool[N, M]``, the Kronecker delta of the class labels.
    alpha, beta, gamma:
        Cue weights (paper: 1, 2, 10).

    Returns
    -------
    numpy.ndarray
        ``float64[N, M + 1]`` scores ``v``.
    """
    log_p_app = np.asarray(log_p_app, dtype=np.float64)
    n = log_p_app.shape[0]
    ious = np.concatenate([np.zeros((n, 1)), np.asarray(box_ious, np.float64)], axis=1)
    delta = np.concatenate([np.ones((n, 1)), np.asarray(same_class, np.float64)], axis=1)
    log_s = np.log(np.asarray(det_scores, dtype=np.float64))[:, None]
    return log_p_app + alpha * log_s + beta * ious + gamma * delta


@dataclass(frozen=True)
class MatchCues:
    """Cues between ``N`` unmatched detections and ``M`` candidate tracks.

    Attributes
    ----------
    similarity:
        ``float64[N, M]`` cosine similarity of detection embeddings with the tracks'
        key-frame embeddings.
    det_scores:
        ``float32[N]`` detection confidences.
    box_iou:
        ``float64[N, M]`` IoU of detection boxes with the tracks' predicted boxes
        (flow-warped for tracks seen in the previous frame, else last seen).
    same_class:
        ``bool[N, M]``: detection and track have the same class label.
    comparable:
        ``bool[N, M]``: the detection's embedding and the track's gallery come from the
        same embedder (same origin and length); ``similarity`` is 0 where they do not.
        ``None`` means all pairs are comparable.
    motion_cost:
        ``float64[N, M]``: how implausible the detection's position is for the track:
        ``d / r + log(r / r0)`` with ``d`` the distance from where the track's
        velocity puts it, ``r`` its gate radius (which grows with the frames the track
        has been gone) and ``r0`` the radius one frame after its last detection; so a
        long-gone track is less certain than a recent one. ``inf`` outside the gate
        (``d > r``). ``None`` means every pair is plausible at no cost.
    """

    similarity: np.ndarray
    det_scores: np.ndarray
    box_iou: np.ndarray
    same_class: np.ndarray
    comparable: np.ndarray | None = None
    motion_cost: np.ndarray | None = None


class AssociationScore(Protocol):
    """Scores detections against candidate tracks for the memory stage."""

    uses_appearance: bool
    """Whether :attr:`MatchCues.similarity` is read (else embeddings are not computed)."""

    def __call__(self, cues: MatchCues) -> np.ndarray:
        """Return ``float64[N, M + 1]`` scores; column 0 = new track, ``-inf`` = forbidden."""
        ...


class CueFusionScore:
    """MaskTrack R-CNN cue fusion (Eq. 2 + Eq. 3) on cosine similarities.

    Parameters
    ----------
    alpha, beta, gamma:
        Weights of ``log s``, box IoU and same class (paper: 1, 2, 10).
    temperature:
        Softmax temperature of the appearance term.
    new_track_similarity:
        Cosine similarity at which an existing track is as likely as a new one.

    Examples
    --------
    >>> score = CueFusionScore()
    >>> v = score(MatchCues(sim, det_scores, ious, same_class))  # doctest: +SKIP
    """

    uses_appearance = True

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 2.0,
        gamma: float = 10.0,
        temperature: float = 0.1,
        new_track_similarity: float = 0.5,
    ) -> None:
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not -1.0 <= new_track_similarity <= 1.0:
            raise ValueError(
                f"new_track_similarity must lie in [-1, 1], got {new_track_similarity}"
            )
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.temperature = float(temperature)
        self.new_track_similarity = float(new_track_similarity)

    def __call__(self, cues: MatchCues) -> np.ndarray:
        """Eq. 3 scores ``float64[N, M + 1]`` (column 0 = new track)."""
        log_p = appearance_log_probs(cues.similarity, self.temperature, self.new_track_similarity)
        return cue_fusion_scores(
            log_p, cues.det_scores, cues.box_iou, cues.same_class, self.alpha, self.beta, self.gamma
        )


class RelativeReidScore:
    """Re-identification that resists look-alikes: gated, relative appearance test.

    A detection may take a candidate track only if the pair is comparable (same
    embedding space), plausible (inside the motion gate) and its similarity (the best
    over the track's appearance gallery) is at least ``min_similarity``; a pair scores
    ``similarity - motion_weight * motion_cost``. The detection must also *lead* by
    ``margin``, else "new track" wins. Its lead is the larger of

    * its own: its best candidate's score minus its second best's;
    * the frame's: the total score of the best assignment minus that of the best
      assignment in which the detection holds another track (see
      :func:`assignment_leads`). Two look-alike detections that each lean a little
      to a different one of two look-alike tracks add their evidence up, and a
      detection torn between two tracks, one of which another detection clearly
      holds, takes the other (as with a single candidate).

    Admissible pairs score their value; the new-track option scores below any
    admissible pair, so the Hungarian assignment gives each track to the best
    detection and the others start new tracks.

    Parameters
    ----------
    min_similarity:
        Smallest cosine similarity for a match.
    margin:
        Least lead of the best candidate over the second best.
    motion_weight:
        Weight of :attr:`MatchCues.motion_cost`.
    """

    uses_appearance = True

    def __init__(self, min_similarity: float, margin: float, motion_weight: float) -> None:
        if not -1.0 <= min_similarity <= 1.0:
            raise ValueError(f"min_similarity must lie in [-1, 1], got {min_similarity}")
        if not 0.0 <= margin <= 2.0:
            raise ValueError(f"margin must lie in [0, 2], got {margin}")
        if motion_weight < 0:
            raise ValueError(f"motion_weight must be >= 0, got {motion_weight}")
        self.min_similarity = float(min_similarity)
        self.margin = float(margin)
        self.motion_weight = float(motion_weight)

    def __call__(self, cues: MatchCues) -> np.ndarray:
        """Scores ``float64[N, M + 1]`` (column 0 = new track)."""
        similarity = np.asarray(cues.similarity, dtype=np.float64)
        n, m = similarity.shape
        allowed = similarity >= self.min_similarity
        if cues.comparable is not None:
            allowed &= np.asarray(cues.comparable, dtype=bool)
        score = similarity.copy()
        if cues.motion_cost is not None:
            cost = np.asarray(cues.motion_cost, dtype=np.float64)
            allowed &= np.isfinite(cost)
            score = score - self.motion_weight * np.where(allowed, cost, 0.0)
        candidates = np.where(allowed, score, -np.inf)
        finite = candidates[np.isfinite(candidates)]
        new = min(self.min_similarity, finite.min(initial=0.0)) - 1.0
        if m >= 2:
            top2 = -np.sort(-candidates, axis=1)[:, :2]
            with np.errstate(invalid="ignore"):
                own = top2[:, 0] - top2[:, 1]
            lead = np.fmax(own, assignment_leads(candidates, new))
        else:
            lead = np.full(n, np.inf)
        tracks = np.where((lead >= self.margin)[:, None], candidates, -np.inf)
        return np.concatenate([np.full((n, 1), new), tracks], axis=1)


_FORBIDDEN = -1e9
"""Finite stand-in for ``-inf`` in the Hungarian problems of :func:`assignment_leads`."""


def _best_total(candidates: np.ndarray, new: float, must_match: int | None = None) -> float:
    """Total score of the best assignment of ``float[N, M]`` ``candidates`` (``-inf``
    forbidden), each detection free to start a new track at score ``new`` except
    ``must_match``; ``-inf`` when no assignment is possible."""
    n = candidates.shape[0]
    new_block = np.full((n, n), _FORBIDDEN)
    np.fill_diagonal(new_block, new)
    if must_match is not None:
        new_block[must_match, must_match] = _FORBIDDEN
    matrix = np.concatenate(
        [np.where(np.isfinite(candidates), candidates, _FORBIDDEN), new_block], axis=1
    )
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    total = float(matrix[rows, cols].sum())
    return total if total > _FORBIDDEN / 2 else -np.inf


def assignment_leads(candidates: np.ndarray, new: float) -> np.ndarray:
    """How clearly the best assignment gives each detection its track.

    Parameters
    ----------
    candidates:
        ``float[N, M]`` pair scores, ``-inf`` where a pair is not admissible.
    new:
        Score of starting a new track (below any admissible pair).

    Returns
    -------
    numpy.ndarray
        ``float64[N]``: for a detection that the best assignment (most matches, then
        the largest total) gives a track, its total minus that of the best assignment
        in which the detection holds another track; ``inf`` when it has no other
        admissible track, ``-inf`` when the best assignment gives it none.
    """
    n, m = candidates.shape
    lead = np.full(n, -np.inf)
    if n == 0 or m == 0:
        return lead
    new_block = np.full((n, n), _FORBIDDEN)
    np.fill_diagonal(new_block, new)
    matrix = np.concatenate(
        [np.where(np.isfinite(candidates), candidates, _FORBIDDEN), new_block], axis=1
    )
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    best = float(matrix[rows, cols].sum())
    for row, col in zip(rows, cols):
        if col >= m or not np.isfinite(candidates[row, col]):
            continue
        others = candidates.copy()
        others[row, col] = -np.inf
        lead[row] = best - _best_total(others, new, must_match=row)
    return lead


class IoUTrackerPlusScore:
    """The IoUTracker+ baseline of MaskTrack R-CNN: Eq. 3 without the appearance term.

    ``v_i(n) = alpha log s_i + beta IoU + gamma delta`` for candidates with box IoU at
    least ``min_iou`` (others forbidden); the new-track option scores ``alpha log s_i``
    so any admissible candidate beats it.

    Parameters
    ----------
    alpha, beta, gamma:
        Cue weights (paper: 1, 2, 10).
    min_iou:
        Smallest box IoU for a match (paper: 0.3).
    """

    uses_appearance = False

    def __init__(
        self, alpha: float = 1.0, beta: float = 2.0, gamma: float = 10.0, min_iou: float = 0.3
    ) -> None:
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must lie in (0, 1], got {min_iou}")
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.min_iou = float(min_iou)

    def __call__(self, cues: MatchCues) -> np.ndarray:
        """Scores ``float64[N, M + 1]`` (column 0 = new track)."""
        ious = np.asarray(cues.box_iou, dtype=np.float64)
        log_s = self.alpha * np.log(np.asarray(cues.det_scores, dtype=np.float64))[:, None]
        tracks = log_s + self.beta * ious + self.gamma * np.asarray(cues.same_class, np.float64)
        tracks[ious < self.min_iou] = -np.inf
        return np.concatenate([log_s, tracks], axis=1)


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
