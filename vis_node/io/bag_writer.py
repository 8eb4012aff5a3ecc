"""Write image topics into rosbag2 recordings (sqlite3 and mcap) without ROS.

:func:`encode_image_message` builds a ``sensor_msgs/msg/Image`` (encodings of
:data:`~vis_node.io.rosbag.RAW_ENCODINGS`) or ``sensor_msgs/msg/CompressedImage``
(:data:`COMPRESSED_FORMATS`); :class:`ImageBagWriter` and :func:`write_image_bag` write
them into a new rosbag2 (version 9) folder with the pure-Python ``rosbags`` package.
:mod:`vis_node.io.rosbag` reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Literal

import cv2
import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from vis_node.io.image_codec import encode
from vis_node.io.rosbag import COMPRESSED_MSGTYPE, IMAGE_MSGTYPE, RAW_ENCODINGS, TYPESTORE
from vis_node.structures.frames import Frame

COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")
"""``sensor_msgs/CompressedImage`` formats this module writes."""

BagFormat = Literal["mcap", "sqlite3"]
"""Storage plugin of a written bag."""

_STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def _stamp_msg(stamp_ns: int) -> object:
    """A ``builtin_interfaces/msg/Time`` for ``stamp_ns`` nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return TYPESTORE.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


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
    header = TYPESTORE.types["std_msgs/msg/Header"](stamp=_stamp_msg(stamp_ns), frame_id=frame_id)
    if encoding in COMPRESSED_FORMATS:
        if pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        elif encoding == "jpeg" and pixels.dtype != np.uint8:
            raise ValueError("JPEG holds 8-bit images only; use png for 16-bit labels")
        ok, buffer = cv2.imencode(".jpg" if encoding == "jpeg" else ".png", pixels)
        if not ok:
            raise ValueError(f"OpenCV could not encode a {pixels.shape} image as {encoding}")
        msg = TYPESTORE.types[COMPRESSED_MSGTYPE](
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
    msg = TYPESTORE.types[IMAGE_MSGTYPE](
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
            connection = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
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
        self._writer.write(connection, int(stamp_ns), TYPESTORE.serialize_cdr(msg, msgtype))


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
