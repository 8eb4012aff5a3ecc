"""DAVIS region similarity J, boundary accuracy F and their statistics.

Definitions follow davis2017-evaluation (BSD-3) exactly; see ``docs/METRICS.md``:

* J is the IoU over non-void pixels; an empty union scores 1.
* F compares 1-pixel boundaries (XOR with the E, S and SE neighbours, void zeroed
  first) after dilation by a disk of radius ``ceil(0.008 * diagonal)``.
* Per object: mean, recall (fraction of frames > 0.5) and decay (first-quarter mean
  minus last-quarter mean).

Two protocols are provided: DAVIS-2016 (binary: all predicted instances united against
the GT foreground) and DAVIS-2017 unsupervised (at most 20 proposals, Hungarian
assignment of proposals to GT objects on mean (J + F) / 2 over frames).

Over 400 lines on purpose: one protocol end to end (per-frame J and F, the
unsupervised proposal matching and the sequence statistics share their helpers and are
read together against the DAVIS reference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from vis_node.evaluation.loading import SequencePair

BOUND_TH = 0.008
"""Boundary tolerance as a fraction of the image diagonal."""

MAX_PROPOSALS = 20
"""Most proposals per sequence the unsupervised protocol accepts."""


def jaccard(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """Region similarity J of one frame.

    Parameters
    ----------
    pred, gt:
        ``bool[H, W]`` predicted and ground-truth masks.
    void:
        ``bool[H, W]`` pixels to ignore, or ``None``.

    Returns
    -------
    float
        ``|P & G| / |P | G|`` over non-void pixels; 1.0 when the union is empty.
    """
    pred = np.asarray(pred, bool)
    gt = np.asarray(gt, bool)
    valid = np.ones_like(gt) if void is None else ~np.asarray(void, bool)
    union = np.count_nonzero((pred | gt) & valid)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt & valid) / union


def iou_matrix(
    pred_ids: np.ndarray, gt_ids: np.ndarray, void: np.ndarray | None = None
) -> tuple[list[int], list[int], np.ndarray]:
    """IoU between every predicted and every ground-truth id of one frame.

    Parameters
    ----------
    pred_ids, gt_ids:
        ``int[H, W]`` id maps (0 = background).
    void:
        ``bool[H, W]`` pixels left out of every mask, or ``None``.

    Returns
    -------
    pred_list, gt_list, iou:
        Ids present (non-void) in each map, ascending, and ``float[P, G]`` IoU.
    """
    pred_ids = np.asarray(pred_ids, np.int64).ravel()
    gt_ids = np.asarray(gt_ids, np.int64).ravel()
    if void is not None:
        keep = ~np.asarray(void, bool).ravel()
        pred_ids, gt_ids = pred_ids[keep], gt_ids[keep]
    pred_list, pred_index = _dense_ids(pred_ids)
    gt_list, gt_index = _dense_ids(gt_ids)
    counts = np.bincount(
        pred_index * len(gt_list) + gt_index, minlength=len(pred_list) * len(gt_list)
    ).reshape(len(pred_list), len(gt_list))
    p_rows = pred_list != 0
    g_cols = gt_list != 0
    inter = counts[np.ix_(p_rows, g_cols)].astype(float)
    area_p = counts[p_rows].sum(axis=1)[:, None]
    area_g = counts[:, g_cols].sum(axis=0)[None, :]
    iou = inter / (area_p + area_g - inter)
    return [int(i) for i in pred_list[p_rows]], [int(i) for i in gt_list[g_cols]], iou


def _dense_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a non-negative ``int64[N]`` array and each element's rank.

    Returns
    -------
    values, index:
        ``int64[K]`` ascending distinct values and ``int64[N]`` positions in ``values``.
    """
    if ids.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    values = np.flatnonzero(np.bincount(ids))
    lookup = np.zeros(int(values[-1]) + 1, np.int64)
    lookup[values] = np.arange(len(values))
    return values, lookup[ids]


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary of a mask (davis2017-evaluation ``_seg2bmap`` at full size).

    A pixel is on the boundary when it differs from its east, south or south-east
    neighbour (pixels beyond the image count as background). The last row compares
    only with the east neighbour, the last column only with the south one, and the
    bottom-right pixel is never a boundary.

    Parameters
    ----------
    mask:
        ``bool[H, W]``.

    Returns
    -------
    numpy.ndarray
        ``bool[H, W]`` boundary pixels.
    """
    seg = np.asarray(mask, bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """Disk structuring element, identical to ``skimage.morphology.disk(radius)``.

    Returns
    -------
    numpy.ndarray
        ``uint8[2r+1, 2r+1]`` with 1 where ``x^2 + y^2 <= r^2``.
    """
    coords = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(coords, coords)
    return (x**2 + y**2 <= radius**2).astype(np.uint8)


def boundary_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``ceil(bound_th * sqrt(H^2 + W^2))`` (8 at 854x480)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _boundaries(
    mask: np.ndarray, valid: np.ndarray | None, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Boundary map of ``mask & valid`` and its dilation by ``kernel`` (both ``bool[H, W]``)."""
    seg = mask if valid is None else mask & valid
    if not seg.any():
        empty = np.zeros(seg.shape, bool)
        return empty, empty
    bmap = boundary_map(seg)
    return bmap, cv2.dilate(bmap.astype(np.uint8), kernel).astype(bool)


