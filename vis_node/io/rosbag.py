"""Read and write image topics of rosbag2 recordings (sqlite3 and mcap) without ROS.

Uses the pure-Python ``rosbags`` package. Supported messages:

* ``sensor_msgs/msg/Image`` with encodings ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``,
  ``mono8`` (frames or label images) and ``mono16`` (label images only);
* ``sensor_msgs/msg/CompressedImage`` holding JPEG or PNG data (decoded with OpenCV).

Frame timestamps come from ``header.stamp``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Literal

import cv2
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection
from rosbags.rosbag2 import ReaderError, StoragePlugin, Writer, WriterError
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, TypesysError, get_typestore

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame
from vis_node.io.image_codec import RawImage, decode, encode

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
"""``sensor_msgs/Image`` encodings this module reads and writes."""

COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")
"""``sensor_msgs/CompressedImage`` formats this module writes."""

BagFormat = Literal["mcap", "sqlite3"]
"""Storage plugin of a written bag."""

_STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_BAG_ERRORS = (AnyReaderError, ReaderError, SerdeError, TypesysError, OSError, KeyError, ValueError)
_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def _open_reader(path: Path) -> AnyReader:
    """An opened :class:`AnyReader` on ``path``; errors become InputDataError."""
    if not path.exists():
        raise InputDataError(path, "rosbag2 not found; pass the bag folder or its .mcap/.db3 file")
    try:
        reader = AnyReader([path], default_typestore=_TYPESTORE)
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
        yield Frame(image=pixels, stamp_ns=stamp, index=index, name=f"{index:05d}", sequence=name)


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


def _stamp_msg(stamp_ns: int) -> object:
    """A ``builtin_interfaces/msg/Time`` for ``stamp_ns`` nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return _TYPESTORE.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def encode_image_message(
    pixels: np.ndarray, stamp_ns: int, encoding: str, *, frame_id: str = "camera"
) -> tuple[str, object]:
    """Build an image message from pixels.

    Parameters
    ----------
    pixels:
        ``uint8[H, W, 3]`` RGB for colour encodings and JPEG; ``uint8[H, W]`` or
        RGB (converted to grey) for ``mono8``; ``uint16[H, W]`` ids for ``mono16``;
        RGB, ``uint8[H, W]`` or ``uint16[H, W]`` for PNG.
    stamp_ns:
        ``header.stamp`` in nanoseconds.
    encoding:
        One of :data:`RAW_ENCODINGS` (``sensor_msgs/Image``) or
        :data:`COMPRESSED_FORMATS` (``sensor_msgs/CompressedImage``).
    frame_id:
        ``header.frame_id``.

    Returns
    -------
    tuple[str, object]
        Message type name and the message object.
    """
    pixels = np.asarray(pixels)
    header = _TYPESTORE.types["std_msgs/msg/Header"](stamp=_stamp_msg(stamp_ns), frame_id=frame_id)
    if encoding in COMPRESSED_FORMATS:
        if pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        elif encoding == "jpeg" and pixels.dtype != np.uint8:
            raise ValueError("JPEG holds 8-bit images only; use png for 16-bit labels")
        ok, buffer = cv2.imencode(".jpg" if encoding == "jpeg" else ".png", pixels)
        if not ok:
            raise ValueError(f"OpenCV could not encode a {pixels.shape} image as {encoding}")
        msg = _TYPESTORE.types[COMPRESSED_MSGTYPE](
            header=header, format=encoding, data=buffer.reshape(-1)
        )
        return COMPRESSED_MSGTYPE, msg
    if encoding not in RAW_ENCODINGS:
        raise ValueError(
            f"unknown encoding {encoding!r}; use one of {RAW_ENCODINGS + COMPRESSED_FORMATS}"
        )
    if encoding == "mono8" and pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    raw = encode(pixels, encoding)
    msg = _TYPESTORE.types[IMAGE_MSGTYPE](
        header=header,
        height=raw.height,
        width=raw.width,
        encoding=raw.encoding,
        is_bigendian=int(raw.is_bigendian),
        step=raw.step,
        data=np.frombuffer(raw.data, dtype=np.uint8),
    )
    return IMAGE_MSGTYPE, msg


