"""NumPy <-> VSIS / sensor_msgs messages.

Pure functions (no node, no graph), so they are tested on messages alone and the
nodes stay thin. Masks travel either cropped to their box (mono8, 0 / 255) or as COCO
compressed RLE of the full image.
"""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header
from vis_msgs.msg import BoundingBox2D, ClassLabel, SalientInstance
from vis_msgs.msg import LabelMap as LabelMapMsg

from vis_node.io.image_codec import RawImage, decode_labels, decode_rgb, encode
from vis_node.io.ytvis_json import decode_rle, encode_rle
from vis_node.structures.geometry import mask_box
from vis_node.structures.label_map import LabelMap

MASK_ENCODINGS = {
    "none": SalientInstance.MASK_NONE,
    "cropped": SalientInstance.MASK_CROPPED,
    "rle": SalientInstance.MASK_RLE,
}
"""Names of the per-instance mask encodings, as accepted by :func:`instance_to_msg`."""


def image_to_msg(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """Build a ``sensor_msgs/Image``.

    Parameters
    ----------
    pixels:
        ``uint8[H, W, 3]`` RGB for rgb8 / bgr8, ``[H, W]`` for mono8 / mono16.
    encoding:
        ``rgb8``, ``bgr8``, ``mono8`` (e.g. semantic class ids) or ``mono16``
        (e.g. instance / track ids).
    header:
        Copied into the message (stamp and frame_id of the source image).
    """
    raw = encode(pixels, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width = raw.height, raw.width
    msg.encoding = raw.encoding
    msg.is_bigendian = int(raw.is_bigendian)
    msg.step = raw.step
    msg.data = raw.data
    return msg


def msg_to_rgb(msg: Image) -> np.ndarray:
    """Decode a camera image message to ``uint8[H, W, 3]`` RGB.

    Raises
    ------
    vis_node.io.image_codec.ImageEncodingError
        Unsupported encoding or malformed buffer.
    """
    return decode_rgb(RawImage.from_msg(msg))


def msg_to_labels(msg: Image) -> np.ndarray:
    """Decode a mono8 / mono16 label image message to ``uint16[H, W]``."""
    return decode_labels(RawImage.from_msg(msg))


def instance_to_msg(
    *,
    mask: np.ndarray | None,
    box: Sequence[float],
    track_id: int,
    class_scores: Sequence[float],
    class_names: Sequence[str],
    saliency: float,
    embedding: Sequence[float] = (),
    mask_encoding: str = "cropped",
) -> SalientInstance:
    """Build one ``vis_msgs/SalientInstance``.

    Parameters
    ----------
    mask:
        ``bool[H, W]`` full-image mask, or ``None`` (then ``mask_encoding`` must be ``"none"``).
    box:
        ``(x1, y1, x2, y2)`` in pixels.
    track_id:
        Track identity, 0 = not yet tracked.
    class_scores:
        ``[C]`` probabilities over the label map (index = class id, 0 = background).
        The instance's class is their argmax over ids >= 1.
    class_names:
        ``[C]`` names of the label map.
    saliency:
        Saliency score in [0, 1].
    embedding:
        ``[D]`` appearance embedding (may be empty).
    mask_encoding:
        ``"cropped"`` (mono8 crop of the mask's tight box), ``"rle"`` or ``"none"``.
    """
    if mask_encoding not in MASK_ENCODINGS:
        raise ValueError(f"mask_encoding must be one of {sorted(MASK_ENCODINGS)}, got '{mask_encoding}'")
    scores = np.asarray(class_scores, dtype=np.float32)
    if scores.ndim != 1 or scores.size != len(class_names):
        raise ValueError(
            f"class_scores has shape {scores.shape} but the label map has {len(class_names)} classes"
        )
    msg = SalientInstance()
    msg.track_id = int(track_id)
    if scores.size > 1:
        class_id = int(np.argmax(scores[1:]) + 1)
        msg.class_id = class_id
        msg.class_name = str(class_names[class_id])
        msg.class_score = float(scores[class_id])
    msg.class_scores = array.array("f", scores.tobytes())  # float32[]: no per-value checks
    msg.saliency_score = float(saliency)
    x1, y1, x2, y2 = (float(v) for v in box)
    msg.bbox = BoundingBox2D(
        center_x=(x1 + x2) / 2.0, center_y=(y1 + y2) / 2.0, size_x=x2 - x1, size_y=y2 - y1
    )
    msg.embedding = array.array("f", np.asarray(embedding, dtype=np.float32).tobytes())
    msg.mask_encoding = MASK_ENCODINGS[mask_encoding]
    if mask_encoding == "none":
        return msg
    if mask is None:
        raise ValueError(f"mask_encoding '{mask_encoding}' needs a mask")
    mask = np.asarray(mask, dtype=bool)
    if mask_encoding == "rle":
        msg.mask_rle = str(encode_rle(mask)["counts"])
        return msg
    mx1, my1, mx2, my2 = mask_box(mask) or (0, 0, 0, 0)
    msg.mask_roi = RegionOfInterest(x_offset=mx1, y_offset=my1, width=mx2 - mx1, height=my2 - my1)
    crop = mask[my1:my2, mx1:mx2].astype(np.uint8) * 255
    if crop.size:
        msg.mask = image_to_msg(crop, "mono8", Header())
    return msg


def msg_to_mask(msg: SalientInstance, height: int, width: int) -> np.ndarray | None:
    """Decode an instance's mask to ``bool[height, width]``, or ``None`` if none was sent.

    Parameters
    ----------
    msg:
        The instance.
    height, width:
        Size of the source image (from ``SalientInstanceArray.image_height / image_width``).
    """
    if msg.mask_encoding == SalientInstance.MASK_NONE:
        return None
    if msg.mask_encoding == SalientInstance.MASK_RLE:
        return decode_rle({"size": [height, width], "counts": msg.mask_rle})
    full = np.zeros((height, width), dtype=bool)
    roi = msg.mask_roi
    if roi.width and roi.height:
        crop = msg_to_labels(msg.mask) > 0
        full[roi.y_offset : roi.y_offset + roi.height, roi.x_offset : roi.x_offset + roi.width] = crop
    return full


def label_map_to_msg(label_map: LabelMap, header: Header) -> LabelMapMsg:
    """Build a ``vis_msgs/LabelMap``; class id ``i`` is named ``label_map.names[i]``."""
    msg = LabelMapMsg()
    msg.header = header
    msg.model_name = label_map.model_name
    msg.classes = [ClassLabel(class_id=i, class_name=n) for i, n in enumerate(label_map.names)]
    return msg


def msg_to_label_map(msg: LabelMapMsg) -> LabelMap:
    """Decode a ``vis_msgs/LabelMap``.

    Raises
    ------
    ValueError
        Class ids that are not ``0 .. C-1`` in order, or an invalid label map (see
        :class:`~vis_node.structures.label_map.LabelMap`).
    """
    ids = [int(c.class_id) for c in msg.classes]
    if ids != list(range(len(ids))):
        raise ValueError(f"label map class ids must be 0..{len(ids) - 1} in order, got {ids}")
    return LabelMap([c.class_name for c in msg.classes], msg.model_name)
