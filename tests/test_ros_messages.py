"""Round trip of every VSIS message through real rclpy publishers and subscribers."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from rosutil import require_ros, require_vision_msgs, ros_context, spin_until
from vis_node.structures.geometry import mask_box

pytestmark = pytest.mark.ros

CLASS_NAMES = ["background", "person", "car", "dog"]


@pytest.fixture(scope="module")
def ros_modules():
    require_ros()
    import vis_node.ros.convert as convert
    import vis_node.ros.qos as qos

    return convert, qos


def _disc(height: int, width: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _round_trip(node_pair, msg_type, topic, message, qos):
    """Publish ``message`` until it arrives; return what was received."""
    executor, pub_node, sub_node = node_pair
    received = []
    sub_node.create_subscription(msg_type, topic, received.append, qos)
    publisher = pub_node.create_publisher(msg_type, topic, qos)

    def publish_and_check() -> bool:
        if not received:
            publisher.publish(message)
        return bool(received)

    assert spin_until(executor, publish_and_check, timeout_s=15.0), f"nothing arrived on {topic}"
    return received[0]


@pytest.fixture
def node_pair(ros_modules, request):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    domain = 40 + zlib.crc32(request.node.name.encode()) % 50
    with ros_context(domain) as context:
        pub_node = rclpy.create_node("vsis_test_pub", context=context)
        sub_node = rclpy.create_node("vsis_test_sub", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        yield executor, pub_node, sub_node
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()


def test_instance_array_round_trip(ros_modules, node_pair):
    convert, qos = ros_modules
    from std_msgs.msg import Header
    from vis_msgs.msg import SalientInstanceArray

    height, width = 48, 64
    person = _disc(height, width, 20, 18, 9)
    car = np.zeros((height, width), bool)
    car[30:44, 35:60] = True
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = SalientInstanceArray(header=header, image_height=height, image_width=width)
    msg.frame_confidence = 0.75
    msg.instances = [
        convert.instance_to_msg(
            mask=person, box=mask_box(person), track_id=7,
            class_scores=[0.05, 0.8, 0.1, 0.05], class_names=CLASS_NAMES, saliency=0.9,
            embedding=np.linspace(-1, 1, 16), mask_encoding="cropped",
        ),
        convert.instance_to_msg(
            mask=car, box=(35, 30, 60, 44), track_id=0,
            class_scores=[0.1, 0.1, 0.7, 0.1], class_names=CLASS_NAMES, saliency=0.6,
            mask_encoding="rle",
        ),
        convert.instance_to_msg(
            mask=None, box=(1, 2, 3, 4), track_id=3,
            class_scores=[0.0, 0.0, 0.0, 1.0], class_names=CLASS_NAMES, saliency=0.2,
            mask_encoding="none",
        ),
    ]
    got = _round_trip(node_pair, SalientInstanceArray, "instances", msg, qos.RELIABLE)

    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (12, 345)
    assert got.header.frame_id == "camera_optical"
    assert (got.image_height, got.image_width) == (height, width)
    assert got.frame_confidence == pytest.approx(0.75)
    first, second, third = got.instances
    assert (first.track_id, first.class_id, first.class_name) == (7, 1, "person")
    assert first.class_score == pytest.approx(0.8)
    np.testing.assert_allclose(first.class_scores, [0.05, 0.8, 0.1, 0.05], rtol=1e-6)
    np.testing.assert_allclose(first.embedding, np.linspace(-1, 1, 16), rtol=1e-6)
    assert first.saliency_score == pytest.approx(0.9)
    x1, y1, x2, y2 = mask_box(person)
    assert first.bbox.center_x == pytest.approx((x1 + x2) / 2)
    assert first.bbox.size_y == pytest.approx(y2 - y1)
    assert first.mask.encoding == "mono8"
    np.testing.assert_array_equal(convert.msg_to_mask(first, height, width), person)
    assert (second.track_id, second.class_name) == (0, "car")
    assert second.mask_encoding == second.MASK_RLE
    np.testing.assert_array_equal(convert.msg_to_mask(second, height, width), car)
    assert third.class_name == "dog"
    assert convert.msg_to_mask(third, height, width) is None


def test_label_images_round_trip(ros_modules, node_pair):
    convert, qos = ros_modules
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 1200, size=(30, 41)).astype(np.uint16)
    header = Header(frame_id="cam")
    header.stamp.sec = 5
    got = _round_trip(node_pair, Image, "instance_ids", convert.image_to_msg(ids, "mono16", header), qos.RELIABLE)
    assert got.encoding == "mono16" and got.header.stamp.sec == 5
    np.testing.assert_array_equal(convert.msg_to_labels(got), ids)

    classes = rng.integers(0, 4, size=(30, 41)).astype(np.uint8)
    got = _round_trip(node_pair, Image, "semantic", convert.image_to_msg(classes, "mono8", header), qos.RELIABLE)
    assert got.encoding == "mono8"
    np.testing.assert_array_equal(convert.msg_to_labels(got), classes)

    rgb = rng.integers(0, 256, size=(30, 41, 3)).astype(np.uint8)
    got = _round_trip(node_pair, Image, "image", convert.image_to_msg(rgb, "bgr8", header), qos.SENSOR)
    np.testing.assert_array_equal(convert.msg_to_rgb(got), rgb)


def test_label_map_is_latched(ros_modules, node_pair):
    """A subscriber that joins after the label map was published still receives it."""
    convert, qos = ros_modules
    from std_msgs.msg import Header
    from vis_msgs.msg import LabelMap

    executor, pub_node, sub_node = node_pair
    publisher = pub_node.create_publisher(LabelMap, "label_map", qos.LATCHED)
    from vis_node.structures.label_map import LabelMap as Labels

    labels = Labels(CLASS_NAMES, "synth")
    publisher.publish(convert.label_map_to_msg(labels, Header(frame_id="cam")))
    executor.spin_once(timeout_sec=0.1)
    received = []
    sub_node.create_subscription(LabelMap, "label_map", received.append, qos.LATCHED)
    assert spin_until(executor, lambda: bool(received), timeout_s=15.0)
    got = received[0]
    assert got.model_name == "synth"
    assert [(c.class_id, c.class_name) for c in got.classes] == list(enumerate(CLASS_NAMES))
    assert len(received) == 1
    assert convert.msg_to_label_map(got) == labels
    got.classes = got.classes[1:]
    with pytest.raises(ValueError, match="class ids must be 0..2 in order"):
        convert.msg_to_label_map(got)


def test_vision_msgs_round_trip(ros_modules, node_pair):
    """Detection2DArray (id = track id, named hypotheses, box) and latched LabelInfo over DDS."""
    convert, qos = ros_modules
    require_vision_msgs()
    from std_msgs.msg import Header
    from vis_msgs.msg import SalientInstanceArray
    from vision_msgs.msg import Detection2DArray, LabelInfo

    from vis_node.ros.vision import detections_msg, label_info_msg
    from vis_node.structures.label_map import LabelMap as Labels

    labels = Labels(CLASS_NAMES, "davis")
    header = Header(frame_id="camera_optical")
    header.stamp.sec = 9
    unified = SalientInstanceArray(header=header, image_height=48, image_width=64)
    unified.instances = [
        convert.instance_to_msg(
            mask=None, box=(10, 4, 30, 20), track_id=12,
            class_scores=[0.1, 0.2, 0.0, 0.7], class_names=CLASS_NAMES, saliency=0.9,
            mask_encoding="none",
        ),
        convert.instance_to_msg(
            mask=None, box=(0, 0, 8, 6), track_id=3,
            class_scores=[0.0, 0.6, 0.4, 0.0], class_names=CLASS_NAMES, saliency=0.5,
            mask_encoding="none",
        ),
    ]
    got = _round_trip(
        node_pair, Detection2DArray, "detections", detections_msg(unified, labels, 0), qos.RELIABLE
    )
    capped = detections_msg(unified, labels, 1)
    assert [[r.hypothesis.class_id for r in d.results] for d in capped.detections] == [
        ["dog"], ["person"]
    ]
    assert got.header.frame_id == "camera_optical" and got.header.stamp.sec == 9
    first, second = got.detections
    assert (first.id, second.id) == ("12", "3")
    assert [(r.hypothesis.class_id, r.hypothesis.score) for r in first.results] == [
        ("dog", pytest.approx(0.7)), ("person", pytest.approx(0.2))
    ]
    assert [r.hypothesis.class_id for r in second.results] == ["person", "car"]
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (20.0, 12.0)
    assert (first.bbox.size_x, first.bbox.size_y) == (20.0, 16.0)

    executor, pub_node, sub_node = node_pair
    publisher = pub_node.create_publisher(LabelInfo, "label_info", qos.LATCHED)
    publisher.publish(label_info_msg(labels, header, threshold=0.25))
    executor.spin_once(timeout_sec=0.1)
    received = []
    sub_node.create_subscription(LabelInfo, "label_info", received.append, qos.LATCHED)
    assert spin_until(executor, lambda: bool(received), timeout_s=15.0)
    info = received[0]
    assert [(c.class_id, c.class_name) for c in info.class_map] == list(enumerate(CLASS_NAMES))
    assert info.threshold == pytest.approx(0.25)


def test_header_stamp_is_read_from_serialised_outputs(ros_modules):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from vis_msgs.msg import LabelMap, SalientInstanceArray

    from vis_node.ros.stamps import cdr_header_stamp_ns

    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = 1_796_000_123, 999_999_999
    expected = 1_796_000_123 * 1_000_000_000 + 999_999_999
    convert, _ = ros_modules
    messages = [
        SalientInstanceArray(header=header, image_height=4, image_width=6),
        convert.image_to_msg(np.zeros((4, 6), np.uint16), "mono16", header),
        Image(header=header),
        LabelMap(header=header, model_name="real"),
        DiagnosticArray(header=header),
    ]
    for message in messages:
        assert cdr_header_stamp_ns(serialize_message(message)) == expected
    big_endian = b"\x00\x00\x00\x00" + (7).to_bytes(4, "big") + (5).to_bytes(4, "big")
    assert cdr_header_stamp_ns(big_endian) == 7_000_000_005
    with pytest.raises(ValueError, match="12 bytes"):
        cdr_header_stamp_ns(b"\x00\x01\x00\x00")
