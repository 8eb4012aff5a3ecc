"""Bad input through real DDS never stops a node: it is warned about, counted and skipped.

Each kind of bad message goes to the composed graph (ground-truth oracle, reliable
QoS), then good frames; the nodes must still answer with correct ids, and their
rejection counters (also on /diagnostics) must have risen.
"""

from __future__ import annotations

import numpy as np
import pytest

from rosutil import spin_until
from test_ros_nodes import (  # noqa: F401  (fixtures)
    FRAME_ID,
    assert_ids_match_ground_truth,
    composed,
    ground_truth,
    gt_params,
    send_frames,
    stamp_of,
    synth_root,
)

pytestmark = pytest.mark.ros


def _header(stamp_ns: int, frame_id: str = FRAME_ID):
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def _image(pixels: np.ndarray, stamp_ns: int, frame_id: str = FRAME_ID, **changes):
    from vis_node.ros.convert import image_to_msg

    msg = image_to_msg(pixels, "rgb8", _header(stamp_ns, frame_id))
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


def _publish_and_count(executor, publisher, msg, counter, kind: str) -> None:
    """Publish ``msg`` and wait until ``counter.counts[kind]`` rises."""
    before = counter.counts[kind]
    publisher.publish(msg)
    assert spin_until(executor, lambda: counter.counts[kind] > before, timeout_s=10.0), kind


def test_bad_images_are_skipped_and_counted(composed, synth_root):
    executor, make = composed
    (perception, tracking, _), probe = make(gt_params(synth_root))
    images, gt_ids, _ = ground_truth(synth_root)
    send_frames(executor, probe, images[:2])
    counter = perception.rejections
    publish = probe.image_pub
    small = images[2][:4, :5]
    base = stamp_of(1)
    cases = [
        ("bad_encoding", _image(images[2], base + 10, encoding="32FC1")),
        ("bad_encoding", _image(images[2], base + 20, encoding="nv12")),
        ("empty_image", _image(small, base + 30, height=0, width=0, step=0, data=b"")),
        ("bad_buffer", _image(small, base + 40, data=bytes(4 * 15 - 3))),
        ("bad_buffer", _image(small, base + 50, step=7)),
        ("wrong_frame_id", _image(images[2], base + 60, frame_id="lidar")),
        ("repeated_stamp", _image(images[2], base + 50)),
        ("stamp_out_of_order", _image(images[2], base + 5)),
    ]
    for kind, msg in cases:
        _publish_and_count(executor, publish, msg, counter, kind)
    assert counter.counts["bad_encoding"] == 2
    assert counter.counts["bad_buffer"] == 2
    assert spin_until(
        executor,
        lambda: tracking.rejections.counts["wrong_frame_id"] == 1
        and tracking.rejections.counts["repeated_stamp"] == 1
        and tracking.rejections.counts["stamp_out_of_order"] == 1,
    )

    send_frames(executor, probe, images[2:5], start=2)
    assert_ids_match_ground_truth(probe, gt_ids[:5])
    assert perception.stats.processed == 5
    assert spin_until(
        executor,
        lambda: probe.latest_diagnostics("vsis_perception").get("rejected_bad_buffer") == "2",
        timeout_s=10.0,
    )
    diagnostics = probe.latest_diagnostics("vsis_perception")
    assert diagnostics["rejected_bad_encoding"] == "2"
    assert diagnostics["rejected_empty_image"] == "1"
    assert diagnostics["rejected_wrong_frame_id"] == "1"
    assert diagnostics["rejected_stamp_out_of_order"] == "1"


def _instances_msg(stamp_ns: int, frame_id: str = FRAME_ID, *, saliency: float = 0.9,
                   class_scores=(0.0, 1.0, 0.0, 0.0, 0.0, 0.0), track_id: int = 0):
    from vis_msgs.msg import SalientInstanceArray

    from vis_node.ros.convert import instance_to_msg

    mask = np.zeros((128, 160), bool)
    mask[10:30, 20:50] = True
    names = [f"c{i}" for i in range(len(class_scores))]
    msg = SalientInstanceArray(
        header=_header(stamp_ns, frame_id), image_height=128, image_width=160
    )
    msg.instances = [
        instance_to_msg(mask=mask, box=(20, 10, 50, 30), track_id=track_id,
                        class_scores=class_scores, class_names=names, saliency=0.5)
    ]
    msg.instances[0].saliency_score = saliency
    return msg


def test_bad_instances_are_skipped_and_counted(composed, synth_root):
    from vis_msgs.msg import SalientInstanceArray

    from vis_node.ros import qos

    executor, make = composed
    (_, tracking, semantic), probe = make(gt_params(synth_root))
    images, gt_ids, _ = ground_truth(synth_root)
    send_frames(executor, probe, images[:2])
    instances_pub = probe.node.create_publisher(SalientInstanceArray, "instances", qos.RELIABLE)
    tracked_pub = probe.node.create_publisher(
        SalientInstanceArray, "tracked_instances", qos.RELIABLE
    )
    assert spin_until(
        executor,
        lambda: instances_pub.get_subscription_count() >= 2
        and tracked_pub.get_subscription_count() >= 2,
    )
    base = stamp_of(1)
    outside = _instances_msg(base + 5)
    outside.instances[0].mask_roi.x_offset = 150
    tracking_cases = [
        ("bad_buffer", outside),
        ("nonfinite_score", _instances_msg(base + 10, saliency=float("nan"))),
        ("wrong_frame_id", _instances_msg(base + 20, frame_id="lidar")),
        ("repeated_stamp", _instances_msg(base + 10)),
        ("stamp_out_of_order", _instances_msg(base - 10)),
    ]
    for kind, msg in tracking_cases:
        _publish_and_count(executor, instances_pub, msg, tracking.rejections, kind)
    nan_class = (0.0, float("nan"), 0.0, 0.0, 0.0, 0.0)
    semantic_cases = [
        ("nonfinite_score", _instances_msg(base + 10, class_scores=nan_class, track_id=1)),
        ("size_mismatch", _instances_msg(base + 20, class_scores=(0.2, 0.8), track_id=1)),
        ("stamp_out_of_order", _instances_msg(base - 10, track_id=1)),
        ("wrong_frame_id", _instances_msg(base + 30, frame_id="lidar", track_id=1)),
    ]
    for kind, msg in semantic_cases:
        _publish_and_count(executor, tracked_pub, msg, semantic.rejections, kind)

    send_frames(executor, probe, images[2:5], start=2)
    assert_ids_match_ground_truth(probe, gt_ids[:5])
    assert tracking.stats.processed == 5 and semantic.stats.processed == 5
    assert tracking.rejections.total == 5
    assert semantic.rejections.total == 4
