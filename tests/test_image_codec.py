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
        (RawImage(2, 3, "32FC1", False, 12, bytes(24)), "unsupported encoding"),
        (RawImage(2, 3, "yuv422", False, 6, bytes(12)), "cannot convert"),
        (RawImage(0, 3, "rgb8", False, 9, b""), "empty image"),
        (RawImage(2, 3, "rgb8", False, 8, bytes(16)), "smaller than one row"),
        (RawImage(2, 3, "rgb8", False, 9, bytes(17)), "height \\* step"),
        (RawImage(2, 2, "nv12", False, 2, bytes(6)), "for a camera image"),
        (RawImage(2, 2, "mono16", False, 3, bytes(6)), "smaller than one row"),
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


COLOUR = (200, 100, 50)


def _mosaic(pattern: str, height: int = 8, width: int = 8) -> np.ndarray:
    """``uint8[H, W]`` Bayer mosaic of a uniform :data:`COLOUR` (``pattern`` like "rggb")."""
    value = dict(zip("rgb", COLOUR))
    mosaic = np.zeros((height, width), np.uint8)
    for k, channel in enumerate(pattern):
        mosaic[k // 2 :: 2, k % 2 :: 2] = value[channel]
    return mosaic


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_is_demosaiced(pattern):
    mosaic = _mosaic(pattern)
    rgb = decode_rgb(RawImage(8, 8, f"bayer_{pattern}8", False, 8, mosaic.tobytes()))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[2:-2, 2:-2], np.broadcast_to(COLOUR, (4, 4, 3)))


def test_bayer16_is_demosaiced_and_scaled():
    mosaic = _mosaic("rggb").astype(np.uint16) * 257
    rgb = decode_rgb(RawImage(8, 8, "bayer_rggb16", True, 16, mosaic.astype(">u2").tobytes()))
    np.testing.assert_array_equal(rgb[2:-2, 2:-2], np.broadcast_to(COLOUR, (4, 4, 3)))


@pytest.mark.parametrize("encoding,pack", [
    ("yuv422", lambda u, y0, v, y1: [u, y0, v, y1]),
    ("uyvy", lambda u, y0, v, y1: [u, y0, v, y1]),
    ("yuyv", lambda u, y0, v, y1: [y0, u, y1, v]),
])
def test_yuv422_is_converted(encoding, pack):
    """Grey Y with neutral chroma gives grey RGB; the luma ramp survives."""
    luma = np.array([[16, 60, 120, 235], [235, 120, 60, 16]], np.uint8)
    packed = np.array(
        [pack(128, row[2 * k], 128, row[2 * k + 1]) for row in luma for k in range(2)], np.uint8
    )
    rgb = decode_rgb(RawImage(2, 4, encoding, False, 8, packed.tobytes()))
    assert rgb.shape == (2, 4, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_array_equal(rgb[..., 1], rgb[..., 2])
    assert (np.diff(rgb[0, :, 0].astype(int)) > 0).all()
    assert rgb[0, 0, 0] <= 5 and rgb[0, 3, 0] >= 250


def test_16_bit_camera_images_are_scaled_to_8_bits():
    grey = np.array([[0, 257], [32896, 65535]], np.uint16)
    rgb = decode_rgb(RawImage(2, 2, "mono16", False, 4, grey.astype("<u2").tobytes()))
    np.testing.assert_array_equal(rgb[..., 0], [[0, 1], [128, 255]])
    colour = (RGB.astype(np.uint16) * 257).astype(">u2")
    rgb16 = decode_rgb(RawImage(2, 3, "bgr16", True, 18, colour[:, :, ::-1].tobytes()))
    np.testing.assert_array_equal(rgb16, RGB)


def test_decoded_camera_image_is_writable_and_padding_is_dropped():
    padded = np.zeros((2, 10), np.uint8)
    padded[:, :8] = _mosaic("rggb", 2, 8)
    rgb = decode_rgb(RawImage(2, 8, "bayer_rggb8", False, 10, padded.tobytes()))
    assert rgb.shape == (2, 8, 3) and rgb.flags.writeable
