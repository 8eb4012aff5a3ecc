"""Semantic node: tracked instances in, one class per track and label images out.

Subscribes ``tracked_instances`` (``vis_msgs/SalientInstanceArray`` with track ids)
and publishes, each with the input header:

* ``unified_instances``: the tracked instances (track id > 0) with ``class_id`` /
  ``class_name`` / ``class_score`` replaced by the track's unified object class
  (:class:`vis_node.tracking.unification.OnlineUnifier` on
  :func:`vis_node.pipeline.online.foreground_probs`, as ``vsis run``);
* ``instance_ids``: ``mono16`` track-id image (0 = background);
* ``semantic``: ``mono8`` unified class-id image;
* ``label_map``: ``vis_msgs/LabelMap``, transient local (latched), on activation;
* ``overlay``: ``rgb8`` visualisation, computed only while someone subscribes; it
  pairs the ids with the camera ``image`` of the same stamp.

Run: ``vsis ros semantic --params launch/config/semantic.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vis_msgs.msg import LabelMap, SalientInstanceArray

from vis_node.io.overlay import InstanceLabel, draw_overlay
from vis_node.pipeline.online import foreground_probs, label_maps
from vis_node.ros.base_node import VsisNode, run_standalone, stamp_ns
from vis_node.ros.convert import image_to_msg, label_map_to_msg
from vis_node.ros.input_guard import Rejection, check_finite_scores, decode_image_msg
from vis_node.ros.instances_msg import decode_instances, instances_to_msg, score_values
from vis_node.ros.params import SEMANTIC
from vis_node.ros.qos import LATCHED
from vis_node.ros.stamps import StampMatcher
from vis_node.tracking.unification import OnlineUnifier

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
        self._unifier: OnlineUnifier | None = None
        self._matcher: StampMatcher[tuple[np.ndarray, dict[int, InstanceLabel]], Any] = (
            StampMatcher()
        )
        self._class_names: tuple[str, ...] = ()

    def configure_node(self) -> None:
        self._class_names = tuple(self.config["class_names"])
        if len(self._class_names) < 2:
            raise ValueError("class_names needs 'background' and at least one class")
        self._unifier = OnlineUnifier(
            margin=float(self.config["margin"]), patience=int(self.config["patience"])
        )
        self._matcher = StampMatcher(int(self.config["match_capacity"]))
        create = self.create_lifecycle_publisher
        self._pubs = {
            "unified_instances": create(SalientInstanceArray, "unified_instances", self.qos),
            "instance_ids": create(Image, "instance_ids", self.qos),
            "semantic": create(Image, "semantic", self.qos),
            "label_map": create(LabelMap, "label_map", LATCHED),
            "overlay": create(Image, "overlay", self.qos),
        }

    def activate_node(self) -> None:
        self._matcher.clear()
        self.subscribe(SalientInstanceArray, "tracked_instances", self._on_instances, self.qos)
        self.subscribe(Image, "image", self._on_image, self.qos)

    def after_activate(self) -> None:
        header = Header(frame_id=self.config["expected_frame_id"])
        header.stamp = self.get_clock().now().to_msg()
        self._pubs["label_map"].publish(
            label_map_to_msg(self._class_names, header, self.config["model_name"])
        )

    def deactivate_node(self) -> None:
        self._matcher.clear()

    def cleanup_node(self) -> None:
        self._pubs = {}
        self._unifier = None

    def on_time_jump(self, topic: str, stamp_ns: int, back: bool) -> None:
        self._matcher.discard_outside(stamp_ns, newer=back)
        if topic == "tracked_instances":
            self.recover_node()

    def recover_node(self) -> None:
        if self._unifier is not None:
            self._unifier.reset()

    def _overlay_wanted(self) -> bool:
        return self._pubs["overlay"].get_subscription_count() > 0

    def _on_instances(self, msg: SalientInstanceArray) -> None:
        if not self.check_header("tracked_instances", msg.header):
            return
        rejection = check_finite_scores(score_values(msg))
        if rejection is None:
            rejection = self._check_class_count(msg)
        if rejection is not None:
            self.reject("tracked_instances", rejection)
            return
        if self._unifier is None:
            return
        with self.stats.stage("decode_instances"):
            instances, rejection = decode_instances(
                msg, len(self._class_names), self.budget
            )
        if rejection is not None:
            self.reject("tracked_instances", rejection)
            return
        instances = instances.select(instances.track_ids > 0)
        with self.stats.stage("unification"):
            labels, confidence = self._unifier.update(
                instances.track_ids, foreground_probs(instances.class_probs)
            )
            ids, classes = label_maps(instances, labels)
        self.stats.set_gauge("active_tracks", len(instances))
        with self.stats.stage("publish"):
            self._pubs["unified_instances"].publish(
                instances_to_msg(
                    instances,
                    msg.header,
                    self._class_names,
                    mask_encoding=self.config["mask_encoding"],
                    labels=labels,
                    confidence=confidence,
                )
            )
            self._pubs["instance_ids"].publish(image_to_msg(ids, "mono16", msg.header))
            self._pubs["semantic"].publish(image_to_msg(classes, "mono8", msg.header))
        self.stats.frame_done()
        if self._overlay_wanted():
            tags = {
                int(t): InstanceLabel(self._class_names[int(c)], float(s))
                for t, c, s in zip(instances.track_ids, labels, confidence)
                if t > 0
            }
            self._publish_overlays(self._matcher.add_left(stamp_ns(msg.header), (ids, tags)))

    def _check_class_count(self, msg: SalientInstanceArray) -> Rejection | None:
        count = len(self._class_names)
        for item in msg.instances:
            if len(item.class_scores) not in (0, count) or item.class_id >= count:
                return Rejection(
                    "size_mismatch",
                    f"an instance has {len(item.class_scores)} class scores (class id "
                    f"{item.class_id}) but the label map has {count} classes; set the "
                    "class_names parameter to the model's label set",
                )
        return None

    def _on_image(self, msg: Image) -> None:
        if self._overlay_wanted() and self.check_header("image", msg.header):
            self._publish_overlays(self._matcher.add_right(stamp_ns(msg.header), msg))

    def _publish_overlays(self, pairs: list[tuple[int, Any, Image]]) -> None:
        for _, (ids, tags), image_msg in pairs:
            image, rejection = decode_image_msg(image_msg, self.budget.max_image_pixels)
            if rejection is not None:
                self.reject("image", rejection)
                continue
            if image.shape[:2] != ids.shape:
                self.reject(
                    "image",
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
