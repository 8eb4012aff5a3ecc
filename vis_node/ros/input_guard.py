"""Checks of incoming messages, and a counter that logs rejections without flooding.

Pure Python (no rclpy import): the nodes pass message fields in and get back either
the decoded data or a :class:`Rejection` naming the problem, so every rule is unit
tested without a ROS graph. A node never stops on bad input: it reports the
rejection to its :class:`RejectionCounter` (rate-limited warning + per-kind count)
and skips the message. :class:`CallbackGuard` wraps every callback, so that even an
unexpected exception only skips the message (logged with its traceback once, then
rate-limited, and counted).
"""

from __future__ import annotations

import io
import math
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage

from vis_node.structures.errors import InvalidDataError
from vis_node.structures.frames import freeze
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
    "invalid_data",
    "unexpected_error",
    "too_large",
)
"""Every rejection kind a node counts (keys of :attr:`RejectionCounter.counts`).

``invalid_data``: a core stage raised :class:`~vis_node.structures.errors.InvalidDataError`;
``unexpected_error``: a callback raised anything else (a bug, logged with traceback);
``too_large``: over a :class:`Budget`, rejected before decoding.
"""

CLOCK_EVENTS: tuple[str, ...] = ("clock_jump_ahead", "clock_jump_back")
"""Time-line changes a node counts (:class:`~vis_node.ros.stamps.StampClock` verdicts)."""


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


@dataclass(frozen=True)
class Budget:
    """Size limits checked on a message's header fields before anything is allocated.

    Attributes
    ----------
    max_image_pixels:
        Largest camera image, width x height, decoded (raw or compressed).
    max_instance_pixels:
        Largest image size, width x height, an instance message may declare.
    max_message_instances:
        Most instances in one instance message.
    """

    max_image_pixels: int
    max_instance_pixels: int
    max_message_instances: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Budget:
        """The budget of a node's parameters (``max_image_pixels`` ...)."""
        return cls(
            max_image_pixels=int(config["max_image_pixels"]),
            max_instance_pixels=int(config["max_instance_pixels"]),
            max_message_instances=int(config["max_message_instances"]),
        )


def check_image_size(pixels: int, max_pixels: int | None, what: str) -> Rejection | None:
    """Reject an image of ``pixels`` (width x height) over ``max_pixels`` (``None``: no limit).

    ``what`` describes the size in the message (e.g. ``"640x480"``).
    """
    if max_pixels is not None and pixels > max_pixels:
        return Rejection(
            "too_large",
            f"image is {what} = {pixels} pixels, over the budget of {max_pixels} (raise "
            "the node's max_image_pixels parameter if such images are real)",
        )
    return None


