"""``vsis track`` on a tiny folder and ``vsis bench-track`` on one short video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import read_label_png, write_instance_png
from vis_node.tracking import cli

SIZE = 96


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vsis")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _scene(t: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(40, 220, (SIZE, SIZE, 3), dtype=np.uint8), (0, 0), 2)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    masks = []
    for (cx, cy), colour in (((20 + 3 * t, 30), (230, 30, 30)), ((75 - 2 * t, 70), (30, 60, 230))):
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < 12**2
        image[mask] = colour
        masks.append(mask)
    return image, masks


def _write_inputs(root: Path, frames: int = 6) -> list[list[np.ndarray]]:
    """Frames in root/frames/clip, detections in root/dets/clip with per-frame ids
    that swap and change; returns the object masks per frame."""
    all_masks = []
    for t in range(frames):
        image, masks = _scene(t)
        (root / "frames" / "clip").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "frames" / "clip" / f"{t:05d}.png")
        ids = np.zeros((SIZE, SIZE), np.uint16)
        frame_ids = (3, 8) if t % 2 == 0 else (8, 5)  # object 0 is 3, 8, 3, ...
        meta = {}
        for mask, value, probs in zip(masks, frame_ids, ([0.1, 0.7, 0.2], [0.1, 0.2, 0.7])):
            ids[mask] = value
            meta[str(value)] = {"class_scores": probs, "score": 0.9}
        write_instance_png(root / "dets" / "clip" / f"{t:05d}.png", ids)
        (root / "dets" / "clip" / f"{t:05d}.json").write_text(json.dumps(meta))
        all_masks.append(masks)
    return all_masks


def test_track_cli_makes_ids_consistent(tmp_path: Path) -> None:
    all_masks = _write_inputs(tmp_path)
    args = _parse(
        [
            "track",
            "--frames",
            str(tmp_path / "frames" / "clip"),
            "--detections",
            str(tmp_path / "dets"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert args.func(args) == 0
    seen = []
    for t, masks in enumerate(all_masks):
        ids, _ = read_label_png(tmp_path / "out" / "clip" / f"{t:05d}.png")
        seen.append(tuple(int(np.unique(ids[m])[0]) for m in masks))
        assert all(np.unique(ids[m]).size == 1 for m in masks)
        meta = json.loads((tmp_path / "out" / "clip" / f"{t:05d}.json").read_text())
        assert {k: v["label"] for k, v in meta.items()} == {"1": 1, "2": 2}
    assert seen == [(1, 2)] * len(all_masks)


def test_track_cli_davis_root_and_missing_detections(tmp_path: Path) -> None:
    _write_inputs(tmp_path, frames=4)
    davis = tmp_path / "davis" / "JPEGImages" / "480p" / "clip"
    davis.mkdir(parents=True)
    for png in sorted((tmp_path / "frames" / "clip").glob("*.png")):
        Image.open(png).convert("RGB").save(davis / f"{png.stem}.jpg", quality=95)
    (tmp_path / "dets" / "clip" / "00002.png").unlink()
    args = _parse(
        [
            "track",
            "--frames",
            str(tmp_path / "davis"),
            "--detections",
            str(tmp_path / "dets"),
            "--out",
            str(tmp_path / "out"),
            "--no-reid",
            "--no-coast",  # else the tracks coast through the frame without detections
            "--flow",
            "farneback",
        ]
    )
    assert args.func(args) == 0
    outputs = sorted(p.name for p in (tmp_path / "out" / "clip").glob("*.png"))
    assert outputs == [f"{t:05d}.png" for t in range(4)]
    dropped, _ = read_label_png(tmp_path / "out" / "clip" / "00002.png")
    assert not dropped.any()  # no detections in that frame
    first, _ = read_label_png(tmp_path / "out" / "clip" / "00000.png")
    assert sorted(np.unique(first).tolist()) == [0, 1, 2]


def test_track_cli_rejects_mismatched_detection_size(tmp_path: Path) -> None:
    _write_inputs(tmp_path, frames=2)
    write_instance_png(tmp_path / "dets" / "clip" / "00001.png", np.ones((10, 10), np.uint16))
    args = _parse(
        [
            "track",
            "--frames",
            str(tmp_path / "frames" / "clip"),
            "--detections",
            str(tmp_path / "dets"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    with pytest.raises(InputDataError, match="differs from frame"):
        args.func(args)


def test_bench_track_reid_beats_baselines(capsys: pytest.CaptureFixture[str]) -> None:
    from vis_node.tracking.bench import METHODS, run_benchmark

    rows = {row.method: row for row in run_benchmark(videos=1, seed=1, frames=20)}
    assert list(rows) == list(METHODS)
    # Same detections; the flow trackers add coasted (predicted) masks in the dropped
    # frames, which raises their DetA.
    plain = ("no tracking", "IoUTracker+", "issue-4 tracker")
    assert len({round(rows[m].deta, 9) for m in plain}) == 1
    assert rows["propagation + re-id"].deta > rows["no tracking"].deta
    assert rows["IoUTracker+"].idsw > 0
    assert rows["no tracking"].idsw > rows["propagation"].idsw > 0
    assert rows["propagation + re-id"].hota > rows["IoUTracker+"].hota
    args = _parse(["bench-track", "--synthetic", "--videos", "1", "--seed", "1", "--frames", "12"])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "propagation + re-id" in table and "HOTA" in table


def test_track_cli_reports_bad_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_inputs(tmp_path, frames=1)
    args = _parse(
        [
            "track",
            "--frames",
            str(tmp_path / "frames" / "clip"),
            "--detections",
            str(tmp_path / "dets"),
            "--out",
            str(tmp_path / "out"),
            "--min-hits",
            "0",
        ]
    )
    assert args.func(args) == 2
    assert "min_hits" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("entry", "message"),
    [({"class_scores": []}, "non-empty"), ({"score": 1.5}, "not in"), ({}, "give")],
)
def test_track_cli_rejects_bad_json(tmp_path: Path, entry: dict, message: str) -> None:
    _write_inputs(tmp_path, frames=1)
    (tmp_path / "dets" / "clip" / "00000.json").write_text(json.dumps({"3": entry, "8": entry}))
    args = _parse(
        [
            "track",
            "--frames",
            str(tmp_path / "frames" / "clip"),
            "--detections",
            str(tmp_path / "dets"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    with pytest.raises(InputDataError, match=message):
        args.func(args)