def _f_from_counts(n_pred: int, n_gt: int, pred_match: int, gt_match: int) -> float:
    """F from boundary pixel counts, with the reference's empty-boundary conventions.

    Parameters
    ----------
    n_pred, n_gt:
        Boundary pixels of the prediction and of the ground truth.
    pred_match:
        Prediction boundary pixels within the dilated GT boundary.
    gt_match:
        GT boundary pixels within the dilated prediction boundary.
    """
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision, recall = pred_match / n_pred, gt_match / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def f_measure(
    pred: np.ndarray,
    gt: np.ndarray,
    void: np.ndarray | None = None,
    bound_th: float = BOUND_TH,
) -> float:
    """Boundary accuracy F of one frame.

    Parameters
    ----------
    pred, gt:
        ``bool[H, W]`` predicted and ground-truth masks.
    void:
        ``bool[H, W]`` pixels zeroed in both masks before taking boundaries, or ``None``.
    bound_th:
        Tolerance as a fraction of the image diagonal (``>= 1``: in pixels).

    Returns
    -------
    float
        ``2PR / (P + R)``; 1.0 when both boundaries are empty, 0.0 when exactly one is.
    """
    pred = np.asarray(pred, bool)
    gt = np.asarray(gt, bool)
    valid = None if void is None else ~np.asarray(void, bool)
    kernel = disk(boundary_radius(gt.shape, bound_th))
    b_pred, d_pred = _boundaries(pred, valid, kernel)
    b_gt, d_gt = _boundaries(gt, valid, kernel)
    return _f_from_counts(
        int(np.count_nonzero(b_pred)),
        int(np.count_nonzero(b_gt)),
        int(np.count_nonzero(b_pred & d_gt)),
        int(np.count_nonzero(b_gt & d_pred)),
    )


@dataclass(frozen=True)
class Statistics:
    """DAVIS statistics of one object's per-frame scores (fractions in [0, 1])."""

    mean: float
    recall: float
    decay: float


def statistics(values: np.ndarray) -> Statistics:
    """Mean, recall and decay of per-frame scores (davis2017-evaluation ``db_statistics``).

    Parameters
    ----------
    values:
        ``float[T]`` per-frame J or F of one object, ``T >= 1``.

    Returns
    -------
    Statistics
        ``mean = nanmean(v)``, ``recall = nanmean(v > 0.5)``, ``decay`` = mean of the
        first quarter minus mean of the last quarter, quarters cut at
        ``round(linspace(1, T, 5)) - 1`` with shared ends.
    """
    values = np.asarray(values, float)
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    first = values[ids[0] : ids[1] + 1]
    last = values[ids[3] : ids[4] + 1]
    return Statistics(
        mean=float(np.nanmean(values)),
        recall=float(np.nanmean(values > 0.5)),
        decay=float(np.nanmean(first) - np.nanmean(last)),
    )


