"""Association scores of detections against candidate tracks (the memory stage).

Each score turns the :class:`MatchCues` between ``N`` detections and ``M`` candidate
tracks into a ``float64[N, M + 1]`` matrix for
:func:`vis_node.tracking.association.assign`: column 0 is the option "start a new
track", column ``n >= 1`` the ``n``-th candidate; higher is better, ``-inf`` forbids a
pair. :class:`CueFusionScore` is MaskTrack R-CNN's cue fusion,
:class:`IoUTrackerPlusScore` its appearance-free baseline and :class:`RelativeReidScore`
the tracker's gated, relative re-identification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import log_softmax


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
