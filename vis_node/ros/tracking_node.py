"""Tracking node: per-frame instances in, instances with stable track ids out.

Subscribes ``instances`` (``vis_msgs/SalientInstanceArray``) and the camera image
(``image`` or ``image/compressed``) it was computed from, pairs them by exact header
stamp (:class:`~vis_node.ros.stamps.StampMatcher`; optical flow and colour
embeddings need the pixels) and publishes ``tracked_instances`` with the header of
the input. Tracking is :class:`vis_node.tracking.tracker.OnlineTracker`.

Run: ``vsis ros tracking --params launch/config/tracking.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sensor_msgs.msg import CompressedImage, Image
from vis_msgs.msg import SalientInstanceArray

from vis_node.ros.base_node import VsisNode, run_standalone, stamp_ns
from vis_node.ros.input_guard import Rejection, check_finite_scores, decode_image_msg
from vis_node.ros.instances_msg import decode_instances, instances_to_msg, score_values
from vis_node.ros.params import TRACKING
from vis_node.ros.stamps import StampMatcher
from vis_node.tracking.tracker import OnlineTracker, TrackState
from vis_node.tracking.types import Instances

Pending = tuple[SalientInstanceArray, Instances]
"""An instance message and its decoded instances, waiting for their image."""


def build_tracker(config: dict[str, Any]) -> OnlineTracker:
    """The tracker described by the node's parameters."""
    from vis_node.tracking.flow import FLOW_ESTIMATORS
    from vis_node.tracking.tracker import DEFAULT, TrackerConfig

    return OnlineTracker(
        TrackerConfig(
            propagation_iou=float(config["propagation_iou"]),
            min_hits=int(config["min_hits"]),
            max_lost_age=int(config["max_lost_age"]),
        ),
        flow=None if config["flow"] == "none" else FLOW_ESTIMATORS[config["flow"]](),
        association=DEFAULT if config["reid"] else None,
    )


class TrackingNode(VsisNode):
    """Lifecycle node assigning track ids.

    Parameters
    ----------
    node_name:
        ROS node name (default ``vsis_tracking``).
    **kwargs:
        Passed to ``rclpy.lifecycle.LifecycleNode``.
    """

    def __init__(self, node_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(TRACKING, node_name, **kwargs)
        self._publisher: Any = None
        self._tracker: OnlineTracker | None = None
        self._matcher: StampMatcher[Pending, Any] = StampMatcher()
        self._frame_shape: tuple[int, ...] | None = None

    def configure_node(self) -> None:
        self._tracker = build_tracker(self.config)
        self._matcher = StampMatcher(int(self.config["match_capacity"]))
        self._publisher = self.create_lifecycle_publisher(
            SalientInstanceArray, "tracked_instances", self.qos
        )

    def activate_node(self) -> None:
        self._matcher.clear()
        self.subscribe(SalientInstanceArray, "instances", self._on_instances, self.qos)
        self.subscribe(Image, "image", self._on_image, self.qos)
        self.subscribe(CompressedImage, "image/compressed", self._on_image, self.qos)

    def deactivate_node(self) -> None:
        self._matcher.clear()

    def cleanup_node(self) -> None:
        self._tracker = None
        self._frame_shape = None
        self._publisher = None

    def _on_instances(self, msg: SalientInstanceArray) -> None:
        if not self.check_header("instances", msg.header):
            return
        rejection = check_finite_scores(score_values(msg))
        if rejection is None:
            with self.stats.stage("decode_instances"):
                instances, rejection = decode_instances(msg)
        if rejection is not None:
            self.reject("instances", rejection)
            return
        self._handle(self._matcher.add_left(stamp_ns(msg.header), (msg, instances)))

    def _on_image(self, msg: Image | CompressedImage) -> None:
        topic = "image" if isinstance(msg, Image) else "image/compressed"
        if self.check_header(topic, msg.header):
            self._handle(self._matcher.add_right(stamp_ns(msg.header), msg))

    def _handle(self, pairs: list[tuple[int, Pending, Any]]) -> None:
        self.stats.set_dropped(self._matcher.discarded)
        for _, (msg, instances), image_msg in pairs:
            self._track(msg, instances, image_msg)

    def _track(self, msg: SalientInstanceArray, instances: Instances, image_msg: Any) -> None:
        topic = "image" if isinstance(image_msg, Image) else "image/compressed"
        with self.stats.stage("decode"):
            image, rejection = decode_image_msg(image_msg)
        if rejection is not None:
            self.reject(topic, rejection)
            return
        if instances.image_size != image.shape[:2]:
            self.reject(
                "instances",
                Rejection(
                    "size_mismatch",
                    f"instances are {instances.image_size} but the image is {image.shape[:2]}",
                ),
            )
            return
        if self._tracker is None:
            return
        if self._frame_shape is not None and self._frame_shape != image.shape:
            self.get_logger().warning(
                f"frame size changed from {self._frame_shape[:2]} to {image.shape[:2]}; "
                "starting new tracks"
            )
            self._tracker.reset()
        self._frame_shape = image.shape
        with self.stats.stage("tracking"):
            tracked = self._tracker.update(instances, image)
        active = sum(t.state is not TrackState.LOST for t in self._tracker.tracks)
        self.stats.set_gauge("active_tracks", active)
        with self.stats.stage("publish"):
            out = instances_to_msg(
                tracked,
                msg.header,
                _class_names(msg, tracked.class_probs.shape[1]),
                mask_encoding=self.config["mask_encoding"],
            )
            self._publisher.publish(out)
        self.stats.frame_done()


def _class_names(msg: SalientInstanceArray, count: int) -> list[str]:
    """Class names of a message's label map as far as its instances name them.

    Class ids no instance names are called ``class_<id>``; the semantic node
    publishes the authoritative label map.
    """
    names = [f"class_{i}" for i in range(count)]
    if count:
        names[0] = "background"
    for item in msg.instances:
        if item.class_id < count and item.class_name:
            names[item.class_id] = item.class_name
    return names


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracking_node`` executable."""
    return run_standalone(TrackingNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
