"""Checks of incoming messages, and a counter that logs rejections without flooding.

Pure Python (no rclpy import): the nodes pass message fields in and get back either
the decoded data or a :class:`Rejection` naming the problem, so every rule is unit
tested without a ROS graph. A node never stops on bad input: it reports the
rejection to its :class:`RejectionCounter` (rate-limited warning + per-kind count)
and skips the message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vis_node.io.image_codec import COLOR_ENCODINGS, ImageEncodingError, RawImage, decode_rgb
from vis_node.io.rosbag import COMPRESSED_MSGTYPE, decode_image_message

REJECTION_KINDS: tuple[str, ...] = (
    "bad_encoding",
    "empty_image",
    "bad_buffer",
    "nonfinite_score",
    "repeated_stamp",
    "stamp_out_of_order",
    "wrong_frame_id",
    "size_mismatch",
)
"""Every rejection kind a node counts (keys of :attr:`RejectionCounter.counts`)."""


@dataclass(frozen=True)
class Rejection:
    """Why a message was skipped.

    Attributes
    ----------
    kind:
        One of :data:`REJECTION_KINDS`.
    detail:
        Human-readable explanation, including what to fix.
    """

    kind: str
    detail: str


def decode_camera_image(raw: RawImage) -> tuple[np.ndarray | None, Rejection | None]:
    """Decode a camera image, or say why it cannot be used.

    Parameters
    ----------
    raw:
        The pixel fields of a ``sensor_msgs/Image``.

    Returns
    -------
    image, rejection:
        ``uint8[H, W, 3]`` RGB and ``None``, or ``None`` and the :class:`Rejection`
        (``bad_encoding`` for an encoding other than rgb8 / bgr8 / rgba8 / bgra8 /
        mono8, ``empty_image`` for a zero width or height, ``bad_buffer`` for a
        step / data length that does not match the size).
    """
    if raw.encoding not in COLOR_ENCODINGS:
        return None, Rejection(
            "bad_encoding",
            f"encoding '{raw.encoding}' is not a camera encoding; publish one of "
            f"{', '.join(COLOR_ENCODINGS)}",
        )
    if raw.height <= 0 or raw.width <= 0:
        return None, Rejection("empty_image", f"image is {raw.width}x{raw.height} pixels")
    try:
        return decode_rgb(raw), None
    except ImageEncodingError as exc:
        return None, Rejection("bad_buffer", str(exc))


def as_camera_rgb(pixels: np.ndarray) -> tuple[np.ndarray | None, Rejection | None]:
    """Turn decoded compressed-image pixels into ``uint8[H, W, 3]`` RGB.

    Parameters
    ----------
    pixels:
        ``uint8[H, W, 3]`` RGB or ``uint8[H, W]`` grey, as from
        :func:`vis_node.io.rosbag.decode_image_message`.

    Returns
    -------
    image, rejection:
        RGB and ``None``, or ``None`` and a ``bad_encoding`` / ``empty_image``
        :class:`Rejection` (e.g. a 16-bit PNG).
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        return None, Rejection(
            "bad_encoding",
            f"compressed image decodes to {pixels.dtype}{list(pixels.shape)}; send 8-bit "
            "grey or colour JPEG / PNG",
        )
    if pixels.size == 0:
        return None, Rejection("empty_image", f"image is {list(pixels.shape)} pixels")
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2), None
    return pixels, None


def decode_image_msg(msg: Any) -> tuple[np.ndarray | None, Rejection | None]:
    """Decode a ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` to camera RGB.

    Parameters
    ----------
    msg:
        An ``Image`` (has ``encoding``) or a ``CompressedImage`` (has ``format``).

    Returns
    -------
    image, rejection:
        ``uint8[H, W, 3]`` RGB and ``None``, or ``None`` and why it is unusable.
    """
    if hasattr(msg, "encoding"):
        return decode_camera_image(RawImage.from_msg(msg))
    try:
        pixels = decode_image_message(msg, COMPRESSED_MSGTYPE)
    except ValueError as exc:
        return None, Rejection("bad_buffer", str(exc))
    return as_camera_rgb(pixels)


def check_frame_id(frame_id: str, expected: str) -> Rejection | None:
    """Reject a header whose ``frame_id`` is not ``expected`` (``""`` accepts any)."""
    if expected and frame_id != expected:
        return Rejection(
            "wrong_frame_id",
            f"frame_id '{frame_id}' is not the expected '{expected}' (set the node's "
            "expected_frame_id parameter, or '' to accept any)",
        )
    return None


def check_finite_scores(scores: Iterable[Iterable[float] | float]) -> Rejection | None:
    """Reject instance scores that are NaN or infinite.

    Parameters
    ----------
    scores:
        Score values or sequences of values (saliency, class score, class score vectors,
        box coordinates) of one message.
    """
    for value in scores:
        values = [value] if isinstance(value, (int, float)) else list(value)
        if not all(math.isfinite(v) for v in values):
            return Rejection("nonfinite_score", "instance scores or boxes contain NaN or inf")
    return None


class StampOrder:
    """Accept strictly increasing header stamps only.

    A stamp equal to the last accepted one is ``repeated_stamp``, an older one
    ``stamp_out_of_order``. Rejected stamps do not move the reference.
    """

    def __init__(self) -> None:
        self.last_ns: int | None = None
        """Latest accepted stamp in nanoseconds, ``None`` before the first."""

    def reset(self) -> None:
        """Forget the last stamp (e.g. when a bag restarts)."""
        self.last_ns = None

    def check(self, stamp_ns: int) -> Rejection | None:
        """Accept ``stamp_ns`` (and remember it) or return why not."""
        if self.last_ns is not None and stamp_ns == self.last_ns:
            return Rejection("repeated_stamp", f"stamp {stamp_ns} ns was already processed")
        if self.last_ns is not None and stamp_ns < self.last_ns:
            return Rejection(
                "stamp_out_of_order",
                f"stamp {stamp_ns} ns is older than the last one ({self.last_ns} ns); "
                "restart the node (or its lifecycle) when replaying from the start",
            )
        self.last_ns = stamp_ns
        return None


class RejectionCounter:
    """Count rejections per kind and warn at most once per ``period_s`` per kind.

    Parameters
    ----------
    warn:
        Called with the warning text (e.g. a ROS logger's ``warning``).
    period_s:
        Shortest time in seconds between two warnings of the same kind.
    clock:
        Monotonic time source in seconds (injectable for tests).
    """

    def __init__(
        self,
        warn: Callable[[str], object],
        *,
        period_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if period_s < 0:
            raise ValueError(f"period_s must be >= 0, got {period_s}")
        self._warn = warn
        self.period_s = float(period_s)
        self._clock = clock
        self.counts: dict[str, int] = {kind: 0 for kind in REJECTION_KINDS}
        """Rejections so far, by kind."""
        self._last_warned: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Rejections of every kind so far."""
        return sum(self.counts.values())

    def report(self, source: str, rejection: Rejection) -> None:
        """Count ``rejection`` of a message from ``source`` (a topic) and maybe warn."""
        kind = rejection.kind
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = self._clock()
        last = self._last_warned.get(kind)
        if last is not None and now - last < self.period_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        suppressed = self._suppressed.pop(kind, 0)
        more = f" ({suppressed} more since the last warning)" if suppressed else ""
        self._warn(f"skipped a message on '{source}' [{kind}]: {rejection.detail}{more}")
        self._last_warned[kind] = now