def pairwise_scores(
    pred_ids: np.ndarray,
    proposals: list[int],
    gt_ids: np.ndarray,
    objects: list[int],
    void: np.ndarray | None = None,
    bound_th: float = BOUND_TH,
) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every (proposal, object) pair over a sequence.

    Parameters
    ----------
    pred_ids, gt_ids:
        ``int[T, H, W]`` predicted and ground-truth id maps.
    proposals, objects:
        Predicted and ground-truth ids to score; an id absent from a frame is an empty
        mask there (ids absent everywhere act as padding).
    void:
        ``bool[T, H, W]`` ignored pixels, or ``None``.

    Returns
    -------
    j, f:
        ``float[P, K, T]`` per-frame scores, ``P = len(proposals)``, ``K = len(objects)``.
    """
    num_frames = gt_ids.shape[0]
    j = np.zeros((len(proposals), len(objects), num_frames))
    f = np.zeros_like(j)
    kernel = disk(boundary_radius(gt_ids.shape[1:], bound_th))
    for t in range(num_frames):
        valid = None if void is None else ~void[t]
        pred_masks = [pred_ids[t] == p for p in proposals]
        gt_masks = [gt_ids[t] == k for k in objects]
        pred_b = [_boundaries(m, valid, kernel) for m in pred_masks]
        gt_b = [_boundaries(m, valid, kernel) for m in gt_masks]
        for a, (mask_p, (b_p, d_p)) in enumerate(zip(pred_masks, pred_b, strict=True)):
            n_p = int(np.count_nonzero(b_p))
            for k, (mask_g, (b_g, d_g)) in enumerate(zip(gt_masks, gt_b, strict=True)):
                j[a, k, t] = jaccard(mask_p, mask_g, None if void is None else void[t])
                n_g = int(np.count_nonzero(b_g))
                f[a, k, t] = _f_from_counts(
                    n_p,
                    n_g,
                    int(np.count_nonzero(b_p & d_g)) if n_p and n_g else 0,
                    int(np.count_nonzero(b_g & d_p)) if n_p and n_g else 0,
                )
    return j, f


def match_proposals(j: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Assign proposals to objects by Hungarian on mean over frames of (J + F) / 2.

    Parameters
    ----------
    j, f:
        ``float[P, K, T]`` pairwise scores with ``P >= K`` (pad with empty proposals).

    Returns
    -------
    j_matched, f_matched:
        ``float[K, T]`` scores of the proposal assigned to each object, in object
        order. Unassigned proposals are not penalised.
    """
    score = (j.mean(axis=2) + f.mean(axis=2)) / 2
    rows, cols = linear_sum_assignment(-score)
    order = np.argsort(cols)
    return j[rows[order], cols[order]], f[rows[order], cols[order]]


