"""Raw image buffers <-> NumPy, following ``sensor_msgs/Image`` semantics (no ROS import).

Used by the rosbag reader and by the ROS nodes, so both accept exactly the same
encodings and reject bad buffers with the same error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# encoding -> (channels, dtype, index order that turns the buffer into RGB, or None)
_ENCODINGS: dict[str, tuple[int, np.dtype, tuple[int, ...] | None]] = {
    "rgb8": (3, np.dtype(np.uint8), (0, 1, 2)),
    "bgr8": (3, np.dtype(np.uint8), (2, 1, 0)),
    "rgba8": (4, np.dtype(np.uint8), (0, 1, 2)),
    "bgra8": (4, np.dtype(np.uint8), (2, 1, 0)),
    "mono8": (1, np.dtype(np.uint8), None),
    "8UC1": (1, np.dtype(np.uint8), None),
    "mono16": (1, np.dtype(np.uint16), None),
    "16UC1": (1, np.dtype(np.uint16), None),
}

COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
"""Encodings accepted as camera input (converted to RGB)."""


class ImageEncodingError(ValueError):
    """A raw image buffer does not match its declared encoding or size."""


@dataclass(frozen=True)
class RawImage:
    """The fields of a ``sensor_msgs/Image`` that describe its pixels.

    Attributes
    ----------
    height, width:
        Size in pixels.
    encoding:
        ROS encoding string (``"rgb8"``, ``"mono16"``, ...).
    is_bigendian:
        Byte order of multi-byte pixels.
    step:
        Bytes per row (may exceed ``width * bytes_per_pixel`` when rows are padded).
    data:
        The pixel bytes, ``height * step`` long.
    """

    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: bytes

    @classmethod
    def from_msg(cls, msg: object) -> RawImage:
        """The pixel fields of any ``sensor_msgs/Image``-shaped object (rclpy or rosbags)."""
        return cls(
            height=int(msg.height),
            width=int(msg.width),
            encoding=str(msg.encoding),
            is_bigendian=bool(msg.is_bigendian),
            step=int(msg.step),
            data=bytes(msg.data),
        )


def _as_array(raw: RawImage) -> np.ndarray:
    """View ``raw`` as ``[H, W]`` or ``[H, W, C]`` in its own encoding, after checks."""
    if raw.encoding not in _ENCODINGS:
        raise ImageEncodingError(
            f"unsupported encoding '{raw.encoding}'; use one of {', '.join(_ENCODINGS)}"
        )
    channels, dtype, _ = _ENCODINGS[raw.encoding]
    if raw.height <= 0 or raw.width <= 0:
        raise ImageEncodingError(f"empty image ({raw.width}x{raw.height})")
    row_bytes = raw.width * channels * dtype.itemsize
    if raw.step < row_bytes:
        raise ImageEncodingError(
            f"step {raw.step} is smaller than one row of {raw.width} {raw.encoding} pixels "
            f"({row_bytes} bytes)"
        )
    if len(raw.data) != raw.height * raw.step:
        raise ImageEncodingError(
            f"data holds {len(raw.data)} bytes but height * step = {raw.height * raw.step}"
        )
    rows = np.frombuffer(raw.data, dtype=np.uint8).reshape(raw.height, raw.step)[:, :row_bytes]
    order = ">" if raw.is_bigendian else "<"
    pixels = np.ascontiguousarray(rows).view(dtype.newbyteorder(order))
    pixels = pixels.astype(dtype, copy=False)
    if channels == 1:
        return pixels.reshape(raw.height, raw.width)
    return pixels.reshape(raw.height, raw.width, channels)


def decode(raw: RawImage) -> np.ndarray:
    """Decode a buffer to pixels in its natural form.

    Returns
    -------
    numpy.ndarray
        ``uint8[H, W, 3]`` RGB for colour encodings (alpha dropped), ``uint8[H, W]`` for
        mono8 and ``uint16[H, W]`` for mono16.

    Raises
    ------
    ImageEncodingError
        Unknown encoding, zero size, or a step / data length mismatch.
    """
    pixels = _as_array(raw)
    order = _ENCODINGS[raw.encoding][2]
    if order is None:
        return pixels
    return np.ascontiguousarray(pixels[:, :, list(order)])


def decode_rgb(raw: RawImage) -> np.ndarray:
    """Decode a camera image to ``uint8[H, W, 3]`` RGB (mono8 is repeated to grey RGB).

    Raises
    ------
    ImageEncodingError
        Unknown or non-camera encoding, zero size, or a step / data length mismatch.
    """
    if raw.encoding not in COLOR_ENCODINGS:
        raise ImageEncodingError(
            f"unsupported encoding '{raw.encoding}' for a camera image; "
            f"use one of {', '.join(COLOR_ENCODINGS)}"
        )
    pixels = decode(raw)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels


def decode_labels(raw: RawImage) -> np.ndarray:
    """Decode a label image (mono8 / mono16) to ``uint16[H, W]``.

    Raises
    ------
    ImageEncodingError
        Not a single-channel 8- or 16-bit image, or malformed buffer.
    """
    if _ENCODINGS.get(raw.encoding, (0,))[0] != 1:
        raise ImageEncodingError(f"label images must be mono8 or mono16, got '{raw.encoding}'")
    return _as_array(raw).astype(np.uint16)


def encode(pixels: np.ndarray, encoding: str) -> RawImage:
    """Pack an array into a little-endian, unpadded :class:`RawImage`.

    Parameters
    ----------
    pixels:
        ``uint8[H, W, 3]`` RGB for rgb8 / bgr8 / rgba8 / bgra8 (channels reordered, alpha
        set to 255), ``uint8[H, W]`` for mono8, ``uint16[H, W]`` (or any int array within
        range) for mono16.
    encoding:
        Target encoding: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8`` or ``mono16``.
    """
    pixels = np.asarray(pixels)
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8"):
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"{encoding} needs RGB [H, W, 3] pixels, got shape {pixels.shape}")
        data = pixels[:, :, ::-1] if encoding.startswith("bgr") else pixels
        if encoding.endswith("a8"):
            alpha = np.full(pixels.shape[:2] + (1,), 255, dtype=np.uint8)
            data = np.concatenate([data, alpha], axis=2)
        data = np.ascontiguousarray(data, dtype=np.uint8)
    elif encoding in ("mono8", "mono16"):
        if pixels.ndim != 2:
            raise ValueError(f"{encoding} needs [H, W] pixels, got shape {pixels.shape}")
        dtype = np.uint8 if encoding == "mono8" else np.dtype("<u2")
        limit = 255 if encoding == "mono8" else 65535
        if pixels.size and (pixels.min() < 0 or pixels.max() > limit):
            raise ValueError(f"{encoding} values must lie in 0..{limit}")
        data = np.ascontiguousarray(pixels.astype(dtype))
    else:
        raise ValueError(
            f"cannot encode to '{encoding}'; use rgb8, bgr8, rgba8, bgra8, mono8 or mono16"
        )
    height, width = data.shape[:2]
    return RawImage(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=False,
        step=data.strides[0],
        data=data.tobytes(),
    )
