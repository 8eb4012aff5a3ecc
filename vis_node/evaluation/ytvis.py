"""YouTube-VIS video instance segmentation AP / AR (youtubevos cocoapi ``ytvoseval``).

An instance is a track: one mask (compressed RLE) or ``None`` per frame. The IoU of a
detection and a ground-truth track is spatio-temporal (sums of per-frame intersections
over sums of per-frame unions). Matching and accumulation are COCO's: greedy per
(video, category) in score order, maxDets [1, 10, 100], IoU thresholds .50:.05:.95,
101 recall points; area ranges on the mean non-empty area. See ``docs/METRICS.md``.

Inputs are either a YouTube-VIS results JSON with an annotation JSON, or PNG label
folders (:func:`instances_from_pair`): each predicted id of a sequence is one detection
with score 1.0, or the score given in ``<PRED>/<seq>/scores.json`` (``{"<id>": score}``);
an instance's category is its most common class label over all its pixels in the
semantics folder, or 1 for every instance when no semantics are given.

Over 400 lines on purpose: one protocol end to end (spatio-temporal IoU, the COCO-style
matching and the AP / AR accumulation share their track records and are read together
against the YouTube-VIS reference).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from vis_node.evaluation.loading import SequencePair
from vis_node.structures.errors import InputDataError
from vis_node.io.ytvis_json import encode_rle

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""IoU thresholds .50:.05:.95."""

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""Recall points at which interpolated precision is sampled."""

MAX_DETS = (1, 10, 100)
"""Detections kept per (video, category) for the AR1 / AR10 / AP columns."""

YTVIS_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 128.0**2),
    "medium": (128.0**2, 256.0**2),
    "large": (256.0**2, 1e5**2),
}
"""Area ranges (pixels) on an instance's mean non-empty area, as in ytvoseval."""

SCORES_FILE = "scores.json"
"""Optional per-sequence detection scores in a PNG prediction folder."""


@dataclass
class Track:
    """One ground-truth or detected instance track.

    Attributes
    ----------
    video_id, category_id:
        Integer ids.
    segmentations:
        One compressed RLE dict or ``None`` (absent) per frame.
    score:
        Detection confidence (unused for ground truth).
    iscrowd:
        Ground-truth crowd flag; crowd tracks are ignored in matching.
    """

    video_id: int
    category_id: int
    segmentations: list[dict | None]
    score: float = 1.0
    iscrowd: bool = False
    areas: list[float] = field(init=False)

    def __post_init__(self) -> None:
        """Cache the per-frame mask areas (pixels, 0 for absent frames)."""
        self.areas = [float(mask_utils.area(s)) if s else 0.0 for s in self.segmentations]

    @property
    def mean_area(self) -> float:
        """Mean area over the frames with a non-empty mask (0 when always empty)."""
        nonzero = [a for a in self.areas if a > 0]
        return float(np.mean(nonzero)) if nonzero else 0.0


def spatio_temporal_iou(detection: Track, truth: Track) -> float:
    """Sum of per-frame intersections over sum of per-frame unions.

    A frame where one side has no mask adds that side's area to the union; frames
    where both are absent add nothing. 0.0 when the union is empty. Frames past the
    shorter of the two tracks are ignored (as ytvoseval's ``zip``).
    """
    inter = 0.0
    union = 0.0
    for d, g, area_d, area_g in zip(
        detection.segmentations, truth.segmentations, detection.areas, truth.areas, strict=False
    ):
        if d and g:
            i = float(mask_utils.area(mask_utils.merge([_rle(d), _rle(g)], intersect=True)))
            inter += i
            union += area_d + area_g - i
        elif d:
            union += area_d
        elif g:
            union += area_g
    return inter / union if union > 0 else 0.0


def _rle(segmentation: dict) -> dict:
    """pycocotools-ready RLE (counts as bytes)."""
    counts = segmentation["counts"]
    if isinstance(counts, str):
        return {"size": segmentation["size"], "counts": counts.encode("ascii")}
    return segmentation


def _ranked_ious(detections: list[Track], truths: list[Track]) -> tuple[list[Track], np.ndarray]:
    """Rank one (video, category)'s detections and compute their IoUs once.

    Returns
    -------
    ranked, ious:
        Detections by descending score (stable; at most ``max(MAX_DETS)``) and their
        ``float[D, G]`` spatio-temporal IoU with ``truths`` (given order).
    """
    order = np.argsort([-d.score for d in detections], kind="mergesort")
    ranked = [detections[i] for i in order[: MAX_DETS[-1]]]
    ious = np.array([[spatio_temporal_iou(d, g) for g in truths] for d in ranked])
    return ranked, ious.reshape(len(ranked), len(truths))