def compressed_pixels(data: bytes) -> tuple[int, str] | None:
    """Pixel count and ``"WxH"`` of a PNG / JPEG from its header, without decoding it.

    Returns ``None`` when the header is not readable (the decoder then rejects it). An
    image past Pillow's own decompression-bomb limit counts as that limit (a lower
    bound of its size).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            with PILImage.open(io.BytesIO(data)) as image:
                width, height = image.size
        except PILImage.DecompressionBombError:
            limit = 2 * int(PILImage.MAX_IMAGE_PIXELS or 0)
            return limit, f"more than {limit} pixels"
        except (OSError, ValueError, SyntaxError):
            return None
    return int(width) * int(height), f"{width}x{height}"


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


def decode_image_msg(
    msg: Any, max_pixels: int | None = None
) -> tuple[np.ndarray | None, Rejection | None]:
    """Decode a ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` to camera RGB.

    Parameters
    ----------
    msg:
        An ``Image`` (has ``encoding``) or a ``CompressedImage`` (has ``format``).
    max_pixels:
        Largest width x height decoded (``None``: no limit); checked on the message's
        size fields or the compressed header before any pixel is decoded.

    Returns
    -------
    image, rejection:
        ``uint8[H, W, 3]`` RGB and ``None``, or ``None`` and why it is unusable.
    """
    if hasattr(msg, "encoding"):
        size = f"{msg.width}x{msg.height}"
        rejection = check_image_size(int(msg.width) * int(msg.height), max_pixels, size)
        if rejection is not None:
            return None, rejection
        image, rejection = decode_camera_image(RawImage.from_msg(msg))
        return (None if image is None else freeze(image)), rejection
    header = compressed_pixels(bytes(msg.data)) if max_pixels is not None else None
    if header is not None:
        pixels, size = header
        rejection = check_image_size(pixels, max_pixels, size)
        if rejection is not None:
            return None, rejection
    try:
        pixels = decode_image_message(msg, COMPRESSED_MSGTYPE)
    except ValueError as exc:
        return None, Rejection("bad_buffer", str(exc))
    image, rejection = as_camera_rgb(pixels)
    return (None if image is None else freeze(image)), rejection


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


class RejectionCounter:
    """Count rejections per kind and warn at most once per ``period_s`` per kind.

    Thread-safe (a node's inference thread and its executor both report).

    Parameters
    ----------
    warn:
        Called with the warning text (e.g. a ROS logger's ``warning``).
    period_s:
        Shortest time in seconds between two warnings of the same kind.
    clock:
        Monotonic time source in seconds (injectable for tests).
    kinds:
        Kinds counted from the start (at 0), so they all appear in ``/diagnostics``.
    action:
        What happened to the message, in the warning (``"skipped a message"``).
    """

    def __init__(
        self,
        warn: Callable[[str], object],
        *,
        period_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        kinds: Iterable[str] = REJECTION_KINDS,
        action: str = "skipped a message",
    ) -> None:
        if period_s < 0:
            raise ValueError(f"period_s must be >= 0, got {period_s}")
        self._warn = warn
        self.period_s = float(period_s)
        self._clock = clock
        self._action = action
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {kind: 0 for kind in kinds}
        """Rejections so far, by kind."""
        self._last_warned: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Rejections of every kind so far."""
        return sum(self.counts.values())

    def report(self, source: str, rejection: Rejection) -> None:
        """Count ``rejection`` of a message from ``source`` (a topic) and maybe warn."""
        text = self.count(rejection.kind)
        if text is not None:
            self._warn(f"{self._action} on '{source}' [{rejection.kind}]: {rejection.detail}{text}")

    def count(self, kind: str) -> str | None:
        """Count one ``kind`` without the standard warning.

        Returns
        -------
        str or None
            ``None`` while the kind's warnings are rate-limited; else the suffix to
            append to a warning (``" (3 more since the last warning)"`` or ``""``).
        """
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            now = self._clock()
            last = self._last_warned.get(kind)
            if last is not None and now - last < self.period_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return None
            suppressed = self._suppressed.pop(kind, 0)
            self._last_warned[kind] = now
        return f" ({suppressed} more since the last warning)" if suppressed else ""


class CallbackGuard:
    """Run callbacks so that no exception ends the node.

    An :class:`~vis_node.structures.errors.InvalidDataError` is a rejected message
    (``invalid_data``: counted, rate-limited warning). Any other exception is a bug met
    by some input: the first one of each callback is logged with its traceback, later
    ones as one rate-limited line, all counted as ``unexpected_error``; then
    ``recover`` runs (e.g. to reset state a half-finished update may have left).

    Parameters
    ----------
    rejections:
        Where both kinds are counted (its ``period_s`` also limits the error log).
    log_error:
        Called with the error text (e.g. a ROS logger's ``error``).
    recover:
        Called without arguments after an unexpected exception.
    """

    def __init__(
        self,
        rejections: RejectionCounter,
        log_error: Callable[[str], object],
        recover: Callable[[], object] = lambda: None,
    ) -> None:
        self.rejections = rejections
        self._log_error = log_error
        self._recover = recover
        self._traced: set[str] = set()

    def call(self, name: str, function: Callable[..., object], *args: object) -> None:
        """``function(*args)``, with exceptions handled as described above."""
        try:
            function(*args)
        except InvalidDataError as exc:
            self.rejections.report(name, Rejection("invalid_data", str(exc)))
        except Exception as exc:  # the guard's job: no exception ends the node
            self._unexpected(name, exc)

    def wrap(self, name: str, function: Callable[..., object]) -> Callable[..., None]:
        """``function`` guarded by :meth:`call` (for a subscription or timer callback)."""

        def guarded(*args: object) -> None:
            self.call(name, function, *args)

        return guarded

    def _unexpected(self, name: str, exc: Exception) -> None:
        suffix = self.rejections.count("unexpected_error")
        if name not in self._traced:
            self._traced.add(name)
            self._log_error(
                f"unexpected error in '{name}', message skipped and the node keeps running "
                f"(please report it):\n{traceback.format_exc()}"
            )
        elif suffix is not None:
            self._log_error(f"unexpected error in '{name}', message skipped: {exc!r}{suffix}")
        try:
            self._recover()
        except Exception:  # a failing recovery must not end the node either
            self._log_error(
                f"recovery after the error in '{name}' failed:\n{traceback.format_exc()}"
            )
