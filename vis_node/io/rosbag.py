"""Read image topics of rosbag2 recordings (sqlite3 and mcap) without ROS.

Uses the pure-Python ``rosbags`` package. Supported messages:

* ``sensor_msgs/msg/Image`` with encodings ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``,
  ``mono8`` (frames or label images) and ``mono16`` (label images only);
* ``sensor_msgs/msg/CompressedImage`` holding JPEG or PNG data (decoded with OpenCV).

Frame timestamps come from ``header.stamp``. Bags are written by
:mod:`vis_node.io.bag_writer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, TypesysError, get_typestore

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame, freeze
from vis_node.io.image_codec import RawImage, decode

GT_IDS_TOPIC = "/camera/gt/instance_ids"
"""Ground-truth instance ids (mono16, same stamps as the images), as ``vsis bag make`` writes."""

GT_SEMANTICS_TOPIC = "/camera/gt/semantics"
"""Ground-truth class ids (mono8, same stamps as the images), as ``vsis bag make`` writes."""

GT_TOPICS = (GT_IDS_TOPIC, GT_SEMANTICS_TOPIC)
"""Label topics never taken as the camera when no topic is named."""

IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
"""ROS 2 type name of raw images."""

COMPRESSED_MSGTYPE = "sensor_msgs/msg/CompressedImage"
"""ROS 2 type name of compressed images."""

IMAGE_MSGTYPES: tuple[str, ...] = (IMAGE_MSGTYPE, COMPRESSED_MSGTYPE)
"""Message types treated as image topics."""

RAW_ENCODINGS: tuple[str, ...] = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")
"""``sensor_msgs/Image`` encodings VSIS reads and writes."""

_BAG_ERRORS = (AnyReaderError, ReaderError, SerdeError, TypesysError, OSError, KeyError, ValueError)
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
"""Message types of ROS 2 Jazzy, used to read and write bags."""


def _open_reader(path: Path) -> AnyReader:
    """An opened :class:`AnyReader` on ``path``; errors become InputDataError."""
    if not path.exists():
        raise InputDataError(path, "rosbag2 not found; pass the bag folder or its .mcap/.db3 file")
    try:
        reader = AnyReader([path], default_typestore=TYPESTORE)
        reader.open()
    except _BAG_ERRORS as exc:
        raise InputDataError(
            path,
            f"not a readable rosbag2 ({exc}); if the recording was cut short, "
            "repair it with `ros2 bag reindex` or record it again",
        ) from None
    return reader


def _bag_name(path: Path) -> str:
    """Sequence name of a bag: folder name, or file stem for a bare storage file."""
    return path.name if path.is_dir() else path.stem


def image_topics(path: str | Path) -> dict[str, str]:
    """Image topics of a bag.

    Parameters
    ----------
    path:
        rosbag2 folder (with ``metadata.yaml``) or a bare ``.mcap`` / ``.db3`` file.

    Returns
    -------
    dict
        Topic name -> message type, for ``Image`` and ``CompressedImage`` topics.

    Raises
    ------
    InputDataError
        If the bag is missing or unreadable.
    """
    path = Path(path)
    reader = _open_reader(path)
    try:
        return {
            topic: info.msgtype
            for topic, info in reader.topics.items()
            if info.msgtype in IMAGE_MSGTYPES
        }
    finally:
        reader.close()


def _choose_topic(path: Path, topics: dict[str, str], topic: str | None) -> str:
    """Validate the requested ``topic`` or pick the only image topic that is not
    ground truth (:data:`GT_TOPICS`)."""
    listing = ", ".join(f"{name} ({kind.rsplit('/', 1)[-1]})" for name, kind in topics.items())
    if not topics:
        raise InputDataError(path, "the bag has no sensor_msgs/Image or CompressedImage topic")
    if topic is None:
        cameras = [name for name in topics if name not in GT_TOPICS]
        if len(cameras) != 1:
            raise InputDataError(
                path, f"the bag has several image topics; choose one with --topic: {listing}"
            )
        return cameras[0]
    if topic not in topics:
        raise InputDataError(path, f"no image topic {topic!r} in the bag; image topics: {listing}")
    return topic


def decode_image_message(msg: object, msgtype: str) -> np.ndarray:
    """Decode a deserialised image message to pixels.

    Parameters
    ----------
    msg:
        A ``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage`` object.
    msgtype:
        Its type name (:data:`IMAGE_MSGTYPE` or :data:`COMPRESSED_MSGTYPE`).

    Returns
    -------
    numpy.ndarray
        ``uint8[H, W, 3]`` RGB for colour images (alpha dropped), ``uint8[H, W]``
        for ``mono8`` / 8-bit grey and ``uint16[H, W]`` for ``mono16`` / 16-bit PNG.

    Raises
    ------
    ValueError
        If the encoding is unsupported or the data do not match the header.
    """
    if msgtype == COMPRESSED_MSGTYPE:
        buffer = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
        if image is None:
            raise ValueError(f"compressed image ({msg.format!r}) could not be decoded")
        if image.ndim == 2:
            return image
        code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        return cv2.cvtColor(image, code)
    return decode(RawImage.from_msg(msg))


def _iterate_messages(path: Path, topic: str) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(header stamp ns, decoded pixels)`` for every message of ``topic``."""
    reader = _open_reader(path)
    try:
        connections = [c for c in reader.connections if c.topic == topic]
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            yield stamp, decode_image_message(msg, connection.msgtype)
    except _BAG_ERRORS as exc:
        raise InputDataError(path, f"corrupt message on topic {topic} ({exc})") from None
    finally:
        reader.close()


