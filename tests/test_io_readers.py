"""Frame readers: image folders, video files, DAVIS roots, source detection, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import is_frozen
from vis_node.io.labels import write_instance_png
from vis_node.io.readers import DavisRoot, read_image, read_image_folder, read_video
from vis_node.io.bag_writer import write_image_bag
from vis_node.io.sources import SourceKind, detect_source, open_source



def _pattern(index: int, height: int = 24, width: int = 32) -> np.ndarray:
    """A distinct RGB test image per index (flat colour blocks survive JPEG)."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (40 * index % 256, 200, 30)
    image[:, width // 2 :] = (10, 60, 250 - 30 * index)
    return image


def _write_png_folder(folder: Path, count: int) -> list[np.ndarray]:
    folder.mkdir(parents=True)
    images = [_pattern(i) for i in range(count)]
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return images


def test_image_folder_sorted_lossless_and_stamped(tmp_path: Path) -> None:
    images = _write_png_folder(tmp_path / "seq", 3)
    (tmp_path / "seq" / "notes.txt").write_text("not an image")
    frames = list(read_image_folder(tmp_path / "seq", fps=10.0))
    assert [f.name for f in frames] == ["00000", "00001", "00002"]
    assert [f.stamp_ns for f in frames] == [0, 100_000_000, 200_000_000]
    assert [f.index for f in frames] == [0, 1, 2]
    assert {f.sequence for f in frames} == {"seq"}
    for frame, image in zip(frames, images, strict=True):
        np.testing.assert_array_equal(frame.image, image)
        assert is_frozen(frame.image)  # compared by identity downstream


def test_image_folder_accepts_jpeg_and_bmp(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(_pattern(0)).save(folder / "a.BMP")
    Image.fromarray(_pattern(1)).save(folder / "b.jpeg", quality=95)
    frames = list(read_image_folder(folder))
    assert [f.name for f in frames] == ["a", "b"]
    assert frames[1].stamp_ns == round(1e9 / 30)
    np.testing.assert_array_equal(frames[0].image, _pattern(0))
    error = np.abs(frames[1].image.astype(int) - _pattern(1))
    assert error[:, :8].max() < 12 and error[:, 24:].max() < 12


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="folder not found") as info:
        read_image_folder(tmp_path / "nope")
    assert info.value.path == tmp_path / "nope"


def test_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(InputDataError, match="no image files") as info:
        read_image_folder(tmp_path / "empty")
    assert info.value.path == tmp_path / "empty"


def test_truncated_jpeg_raises_naming_file(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    Image.fromarray(_pattern(0)).save(folder / "00000.jpg")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "00001.jpg", quality=95)
    data = (folder / "00001.jpg").read_bytes()
    (folder / "00001.jpg").write_bytes(data[: len(data) // 2])
    frames = read_image_folder(folder)
    assert next(frames).name == "00000"
    with pytest.raises(InputDataError, match="not a readable image") as info:
        next(frames)
    assert info.value.path == folder / "00001.jpg"


def test_read_image_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="file not found"):
        read_image(tmp_path / "x.png")


def _write_video(path: Path, count: int, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (32, 24))
    assert writer.isOpened()
    for i in range(count):
        writer.write(cv2.cvtColor(_pattern(i), cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_frames_stamps_and_colours(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, 5, fps=10.0)
    frames = list(read_video(path))
    assert len(frames) == 5
    assert [f.stamp_ns for f in frames] == [0, 100_000_000, 200_000_000, 300_000_000, 400_000_000]
    assert [f.name for f in frames] == ["00000", "00001", "00002", "00003", "00004"]
    assert frames[0].sequence == "clip"
    assert all(is_frozen(f.image) for f in frames)
    assert frames[2].image.shape == (24, 32, 3)
    # The right half is blue-dominant (RGB order, not BGR).
    right = frames[2].image[:, 20:].reshape(-1, 3).mean(axis=0)
    assert right[2] > 150 > right[0]


def test_video_fixed_fps_overrides_container_clock(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, 3, fps=10.0)
    assert [f.stamp_ns for f in read_video(path, fps=4.0)] == [0, 250_000_000, 500_000_000]


def test_not_a_video_raises(tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    path.write_text("this is text, not a video")
    with pytest.raises(InputDataError) as info:
        read_video(path)
    assert info.value.path == path


def test_missing_video_raises(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="video file not found"):
        read_video(tmp_path / "gone.mp4")


def _make_davis_root(root: Path) -> dict[str, list[np.ndarray]]:
    """Two sequences: 'binary' with 0/255 grey masks, 'palette' with instance ids + void."""
    labels: dict[str, list[np.ndarray]] = {}
    _write_png_folder(root / "JPEGImages" / "480p" / "binary", 2)
    _write_png_folder(root / "JPEGImages" / "480p" / "palette", 3)
    masks = []
    for i in range(2):
        mask = np.zeros((24, 32), dtype=np.uint8)
        mask[5 : 10 + i, 3:12] = 255
        path = root / "Annotations" / "480p" / "binary" / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask, mode="L").save(path)
        masks.append((mask == 255).astype(np.uint16))
    labels["binary"] = masks
    ids_list = []
    for i in range(3):
        ids = np.zeros((24, 32), dtype=np.uint16)
        ids[2:8, 2:8] = 1
        ids[12:20, 10 + i : 20 + i] = 2
        write_instance_png(root / "Annotations" / "480p" / "palette" / f"{i:05d}.png", ids)
        ids_list.append(ids)
    labels["palette"] = ids_list
    return labels


def test_davis_root_sequences_frames_annotations(tmp_path: Path) -> None:
    expected = _make_davis_root(tmp_path)
    root = DavisRoot(tmp_path)
    assert root.sequences == ["binary", "palette"]
    frames = list(root.frames("palette", fps=25.0))
    assert [f.stamp_ns for f in frames] == [0, 40_000_000, 80_000_000]
    assert {f.sequence for f in frames} == {"palette"}
    for name in root.sequences:
        annotations = list(root.annotations(name))
        assert [a[0] for a in annotations] == [f"{i:05d}" for i in range(len(expected[name]))]
        for (_, ids, void), want in zip(annotations, expected[name], strict=True):
            assert ids.dtype == np.uint16
            assert void is None
            np.testing.assert_array_equal(ids, want)


def test_davis_root_palette_void(tmp_path: Path) -> None:
    _write_png_folder(tmp_path / "JPEGImages" / "480p" / "s", 1)
    labels = np.zeros((24, 32), dtype=np.uint8)
    labels[0:4, 0:4] = 3
    labels[10, :] = 255
    image = Image.fromarray(labels, mode="P")
    image.putpalette([v for i in range(256) for v in (i, i, i)])
    (tmp_path / "Annotations" / "480p" / "s").mkdir(parents=True)
    image.save(tmp_path / "Annotations" / "480p" / "s" / "00000.png")
    ((name, ids, void),) = list(DavisRoot(tmp_path).annotations("s"))
    assert name == "00000"
    assert void is not None and void.sum() == 32 and void[10].all()
    assert ids[10].max() == 0 and (ids == 3).sum() == 16


def test_davis_root_errors(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not a DAVIS-style root"):
        DavisRoot(tmp_path)
    (tmp_path / "JPEGImages" / "480p").mkdir(parents=True)
    with pytest.raises(InputDataError, match="no sequence folders"):
        DavisRoot(tmp_path)
    _write_png_folder(tmp_path / "JPEGImages" / "480p" / "a", 1)
    root = DavisRoot(tmp_path)
    with pytest.raises(InputDataError, match="unknown sequence; this root has a"):
        root.frames("b")
    with pytest.raises(InputDataError, match="no annotation PNGs"):
        root.annotations("a")
    assert not root.has_annotations("a")


def test_davis2016_shared_binary_masks(davis2016_root: Path) -> None:
    root = DavisRoot(davis2016_root)
    assert "blackswan" in root.sequences
    name, ids, void = next(iter(root.annotations("blackswan")))
    assert name == "00000"
    assert ids.shape == (480, 854) and void is None
    assert set(np.unique(ids).tolist()) == {0, 1}
    frame = next(iter(root.frames("blackswan")))
    assert frame.image.shape == (480, 854, 3) and frame.name == "00000"


def test_detect_and_open_each_kind(tmp_path: Path) -> None:
    _make_davis_root(tmp_path / "davis")
    images = _write_png_folder(tmp_path / "images", 2)
    _write_video(tmp_path / "clip.avi", 2, fps=5.0)
    frames = list(read_image_folder(tmp_path / "images"))
    write_image_bag(frames, tmp_path / "bag", "/cam", "mcap")

    assert detect_source(tmp_path / "davis") is SourceKind.DAVIS_ROOT
    assert detect_source(tmp_path / "images") is SourceKind.IMAGE_FOLDER
    assert detect_source(tmp_path / "clip.avi") is SourceKind.VIDEO
    assert detect_source(tmp_path / "bag") is SourceKind.ROSBAG
    assert detect_source(tmp_path / "bag" / "bag.mcap") is SourceKind.ROSBAG

    davis = list(open_source(tmp_path / "davis"))
    assert [(f.sequence, f.name) for f in davis] == [
        ("binary", "00000"),
        ("binary", "00001"),
        ("palette", "00000"),
        ("palette", "00001"),
        ("palette", "00002"),
    ]
    folder = list(open_source(tmp_path / "images", fps=2.0))
    assert [f.stamp_ns for f in folder] == [0, 500_000_000]
    assert len(list(open_source(tmp_path / "clip.avi"))) == 2
    bag = list(open_source(tmp_path / "bag", topic="/cam"))
    np.testing.assert_array_equal(bag[1].image, images[1])


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="input not found"):
        open_source(tmp_path / "missing")
    Image.fromarray(_pattern(0)).save(tmp_path / "one.png")
    with pytest.raises(InputDataError, match="single image"):
        open_source(tmp_path / "one.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="no image files"):
        open_source(tmp_path / "empty")
    with pytest.raises(InputDataError, match="rosbag2 inputs only"):
        open_source(tmp_path / "empty", topic="/cam")
    (tmp_path / "junk.mkv").write_bytes(b"\x00" * 100)
    with pytest.raises(InputDataError):
        open_source(tmp_path / "junk.mkv")