def _match(
    dts: list[Track], truths: list[Track], ious: np.ndarray, area_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """COCO greedy matching of one (video, category) at every IoU threshold.

    Parameters
    ----------
    dts, ious:
        Ranked detections and their IoUs from :func:`_ranked_ious`.
    truths:
        Ground-truth tracks of the (video, category).
    area_range:
        (min, max) mean area; tracks outside it are ignored.

    Returns
    -------
    tuple or None
        ``dt_scores float[D]`` (descending), ``dt_matched bool[T, D]``,
        ``dt_ignore bool[T, D]``, ``gt_ignore bool[G]``; ``None`` when both lists
        are empty.
    """
    if not dts and not truths:
        return None
    gt_ignore_raw = np.array(
        [g.iscrowd or not area_range[0] <= g.mean_area <= area_range[1] for g in truths], bool
    )
    gt_order = np.argsort(gt_ignore_raw, kind="mergesort")
    gt_ignore = gt_ignore_raw[gt_order]
    iscrowd = [truths[i].iscrowd for i in gt_order]
    ious = ious[:, gt_order]
    num_t = len(IOU_THRESHOLDS)
    gt_matched = np.zeros((num_t, len(truths)), bool)
    dt_matched = np.zeros((num_t, len(dts)), bool)
    dt_ignore = np.zeros((num_t, len(dts)), bool)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        for d in range(len(dts)):
            best = min(threshold, 1 - 1e-10)
            m = -1
            for g in range(len(truths)):
                if gt_matched[t, g] and not iscrowd[g]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                if ious[d, g] < best:
                    continue
                best = ious[d, g]
                m = g
            if m == -1:
                continue
            dt_ignore[t, d] = gt_ignore[m]
            dt_matched[t, d] = True
            gt_matched[t, m] = True
    outside = np.array(
        [not area_range[0] <= d.mean_area <= area_range[1] for d in dts], bool
    ).reshape(1, len(dts))
    dt_ignore |= ~dt_matched & outside
    scores = np.array([d.score for d in dts], float)
    return scores, dt_matched, dt_ignore, gt_ignore


def _precision_recall(
    matches: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], max_det: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """COCO accumulation for one (category, area range, maxDet).

    Returns
    -------
    tuple or None
        ``precision float[T, R]`` and ``recall float[T]``; ``None`` when the category
        has no non-ignored ground truth.
    """
    scores = np.concatenate([m[0][:max_det] for m in matches])
    order = np.argsort(-scores, kind="mergesort")
    dt_matched = np.concatenate([m[1][:, :max_det] for m in matches], axis=1)[:, order]
    dt_ignore = np.concatenate([m[2][:, :max_det] for m in matches], axis=1)[:, order]
    gt_ignore = np.concatenate([m[3] for m in matches])
    num_gt = int(np.count_nonzero(~gt_ignore))
    if num_gt == 0:
        return None
    tp_sum = np.cumsum(dt_matched & ~dt_ignore, axis=1).astype(float)
    fp_sum = np.cumsum(~dt_matched & ~dt_ignore, axis=1).astype(float)
    precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
    recall = np.zeros(len(IOU_THRESHOLDS))
    for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum, strict=True)):
        rc = tp / num_gt
        pr = tp / (fp + tp + np.spacing(1))
        recall[t] = rc[-1] if len(tp) else 0.0
        pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
        inds = np.searchsorted(rc, RECALL_POINTS, side="left")
        valid = inds < len(pr)
        precision[t, : int(np.count_nonzero(valid))] = pr[inds[valid]]
    return precision, recall


