"""What a ROS user's graph sees of VSIS, on real DDS (localhost, one domain id per test).

* the label map comes from the model the perception node loaded, for every shipped
  model, and every class name downstream is taken from it;
* a subscriber with default QoS (reliable, keep last 10) receives every output;
* each node subscribes to exactly one image transport, chosen by a parameter;
* parameters are validated when set, not at the next configure;
* the runtime filters reach the published instances.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from rosutil import require_ros, require_vision_msgs, ros_context, spin_until
from test_ros_nodes import FRAME_ID, domain_for, ground_truth, stamp_of, synth_root  # noqa: F401

pytestmark = pytest.mark.ros

DATA_TOPICS = (
    "instances", "tracked_instances", "unified_instances", "instance_ids", "semantic",
    "overlay", "detections",
)
LATCHED_TOPICS = ("label_map", "label_info")


def _bayer_rggb(rgb: np.ndarray) -> np.ndarray:
    """``uint8[H, W]`` RGGB mosaic of an RGB frame."""
    mosaic = rgb[:, :, 1].copy()
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return mosaic


CAMERA_PACKERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "bayer_rggb8": _bayer_rggb,
    "yuv422": lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
}
"""Camera encoding -> packing of an RGB frame into its buffer layout."""


def _types() -> dict[str, Any]:
    from sensor_msgs.msg import Image
    from vis_msgs.msg import LabelMap, SalientInstanceArray
    from vision_msgs.msg import Detection2DArray, LabelInfo

    return {
        "instances": SalientInstanceArray, "tracked_instances": SalientInstanceArray,
        "unified_instances": SalientInstanceArray, "instance_ids": Image, "semantic": Image,
        "overlay": Image, "detections": Detection2DArray, "label_map": LabelMap,
        "label_info": LabelInfo,
    }


class Listener:
    """A user's node: default-QoS subscriptions (depth 10, reliable) to every output."""

    def __init__(self, context: Any, transport: str = "raw") -> None:
        import rclpy
        from sensor_msgs.msg import CompressedImage, Image

        from vis_node.ros import qos

        self.node = rclpy.create_node("user_node", context=context)
        self.received: dict[str, list[Any]] = {t: [] for t in (*DATA_TOPICS, *LATCHED_TOPICS)}
        self._lock = threading.Lock()
        types = _types()
        for topic in DATA_TOPICS:
            self.node.create_subscription(types[topic], topic, self._recorder(topic), 10)
        for topic in LATCHED_TOPICS:
            self.node.create_subscription(types[topic], topic, self._recorder(topic), qos.LATCHED)
        self.transport = transport
        msg_type, topic = (Image, "image") if transport == "raw" else (
            CompressedImage, "image/compressed"
        )
        self.image_pub = self.node.create_publisher(msg_type, topic, 10)

    def _recorder(self, topic: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self._lock:
                self.received[topic].append(msg)

        return record

    def count(self, topic: str) -> int:
        with self._lock:
            return len(self.received[topic])

    def publish(self, image: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> None:
        from sensor_msgs.msg import CompressedImage
        from std_msgs.msg import Header

        from vis_node.ros.convert import image_to_msg

        header = Header(frame_id=FRAME_ID)
        header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        if self.transport == "raw":
            msg = image_to_msg(image, "rgb8", header)
            if encoding != "rgb8":
                packed = CAMERA_PACKERS[encoding](image)
                msg.encoding, msg.step, msg.data = encoding, packed.strides[0], packed.tobytes()
            self.image_pub.publish(msg)
            return
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        assert ok
        self.image_pub.publish(CompressedImage(header=header, format="png", data=png.tobytes()))


@pytest.fixture
def graph(request):
    """Factory: the composed graph with per-node parameters, and a default-QoS listener."""
    require_ros()
    require_vision_msgs()
    from rclpy.executors import MultiThreadedExecutor

    from vis_node.ros.pipeline import compose, start, stop

    with ros_context(domain_for(request)) as context:
        executor = MultiThreadedExecutor(context=context)
        created: list[Any] = []
        listeners: list[Listener] = []

        def make(overrides: dict[str, dict[str, Any]], transport: str = "raw"):
            nodes = compose(context=context, overrides=overrides)
            created.extend(nodes)
            for node in nodes:
                executor.add_node(node)
            assert start(nodes)
            listener = Listener(context, transport)
            listeners.append(listener)
            executor.add_node(listener.node)
            user = listener.node
            assert spin_until(
                executor,
                # three: the listener watches the overlay, so the semantic node reads the camera
                lambda: listener.image_pub.get_subscription_count() == 3
                and user.count_subscribers("instances") >= 2
                and user.count_subscribers("tracked_instances") >= 2
                and listener.count("label_map") == 1
                and listener.count("label_info") == 1,
                timeout_s=90.0,
            ), "the VSIS graph did not come up"
            spin_until(executor, lambda: False, timeout_s=1.0)
            return nodes, listener

        yield executor, make
        executor.shutdown()
        stop(created)
        for listener in listeners:
            listener.node.destroy_node()


def send(
    executor: Any, listener: Listener, images: list[np.ndarray], encoding: str = "rgb8"
) -> None:
    """Publish frames one at a time, each once every data output of the previous arrived."""
    for index, image in enumerate(images):
        expected = listener.count("unified_instances") + 1
        listener.publish(image, stamp_of(index), encoding)
        assert spin_until(
            executor,
            lambda: all(
                listener.count(t) >= expected for t in DATA_TOPICS if t != "overlay"
            ),
            timeout_s=60.0,
        ), f"no output for frame {index}: { {t: listener.count(t) for t in DATA_TOPICS} }"


def _checkpoint_names(name: str) -> tuple[str, ...]:
    """Class names stored in a shipped checkpoint (read directly, not through VSIS)."""
    import torch

    from vis_node.perception.checkpoint import resolve_model

    checkpoint = torch.load(resolve_model(name), map_location="cpu", weights_only=False)
    return tuple(checkpoint["config"]["class_names"])


def _shipped_models() -> list[str]:
    from vis_node.perception.checkpoint import available_models

    return available_models()


def _davis_frames(root: Path, count: int) -> list[np.ndarray]:
    paths = sorted((root / "JPEGImages" / "480p" / "dog").glob("*.jpg"))[:count]
    return [
        cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (320, 180))
        for p in paths
    ]


@pytest.mark.parametrize("model", _shipped_models())
def test_label_map_comes_from_the_loaded_model(graph, model, davis2016_root, synth_root):  # noqa: F811
    """Names of every output are the loaded model's (issue 10: davis published as synth).

    The synth model sees synthetic frames, every other model real DAVIS frames, so
    each finds instances whose names can be checked.
    """
    executor, make = graph
    common = {"input_qos": "reliable"}
    params = {
        "perception": {**common, "model": model, "runtime": "torch", "score_threshold": 0.0,
                       "frames": "every"},
        "tracking": common,
        "semantic": common,
    }
    (perception, tracking, semantic), listener = make(params)
    names = tuple(perception._detect.backend.class_names)
    if model in ("synth", "davis"):
        assert names == _checkpoint_names(model)
    label_map = listener.received["label_map"][0]
    assert label_map.model_name == model
    assert tuple(c.class_name for c in label_map.classes) == names
    assert [c.class_id for c in label_map.classes] == list(range(len(names)))
    info = listener.received["label_info"][0]
    assert tuple(c.class_name for c in info.class_map) == names
    assert tracking.label_map.names == names and semantic.label_map.names == names
    # The unifier's fallback class ("object" next to the COCO names) is that map's too.
    assert semantic._unify.unifier.fallback_class == (1 if model == "real" else None)

    if model == "synth":
        frames = ground_truth(synth_root)[0][:3]
    else:
        frames = _davis_frames(davis2016_root, 3)
    send(executor, listener, frames)
    seen = 0
    for topic in ("instances", "tracked_instances", "unified_instances"):
        for msg in listener.received[topic]:
            for item in msg.instances:
                assert len(item.class_scores) == len(names)
                assert item.class_name == names[item.class_id], (topic, item.class_name)
                seen += 1
    for msg in listener.received["detections"]:
        for detection in msg.detections:
            assert {r.hypothesis.class_id for r in detection.results} <= set(names[1:])
    assert seen > 0, "the model found nothing: the names were never checked"
    assert [n.rejections.total for n in (tracking, semantic)] == [0, 0]


def test_davis_and_synth_label_maps_differ():
    """The regression above would pass unnoticed if both shipped models had one label set."""
    require_ros()
    assert {"synth", "davis"} <= set(_shipped_models())
    assert _checkpoint_names("davis") != _checkpoint_names("synth")
    assert "dog" in _checkpoint_names("davis")


def test_default_qos_subscriber_receives_every_output(graph, synth_root):  # noqa: F811
    """Default node settings; a user's depth-10 reliable subscriber gets every topic."""
    executor, make = graph
    gt = {"model": f"gt:{synth_root}"}
    (perception, tracking, semantic), listener = make({"perception": gt})
    for node in (perception, tracking, semantic):
        assert (node.config["input_qos"], node.config["output_qos"]) == ("sensor", "reliable")
    images, _, _ = ground_truth(synth_root)
    send(executor, listener, images[:4])
    assert spin_until(executor, lambda: listener.count("overlay") >= 1, timeout_s=20.0)
    for topic in (*DATA_TOPICS, *LATCHED_TOPICS):
        assert listener.count(topic) >= 1, f"nothing received on {topic}"
    assert listener.count("unified_instances") == 4
    detections = listener.received["detections"][-1].detections
    unified = listener.received["unified_instances"][-1].instances
    assert [d.id for d in detections] == [str(i.track_id) for i in unified]
    assert all(d.results[0].hypothesis.class_id == i.class_name for d, i in zip(detections, unified))


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_one_image_transport_per_node(graph, synth_root, transport):  # noqa: F811
    """Each node subscribes to the one topic of its ``image_transport``, and it works."""
    executor, make = graph
    params = {
        "perception": {"model": f"gt:{synth_root}", "image_transport": transport},
        "tracking": {"image_transport": transport},
        "semantic": {"image_transport": transport},
    }
    (perception, _, _), listener = make(params, transport)
    user = listener.node
    used, unused = ("image", "image/compressed")[:: 1 if transport == "raw" else -1]
    assert user.count_subscribers(used) == 3
    assert user.count_subscribers(unused) == 0
    images, gt_ids, _ = ground_truth(synth_root)
    send(executor, listener, images[:3])
    tracked = listener.received["tracked_instances"][-1]
    assert len(tracked.instances) == len(np.unique(gt_ids[2])) - 1
    if transport == "compressed":
        from sensor_msgs.msg import CompressedImage
        from std_msgs.msg import Header

        header = Header(frame_id=FRAME_ID)
        header.stamp.sec = 10
        listener.image_pub.publish(CompressedImage(header=header, format="jpeg", data=b"junk"))
        rejections = perception.rejections
        assert spin_until(executor, lambda: rejections.counts["bad_buffer"] == 1, timeout_s=10.0)


@pytest.mark.parametrize("encoding", sorted(CAMERA_PACKERS))
def test_bayer_and_yuv422_cameras_give_output(graph, synth_root, encoding):  # noqa: F811
    """Frames from Bayer and YUV 4:2:2 cameras are converted, tracked and labelled."""
    executor, make = graph
    (perception, tracking, semantic), listener = make({"perception": {"model": f"gt:{synth_root}"}})
    images, gt_ids, _ = ground_truth(synth_root)
    send(executor, listener, images[:3], encoding)
    for msg in listener.received["unified_instances"]:
        assert (msg.image_height, msg.image_width) == images[0].shape[:2]
    last = listener.received["unified_instances"][-1]
    assert len(last.instances) == len(np.unique(gt_ids[2])) - 1
    assert [n.rejections.total for n in (perception, tracking, semantic)] == [0, 0, 0]


def test_runtime_filters_reach_the_output(graph, synth_root):  # noqa: F811
    """max_instances and class_allow, set as parameters, limit what is published."""
    from vis_node.evaluation.oracle import SYNTH_NAMES

    executor, make = graph
    images, gt_ids, gt_semantic = ground_truth(synth_root)
    present = sorted({int(c) for c in np.unique(gt_semantic[0]) if c > 0})
    assert len(present) >= 2, "the seeded video needs two classes in frame 0"
    allowed = SYNTH_NAMES[present[0]]
    params = {"perception": {
        "model": f"gt:{synth_root}", "class_allow": [allowed], "max_instances": 1,
    }}
    (perception, _, _), listener = make(params)
    assert perception.config["class_allow"] == [allowed]
    send(executor, listener, images[:2])
    for msg in listener.received["instances"]:
        assert len(msg.instances) == 1
        assert msg.instances[0].class_name == allowed


def test_parameters_are_validated_when_set(request, synth_root):  # noqa: F811
    require_ros()
    from rclpy.parameter import Parameter

    from vis_node.ros.perception_node import PerceptionNode

    with ros_context(domain_for(request)) as context:
        node = PerceptionNode(context=context)
        try:
            refused = {
                "input_qos": "bogus", "output_qos": "best", "image_transport": "theora",
                "runtime": "cuda", "device": "gpu0", "mask_encoding": "png",
            }
            for name, value in refused.items():
                (result,) = node.set_parameters([Parameter(name, value=value)])
                assert not result.successful, name
                assert repr(value) in result.reason
            (result,) = node.set_parameters([Parameter("score_threshold", value=1.5)])
            assert not result.successful
            accepted = [
                Parameter("input_qos", value="reliable"), Parameter("device", value="cuda:1"),
                Parameter("image_transport", value="compressed"),
                Parameter("class_allow", value=["disc"]),
            ]
            assert all(r.successful for r in node.set_parameters(accepted))
            assert node.get_parameter("device").value == "cuda:1"
        finally:
            node.destroy_node()


def test_unknown_class_in_allow_list_fails_activation_with_the_names(request, synth_root):  # noqa: F811
    require_ros()
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from vis_node.ros.perception_node import PerceptionNode

    with ros_context(domain_for(request)) as context:
        node = PerceptionNode(context=context, parameter_overrides=[
            Parameter("model", value=f"gt:{synth_root}"),
            Parameter("class_allow", value=["zebra"]),
        ])
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
            assert not node.active
        finally:
            node.destroy_node()


def test_without_vision_msgs_the_semantic_node_says_so_and_runs(request, monkeypatch):
    require_ros()
    from rclpy.lifecycle import TransitionCallbackReturn

    import vis_node.ros.semantic_node as semantic_module

    logged: list[str] = []
    monkeypatch.setattr(semantic_module, "vision_msgs_available", lambda: False)
    with ros_context(domain_for(request)) as context:
        node = semantic_module.SemanticNode(context=context)
        monkeypatch.setattr(node.get_logger(), "info", logged.append)
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert semantic_module.VISION_MSGS_MISSING in logged
            assert not {"detections", "label_info"} & set(node._pubs)
            assert {"unified_instances", "instance_ids", "semantic"} <= set(node._pubs)
        finally:
            node.destroy_node()
