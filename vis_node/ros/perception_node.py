"""Perception node: camera images in, per-frame salient instances out.

Subscribes one camera topic, chosen by ``image_transport``: ``image``
(``sensor_msgs/Image``) or ``image/compressed`` (``sensor_msgs/CompressedImage``);
publishes ``instances`` (``vis_msgs/SalientInstanceArray``, header = the input
image's header), ``inference_started`` (``std_msgs/Header``: the header of each decoded
frame as the model starts on it, so the tracking and semantic nodes keep that frame's
image however many frames the model skips meanwhile) and, latched, ``label_map``
(``vis_msgs/LabelMap``): the names and model name of the model it loaded, which the
tracking and semantic nodes use. The runtime filters (``score_threshold``,
``class_allow``, ``max_instances``, ``min_mask_area``) apply before publishing: the node
runs :class:`vis_node.pipeline.stages.DetectStage`, as ``vsis run`` does. The SISO
motion gate runs in the tracking node, next to the tracker whose optical flow it shares.

Inference runs in its own thread fed through a queue. With ``frames: newest`` (the
default, live cameras) a frame arriving while the model is busy replaces the waiting one
(counted as dropped), so the node always processes the newest frame and latency stays
within about two inference times, whatever the camera's QoS. With ``frames: every``
(bag replay, with ``input_qos: reliable``) frames wait in order, as deep as the
subscription's history (100), and none is dropped unless 100 are already waiting. The
model loads on activate and is freed on deactivate.

Run: ``vsis ros perception --params launch/config/perception.yaml``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vis_msgs.msg import LabelMap as LabelMapMsg
from vis_msgs.msg import SalientInstanceArray

from vis_node.pipeline.backends import check_model_spec, load_backend
from vis_node.pipeline.filters import InstanceFilter
from vis_node.pipeline.stages import DetectStage
from vis_node.ros.base_node import VsisNode, run_standalone, stamp_ns
from vis_node.ros.convert import label_map_to_msg
from vis_node.ros.frame_queue import FrameQueue
from vis_node.ros.input_guard import decode_image_msg
from vis_node.ros.instances_msg import instances_to_msg
from vis_node.ros.params import PERCEPTION, salient_overrides
from vis_node.ros.qos import LATCHED
from vis_node.ros.transport import image_subscription, image_topic
from vis_node.structures.label_map import LabelMap


class PerceptionNode(VsisNode):
    """Lifecycle node running a predictor backend on camera frames (the newest, or every
    one in order: parameter ``frames``).

    Parameters
    ----------
    node_name:
        ROS node name (default ``vsis_perception``).
    **kwargs:
        Passed to ``rclpy.lifecycle.LifecycleNode``.
    """

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(PERCEPTION, node_name, **kwargs)
        self._publisher: Any = None
        self._started_pub: Any = None
        self._detect: DetectStage | None = None
        self._label_map_pub: Any = None
        self.label_map: LabelMap | None = None
        self._filter = InstanceFilter()
        self._queue: FrameQueue[Image | CompressedImage] = FrameQueue()
        self._worker: threading.Thread | None = None

    def configure_node(self) -> None:
        check_model_spec(self.config["model"])
        if self.config["frames"] == "every" and self.config["input_qos"] != "reliable":
            raise ValueError(
                "frames: every needs input_qos: reliable (a best-effort subscription keeps "
                "only the newest frame); set both, or frames: newest"
            )
        self._filter = InstanceFilter(
            score_threshold=float(self.config["score_threshold"]),
            class_allow=tuple(self.config["class_allow"]),
            max_instances=int(self.config["max_instances"]),
            min_mask_area=int(self.config["min_mask_area"]),
        )
        self._publisher = self.create_lifecycle_publisher(
            SalientInstanceArray, "instances", self.output_qos
        )
        self._started_pub = self.create_lifecycle_publisher(
            Header, "inference_started", self.output_qos
        )
        self._label_map_pub = self.create_lifecycle_publisher(LabelMapMsg, "label_map", LATCHED)

    def activate_node(self) -> None:
        backend = load_backend(
            self.config["model"],
            runtime=self.config["runtime"],
            device=self.config["device"],
            threads=int(self.config["threads"]),
            overrides=salient_overrides(self.config),
            gt_sequence=self.config["gt_sequence"],
            gt_fps=self.config["gt_fps"],
            gt_seed=self.config["gt_seed"],
        )
        self._detect = DetectStage(backend, self._filter)
        self.label_map = self._detect.label_map
        self.get_logger().info(
            f"model '{self.label_map.model_name}' loaded ({len(self.label_map)} classes)"
        )
        every = self.config["frames"] == "every"
        self._queue.reopen(capacity=self.input_qos.depth if every else 1)
        self._worker = threading.Thread(target=self._run, name="vsis-inference", daemon=True)
        self._worker.start()
        msg_type, topic = image_subscription(self.config["image_transport"])
        self.subscribe(msg_type, topic, self._on_image, self.input_qos)

    def after_activate(self) -> None:
        header = Header(frame_id=self.config["expected_frame_id"])
        header.stamp = self.get_clock().now().to_msg()
        self._label_map_pub.publish(label_map_to_msg(self.label_map, header))

    def deactivate_node(self) -> None:
        self._queue.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._detect = None
        if str(self.config.get("device", "cpu")).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def cleanup_node(self) -> None:
        self._publisher = None
        self._started_pub = None
        self._label_map_pub = None

    def _on_image(self, msg: Image | CompressedImage) -> None:
        topic = image_topic(msg)
        if self.check_header(topic, msg.header) and self._queue.put(msg):
            self.stats.add_dropped()

    def _run(self) -> None:
        """Inference loop: take the next frame, decode, predict, publish."""
        while True:
            msg = self._queue.take()
            if msg is None:
                return
            self.stats.set_gauge("waiting_frames", len(self._queue))
            self.guard.call("inference", self._process, msg)

    def _process(self, msg: Image | CompressedImage) -> None:
        detect, label_map = self._detect, self.label_map
        if detect is None or label_map is None:
            return
        topic = image_topic(msg)
        with self.stats.stage("decode"):
            image, rejection = decode_image_msg(msg, self.budget.max_image_pixels)
        if rejection is not None:
            self.reject(topic, rejection)
            return
        self._started_pub.publish(msg.header)
        with self.stats.stage("inference"):
            detections = detect(image, stamp_ns(msg.header))
        with self.stats.stage("publish"):
            out = instances_to_msg(
                detections.instances,
                msg.header,
                label_map.names,
                mask_encoding=self.config["mask_encoding"],
                frame_confidence=detections.frame_confidence,
            )
            self._publisher.publish(out)
        self.stats.frame_done()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``perception_node`` executable."""
    return run_standalone(PerceptionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