def evaluate_tracks(
    truths: Sequence[Track],
    detections: Sequence[Track],
    *,
    video_ids: Iterable[int] | None = None,
    category_ids: Iterable[int] | None = None,
    area_ranges: dict[str, tuple[float, float]] | None = None,
) -> dict[str, float]:
    """YouTube-VIS AP / AR of detected tracks against ground-truth tracks.

    Parameters
    ----------
    truths, detections:
        Tracks; a detection of a video or category outside the evaluated ones is
        dropped. Within a (video, category), equal scores keep the given order.
    video_ids, category_ids:
        Evaluated ids (default: those of ``truths``).
    area_ranges:
        Name -> (min, max) mean area in pixels; must contain ``"all"``. Default
        :data:`YTVIS_AREA_RANGES`.

    Returns
    -------
    dict
        ``AP`` (IoU .50:.95, maxDet 100), ``AP50``, ``AP75``, ``AR1``, ``AR10``,
        ``AR100`` on the ``all`` range, plus ``AP_<name>`` for the other ranges.
        A value is -1.0 when no category has ground truth in that range (COCO).
    """
    area_ranges = dict(YTVIS_AREA_RANGES if area_ranges is None else area_ranges)
    videos = sorted({t.video_id for t in truths} if video_ids is None else set(video_ids))
    categories = sorted(
        {t.category_id for t in truths} if category_ids is None else set(category_ids)
    )
    grouped_gt: dict[tuple[int, int], list[Track]] = defaultdict(list)
    grouped_dt: dict[tuple[int, int], list[Track]] = defaultdict(list)
    for track in truths:
        grouped_gt[track.video_id, track.category_id].append(track)
    for track in detections:
        grouped_dt[track.video_id, track.category_id].append(track)

    # precision[T, R, K, A, M] and recall[T, K, A, M], -1 where a category has no GT.
    names = list(area_ranges)
    precision = -np.ones(
        (len(IOU_THRESHOLDS), len(RECALL_POINTS), len(categories), len(names), len(MAX_DETS))
    )
    recall = -np.ones((len(IOU_THRESHOLDS), len(categories), len(names), len(MAX_DETS)))
    for k, cat in enumerate(categories):
        ranked = {vid: _ranked_ious(grouped_dt[vid, cat], grouped_gt[vid, cat]) for vid in videos}
        for a, name in enumerate(names):
            matches = []
            for vid in videos:
                dts, ious = ranked[vid]
                match = _match(dts, grouped_gt[vid, cat], ious, area_ranges[name])
                if match is not None:
                    matches.append(match)
            if not matches:
                continue
            for m_index, max_det in enumerate(MAX_DETS):
                result = _precision_recall(matches, max_det)
                if result is not None:
                    precision[:, :, k, a, m_index], recall[:, k, a, m_index] = result

    def mean_valid(values: np.ndarray) -> float:
        kept = values[values > -1]
        return float(np.mean(kept)) if kept.size else -1.0

    all_index = names.index("all")
    last = len(MAX_DETS) - 1
    report = {
        "AP": mean_valid(precision[:, :, :, all_index, last]),
        "AP50": mean_valid(precision[0, :, :, all_index, last]),
        "AP75": mean_valid(precision[5, :, :, all_index, last]),
        "AR1": mean_valid(recall[:, :, all_index, 0]),
        "AR10": mean_valid(recall[:, :, all_index, 1]),
        "AR100": mean_valid(recall[:, :, all_index, last]),
    }
    for a, name in enumerate(names):
        if name != "all":
            report[f"AP_{name}"] = mean_valid(precision[:, :, :, a, last])
    return report


def _category(semantics: np.ndarray | None, mask: np.ndarray) -> int:
    """Most common class label over a track's pixels (``bool[T, H, W]``); 1 without semantics."""
    if semantics is None:
        return 1
    labels = semantics[mask]
    return int(np.bincount(labels).argmax()) if labels.size else 0


def _tracks(
    ids: np.ndarray,
    semantics: np.ndarray | None,
    video_id: int,
    scores: dict[int, float] | None = None,
) -> list[Track]:
    """One :class:`Track` per non-zero id of an ``int[T, H, W]`` map."""
    tracks = []
    for track_id in (int(i) for i in np.unique(ids) if i != 0):
        mask = ids == track_id
        segmentations = [encode_rle(m) if m.any() else None for m in mask]
        tracks.append(
            Track(
                video_id=video_id,
                category_id=_category(semantics, mask),
                segmentations=segmentations,
                score=1.0 if scores is None else scores.get(track_id, 1.0),
            )
        )
    return tracks


def read_scores(path: Path) -> dict[int, float] | None:
    """Read a ``{"<id>": score}`` JSON file, or ``None`` when it does not exist."""
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return {int(k): float(v) for k, v in raw.items()}
    except (ValueError, AttributeError) as exc:
        raise InputDataError(path, f'expected a JSON object {{"<id>": score}} ({exc})') from None


