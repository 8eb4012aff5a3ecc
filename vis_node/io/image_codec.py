"""Raw image buffers <-> NumPy, following ``sensor_msgs/Image`` semantics (no ROS import).

Used by the rosbag reader and by the ROS nodes, so both accept exactly the same
encodings and reject bad buffers with the same error. Camera images of every common
encoding (colour, grey, 16-bit, Bayer, YUV 4:2:2) are converted to RGB by
``rosbags-image`` (:func:`rosbags.image.image_to_cvimage`), after the buffer's size,
step and length have been checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import cv2
import numpy as np
from rosbags.image import ImageError, image_to_cvimage

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

_BAYER = ("bayer_rggb", "bayer_bggr", "bayer_gbrg", "bayer_grbg")
_CAMERA_LAYOUTS: dict[str, tuple[int, int]] = {
    **{f"{name}{bits}": (channels, bits // 8)
       for name, channels in (("rgb", 3), ("bgr", 3), ("rgba", 4), ("bgra", 4), ("mono", 1))
       for bits in (8, 16)},
    **{f"{name}{bits}": (1, bits // 8) for name in _BAYER for bits in (8, 16)},
    **{name: (2, 1) for name in ("yuv422", "uyvy", "yuyv", "yuv422_yuy2")},
}
"""Camera encoding -> (channels, bytes per channel) of its packed pixels."""

COLOR_ENCODINGS: tuple[str, ...] = tuple(_CAMERA_LAYOUTS)
"""Encodings accepted as camera input (converted to ``uint8`` RGB; 16-bit scaled to 8)."""


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


def _rows(raw: RawImage, row_bytes: int) -> np.ndarray:
    """``uint8[H, row_bytes]``: the buffer's rows without padding, after size checks."""
    if raw.height <= 0 or raw.width <= 0:
        raise ImageEncodingError(f"empty image ({raw.width}x{raw.height})")
    if raw.step < row_bytes:
        raise ImageEncodingError(
            f"step {raw.step} is smaller than one row of {raw.width} {raw.encoding} pixels "
            f"({row_bytes} bytes)"
        )
    if len(raw.data) != raw.height * raw.step:
        raise ImageEncodingError(
            f"data holds {len(raw.data)} bytes but height * step = {raw.height * raw.step}"
        )
    return np.frombuffer(raw.data, dtype=np.uint8).reshape(raw.height, raw.step)[:, :row_bytes]


def _as_array(raw: RawImage) -> np.ndarray:
    """View ``raw`` as ``[H, W]`` or ``[H, W, C]`` in its own encoding, after checks."""
    if raw.encoding not in _ENCODINGS:
        raise ImageEncodingError(
            f"unsupported encoding '{raw.encoding}'; use one of {', '.join(_ENCODINGS)}"
        )
    channels, dtype, _ = _ENCODINGS[raw.encoding]
    rows = _rows(raw, raw.width * channels * dtype.itemsize)
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
    """Decode a camera image of any of :data:`COLOR_ENCODINGS` to ``uint8[H, W, 3]`` RGB.

    Grey is repeated to grey RGB, Bayer mosaics are demosaiced, YUV 4:2:2 is converted,
    and 16-bit values are scaled to 8 bits (``v * 255 / 65535``), all by rosbags-image.

    Raises
    ------
    ImageEncodingError
        Unknown or non-camera encoding, zero size, a step / data length mismatch, or
        pixels the conversion refuses (e.g. YUV 4:2:2 with an odd width).
    """
    if raw.encoding not in _CAMERA_LAYOUTS:
        raise ImageEncodingError(
            f"unsupported encoding '{raw.encoding}' for a camera image; "
            f"use one of {', '.join(COLOR_ENCODINGS)}"
        )
    channels, itemsize = _CAMERA_LAYOUTS[raw.encoding]
    row_bytes = raw.width * channels * itemsize
    if raw.encoding == "rgb8":
        # Already what is wanted: one copy out of the buffer (the usual camera encoding).
        return np.array(_rows(raw, row_bytes).reshape(raw.height, raw.width, 3), order="C")
    packed = SimpleNamespace(
        height=raw.height, width=raw.width, encoding=raw.encoding,
        is_bigendian=raw.is_bigendian, step=row_bytes,
        data=np.ascontiguousarray(_rows(raw, row_bytes)).tobytes(),
    )
    try:
        rgb = image_to_cvimage(packed, "rgb8")
    except (ImageError, cv2.error) as exc:
        raise ImageEncodingError(
            f"cannot convert a {raw.width}x{raw.height} '{raw.encoding}' image to RGB: {exc}"
        ) from None
    return np.array(rgb, dtype=np.uint8, copy=True, order="C")


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
        fits = pixels.dtype == dtype or pixels.dtype == np.bool_  # no value out of range
        if not fits and pixels.size and (pixels.min() < 0 or pixels.max() > limit):
            raise ValueError(f"{encoding} values must lie in 0..{limit}")
        data = np.ascontiguousarray(pixels, dtype=dtype)
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
