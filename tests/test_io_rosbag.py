"""rosbag2 image topics: round trips for mcap and sqlite3, label topics, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame
from vis_node.io.bag_writer import ImageBagWriter, encode_image_message, write_image_bag
from vis_node.io.rosbag import (
    decode_image_message,
    image_topics,
    read_bag_frames,
    read_bag_labels,
)

COMPRESSED = "sensor_msgs/msg/CompressedImage"
STAMPS = [1_700_000_000_123_456_789, 1_700_000_000_156_790_122, 1_700_000_001_000_000_000]


def _image(index: int) -> np.ndarray:
    """A smooth RGB image (JPEG-friendly) that differs per index."""
    ys, xs = np.mgrid[0:30, 0:40]
    image = np.stack([xs * 6, ys * 8, np.full_like(xs, 60 * index)], axis=-1)
    return image.astype(np.uint8)


def _frames() -> list[Frame]:
    return [Frame(_image(i), STAMPS[i], i, f"{i:05d}", "src") for i in range(3)]


def _grey(image: np.ndarray) -> np.ndarray:
    weights = np.array([0.299, 0.587, 0.114])
    return np.rint(image.astype(np.float64) @ weights).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "png"])
def test_lossless_round_trip(tmp_path: Path, fmt: str, encoding: str) -> None:
    bag = write_image_bag(_frames(), tmp_path / "bag", "/camera/image", fmt, encoding=encoding)
    expected_type = (
        "sensor_msgs/msg/CompressedImage" if encoding == "png" else "sensor_msgs/msg/Image"
    )
    assert image_topics(bag) == {"/camera/image": expected_type}
    frames = list(read_bag_frames(bag))
    assert [f.stamp_ns for f in frames] == STAMPS
    assert [f.name for f in frames] == ["00000", "00001", "00002"]
    assert {f.sequence for f in frames} == {"bag"}
    for frame, original in zip(frames, _frames(), strict=True):
        np.testing.assert_array_equal(frame.image, original.image)
        assert not frame.image.flags.writeable


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_jpeg_and_mono8_round_trip(tmp_path: Path, fmt: str) -> None:
    with ImageBagWriter(tmp_path / "bag", fmt=fmt) as writer:
        writer.add_topic("/jpeg", "jpeg")
        writer.add_topic("/mono", "mono8")
        for frame in _frames():
            writer.write("/jpeg", frame.stamp_ns, frame.image)
            writer.write("/mono", frame.stamp_ns + 1, frame.image)
    jpeg = list(read_bag_frames(tmp_path / "bag", topic="/jpeg"))
    mono = list(read_bag_frames(tmp_path / "bag", topic="/mono"))
    assert [f.stamp_ns for f in jpeg] == STAMPS
    assert [f.stamp_ns for f in mono] == [s + 1 for s in STAMPS]
    for got, original in zip(jpeg, _frames(), strict=True):
        assert np.abs(got.image.astype(int) - original.image).mean() < 3.0
    for got, original in zip(mono, _frames(), strict=True):
        assert got.image.shape == (30, 40, 3)
        np.testing.assert_array_equal(got.image[:, :, 0], got.image[:, :, 2])
        assert np.abs(got.image[:, :, 0].astype(int) - _grey(original.image)).max() <= 1


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_label_topics_mono16_and_png16(tmp_path: Path, fmt: str) -> None:
    ids = np.zeros((30, 40), dtype=np.uint16)
    ids[3:9, 4:20] = 1
    ids[10:25, 22:39] = 40_000
    with ImageBagWriter(tmp_path / "bag", fmt=fmt) as writer:
        writer.add_topic("/gt", "mono16")
        writer.add_topic("/gt_png", "png")
        writer.add_topic("/camera", "rgb8")
        writer.write("/gt", 42, ids)
        writer.write("/gt_png", 43, ids)
        writer.write("/camera", 42, _image(0))
    ((stamp, labels),) = list(read_bag_labels(tmp_path / "bag", topic="/gt"))
    assert stamp == 42 and labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, ids)
    ((stamp, labels),) = list(read_bag_labels(tmp_path / "bag", topic="/gt_png"))
    assert stamp == 43
    np.testing.assert_array_equal(labels, ids)
    with pytest.raises(InputDataError, match="16-bit label images"):
        list(read_bag_frames(tmp_path / "bag", topic="/gt"))
    with pytest.raises(InputDataError, match="colour images"):
        list(read_bag_labels(tmp_path / "bag", topic="/camera"))


def test_bare_storage_file_is_readable(tmp_path: Path) -> None:
    write_image_bag(_frames(), tmp_path / "bag", "/cam", "sqlite3")
    frames = list(read_bag_frames(tmp_path / "bag" / "bag.db3"))
    assert [f.stamp_ns for f in frames] == STAMPS


def test_decode_honours_row_padding_and_big_endian() -> None:
    ids = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    _, msg = encode_image_message(ids, 0, "mono16")
    padded = np.zeros((3, 10), dtype=np.uint8)
    padded[:, :8] = ids.astype(">u2").view(np.uint8).reshape(3, 8)
    msg.is_bigendian = 1
    msg.step = 10
    msg.data = padded.reshape(-1)
    np.testing.assert_array_equal(decode_image_message(msg, "sensor_msgs/msg/Image"), ids)


def test_several_topics_need_a_choice(tmp_path: Path) -> None:
    with ImageBagWriter(tmp_path / "bag", fmt="mcap") as writer:
        writer.add_topic("/left", "rgb8")
        writer.add_topic("/right", "jpeg")
        writer.write("/left", 1, _image(0))
        writer.write("/right", 1, _image(0))
    with pytest.raises(InputDataError, match="several image topics") as info:
        read_bag_frames(tmp_path / "bag")
    assert "/left (Image)" in str(info.value) and "/right (CompressedImage)" in str(info.value)
    with pytest.raises(InputDataError, match="no image topic '/middle'.*/left"):
        read_bag_frames(tmp_path / "bag", topic="/middle")
    assert len(list(read_bag_frames(tmp_path / "bag", topic="/right"))) == 1


def test_missing_bag_raises(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="rosbag2 not found") as info:
        read_bag_frames(tmp_path / "nothing")
    assert info.value.path == tmp_path / "nothing"


def test_corrupt_metadata_raises(tmp_path: Path) -> None:
    bag = write_image_bag(_frames(), tmp_path / "bag", "/cam", "mcap")
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [unbalanced")
    with pytest.raises(InputDataError, match="not a readable rosbag2") as info:
        read_bag_frames(bag)
    assert info.value.path == bag


@pytest.mark.parametrize(("fmt", "suffix"), [("mcap", ".mcap"), ("sqlite3", ".db3")])
def test_truncated_bag_raises(tmp_path: Path, fmt: str, suffix: str) -> None:
    bag = write_image_bag(_frames(), tmp_path / "bag", "/cam", fmt)
    storage = bag / f"bag{suffix}"
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="not a readable rosbag2") as info:
        read_bag_frames(bag)
    assert info.value.path == bag


def test_corrupt_mcap_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mcap"
    path.write_bytes(b"\x89MCAP0\r\n" + bytes(range(256)) * 4)
    with pytest.raises(InputDataError, match="not a readable rosbag2") as info:
        read_bag_frames(path)
    assert info.value.path == path


def test_corrupt_sqlite_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db3"
    path.write_bytes(b"definitely not sqlite" * 50)
    with pytest.raises(InputDataError) as info:
        read_bag_frames(path)
    assert info.value.path == path


def test_corrupt_compressed_message_raises(tmp_path: Path) -> None:
    _, msg = encode_image_message(_image(0), 5, "jpeg")
    assert decode_image_message(msg, COMPRESSED).shape == (30, 40, 3)
    msg.data = msg.data[:20]
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_image_message(msg, COMPRESSED)
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/cam", COMPRESSED, typestore=typestore)
        writer.write(connection, 5, typestore.serialize_cdr(msg, COMPRESSED))
    frames = read_bag_frames(tmp_path / "bag")
    with pytest.raises(InputDataError, match="corrupt message on topic /cam") as info:
        next(frames)
    assert info.value.path == tmp_path / "bag"


def test_writer_refuses_existing_folder_and_bad_encoding(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    with pytest.raises(FileExistsError, match="exists already"):
        ImageBagWriter(tmp_path / "bag")
    with ImageBagWriter(tmp_path / "new", fmt="mcap") as writer:
        with pytest.raises(ValueError, match="unknown encoding 'yuv422'"):
            writer.add_topic("/cam", "yuv422")
        with pytest.raises(ValueError, match="call add_topic first"):
            writer.write("/cam", 0, _image(0))
