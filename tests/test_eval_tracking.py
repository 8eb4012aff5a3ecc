"""HOTA / IDF1 / IDSW tests.

Analytic cases, and a cross-check against trackeval's own end-to-end MOTSChallenge
path (MOTS txt files read by trackeval.Evaluator).
"""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from vis_node.evaluation.loading import SequencePair
from vis_node.evaluation.tracking import evaluate_tracking, sequence_data


def _pair(name: str, gt: np.ndarray, pred: np.ndarray) -> SequencePair:
    return SequencePair(
        name=name,
        frame_names=[str(t) for t in range(len(gt))],
        gt=gt.astype(np.uint16),
        void=None,
        pred=pred.astype(np.uint16),
    )


def _two_objects(num_frames: int = 4) -> np.ndarray:
    gt = np.zeros((num_frames, 10, 20), int)
    gt[:, 1:5, 1:5] = 1
    gt[:, 5:9, 10:15] = 2
    return gt


def test_perfect_tracker_scores_one() -> None:
    gt = _two_objects()
    report = evaluate_tracking([_pair("s", gt, gt * 7)])
    assert report["protocol"] == "hota"
    assert report["num_sequences"] == 1
    assert report["HOTA"] == pytest.approx(1.0)
    assert report["IDF1"] == pytest.approx(1.0)
    assert report["IDSW"] == 0


def test_id_swap_halfway() -> None:
    gt = _two_objects()
    pred = gt.copy()
    pred[2:] = np.where(gt[2:] == 1, 2, np.where(gt[2:] == 2, 1, 0))
    report = evaluate_tracking([_pair("s", gt, pred)])
    # Each GT id keeps one predicted id for 2 of 4 frames: IDTP = IDFN = IDFP = 4.
    assert report["IDF1"] == pytest.approx(0.5)
    assert report["IDSW"] == 2
    assert isinstance(report["IDSW"], int)
    # Detection is perfect (DetA = 1); association: each matched pair has TPA 2, FNA 2,
    # FPA 2 -> AssA = 1/3 at every alpha, HOTA = sqrt(1/3).
    assert report["DetA"] == pytest.approx(1.0)
    assert report["AssA"] == pytest.approx(1 / 3)
    assert report["HOTA"] == pytest.approx(np.sqrt(1 / 3))


def test_sequence_data_layout() -> None:
    gt = _two_objects(2)
    pred = np.zeros_like(gt)
    pred[1, 1:5, 1:3] = 9  # half of object 1, frame 1 only
    data = sequence_data(gt, pred)
    assert data["num_timesteps"] == 2
    assert (data["num_gt_ids"], data["num_tracker_ids"]) == (2, 1)
    assert (data["num_gt_dets"], data["num_tracker_dets"]) == (4, 1)
    np.testing.assert_array_equal(data["gt_ids"][0], [0, 1])
    assert data["tracker_ids"][0].size == 0
    np.testing.assert_allclose(data["similarity_scores"][1], [[0.5], [0.0]])


def _random_tracks(rng: np.random.Generator, num_frames: int, num_objects: int) -> np.ndarray:
    ids = np.zeros((num_frames, 40, 60), int)
    for obj in range(1, num_objects + 1):
        r, c = rng.integers(0, 28), rng.integers(0, 45)
        h, w = rng.integers(5, 12), rng.integers(5, 14)
        dr, dc = rng.integers(-1, 2), rng.integers(-2, 3)
        for t in range(num_frames):
            if rng.random() < 0.1:
                continue
            rt, ct = int(np.clip(r + dr * t, 0, 34)), int(np.clip(c + dc * t, 0, 54))
            ids[t, rt : rt + h, ct : ct + w] = obj
    return ids


def _noisy_prediction(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    """Eroded / shifted copies, an id switch, dropped detections and a false positive."""
    pred = np.zeros_like(gt)
    half = len(gt) // 2
    for t, frame in enumerate(gt):
        shifted = np.roll(frame, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        pred[t] = np.where(shifted > 0, shifted + 10, 0)
        if t >= half:
            pred[t][pred[t] == 11] = 30  # object 1 gets a new id halfway
        if rng.random() < 0.15:
            pred[t][pred[t] == 12] = 0
        if rng.random() < 0.3:
            pred[t, 0:4, 0:6] = 40
    return pred


def _write_mots(path, ids: np.ndarray) -> None:
    """MOTS txt: ``frame id class_id h w rle`` (frames 1-based, class 2 = pedestrian)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    h, w = ids.shape[1:]
    for t, frame in enumerate(ids):
        for k in (int(i) for i in np.unique(frame) if i != 0):
            rle = mask_utils.encode(np.asfortranarray((frame == k).astype(np.uint8)))
            lines.append(f"{t + 1} {k} 2 {h} {w} {rle['counts'].decode('ascii')}")
    path.write_text("\n".join(lines) + "\n")


def test_matches_trackeval_mots_challenge_end_to_end(tmp_path) -> None:
    import trackeval

    rng = np.random.default_rng(0)
    sequences = {}
    for name in ("seq-a", "seq-b"):
        gt = _random_tracks(rng, 12, 4)
        sequences[name] = (gt, _noisy_prediction(rng, gt))
        _write_mots(tmp_path / "gt" / name / "gt" / "gt.txt", gt)
        _write_mots(tmp_path / "trackers" / "mine" / "data" / f"{name}.txt", sequences[name][1])
    dataset = trackeval.datasets.MOTSChallenge(
        {
            "GT_FOLDER": str(tmp_path / "gt"),
            "TRACKERS_FOLDER": str(tmp_path / "trackers"),
            "OUTPUT_FOLDER": str(tmp_path / "out"),
            "TRACKERS_TO_EVAL": ["mine"],
            "SEQ_INFO": {name: 12 for name in sequences},
            "SKIP_SPLIT_FOL": True,
            "PRINT_CONFIG": False,
        }
    )
    evaluator = trackeval.Evaluator(
        {
            "USE_PARALLEL": False,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
            "LOG_ON_ERROR": str(tmp_path / "error_log.txt"),
        }
    )
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
    ]
    output, messages = evaluator.evaluate([dataset], metrics)
    assert messages["MOTSChallenge"]["mine"] == "Success"
    combined = output["MOTSChallenge"]["mine"]["COMBINED_SEQ"]["pedestrian"]

    report = evaluate_tracking([_pair(n, gt, pred) for n, (gt, pred) in sequences.items()])
    assert 0.2 < report["HOTA"] < 0.95
    assert report["IDSW"] >= 2
    assert report["HOTA"] == pytest.approx(float(np.mean(combined["HOTA"]["HOTA"])), abs=1e-6)
    assert report["IDF1"] == pytest.approx(float(combined["Identity"]["IDF1"]), abs=1e-6)
    assert report["IDSW"] == int(combined["CLEAR"]["IDSW"])
    assert report["MOTA"] == pytest.approx(float(combined["CLEAR"]["MOTA"]), abs=1e-6)
    for name in sequences:
        per_seq = output["MOTSChallenge"]["mine"][name]["pedestrian"]
        assert report["per_sequence"][name]["HOTA"] == pytest.approx(
            float(np.mean(per_seq["HOTA"]["HOTA"])), abs=1e-6
        )