def _summary(
    per_sequence: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]], protocol: str
) -> dict:
    """Report dict from per-object per-frame scores ``{seq: {object: (j[T], f[T])}}``.

    Raises
    ------
    ValueError
        If no sequence holds a ground-truth object.
    """
    if not per_sequence:
        raise ValueError("no ground-truth object to score: check the GT folder")
    j_stats: list[Statistics] = []
    f_stats: list[Statistics] = []
    sequences: dict[str, dict] = {}
    for seq, objects in per_sequence.items():
        seq_objects: dict[str, dict[str, float]] = {}
        for obj, (j_values, f_values) in objects.items():
            js, fs = statistics(j_values), statistics(f_values)
            j_stats.append(js)
            f_stats.append(fs)
            seq_objects[str(obj)] = {"J": js.mean, "F": fs.mean}
        seq_j = float(np.mean([o["J"] for o in seq_objects.values()]))
        seq_f = float(np.mean([o["F"] for o in seq_objects.values()]))
        sequences[seq] = {"J": seq_j, "F": seq_f, "JF": (seq_j + seq_f) / 2, "objects": seq_objects}

    def aggregate(stats: list[Statistics]) -> dict[str, float]:
        return {
            "mean": float(np.mean([s.mean for s in stats])),
            "recall": float(np.mean([s.recall for s in stats])),
            "decay": float(np.mean([s.decay for s in stats])),
        }

    j_all, f_all = aggregate(j_stats), aggregate(f_stats)
    return {
        "protocol": protocol,
        "num_sequences": len(sequences),
        "num_objects": len(j_stats),
        "J": j_all,
        "F": f_all,
        "JF": (j_all["mean"] + f_all["mean"]) / 2,
        "per_sequence": sequences,
    }


def binary_sequence_scores(pair: SequencePair) -> tuple[np.ndarray, np.ndarray]:
    """DAVIS-2016 per-frame J and F: all predicted instances vs all GT foreground.

    Returns
    -------
    j, f:
        ``float[T]`` per-frame scores.
    """
    j, f = pairwise_scores(
        (pair.pred > 0).astype(np.uint8), [1], (pair.gt > 0).astype(np.uint8), [1], pair.void
    )
    return j[0, 0], f[0, 0]


def unsupervised_sequence_scores(
    pair: SequencePair, max_proposals: int = MAX_PROPOSALS
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """DAVIS-2017 unsupervised per-object per-frame J and F of one sequence.

    Proposals are the distinct predicted ids; with fewer proposals than GT objects the
    list is padded with empty masks.

    Returns
    -------
    dict
        GT object id -> (``float[T]`` J, ``float[T]`` F) of its assigned proposal.

    Raises
    ------
    ValueError
        If the sequence holds more than ``max_proposals`` distinct predicted ids.
    """
    objects = [int(i) for i in np.unique(pair.gt) if i != 0]
    proposals = [int(i) for i in np.unique(pair.pred) if i != 0]
    if len(proposals) > max_proposals:
        raise ValueError(
            f"sequence {pair.name} has {len(proposals)} predicted ids; the unsupervised "
            f"protocol allows at most {max_proposals} proposals per sequence: keep the "
            f"{max_proposals} best tracks"
        )
    if not objects:
        return {}
    padding = max(0, len(objects) - len(proposals))
    absent = int(max(proposals, default=0)) + 1
    proposals += list(range(absent, absent + padding))
    j, f = pairwise_scores(pair.pred, proposals, pair.gt, objects, pair.void)
    j_m, f_m = match_proposals(j, f)
    return {obj: (j_m[k], f_m[k]) for k, obj in enumerate(objects)}


def evaluate_davis2016(pairs: Iterable[SequencePair]) -> dict:
    """DAVIS-2016 binary protocol over sequences.

    Returns
    -------
    dict
        ``protocol``, ``num_sequences``, ``num_objects``, ``J`` and ``F`` (each
        ``{mean, recall, decay}``), ``JF`` and ``per_sequence`` (``seq -> {J, F, JF,
        objects}``).
    """
    scores = {pair.name: {1: binary_sequence_scores(pair)} for pair in pairs}
    return _summary(scores, "davis2016")


def evaluate_davis2017_unsupervised(
    pairs: Iterable[SequencePair], max_proposals: int = MAX_PROPOSALS
) -> dict:
    """DAVIS-2017 unsupervised protocol over sequences (same report keys as 2016).

    Sequences whose ground truth has no object are skipped.
    """
    scores: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for pair in pairs:
        objects = unsupervised_sequence_scores(pair, max_proposals)
        if objects:
            scores[pair.name] = objects
    return _summary(scores, "davis2017-unsupervised")
