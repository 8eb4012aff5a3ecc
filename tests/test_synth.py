"""Synthetic video generator and ``vsis synth`` writer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vis_node.io.labels import read_semantic_png
from vis_node.io.readers import DavisRoot
from vis_node.io.ytvis_json import decode_rle
from vis_node.synth import CATEGORIES, SynthConfig, generate_video
from vis_node.synth.cli import parse_size, register
from vis_node.synth.generator import DISTRACTOR
from vis_node.synth.writer import video_seed

SEEDS = range(6)


@pytest.fixture(scope="module")
def videos() -> list:
    return [generate_video(seed) for seed in SEEDS]


def test_same_seed_gives_identical_arrays(videos: list) -> None:
    again = generate_video(SEEDS[0])
    first = videos[0]
    for name in ("frames", "ids", "semantic"):
        assert getattr(again, name).tobytes() == getattr(first, name).tobytes()
    assert [o.to_json() for o in again.objects] == [o.to_json() for o in first.objects]
    other = videos[1]
    assert other.frames.tobytes() != first.frames.tobytes()


def test_shapes_dtypes_and_defaults(videos: list) -> None:
    video = videos[0]
    assert CATEGORIES == ("disc", "box", "triangle", "star", "ring")
    assert video.frames.shape == (40, 240, 320, 3) and video.frames.dtype == np.uint8
    assert video.ids.shape == (40, 240, 320) and video.ids.dtype == np.uint16
    assert video.semantic.shape == (40, 240, 320) and video.semantic.dtype == np.uint8
    small = generate_video(3, SynthConfig(width=96, height=64, frames=5))
    assert small.frames.shape == (5, 64, 96, 3)


def test_salient_objects_have_distinct_categories_and_matching_semantics(videos: list) -> None:
    for video in videos:
        salient = video.salient_objects
        assert 2 <= len(salient) <= 4
        assert [o.id for o in salient] == list(range(1, len(salient) + 1))
        assert len({o.category_id for o in salient}) == len(salient)
        for obj in salient:
            assert CATEGORIES[obj.category_id - 1] == obj.category_name
            mask = video.ids == obj.id
            assert (video.semantic[mask] == obj.category_id).all()
            np.testing.assert_array_equal(mask.sum(axis=(1, 2)), obj.visible_area)
            np.testing.assert_array_equal(obj.visible, obj.visible_area > 0)
        assert ((video.semantic > 0) == (video.ids > 0)).all()


def test_distractors_are_in_metadata_but_never_annotated(videos: list) -> None:
    for video in videos:
        salient_ids = {o.id for o in video.salient_objects}
        distractors = [o for o in video.objects if not o.salient]
        assert len(distractors) == 3
        assert all(o.category_id == 0 and o.category_name == DISTRACTOR for o in distractors)
        assert any(o.visible.any() for o in distractors)
        assert set(np.unique(video.ids).tolist()) <= salient_ids | {0}
        assert max(o.depth for o in distractors) < min(o.depth for o in video.salient_objects)


def _absent_runs(visible: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of runs of absent frames that lie between visible frames."""
    runs, start = [], None
    for t, seen in enumerate(visible):
        if not seen and start is None:
            start = t
        elif seen and start is not None:
            if start > 0:
                runs.append((start, t))
            start = None
    return runs


def test_exit_and_reentry(videos: list) -> None:
    found = 0
    for video in videos:
        for obj in video.salient_objects:
            if obj.offscreen is None:
                continue
            start, stop = obj.offscreen
            assert stop - start >= 3
            assert obj.full_area[start:stop].sum() == 0
            visible = (video.ids == obj.id).any(axis=(1, 2))
            assert visible[:start].any() and visible[stop:].any()
            assert any(a <= start and b >= stop for a, b in _absent_runs(visible))
            found += 1
    assert found >= len(SEEDS) // 2


def test_occlusion_front_object_owns_overlap(videos: list) -> None:
    occlusions = 0
    for video in videos:
        salient = video.salient_objects
        for back in salient:
            for front in salient:
                if front.depth <= back.depth:
                    continue
                overlap = video.amodal[back.id] & video.amodal[front.id]
                if not overlap.any():
                    continue
                occlusions += 1
                assert not (video.ids[overlap] == back.id).any()
                nearer = [o for o in salient if o.depth > front.depth]
                exclusive = overlap.copy()
                for other in nearer:
                    exclusive &= ~video.amodal[other.id]
                assert (video.ids[exclusive] == front.id).all()
                assert (back.full_area >= back.visible_area).all()
                assert (back.full_area > back.visible_area).any()
    assert occlusions >= 1


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_objects"):
        SynthConfig(min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match="at least 32x32"):
        SynthConfig(width=16)
    with pytest.raises(ValueError, match="exit_probability"):
        SynthConfig(exit_probability=1.5)


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vsis")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_parse_size() -> None:
    assert parse_size("320x240") == (320, 240)
    with pytest.raises(argparse.ArgumentTypeError, match="320x240"):
        parse_size("320by240")


def test_cli_writes_root_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    code = _run_cli(
        ["synth", str(out), "--videos", "2", "--seed", "7", "--frames", "6", "--size", "96x64"]
    )
    assert code == 0
    config = SynthConfig(width=96, height=64, frames=6)
    root = DavisRoot(out)
    assert root.sequences == ["synth_000", "synth_001"]
    document = json.loads((out / "ytvis.json").read_text())
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 7 and meta["config"]["width"] == 96
    assert [c["name"] for c in document["categories"]] == list(CATEGORIES)
    for index, sequence in enumerate(root.sequences):
        video = generate_video(video_seed(7, index), config)
        assert meta["videos"][index]["seed"] == video_seed(7, index)
        assert [o["id"] for o in meta["videos"][index]["objects"]] == [o.id for o in video.objects]
        assert any(not o["salient"] for o in meta["videos"][index]["objects"])
        annotations = list(root.annotations(sequence))
        assert [a[0] for a in annotations] == [f"{t:05d}" for t in range(6)]
        for t, (_, ids, void) in enumerate(annotations):
            assert void is None
            np.testing.assert_array_equal(ids, video.ids[t])
            semantic = read_semantic_png(out / "Semantics" / "480p" / sequence / f"{t:05d}.png")
            np.testing.assert_array_equal(semantic, video.semantic[t])
        frames = list(root.frames(sequence))
        assert len(frames) == 6
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(video.frames[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        jpeg = out / "JPEGImages" / "480p" / sequence / "00000.jpg"
        assert ok and jpeg.read_bytes() == encoded.tobytes()
        assert np.abs(frames[0].image.astype(int) - video.frames[0]).mean() < 8.0

        (entry,) = [v for v in document["videos"] if v["name"] == sequence]
        assert entry["file_names"][0] == f"{sequence}/00000.jpg" and entry["length"] == 6
        tracks = [a for a in document["annotations"] if a["video_id"] == entry["id"]]
        assert sorted(a["category_id"] for a in tracks) == sorted(
            o.category_id for o in video.salient_objects
        )
        for track in tracks:
            (obj,) = [o for o in video.salient_objects if o.category_id == track["category_id"]]
            for t, rle in enumerate(track["segmentations"]):
                png_mask = annotations[t][1] == obj.id
                if rle is None:
                    assert not png_mask.any() and track["areas"][t] is None
                else:
                    np.testing.assert_array_equal(decode_rle(rle), png_mask)
                    assert track["areas"][t] == float(png_mask.sum())


def test_cli_refuses_non_empty_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert (
        _run_cli(["synth", str(tmp_path), "--videos", "1", "--frames", "2", "--size", "64x48"]) == 2
    )
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
