"""sensor_msgs/Image buffer decoding and encoding, without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.io.image_codec import ImageEncodingError, RawImage, decode_labels, decode_rgb, encode

RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_colour_round_trip(encoding):
    raw = encode(RGB, encoding)
    assert raw.step == 9 and len(raw.data) == 18
    np.testing.assert_array_equal(decode_rgb(raw), RGB)


def test_bgr_bytes_are_swapped():
    raw = encode(RGB, "bgr8")
    assert raw.data[:3] == bytes([2, 1, 0])


@pytest.mark.parametrize("encoding,channels,order", [("rgba8", 4, [0, 1, 2]), ("bgra8", 4, [2, 1, 0])])
def test_alpha_encodings_drop_alpha(encoding, channels, order):
    pixels = np.arange(2 * 2 * channels, dtype=np.uint8).reshape(2, 2, channels)
    raw = RawImage(2, 2, encoding, False, 2 * channels, pixels.tobytes())
    np.testing.assert_array_equal(decode_rgb(raw), pixels[:, :, order])


def test_mono8_becomes_grey_rgb():
    grey = np.array([[0, 10], [20, 255]], np.uint8)
    rgb = decode_rgb(RawImage(2, 2, "mono8", False, 2, grey.tobytes()))
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[:, :, 1], grey)


def test_padded_rows_are_cropped():
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = RGB.reshape(2, 9)
    np.testing.assert_array_equal(decode_rgb(RawImage(2, 3, "rgb8", False, 12, padded.tobytes())), RGB)


def test_mono16_both_byte_orders():
    ids = np.array([[1, 300], [65535, 0]], np.uint16)
    little = RawImage(2, 2, "mono16", False, 4, ids.astype("<u2").tobytes())
    big = RawImage(2, 2, "mono16", True, 4, ids.astype(">u2").tobytes())
    np.testing.assert_array_equal(decode_labels(little), ids)
    np.testing.assert_array_equal(decode_labels(big), ids)
    np.testing.assert_array_equal(decode_labels(encode(ids, "mono16")), ids)


@pytest.mark.parametrize(
    "raw,message",
    [
        (RawImage(2, 3, "yuv422", False, 6, bytes(12)), "unsupported encoding"),
        (RawImage(0, 3, "rgb8", False, 9, b""), "empty image"),
        (RawImage(2, 3, "rgb8", False, 8, bytes(16)), "smaller than one row"),
        (RawImage(2, 3, "rgb8", False, 9, bytes(17)), "height \\* step"),
        (RawImage(2, 2, "mono16", False, 4, bytes(8)), "for a camera image"),
    ],
)
def test_bad_buffers_raise(raw, message):
    with pytest.raises(ImageEncodingError, match=message):
        decode_rgb(raw)


def test_labels_reject_colour():
    with pytest.raises(ImageEncodingError, match="mono8 or mono16"):
        decode_labels(encode(RGB, "rgb8"))


def test_encode_checks_range_and_shape():
    with pytest.raises(ValueError, match="0..255"):
        encode(np.array([[256]]), "mono8")
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        encode(np.zeros((2, 2)), "rgb8")
    with pytest.raises(ValueError, match="cannot encode"):
        encode(RGB, "yuv422")