def instances_from_pair(
    pair: SequencePair, video_id: int, scores: dict[int, float] | None = None
) -> tuple[list[Track], list[Track]]:
    """Ground-truth and detected tracks of one PNG sequence.

    Parameters
    ----------
    pair:
        Loaded sequence (semantics optional).
    video_id:
        Id given to the video.
    scores:
        Predicted id -> score; missing ids score 1.0.

    Returns
    -------
    truths, detections:
        One track per non-zero id of ``pair.gt`` and ``pair.pred``.
    """
    truths = _tracks(pair.gt, pair.gt_semantics, video_id)
    detections = _tracks(pair.pred, pair.pred_semantics, video_id, scores)
    return truths, detections


def _annotation_rle(segmentation: object, height: int, width: int) -> dict | None:
    """Polygon, uncompressed or compressed RLE (or ``None``) -> compressed RLE."""
    if not segmentation:
        return None
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return _rle(segmentation)


def _read_json(path: Path) -> object:
    """Parse a JSON file, raising :class:`InputDataError` when it cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputDataError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        raise InputDataError(path, f"not a readable JSON file ({exc})") from None


def load_ytvis_json(
    results_path: str | Path, annotations_path: str | Path
) -> tuple[list[Track], list[Track], list[int], list[int]]:
    """Read a YouTube-VIS results JSON and annotation JSON.

    Returns
    -------
    truths, detections, video_ids, category_ids:
        Tracks (results order kept) and the evaluated ids from the annotation file.

    Raises
    ------
    InputDataError
        If a file is unreadable or lacks the YouTube-VIS fields.
    """
    annotations = _read_json(Path(annotations_path))
    results = _read_json(Path(results_path))
    try:
        videos = {int(v["id"]): v for v in annotations["videos"]}
        category_ids = sorted(int(c["id"]) for c in annotations["categories"])
        truths = []
        for ann in annotations["annotations"]:
            video = videos[int(ann["video_id"])]
            truths.append(
                Track(
                    video_id=int(ann["video_id"]),
                    category_id=int(ann["category_id"]),
                    segmentations=[
                        _annotation_rle(s, int(video["height"]), int(video["width"]))
                        for s in ann["segmentations"]
                    ],
                    iscrowd=bool(ann.get("iscrowd", 0)),
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(
            annotations_path,
            f"not a YouTube-VIS annotation file (videos, annotations, "
            f"categories with segmentations per frame): {exc!r}",
        ) from None
    try:
        detections = [
            Track(
                video_id=int(r["video_id"]),
                category_id=int(r["category_id"]),
                segmentations=[_rle(s) if s else None for s in r["segmentations"]],
                score=float(r["score"]),
            )
            for r in results
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(
            results_path,
            f"not a YouTube-VIS results list of {{video_id, category_id, score, "
            f"segmentations}}: {exc!r}",
        ) from None
    return truths, detections, sorted(videos), category_ids


def evaluate_ytvis_json(results_path: str | Path, annotations_path: str | Path) -> dict:
    """YouTube-VIS protocol on a results JSON and an annotation JSON."""
    truths, detections, video_ids, category_ids = load_ytvis_json(results_path, annotations_path)
    report = evaluate_tracks(truths, detections, video_ids=video_ids, category_ids=category_ids)
    return {"protocol": "ytvis", "num_sequences": len(video_ids), **report}


def evaluate_ytvis_pairs(pairs: Iterable[SequencePair], pred_root: str | Path) -> dict:
    """YouTube-VIS protocol on PNG sequences (videos numbered 1.. in sequence order).

    The evaluated categories are those of the ground-truth tracks, except 0
    (a track whose pixels are mostly background in the semantics folder).
    """
    truths: list[Track] = []
    detections: list[Track] = []
    video_ids: list[int] = []
    for video_id, pair in enumerate(pairs, start=1):
        scores = read_scores(Path(pred_root) / pair.name / SCORES_FILE)
        gt, dt = instances_from_pair(pair, video_id, scores)
        truths += gt
        detections += dt
        video_ids.append(video_id)
    categories = sorted({t.category_id for t in truths} - {0})
    report = evaluate_tracks(truths, detections, video_ids=video_ids, category_ids=categories)
    return {"protocol": "ytvis", "num_sequences": len(video_ids), **report}