class ImageBagWriter:
    """Write image topics into a new rosbag2 (version 9) folder.

    Use as a context manager; add each topic once, then write messages.

    Parameters
    ----------
    out:
        Bag folder to create; must not exist yet.
    fmt:
        Storage plugin, ``"mcap"`` or ``"sqlite3"``.
    frame_id:
        ``header.frame_id`` of every message.

    Examples
    --------
    >>> rgb = np.zeros((480, 640, 3), dtype=np.uint8)
    >>> with ImageBagWriter("out/bag", fmt="mcap") as bag:  # doctest: +SKIP
    ...     bag.add_topic("/camera/image_raw", "rgb8")
    ...     bag.write("/camera/image_raw", 0, rgb)
    """

    def __init__(
        self, out: str | Path, *, fmt: BagFormat = "mcap", frame_id: str = "camera"
    ) -> None:
        if fmt not in _STORAGE:
            raise ValueError(f"fmt must be one of {tuple(_STORAGE)}, got {fmt!r}")
        self.path = Path(out)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already; choose a new bag folder")
        self.frame_id = frame_id
        self._writer = Writer(self.path, version=9, storage_plugin=_STORAGE[fmt])
        self._topics: dict[str, tuple[str, Connection]] = {}

    def __enter__(self) -> ImageBagWriter:
        self._writer.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._writer.__exit__(exc_type, exc, traceback)

    def add_topic(self, topic: str, encoding: str) -> None:
        """Declare ``topic`` with a raw encoding or a compressed format.

        Parameters
        ----------
        topic:
            Topic name, e.g. ``/camera/image_raw``.
        encoding:
            One of :data:`RAW_ENCODINGS` or :data:`COMPRESSED_FORMATS`.
        """
        if encoding not in RAW_ENCODINGS + COMPRESSED_FORMATS:
            raise ValueError(
                f"unknown encoding {encoding!r}; use one of {RAW_ENCODINGS + COMPRESSED_FORMATS}"
            )
        if topic in self._topics:
            raise ValueError(f"topic {topic} was added already")
        msgtype = COMPRESSED_MSGTYPE if encoding in COMPRESSED_FORMATS else IMAGE_MSGTYPE
        try:
            connection = self._writer.add_connection(topic, msgtype, typestore=_TYPESTORE)
        except WriterError as exc:
            raise ValueError(f"cannot add topic {topic}: {exc}") from None
        self._topics[topic] = (encoding, connection)

    def write(self, topic: str, stamp_ns: int, pixels: np.ndarray) -> None:
        """Write one image to ``topic``, stamped (header and bag time) ``stamp_ns``.

        Parameters
        ----------
        topic:
            A topic declared with :meth:`add_topic`.
        stamp_ns:
            Timestamp in nanoseconds.
        pixels:
            Pixels as :func:`encode_image_message` accepts for the topic's encoding.
        """
        if topic not in self._topics:
            raise ValueError(f"topic {topic} was not added; call add_topic first")
        encoding, connection = self._topics[topic]
        msgtype, msg = encode_image_message(pixels, stamp_ns, encoding, frame_id=self.frame_id)
        self._writer.write(connection, int(stamp_ns), _TYPESTORE.serialize_cdr(msg, msgtype))


def write_image_bag(
    frames: Iterable[Frame],
    out: str | Path,
    topic: str,
    fmt: BagFormat = "mcap",
    *,
    encoding: str = "rgb8",
) -> Path:
    """Write frames as one image topic of a new rosbag2.

    Parameters
    ----------
    frames:
        Frames to write; each is stamped with its ``stamp_ns``.
    out:
        Bag folder to create; must not exist yet.
    topic:
        Topic name.
    fmt:
        Storage plugin, ``"mcap"`` or ``"sqlite3"``.
    encoding:
        One of :data:`RAW_ENCODINGS` (except ``mono16``) or :data:`COMPRESSED_FORMATS`.

    Returns
    -------
    pathlib.Path
        The bag folder.
    """
    with ImageBagWriter(out, fmt=fmt) as bag:
        bag.add_topic(topic, encoding)
        for frame in frames:
            bag.write(topic, frame.stamp_ns, frame.image)
    return bag.path
