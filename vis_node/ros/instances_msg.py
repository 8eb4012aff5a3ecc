"""``Instances`` <-> ``vis_msgs/SalientInstanceArray`` (built on :mod:`vis_node.ros.convert`).

Pure functions of messages, so the nodes only call them and they are tested without a
graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vis_msgs.msg import SalientInstance, SalientInstanceArray

from vis_node.io.labels import wrap_track_ids
from vis_node.ros.convert import instance_to_msg, msg_to_labels, msg_to_mask
from vis_node.ros.input_guard import Budget, Rejection
from vis_node.structures.frames import Frame
from vis_node.structures.instances import Instances
from vis_node.structures.results import NO_FUSION_CONFIDENCE, FrameResult


def instances_to_msg(
    instances: Instances,
    header: Header,
    class_names: Sequence[str],
    *,
    mask_encoding: str = "cropped",
    labels: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    frame_confidence: float = NO_FUSION_CONFIDENCE,
) -> SalientInstanceArray:
    """Build the array message of one frame.

    Parameters
    ----------
    instances:
        ``N`` instances of an ``H x W`` frame (masks, boxes, class probabilities,
        saliency, optional embeddings, track ids).
    header:
        The input image's header (copied: same stamp and frame_id).
    class_names:
        ``[C]`` label map, ``C`` = ``instances.class_probs.shape[1]``.
    mask_encoding:
        ``"cropped"``, ``"rle"`` or ``"none"``.
    labels, confidence:
        ``int[N]`` unified class ids and ``float[N]`` their confidence; they replace the
        per-frame argmax class (``class_scores`` stay the frame's own).
    frame_confidence:
        SISO frame confidence of the detect stage
        (:attr:`vis_node.pipeline.stages.Detections.frame_confidence`), passed on
        unchanged by the tracking and semantic nodes.
    """
    height, width = instances.image_size
    msg = SalientInstanceArray(header=header, image_height=height, image_width=width)
    msg.frame_confidence = float(frame_confidence)
    for k in range(len(instances)):
        item = instance_to_msg(
            mask=instances.masks[k],
            box=instances.boxes[k],
            track_id=int(instances.track_ids[k]),
            class_scores=instances.class_probs[k],
            class_names=class_names,
            saliency=float(instances.saliency[k]),
            embedding=() if instances.embeddings is None else instances.embeddings[k],
            mask_encoding=mask_encoding,
        )
        item.predicted = bool(instances.predicted[k])
        if labels is not None:
            item.class_id = int(labels[k])
            item.class_name = str(class_names[int(labels[k])])
            item.class_score = float(confidence[k]) if confidence is not None else 0.0
        msg.instances.append(item)
    return msg


def _box_mask(instance: SalientInstance, height: int, width: int) -> np.ndarray:
    """``bool[H, W]`` filled box of an instance sent without a mask."""
    box = instance.bbox
    x1 = int(np.clip(np.floor(box.center_x - box.size_x / 2), 0, width))
    y1 = int(np.clip(np.floor(box.center_y - box.size_y / 2), 0, height))
    x2 = int(np.clip(np.ceil(box.center_x + box.size_x / 2), 0, width))
    y2 = int(np.clip(np.ceil(box.center_y + box.size_y / 2), 0, height))
    mask = np.zeros((height, width), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def instances_from_msg(msg: SalientInstanceArray, num_classes: int = 0) -> Instances:
    """Decode an array message to :class:`Instances`.

    Masks sent with ``MASK_NONE`` become their filled box. ``scores`` = saliency
    (the predictor's detection confidence). Embeddings are kept when every instance
    has one of the same length, else ``None``. Instances without ``class_scores``
    get a one-hot vector of their ``class_id``.

    Parameters
    ----------
    msg:
        The message.
    num_classes:
        Columns of ``class_probs`` (the label map size); at least the longest score
        vector and the largest ``class_id + 1`` of the message are used.
    """
    height, width = int(msg.image_height), int(msg.image_width)
    items = list(msg.instances)
    if not items:
        return Instances.empty(height, width, max(num_classes, 1))
    masks = np.zeros((len(items), height, width), dtype=bool)
    for k, item in enumerate(items):
        mask = msg_to_mask(item, height, width)
        masks[k] = _box_mask(item, height, width) if mask is None else mask
    num_classes = max(
        num_classes,
        max(len(i.class_scores) for i in items),
        max(i.class_id for i in items) + 1,
    )
    probs = np.zeros((len(items), num_classes), dtype=np.float32)
    for k, item in enumerate(items):
        if len(item.class_scores):
            probs[k, : len(item.class_scores)] = item.class_scores
        else:
            probs[k, item.class_id] = 1.0
    boxes = np.array(
        [
            (
                i.bbox.center_x - i.bbox.size_x / 2,
                i.bbox.center_y - i.bbox.size_y / 2,
                i.bbox.center_x + i.bbox.size_x / 2,
                i.bbox.center_y + i.bbox.size_y / 2,
            )
            for i in items
        ],
        dtype=np.float32,
    )
    lengths = {len(i.embedding) for i in items}
    embeddings = None
    if len(lengths) == 1 and 0 not in lengths:
        embeddings = np.array([i.embedding for i in items], dtype=np.float32)
    saliency = np.array([i.saliency_score for i in items], dtype=np.float32)
    return Instances(
        masks=masks,
        boxes=boxes,
        class_probs=probs,
        saliency=saliency,
        embeddings=embeddings,
        track_ids=np.array([i.track_id for i in items], dtype=np.int64),
        scores=saliency,
        predicted=np.array([i.predicted for i in items], dtype=bool),
    )


def check_budget(msg: SalientInstanceArray, budget: Budget) -> Rejection | None:
    """Reject a message whose instance count or declared image size is over ``budget``.

    Reads only the header fields, so a small message declaring a huge image (its masks
    would be allocated as ``N x H x W``) costs nothing.
    """
    count = len(msg.instances)
    if count > budget.max_message_instances:
        return Rejection(
            "too_large",
            f"{count} instances in one message, over the budget of "
            f"{budget.max_message_instances} (raise the node's max_message_instances "
            "parameter if that is real)",
        )
    pixels = int(msg.image_height) * int(msg.image_width)
    if pixels > budget.max_instance_pixels:
        return Rejection(
            "too_large",
            f"instances declare a {msg.image_width}x{msg.image_height} image = {pixels} "
            f"pixels, over the budget of {budget.max_instance_pixels} (raise the node's "
            "max_instance_pixels parameter if that is real)",
        )
    return None


def decode_instances(
    msg: SalientInstanceArray, num_classes: int = 0, budget: Budget | None = None
) -> tuple[Instances | None, Rejection | None]:
    """:func:`instances_from_msg`, or the rejection that stops it.

    ``too_large`` for a message over ``budget`` (checked first, before any allocation;
    ``None``: no limit); ``bad_buffer`` for masks whose region lies outside the image,
    crops whose size differs from their region, and broken RLE strings, so one
    malformed message cannot stop a node.
    """
    rejection = None if budget is None else check_budget(msg, budget)
    if rejection is not None:
        return None, rejection
    try:
        return instances_from_msg(msg, num_classes), None
    except (ValueError, IndexError, TypeError) as exc:
        return None, Rejection("bad_buffer", f"instance masks do not decode ({exc})")


def score_values(msg: SalientInstanceArray) -> list[list[float]]:
    """Every score and box number of a message, for :func:`check_finite_scores`."""
    return [
        [
            i.saliency_score,
            i.class_score,
            *i.class_scores,
            i.bbox.center_x,
            i.bbox.center_y,
            i.bbox.size_x,
            i.bbox.size_y,
        ]
        for i in msg.instances
    ]


def frame_result_from_msgs(
    frame: Frame, unified: SalientInstanceArray, ids: Image, semantic: Image
) -> FrameResult:
    """The ``vsis run`` per-frame record of ``frame`` rebuilt from the semantic node's
    outputs: its unified instances, the ``mono16`` instance-id image and the ``mono8``
    semantic image. Masks are the id image's regions of the tracked instances."""
    id_map = msg_to_labels(ids)
    items = [i for i in unified.instances if i.track_id > 0]
    masks = np.stack([id_map == wrap_track_ids(i.track_id) for i in items]) if items else None
    height, width = id_map.shape
    num_classes = max((len(i.class_scores) for i in items), default=1)
    probs = np.zeros((len(items), max(num_classes, 1)), dtype=np.float32)
    for k, item in enumerate(items):
        if len(item.class_scores):
            probs[k, : len(item.class_scores)] = item.class_scores
    saliency = np.array([i.saliency_score for i in items], dtype=np.float32)
    instances = (
        Instances.from_masks(masks, class_probs=probs, saliency=saliency, scores=saliency)
        if items
        else Instances.empty(height, width)
    ).with_track_ids(np.array([i.track_id for i in items], dtype=np.int64))
    return FrameResult(
        frame=frame,
        instances=instances,
        labels=np.array([i.class_id for i in items], dtype=np.int64),
        confidences=np.array([i.class_score for i in items], dtype=np.float32),
        id_map=id_map.astype(np.uint16),
        semantic_map=msg_to_labels(semantic).astype(np.uint8),
        frame_confidence=float(unified.frame_confidence),
    )
