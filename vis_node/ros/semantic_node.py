"""Semantic node: tracked instances in, one class per track and label images out.

Subscribes ``tracked_instances`` (``vis_msgs/SalientInstanceArray`` with track ids)
and the perception node's latched ``label_map`` (the loaded model's class names: the
only source of names here), and publishes, each with the input header:

* ``unified_instances``: the tracked instances (track id > 0) with ``class_id`` /
  ``class_name`` / ``class_score`` replaced by the track's unified object class
  (:class:`vis_node.pipeline.stages.UnifyStage`, as ``vsis run``) and the input's
  ``frame_confidence``;
* ``instance_ids``: ``mono16`` track-id image (0 = background);
* ``semantic``: ``mono8`` unified class-id image (both painted after
  ``unified_instances`` went out, so the instances reach their subscribers first, and
  each only while it has a subscriber: at 1920 x 1080 the two cost more than the
  unification, about 6 MB per frame to paint and publish);
* ``overlay``: ``rgb8`` visualisation, computed only while someone subscribes; it
  pairs the ids with the camera image of the same stamp (``image`` or
  ``image/compressed``, by ``image_transport``). The node subscribes to the camera
  only while ``overlay`` has a subscriber (a 1.2 MB frame per message is not taken
  for nothing), and keeps the image of each frame the perception node announces on
  ``inference_started`` until its results come;
* ``detections``: ``vision_msgs/Detection2DArray`` (id = track id, at most
  ``max_hypotheses`` classes each; built only while it has a subscriber) and
  ``label_info``: ``vision_msgs/LabelInfo`` (latched), when vision_msgs is importable.

Instances are skipped (counted as ``no_label_map``) until a label map has arrived;
a new label map (another model) restarts the unification.

Run: ``vsis ros semantic --params launch/config/semantic.yaml``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np
from rclpy.event_handler import PublisherEventCallbacks
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vis_msgs.msg import LabelMap as LabelMapMsg
from vis_msgs.msg import SalientInstanceArray

from vis_node.io.overlay import InstanceLabel, draw_overlay
from vis_node.pipeline.stages import UnifyStage
from vis_node.ros.base_node import VsisNode, run_standalone, stamp_ns
from vis_node.ros.convert import image_to_msg
from vis_node.ros.input_guard import Rejection, check_finite_scores, decode_image_msg
from vis_node.ros.instances_msg import decode_instances, instances_to_msg, score_values
from vis_node.ros.label_maps import check_class_count, no_label_map
from vis_node.ros.params import SEMANTIC
from vis_node.ros.qos import LATCHED
from vis_node.ros.stamps import StampMatcher
from vis_node.ros.transport import image_subscription, image_topic
from vis_node.structures.label_map import LabelMap
from vis_node.settings import from_values
from vis_node.tracking.unification import OnlineUnifier, UnifierConfig

VISION_MSGS_MISSING = (
    "vision_msgs is not importable: no 'detections' (Detection2DArray) or 'label_info' "
    "(LabelInfo) output. Install ros-jazzy-vision-msgs, or run scripts/setup.sh, which "
    "builds ../shared/third_party/vision_msgs into ros_ws, then source scripts/env.sh"
)


LABEL_IMAGES = {"instance_ids": "mono16", "semantic": "mono8"}
"""The label-image topics and their encodings; each is painted only while subscribed."""


def vision_msgs_available() -> bool:
    """Whether ``vision_msgs`` is importable (then :mod:`vis_node.ros.vision` is)."""
    return importlib.util.find_spec("vision_msgs") is not None


class SemanticNode(VsisNode):
    """Lifecycle node unifying classes per track and drawing label images.

    Parameters
    ----------
    node_name:
        ROS node name (default ``vsis_semantic``).
    **kwargs:
        Passed to ``rclpy.lifecycle.LifecycleNode``.
    """

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(SEMANTIC, node_name, **kwargs)
        self._pubs: dict[str, Any] = {}
        self._unify: UnifyStage | None = None
        self._matcher: StampMatcher[tuple[np.ndarray, dict[int, InstanceLabel]], Any] = (
            StampMatcher()
        )
        self.label_map: LabelMap | None = None
        self._vision: Any = None
        self._image_subscription: Any = None

    def configure_node(self) -> None:
        self._unify = self._new_stage()
        self._matcher = StampMatcher(int(self.config["match_capacity"]))
        create = self.create_lifecycle_publisher
        out = self.output_qos
        self._pubs = {
            "unified_instances": create(SalientInstanceArray, "unified_instances", out),
            "instance_ids": create(Image, "instance_ids", out),
            "semantic": create(Image, "semantic", out),
            "overlay": create(
                Image, "overlay", out,
                event_callbacks=PublisherEventCallbacks(
                    matched=self.guard.wrap("overlay", self._on_overlay_matched)
                ),
            ),
        }
        if vision_msgs_available():
            from vision_msgs.msg import Detection2DArray, LabelInfo

            from vis_node.ros import vision

            self._vision = vision
            self._pubs["detections"] = create(Detection2DArray, "detections", out)
            self._pubs["label_info"] = create(LabelInfo, "label_info", LATCHED)
        else:
            self._vision = None
            self.get_logger().info(VISION_MSGS_MISSING)

    def _new_stage(self) -> UnifyStage:
        fallback = None if self.label_map is None else self.label_map.fallback_class
        return UnifyStage(
            OnlineUnifier(from_values(UnifierConfig, self.config), fallback_class=fallback)
        )

    def activate_node(self) -> None:
        self._matcher.clear()
        self.subscribe(LabelMapMsg, "label_map", self._on_label_map, LATCHED)
        # Before the instances: an executor that finds both ready takes them in this order.
        self.subscribe(Header, "inference_started", self._on_started, self.input_qos)
        self.subscribe(
            SalientInstanceArray, "tracked_instances", self._on_instances, self.input_qos
        )
        self._follow_overlay(self._overlay_wanted())

    def _on_started(self, msg: Header) -> None:
        """The model started on this frame: keep its image for the overlay."""
        self._matcher.keep_right(stamp_ns(msg))

    def deactivate_node(self) -> None:
        self._matcher.clear()
        self._image_subscription = None  # destroyed with the other subscriptions

    def _on_overlay_matched(self, info: Any) -> None:
        """An ``overlay`` subscriber came or went (``info.current_count`` remain)."""
        if self.active:
            self._follow_overlay(info.current_count > 0)

    def _follow_overlay(self, wanted: bool) -> None:
        """Subscribe to the camera while ``overlay`` is wanted, and only then."""
        if wanted and self._image_subscription is None:
            msg_type, topic = image_subscription(self.config["image_transport"])
            self._image_subscription = self.subscribe(
                msg_type, topic, self._on_image, self.input_qos
            )
        elif not wanted and self._image_subscription is not None:
            self.unsubscribe(self._image_subscription)
            self._image_subscription = None
            self._matcher.clear()

    def cleanup_node(self) -> None:
        self._pubs = {}
        self._unify = None
        self.label_map = None

    def _on_label_map(self, msg: LabelMapMsg) -> None:
        label_map = self.receive_label_map(msg, self.label_map)
        if label_map is None:
            return
        self.label_map = label_map
        self._unify = self._new_stage()  # the class history and fallback belong to a model
        if self.active:
            self._publish_label_info(msg.header)

    def after_activate(self) -> None:
        if self.label_map is not None:
            self._publish_label_info(Header(frame_id=self.config["expected_frame_id"]))

    def _publish_label_info(self, header: Header) -> None:
        if self._vision is not None and self.label_map is not None:
            self._pubs["label_info"].publish(self._vision.label_info_msg(self.label_map, header))

    def on_time_jump(self, topic: str, stamp_ns: int, back: bool) -> None:
        self._matcher.discard_outside(stamp_ns, newer=back)
        if topic == "tracked_instances":
            self.recover_node()

    def recover_node(self) -> None:
        if self._unify is not None:
            self._unify.reset()

    def _overlay_wanted(self) -> bool:
        return self._pubs["overlay"].get_subscription_count() > 0

    def _on_instances(self, msg: SalientInstanceArray) -> None:
        if not self.check_header("tracked_instances", msg.header, every_frame=False):
            return
        label_map = self.label_map
        if label_map is None:
            self.reject("tracked_instances", no_label_map())
            return
        rejection = check_finite_scores(score_values(msg))
        if rejection is None:
            rejection = check_class_count(msg, label_map)
        if rejection is not None:
            self.reject("tracked_instances", rejection)
            return
        unify = self._unify
        if unify is None:
            return
        with self.stats.stage("decode_instances"):
            tracked, rejection = decode_instances(msg, len(label_map), self.budget)
        if rejection is not None:
            self.reject("tracked_instances", rejection)
            return
        with self.stats.stage("unification"):
            unified = unify(tracked)
        instances, labels, confidence = unified.instances, unified.labels, unified.confidences
        self.stats.set_gauge("active_tracks", len(instances))
        with self.stats.stage("publish"):
            out = instances_to_msg(
                instances,
                msg.header,
                label_map.names,
                mask_encoding=self.config["mask_encoding"],
                labels=labels,
                confidence=confidence,
                frame_confidence=msg.frame_confidence,
            )
            self._pubs["unified_instances"].publish(out)
            if self._vision is not None and self._pubs["detections"].get_subscription_count():
                detections = self._vision.detections_msg(
                    out, label_map, int(self.config["max_hypotheses"])
                )
                self._pubs["detections"].publish(detections)
        label_images = [t for t in LABEL_IMAGES if self._pubs[t].get_subscription_count()]
        if label_images:
            with self.stats.stage("label_images"):  # painted after the instances went out
                for topic in label_images:
                    pixels = unified.id_map if topic == "instance_ids" else unified.semantic_map
                    image = image_to_msg(pixels, LABEL_IMAGES[topic], msg.header)
                    self._pubs[topic].publish(image)
        self.stats.frame_done()
        if self._overlay_wanted():
            tags = {
                int(t): InstanceLabel(label_map.names[int(c)], float(s))
                for t, c, s in zip(instances.track_ids, labels, confidence)
                if t > 0
            }
            pairs = self._matcher.add_left(stamp_ns(msg.header), (unified.id_map, tags))
            self._publish_overlays(pairs)

    def _on_image(self, msg: Any) -> None:
        topic = image_topic(msg)
        if self._overlay_wanted() and self.check_header(topic, msg.header):
            self._publish_overlays(self._matcher.add_right(stamp_ns(msg.header), msg))

    def _publish_overlays(self, pairs: list[tuple[int, Any, Any]]) -> None:
        for _, (ids, tags), image_msg in pairs:
            topic = image_topic(image_msg)
            image, rejection = decode_image_msg(image_msg, self.budget.max_image_pixels)
            if rejection is not None:
                self.reject(topic, rejection)
                continue
            if image.shape[:2] != ids.shape:
                self.reject(
                    topic,
                    Rejection("size_mismatch", f"image is {image.shape[:2]}, ids {ids.shape}"),
                )
                continue
            overlay = draw_overlay(image, ids, tags)
            self._pubs["overlay"].publish(image_to_msg(overlay, "rgb8", image_msg.header))


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``semantic_node`` executable."""
    return run_standalone(SemanticNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
