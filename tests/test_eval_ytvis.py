"""YouTube-VIS AP / AR tests.

Cross-checked against pycocotools COCOeval on one-frame videos, plus hand cases for
the spatio-temporal IoU, the RLE helpers, and the JSON / PNG inputs.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vis_node.evaluation import evaluate
from vis_node.evaluation.ytvis import Track, evaluate_tracks, spatio_temporal_iou
from vis_node.io.labels import write_instance_png, write_semantic_png
from vis_node.io.ytvis_json import decode_rle, encode_rle

COCO_AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}


def _ellipse(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(2, 70), rng.uniform(2, 70)
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def _random_instances(seed: int):
    """GT and detections on single images: jittered copies, misses and false positives."""
    rng = np.random.default_rng(seed)
    shape = (110, 120)
    gts, dts = [], []
    for image_id in range(1, 13):
        for _ in range(rng.integers(0, 5)):
            mask = _ellipse(shape, rng)
            if not mask.any():
                continue
            category = int(rng.integers(1, 4))
            gts.append((image_id, category, mask))
            for _ in range(rng.integers(0, 3)):
                jitter = np.roll(mask, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
                noisy = jitter ^ (rng.random(shape) < 0.005)
                label = category if rng.random() < 0.8 else int(rng.integers(1, 4))
                dts.append((image_id, label, noisy, float(rng.random())))
        for _ in range(rng.integers(0, 3)):
            false_positive = _ellipse(shape, rng)
            dts.append((image_id, int(rng.integers(1, 4)), false_positive, float(rng.random())))
    return shape, gts, dts


def _coco_stats(shape, gts, dts) -> np.ndarray:
    h, w = shape
    dataset = {
        "images": [{"id": i, "height": h, "width": w} for i in range(1, 13)],
        "categories": [{"id": c, "name": str(c)} for c in (1, 2, 3)],
        "annotations": [
            {
                "id": n,
                "image_id": image_id,
                "category_id": category,
                "segmentation": encode_rle(mask),
                "area": float(mask.sum()),
                "bbox": [0, 0, 1, 1],
                "iscrowd": 0,
            }
            for n, (image_id, category, mask) in enumerate(gts, start=1)
        ],
    }
    coco_gt = COCO()
    coco_gt.dataset = dataset
    coco_gt.createIndex()
    results = [
        {"image_id": i, "category_id": c, "segmentation": encode_rle(m), "score": s}
        for i, c, m, s in dts
    ]
    coco_dt = coco_gt.loadRes(copy.deepcopy(results))
    coco_eval = COCOeval(coco_gt, coco_dt, "segm")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_matches_cocoeval_on_single_frame_videos(seed: int) -> None:
    shape, gts, dts = _random_instances(seed)
    assert len(gts) > 10 and len(dts) > 10
    stats = _coco_stats(shape, gts, dts)
    truths = [Track(i, c, [encode_rle(m)]) for i, c, m in gts]
    detections = [Track(i, c, [encode_rle(m)], score=s) for i, c, m, s in dts]
    report = evaluate_tracks(
        truths,
        detections,
        video_ids=range(1, 13),
        category_ids=[1, 2, 3],
        area_ranges=COCO_AREA_RANGES,
    )
    assert 0.05 < report["AP"] < 0.95
    expected = {
        "AP": stats[0],
        "AP50": stats[1],
        "AP75": stats[2],
        "AP_small": stats[3],
        "AP_medium": stats[4],
        "AP_large": stats[5],
        "AR1": stats[6],
        "AR10": stats[7],
        "AR100": stats[8],
    }
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-6), key


def test_spatio_temporal_iou_by_hand() -> None:
    def mask(*cols: int) -> np.ndarray:
        m = np.zeros((1, 4), bool)
        m[0, list(cols)] = True
        return m

    # Frame 1: |d|=2, |g|=2, overlap 1 -> I=1, U=3. Frame 2: only GT (2 px) -> U+=2.
    # Frame 3: both absent -> nothing. IoU = 1/5.
    det = Track(1, 1, [encode_rle(mask(0, 1)), None, None])
    gt = Track(1, 1, [encode_rle(mask(1, 2)), encode_rle(mask(2, 3)), None])
    assert spatio_temporal_iou(det, gt) == pytest.approx(1 / 5)
    assert det.mean_area == 2.0
    assert spatio_temporal_iou(Track(1, 1, [None]), Track(1, 1, [None])) == 0.0


def test_rle_roundtrip_is_json_ready() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((7, 9)) < 0.4
    rle = encode_rle(mask)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == [7, 9]
    np.testing.assert_array_equal(decode_rle(json.loads(json.dumps(rle))), mask)


def test_json_inputs(tmp_path) -> None:
    h, w = 6, 8
    a = np.zeros((h, w), bool)
    a[1:4, 1:4] = True
    b = np.zeros((h, w), bool)
    b[2:6, 5:8] = True
    annotations = {
        "videos": [{"id": 1, "height": h, "width": w, "length": 2}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            # Uncompressed RLE as in the YouTube-VIS release, and a null frame.
            {
                "id": 1,
                "video_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentations": [_uncompressed(a), _uncompressed(a)],
            },
            {
                "id": 2,
                "video_id": 1,
                "category_id": 2,
                "iscrowd": 0,
                "segmentations": [None, _uncompressed(b)],
            },
        ],
    }
    results = [
        {"video_id": 1, "category_id": 1, "score": 0.9, "segmentations": [encode_rle(a)] * 2},
        {"video_id": 1, "category_id": 2, "score": 0.8, "segmentations": [encode_rle(b)] * 2},
    ]
    (tmp_path / "gt.json").write_text(json.dumps(annotations))
    (tmp_path / "res.json").write_text(json.dumps(results))
    report = evaluate("ytvis", tmp_path / "res.json", tmp_path / "gt.json")
    assert report["protocol"] == "ytvis"
    assert report["num_sequences"] == 1
    # Category 1 is perfect; category 2's detection has IoU 12/24 = 0.5: matched at 0.50 only.
    assert report["AP50"] == pytest.approx(1.0)
    assert report["AP75"] == pytest.approx(0.5)
    assert report["AP"] == pytest.approx((1.0 + 0.1) / 2)
    assert report["AR1"] == pytest.approx((1.0 + 0.1) / 2)


def _uncompressed(mask: np.ndarray) -> dict:
    """Uncompressed (column-major run-length) RLE, as in YouTube-VIS annotation files."""
    flat = mask.ravel(order="F").astype(int)
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def test_png_inputs_with_semantics_and_scores(tmp_path) -> None:
    gt_ids = np.zeros((2, 8, 8), int)
    gt_ids[:, 0:4, 0:4] = 1
    gt_ids[:, 4:8, 4:8] = 2
    gt_sem = np.where(gt_ids == 1, 5, np.where(gt_ids == 2, 9, 0))
    pred_ids = np.where(gt_ids > 0, gt_ids + 10, 0)
    pred_ids[:, 0, 6:8] = 20  # a false positive, class 5, scored highest
    pred_sem = gt_sem.copy()
    pred_sem[:, 0, 6:8] = 5
    for t in range(2):
        write_instance_png(tmp_path / "gt" / "v" / f"{t:05d}.png", gt_ids[t])
        write_instance_png(tmp_path / "pred" / "v" / f"{t:05d}.png", pred_ids[t])
        write_semantic_png(tmp_path / "gs" / "v" / f"{t:05d}.png", gt_sem[t])
        write_semantic_png(tmp_path / "ps" / "v" / f"{t:05d}.png", pred_sem[t])
    (tmp_path / "pred" / "v" / "scores.json").write_text(json.dumps({"11": 0.5, "20": 0.9}))
    report = evaluate(
        "ytvis",
        tmp_path / "pred",
        tmp_path / "gt",
        pred_semantics=tmp_path / "ps",
        gt_semantics=tmp_path / "gs",
    )
    # Class 9: one perfect detection -> AP 1. Class 5: the false positive ranks first,
    # then the perfect one: precision 1/2 at recall 1 -> AP 0.5 at every threshold.
    assert report["AP"] == pytest.approx(0.75)
    assert report["AR1"] == pytest.approx(0.5)  # class 5 misses with one detection
    assert report["AR10"] == pytest.approx(1.0)
    no_semantics = evaluate("ytvis", tmp_path / "pred", tmp_path / "gt")
    # One category: detections 20 (0.9), 12 (1.0), 11 (0.5) -> TP, FP, TP order by score:
    # 12 (TP), 20 (FP), 11 (TP): precision envelope 1 up to recall .5, then 2/3.
    assert no_semantics["AP"] == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
