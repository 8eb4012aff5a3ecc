"""Input checks and stamp buffers of the ROS nodes, without ROS (pure Python)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from vis_node.structures.errors import InvalidDataError
from vis_node.structures.frames import is_frozen
from vis_node.io.image_codec import RawImage, encode
from vis_node.ros.input_guard import (
    REJECTION_KINDS,
    CallbackGuard,
    Rejection,
    RejectionCounter,
    as_camera_rgb,
    check_finite_scores,
    check_frame_id,
    decode_camera_image,
    decode_image_msg,
)
from vis_node.ros.frame_queue import FrameQueue
from vis_node.ros.stamps import StampMatcher

RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


def _raw(**changes) -> RawImage:
    fields = dict(vars(encode(RGB, "bgr8")))
    fields.update(changes)
    return RawImage(**fields)


def test_good_image_decodes_to_rgb():
    image, rejection = decode_camera_image(_raw())
    assert rejection is None
    np.testing.assert_array_equal(image, RGB)
    image, rejection = decode_image_msg(SimpleNamespace(**vars(_raw())))
    assert rejection is None and is_frozen(image)  # the nodes' frames are frozen
    np.testing.assert_array_equal(image, RGB)


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"encoding": "32FC1"}, "bad_encoding"),
        ({"encoding": "nv12"}, "bad_encoding"),
        ({"encoding": ""}, "bad_encoding"),
        ({"height": 0, "data": b""}, "empty_image"),
        ({"width": 0, "step": 0, "data": b""}, "empty_image"),
        ({"step": 14}, "bad_buffer"),
        ({"data": bytes(4 * 15 - 1)}, "bad_buffer"),
        ({"step": 16}, "bad_buffer"),
    ],
)
def test_bad_images_are_rejected_with_their_kind(changes, kind):
    image, rejection = decode_camera_image(_raw(**changes))
    assert image is None
    assert rejection.kind == kind
    assert rejection.kind in REJECTION_KINDS


class _Compressed:
    def __init__(self, data: bytes, fmt: str = "png") -> None:
        self.data = data
        self.format = fmt


def test_compressed_messages_decode_or_reject():
    ok, png = cv2.imencode(".png", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    image, rejection = decode_image_msg(_Compressed(png.tobytes()))
    assert rejection is None and is_frozen(image)
    np.testing.assert_array_equal(image, RGB)
    image, rejection = decode_image_msg(_Compressed(b"not an image", "jpeg"))
    assert image is None and rejection.kind == "bad_buffer"
    image, rejection = decode_image_msg(_Compressed(b""))
    assert image is None and rejection.kind == "bad_buffer"
    ok, png16 = cv2.imencode(".png", np.full((3, 3), 4000, np.uint16))
    image, rejection = decode_image_msg(_Compressed(png16.tobytes()))
    assert image is None and rejection.kind == "bad_encoding"


def test_grey_pixels_become_rgb():
    grey = np.array([[0, 7], [200, 255]], np.uint8)
    image, rejection = as_camera_rgb(grey)
    assert rejection is None
    assert image.shape == (2, 2, 3)
    np.testing.assert_array_equal(image[..., 1], grey)


def test_frame_id_check():
    assert check_frame_id("camera", "") is None
    assert check_frame_id("camera", "camera") is None
    assert check_frame_id("lidar", "camera").kind == "wrong_frame_id"


def test_finite_scores():
    assert check_finite_scores([[0.5, 0.2, 3.0], 1.0]) is None
    assert check_finite_scores([]) is None
    assert check_finite_scores([[0.5, float("nan")]]).kind == "nonfinite_score"
    assert check_finite_scores([float("inf")]).kind == "nonfinite_score"


def _guard(period_s: float = 5.0):
    now = [0.0]
    warnings: list[str] = []
    errors: list[str] = []
    recovered: list[int] = []
    counter = RejectionCounter(warnings.append, period_s=period_s, clock=lambda: now[0])
    guard = CallbackGuard(counter, errors.append, lambda: recovered.append(1))
    return guard, counter, now, warnings, errors, recovered


def test_callback_guard_logs_the_first_traceback_then_rate_limits_and_counts():
    guard, counter, now, warnings, errors, recovered = _guard()

    def crash(value: int) -> None:
        raise KeyError(value)

    handled: list[int] = []
    callback = guard.wrap("instances", crash)
    for value in range(4):
        callback(value)
    guard.wrap("instances", handled.append)(7)
    assert handled == [7]
    assert counter.counts["unexpected_error"] == 4
    assert len(recovered) == 4
    assert len(errors) == 1
    assert "Traceback" in errors[0] and "KeyError: 0" in errors[0] and "'instances'" in errors[0]
    now[0] = 6.0
    callback(9)
    assert len(errors) == 2
    assert "Traceback" not in errors[1]
    assert errors[1].endswith("KeyError(9) (3 more since the last warning)")
    guard.wrap("image", crash)(1)  # another callback: its first error has a traceback too
    assert "Traceback" in errors[2]
    assert warnings == []


def test_callback_guard_counts_data_errors_as_rejections_without_traceback():
    guard, counter, _, warnings, errors, recovered = _guard()

    def bad(_: object) -> None:
        raise InvalidDataError("saliency must lie in [0, 1], got -0.5")

    guard.call("instances", bad, None)
    assert counter.counts["invalid_data"] == 1 and counter.counts["unexpected_error"] == 0
    assert warnings == [
        "skipped a message on 'instances' [invalid_data]: saliency must lie in [0, 1], got -0.5"
    ]
    assert errors == [] and recovered == []


def test_callback_guard_survives_a_failing_recovery():
    counter = RejectionCounter(lambda _: None)
    errors: list[str] = []

    def recover() -> None:
        raise RuntimeError("still broken")

    guard = CallbackGuard(counter, errors.append, recover)
    guard.call("timer", lambda: 1 / 0)
    assert counter.counts["unexpected_error"] == 1
    assert "ZeroDivisionError" in errors[0] and "still broken" in errors[1]


def test_rejection_counter_counts_everything_and_rate_limits_warnings():
    now = [0.0]
    warnings: list[str] = []
    counter = RejectionCounter(warnings.append, period_s=5.0, clock=lambda: now[0])
    bad = Rejection("bad_encoding", "encoding 'x'")
    for _ in range(4):
        counter.report("image", bad)
    counter.report("image", Rejection("empty_image", "0x0"))
    assert counter.counts["bad_encoding"] == 4
    assert counter.counts["empty_image"] == 1
    assert counter.total == 5
    assert len(warnings) == 2
    assert warnings[0] == "skipped a message on 'image' [bad_encoding]: encoding 'x'"
    now[0] = 5.5
    counter.report("image", bad)
    assert len(warnings) == 3
    assert warnings[2].endswith("(3 more since the last warning)")


def test_stamp_matcher_pairs_equal_stamps_in_either_order():
    matcher: StampMatcher[str, str] = StampMatcher(capacity=4)
    assert matcher.add_left(1, "a1") == []
    assert matcher.add_right(2, "b2") == []
    assert matcher.waiting_right() == 1
    assert matcher.add_right(1, "b1") == [(1, "a1", "b1")]
    assert matcher.add_left(2, "a2") == [(2, "a2", "b2")]
    assert len(matcher) == 0 and matcher.waiting_right() == 0
    assert matcher.discarded == 0


def test_stamp_matcher_drops_stale_and_excess_items():
    matcher: StampMatcher[str, str] = StampMatcher(capacity=2)
    matcher.add_left(1, "a1")
    matcher.add_left(2, "a2")
    matcher.add_left(3, "a3")
    assert matcher.discarded == 1
    matcher.add_right(5, "b5")
    assert matcher.add_right(3, "b3") == [(3, "a3", "b3")]
    assert matcher.discarded == 2
    assert len(matcher) == 1
    assert matcher.add_left(5, "a5") == [(5, "a5", "b5")]
    matcher.add_right(6, "b6")
    assert matcher.add_right(7, "b7") == []
    assert matcher.add_left(7, "a7") == [(7, "a7", "b7")]
    assert (matcher.discarded_left, matcher.discarded_right, matcher.discarded) == (2, 1, 3)
    with pytest.raises(ValueError, match="capacity"):
        StampMatcher(capacity=0)


def test_stamp_matcher_keeps_the_image_a_skipping_model_works_on():
    """Images of frames a slow model skipped make room; the image of the frame it
    announced stays, announced before or after it arrived, until its result comes."""
    matcher: StampMatcher[str, str] = StampMatcher(capacity=3)
    matcher.keep_right(0)
    for stamp in range(6):
        matcher.add_right(stamp, f"image@{stamp}")
    assert matcher.add_left(0, "result@0") == [(0, "result@0", "image@0")]
    matcher.keep_right(7)  # announced before its image arrives
    for stamp in range(6, 12):
        matcher.add_right(stamp, f"image@{stamp}")
    assert matcher.add_left(7, "result@7") == [(7, "result@7", "image@7")]
    matcher.keep_right(7)  # an announcement older than the last pair is ignored
    for stamp in range(12, 16):
        matcher.add_right(stamp, f"image@{stamp}")
    assert matcher.waiting_right() == 3 and matcher.discarded_left == 0
    matcher.keep_right(13)  # its result is lost on the way
    matcher.keep_right(15)
    assert matcher.add_left(15, "result@15") == [(15, "result@15", "image@15")]
    assert (matcher.unanswered, matcher.discarded_left) == (1, 0)
    plain: StampMatcher[str, str] = StampMatcher(capacity=3)
    for stamp in range(6):
        plain.add_right(stamp, f"image@{stamp}")
    assert plain.add_left(0, "result@0") == []  # its image went first


def test_frame_queue_of_one_keeps_only_the_newest_item():
    queue: FrameQueue[int] = FrameQueue()
    assert queue.put(1) is False
    assert queue.put(2) is True
    assert queue.put(3) is True
    assert queue.dropped == 2
    assert queue.take() == 3
    assert queue.take(timeout_s=0.01) is None


def test_frame_queue_hands_items_over_in_order_and_drops_the_oldest_when_full():
    queue: FrameQueue[int] = FrameQueue(capacity=3)
    assert [queue.put(k) for k in range(3)] == [False, False, False]
    assert len(queue) == 3
    assert queue.take() == 0
    assert queue.put(3) is False
    assert queue.put(4) is True  # full: 1 goes
    assert queue.dropped == 1
    assert [queue.take() for _ in range(3)] == [2, 3, 4]
    with pytest.raises(ValueError, match="capacity"):
        FrameQueue(capacity=0)


def test_frame_queue_close_wakes_a_waiting_consumer_and_reopen_clears():
    queue: FrameQueue[int] = FrameQueue()
    taken: list[int | None] = []
    worker = threading.Thread(target=lambda: taken.append(queue.take()))
    worker.start()
    queue.close()
    worker.join(timeout=5.0)
    assert not worker.is_alive()
    assert taken == [None]
    queue.put(6)
    assert queue.take() is None  # closed: the worker stops even with frames waiting
    queue.reopen(capacity=2)
    assert len(queue) == 0 and queue.capacity == 2
    queue.put(7)
    queue.put(8)
    assert [queue.take(), queue.take()] == [7, 8]
