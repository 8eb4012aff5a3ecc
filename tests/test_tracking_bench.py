"""Pinned numbers of both tracking benchmarks (``vsis bench track``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vis_node.tracking.bench import (
    METHODS,
    REALISTIC_METHODS,
    run_benchmark,
    run_realistic_benchmark,
)
from vis_node.tracking.bench_scenes import SceneConfig, make_detections, make_scene

# (HOTA, IDF1, IDSW) with the share of published detections left at id 0.
REALISTIC = {
    "no tracking": (0.4151, 0.4317, 36),
    "IoU tracker": (0.6968, 0.7770, 2),
    "issue-4 tracker": (0.8041, 0.9496, 0),
    "tracker": (0.8457, 0.9790, 0),
}
SYNTHETIC = {
    "no tracking": (0.5782, 0.5672, 20),
    "IoUTracker+": (0.8705, 0.8657, 4),
    "propagation": (0.8444, 0.7941, 5),
    "issue-4 tracker": (0.9709, 0.9851, 0),
    "propagation + re-id": (0.9971, 1.0, 0),
}


def test_realistic_bench_pinned(davis2016_root: Path) -> None:
    rows = run_realistic_benchmark(davis2016_root, videos=1, seed=0, config=SceneConfig(frames=30))
    assert [row.method for row in rows] == list(REALISTIC_METHODS)
    for row in rows:
        hota, idf1, idsw = REALISTIC[row.method]
        assert (row.hota, row.idf1, row.idsw) == (
            pytest.approx(hota, abs=1e-4),
            pytest.approx(idf1, abs=1e-4),
            idsw,
        ), row.method
        assert row.id0_share == 0.0, row.method  # no published detection left at id 0


def test_synthetic_bench_pinned() -> None:
    rows = run_benchmark(videos=1, seed=1, frames=20)
    assert [row.method for row in rows] == list(METHODS)
    for row in rows:
        hota, idf1, idsw = SYNTHETIC[row.method]
        assert (row.hota, row.idf1, row.idsw) == (
            pytest.approx(hota, abs=1e-4),
            pytest.approx(idf1, abs=1e-4),
            idsw,
        ), row.method
        assert row.id0_share == 0.0, row.method


def test_realistic_scene_is_deterministic_and_has_its_events(davis2016_root: Path) -> None:
    config = SceneConfig(frames=30)
    first = make_scene(davis2016_root, 0, 0, config)
    again = make_scene(davis2016_root, 0, 0, config)
    assert (first.frames == again.frames).all() and (first.ids == again.ids).all()
    assert first.frames.shape == (30, 240, 427, 3)
    present = [(first.ids == k).any(axis=(1, 2)) for k in (1, 2, 3)]
    gaps = [int((~p).sum()) for p in present]
    assert max(gaps) >= config.vanish_frames  # one object vanishes mid-view
    rng = np.random.default_rng(0)
    counts = [len(make_detections(ids, config, rng)[0]) for ids in first.ids]
    assert min(counts) < 3 <= max(counts)  # dropped detections happen


def test_realistic_objects_never_grow_past_their_height(davis2016_root: Path) -> None:
    # Scene 2 holds drift-chicane's car, which comes towards its camera (its box
    # grows from 43 to 103 px high and 73 to 355 px wide): scaled from its first
    # cut-out it grew over the whole scene width and hid the other objects.
    config = SceneConfig(frames=30)
    scene = make_scene(davis2016_root, 2, 0, config)
    assert "drift-chicane" in scene.name
    height, width = scene.ids.shape[1:]
    for k in (1, 2, 3):
        rows = [np.flatnonzero((ids == k).any(axis=1)) for ids in scene.ids]
        tallest = max(r[-1] - r[0] + 1 for r in rows if r.size)
        assert config.object_height * height - 2 <= tallest <= config.object_height * height + 1
        assert (scene.ids == k).sum(axis=(1, 2)).max() < 0.15 * height * width


def test_realistic_bench_without_data_is_skipped_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vis_node.cli import build_parser

    args = build_parser("bench").parse_args(["bench", "track", "--davis-root", str(tmp_path)])
    assert args.func(args) == 0
    assert "skipped the realistic bench" in capsys.readouterr().err


def test_separation_of_a_detector_embedding_uses_its_matched_detections(
    davis2016_root: Path, tmp_path: Path
) -> None:
    from vis_node.structures.instances import Instances
    from vis_node.tracking.bench_separation import measure_separation, plot_separation

    config = SceneConfig(frames=28)
    scene = make_scene(davis2016_root, 0, 0, config)
    frames = {image.tobytes(): ids for image, ids in zip(scene.frames, scene.ids)}

    def detector(image: np.ndarray) -> Instances:
        # Ground truth in reverse order and a false detection; the "embedding" is one
        # vector for both look-alikes and another for the third object, so only
        # pairing each object with its own mask gives look-alikes 1 and others 0.
        ids = frames[image.tobytes()]
        present = [k for k in (3, 2, 1) if (ids == k).sum() >= 200]
        masks = np.stack([ids == k for k in present] + [np.zeros_like(ids, bool)])
        masks[-1, :5, :5] = True
        codes = [0 if k in scene.lookalikes else 1 for k in present] + [2]
        embeddings = np.eye(3, dtype=np.float32)[codes]
        return Instances.from_masks(masks, embeddings=embeddings)

    separation = measure_separation(davis2016_root, 1, 0, config, detector=detector)
    assert all(len(v) and (v == 1.0).all() for v in separation.same.values() if len(v))
    assert len(separation.different) and (separation.different == 0.0).all()
    assert len(separation.lookalike) and (separation.lookalike == 1.0).all()
    plot_separation({"one-hot": separation}, tmp_path / "separation.png")
    assert (tmp_path / "separation.png").stat().st_size > 0