def read_bag_frames(path: str | Path, *, topic: str | None = None) -> Iterator[Frame]:
    """Read an image topic of a rosbag2 as frames.

    Parameters
    ----------
    path:
        rosbag2 folder or a bare ``.mcap`` / ``.db3`` file.
    topic:
        Image topic to read; may be omitted when the bag has exactly one.

    Returns
    -------
    Iterator[Frame]
        ``uint8[H, W, 3]`` RGB frames (``mono8`` is replicated to three channels)
        stamped with ``header.stamp`` and named ``00000``, ``00001``, ...

    Raises
    ------
    InputDataError
        At once if the bag is unreadable, has no image topic, has several and none
        is chosen, or lacks ``topic``; while iterating for corrupt messages or
        ``mono16`` (label) images.
    """
    path = Path(path)
    chosen = _choose_topic(path, image_topics(path), topic)
    return _iterate_frames(path, chosen)


def _iterate_frames(path: Path, topic: str) -> Iterator[Frame]:
    """Turn decoded messages of ``topic`` into RGB frames."""
    name = _bag_name(path)
    for index, (stamp, pixels) in enumerate(_iterate_messages(path, topic)):
        if pixels.dtype != np.uint8:
            raise InputDataError(
                path, f"topic {topic} holds 16-bit label images; read it with read_bag_labels"
            )
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        yield Frame(image=freeze(pixels), stamp_ns=stamp, index=index, name=f"{index:05d}", sequence=name)


def read_bag_labels(path: str | Path, *, topic: str) -> Iterator[tuple[int, np.ndarray]]:
    """Read a label-image topic (``mono8``, ``mono16`` or grey PNG) of a rosbag2.

    Parameters
    ----------
    path:
        rosbag2 folder or a bare ``.mcap`` / ``.db3`` file.
    topic:
        The label topic.

    Returns
    -------
    Iterator[tuple[int, numpy.ndarray]]
        ``(stamp_ns, ids)`` with ``uint16[H, W]`` ids from ``header.stamp``.

    Raises
    ------
    InputDataError
        At once if the bag is unreadable or lacks ``topic``; while iterating if a
        message is corrupt or holds a colour image.
    """
    path = Path(path)
    chosen = _choose_topic(path, image_topics(path), topic)
    return _iterate_labels(path, chosen)


def _iterate_labels(path: Path, topic: str) -> Iterator[tuple[int, np.ndarray]]:
    """Turn decoded messages of ``topic`` into uint16 label maps."""
    for stamp, pixels in _iterate_messages(path, topic):
        if pixels.ndim != 2:
            raise InputDataError(
                path, f"topic {topic} holds colour images; label topics must be mono8 or mono16"
            )
        yield stamp, pixels.astype(np.uint16)
