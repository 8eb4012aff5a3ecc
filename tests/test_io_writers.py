"""Writers: YouTube-VIS JSON (RLE), overlays as PNG and mp4."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vis_node.io.overlay import (
    InstanceLabel,
    OverlayVideoWriter,
    draw_overlay,
    instance_color,
    write_image,
)
from vis_node.io.readers import read_image, read_video
from vis_node.io.ytvis_json import (
    YtvisTrack,
    YtvisVideo,
    annotation_dict,
    decode_rle,
    encode_rle,
    mask_bbox,
    tracks_from_id_maps,
    write_annotation_json,
    write_results_json,
)


def _ids() -> np.ndarray:
    """``uint16[3, 20, 30]``: object 1 in all frames, object 2 absent in frame 1."""
    ids = np.zeros((3, 20, 30), dtype=np.uint16)
    ids[:, 2:6, 3:10] = 1
    ids[0, 10:15, 20:28] = 2
    ids[2, 11:19, 1:4] = 2
    return ids


def test_rle_round_trip_and_json_types() -> None:
    mask = np.zeros((7, 5), dtype=bool)
    mask[1:4, 2] = True
    mask[6, 4] = True
    rle = encode_rle(mask)
    assert rle["size"] == [7, 5]
    assert isinstance(rle["counts"], str)
    json.dumps(rle)
    np.testing.assert_array_equal(decode_rle(rle), mask)


def test_mask_bbox_is_xywh() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_bbox(mask) == [3.0, 2.0, 6.0, 3.0]
    with pytest.raises(ValueError, match="mask is empty"):
        mask_bbox(np.zeros((3, 3), dtype=bool))


def test_annotation_document(tmp_path: Path) -> None:
    ids = _ids()
    video = YtvisVideo(1, "v", 30, 20, ("v/00000.jpg", "v/00001.jpg", "v/00002.jpg"))
    tracks = tracks_from_id_maps(ids, {2: 5, 1: 3}, video_id=1)
    assert [t.category_id for t in tracks] == [3, 5]
    path = write_annotation_json(tmp_path / "gt.json", [video], tracks, ("a", "b", "c", "d", "e"))
    document = json.loads(path.read_text())
    assert document["videos"] == [
        {
            "id": 1,
            "name": "v",
            "width": 30,
            "height": 20,
            "length": 3,
            "file_names": ["v/00000.jpg", "v/00001.jpg", "v/00002.jpg"],
        }
    ]
    assert document["categories"][4] == {"id": 5, "name": "e", "supercategory": "object"}
    first, second = document["annotations"]
    assert (first["id"], first["category_id"], first["video_id"]) == (1, 3, 1)
    assert first["areas"] == [28.0, 28.0, 28.0]
    assert first["bboxes"][0] == [3.0, 2.0, 7.0, 4.0]
    assert second["areas"] == [40.0, None, 24.0]
    assert second["bboxes"] == [[20.0, 10.0, 8.0, 5.0], None, [1.0, 11.0, 3.0, 8.0]]
    assert second["segmentations"][1] is None
    np.testing.assert_array_equal(decode_rle(second["segmentations"][2]), ids[2] == 2)


def test_annotation_length_mismatch_raises() -> None:
    video = YtvisVideo(1, "v", 30, 20, ("a.jpg", "b.jpg"))
    track = YtvisTrack(1, 1, (np.ones((20, 30), dtype=bool),))
    with pytest.raises(ValueError, match="has 1 frames, video has 2"):
        annotation_dict([video], [track], ("x",))


def test_results_file(tmp_path: Path) -> None:
    ids = _ids()
    masks = (ids[0] == 2, None, ids[2] == 2)
    path = write_results_json(
        tmp_path / "out" / "results.json", [YtvisTrack(7, 2, masks, score=0.25)]
    )
    (entry,) = json.loads(path.read_text())
    assert set(entry) == {"video_id", "category_id", "score", "segmentations"}
    assert (entry["video_id"], entry["category_id"], entry["score"]) == (7, 2, 0.25)
    assert entry["segmentations"][1] is None
    np.testing.assert_array_equal(decode_rle(entry["segmentations"][0]), masks[0])


def test_instance_colours_are_stable_and_distinct() -> None:
    colours = [instance_color(i) for i in range(1, 9)]
    assert colours == [instance_color(i) for i in range(1, 9)]
    assert len(set(colours)) == 8
    assert all(0 <= c <= 255 for colour in colours for c in colour)


def test_overlay_blends_masks_and_draws_tag() -> None:
    image = np.full((60, 80, 3), 100, dtype=np.uint8)
    ids = np.zeros((60, 80), dtype=np.uint16)
    ids[30:50, 20:60] = 3
    out = draw_overlay(image, ids, {3: InstanceLabel("box", 0.87)}, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, np.full((60, 80, 3), 100, dtype=np.uint8))
    colour = np.array(instance_color(3))
    expected = np.rint(0.5 * 100 + 0.5 * colour)
    np.testing.assert_array_equal(out[40, 40], expected)
    np.testing.assert_array_equal(out[30, 40], colour)
    np.testing.assert_array_equal(out[5, 75], [100, 100, 100])
    tag = out[10:30, 20:60]
    assert (tag == colour).all(axis=-1).sum() > 100
    assert (tag == 0).all(axis=-1).any()


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_overlay_tints_every_instance_pixel_like_a_float_blend(alpha: float) -> None:
    """The table-based tint gives each pixel of each instance round((1 - a) * pixel +
    a * colour) (within 1: ties round either way with the float precision), away from
    the contours and tags drawn on top; other pixels unchanged."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    ids = np.zeros((120, 200), np.uint16)
    ids[40:80, 20:90] = 5
    ids[60:110, 120:190] = 65535
    ids[90:100, 30:40] = 5  # a second piece of instance 5
    out = draw_overlay(image, ids, {5: InstanceLabel("a", 0.5)}, alpha=alpha)
    for instance_id in (5, 65535):
        inside = cv2.erode((ids == instance_id).astype(np.uint8), np.ones((7, 7), np.uint8))
        colour = np.array(instance_color(instance_id), np.float32)
        expected = (1 - alpha) * image.astype(np.float32) + alpha * colour
        np.testing.assert_allclose(out[inside > 0], expected[inside > 0], atol=0.5 + 1e-4)
    np.testing.assert_array_equal(out[:20, 100:], image[:20, 100:])


def test_overlay_rejects_size_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        draw_overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), np.uint16))


def test_overlay_png(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    path = write_image(tmp_path / "sub" / "o.png", image)
    np.testing.assert_array_equal(read_image(path), image)


def test_mp4v_video_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "overlay.mp4"
    colours = [(220, 30, 30), (30, 220, 30), (30, 30, 220), (200, 200, 40)]
    with OverlayVideoWriter(path, fps=8.0) as writer:
        for colour in colours:
            writer.write(np.full((48, 64, 3), colour, dtype=np.uint8))
        writer.write(np.full((10, 10, 3), colours[0], dtype=np.uint8))
    frames = list(read_video(path))
    assert len(frames) == 5 and frames[4].image.shape == (48, 64, 3)
    assert [f.stamp_ns for f in frames] == [0, 125_000_000, 250_000_000, 375_000_000, 500_000_000]
    for frame, colour in zip(frames, [*colours, colours[0]], strict=True):
        assert np.abs(frame.image.reshape(-1, 3).mean(axis=0) - colour).max() < 20
    assert path.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize(("fps", "frames"), [(24.0, 6), (12.5, 3), (30.0, 1)])
def test_video_writer_takes_the_frame_rate_from_the_stamps(
    tmp_path: Path, fps: float, frames: int
) -> None:
    path = tmp_path / "overlay.mp4"
    with OverlayVideoWriter(path) as writer:
        for index in range(frames):
            writer.write(np.zeros((32, 48, 3), np.uint8), stamp_ns=round(index * 1e9 / fps))
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(fps, abs=0.01)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == frames
    capture.release()
    with pytest.raises(ValueError, match="give stamp_ns"):
        OverlayVideoWriter(tmp_path / "x.mp4").write(np.zeros((8, 8, 3), np.uint8))
