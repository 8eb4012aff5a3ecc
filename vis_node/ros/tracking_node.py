"""Tracking node: per-frame instances in, instances with stable track ids out.

Subscribes ``instances`` (``vis_msgs/SalientInstanceArray``), the perception node's
latched ``label_map`` (class names of the loaded model) and the camera image it was
computed from (``image`` or ``image/compressed``, by ``image_transport``), pairs
instances and images by exact header stamp (:class:`~vis_node.ros.stamps.StampMatcher`;
optical flow and colour embeddings need the pixels) and publishes
``tracked_instances`` with the header of the input. With ``motion_gate`` (on by
default) the SISO motion gate (:class:`vis_node.pipeline.stages.GateStage`) first keeps
the instances covering what moves, using the tracker's optical flow of the same frame
pair, and its SISO frame confidence fills ``frame_confidence`` (the input's without the
gate). Tracking is :class:`vis_node.pipeline.stages.TrackStage`; gate and tracker run
as in ``vsis run``. Instances are skipped (counted as
``no_label_map``) until the label map has arrived, and (``size_mismatch``) when their
class scores do not fit it.

The image of a frame arrives while the perception node is still working on it: once
the node knows that this frame is the next one tracked, it decodes it and computes its
optical flow to the last tracked frame
(:meth:`~vis_node.pipeline.stages.TrackStage.prefetch`) and the gate's moving region
(:meth:`~vis_node.pipeline.stages.GateStage.prefetch`); only selection and association
are left once the instances arrive. The next frame is the one the perception node
announced on ``inference_started`` (every result before it tracked), or, from a
perception node that announces nothing, an image that arrives while no other waits
(the model keeps pace with the camera). A model that skips camera frames leaves their
images unused; they are discarded undecoded and without counting: ``frames_dropped``
counts instance messages whose image never came. The announced frame's image is kept
whatever ``match_capacity``, and an announced frame whose instances never come counts
as ``frames_missing_instances``.

Run: ``vsis ros tracking --params launch/config/tracking.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vis_msgs.msg import LabelMap as LabelMapMsg
from vis_msgs.msg import SalientInstanceArray

from vis_node.pipeline.stages import Detections, GateStage, TrackStage
from vis_node.ros.base_node import VsisNode, run_standalone, stamp_ns
from vis_node.ros.input_guard import Rejection, check_finite_scores, decode_image_msg
from vis_node.ros.instances_msg import decode_instances, instances_to_msg, score_values
from vis_node.ros.label_maps import check_class_count, no_label_map
from vis_node.ros.params import TRACKING
from vis_node.ros.qos import LATCHED
from vis_node.ros.stamps import StampMatcher
from vis_node.ros.transport import image_subscription, image_topic
from vis_node.structures.label_map import LabelMap
from vis_node.tracking.tracker import OnlineTracker, TrackState
from vis_node.structures.instances import Instances

Pending = tuple[SalientInstanceArray, Instances]
"""An instance message and its decoded instances, waiting for their image."""


@dataclass
class CameraImage:
    """A camera message waiting for its instances, decoded on first use
    (:meth:`TrackingNode._pixels`): the images of frames a slower model skips are never
    decoded (at 1920 x 1080 about 3 ms each)."""

    msg: Image | CompressedImage | None
    pixels: np.ndarray | None = None


def build_tracker(config: dict[str, Any]) -> OnlineTracker:
    """The tracker described by the node's parameters (every :class:`TrackerConfig` field;
    its flow in a :class:`~vis_node.tracking.flow.LastPairFlow`, for prefetching).

    Raises
    ------
    ValueError
        A setting out of range; the message names it.
    """
    from vis_node.registry import FLOWS
    from vis_node.settings import from_values
    from vis_node.tracking.flow import LastPairFlow
    from vis_node.tracking.tracker import DEFAULT, TrackerConfig

    flow = FLOWS.build(config["flow"])
    return OnlineTracker(
        from_values(TrackerConfig, config),
        flow=None if flow is None else LastPairFlow(flow),
        association=DEFAULT if config["reid"] else None,
    )


def build_gate(config: dict[str, Any], tracker: OnlineTracker) -> GateStage | None:
    """The SISO motion gate the node's parameters ask for (every :class:`FusionConfig`
    field), sharing the tracker's flow (its own :class:`DISFlow` when the tracker has
    none); ``None`` with ``motion_gate: false``.

    Raises
    ------
    ValueError
        A setting out of range; the message names it.
    """
    from vis_node.settings import from_values
    from vis_node.tracking.flow import DISFlow, LastPairFlow
    from vis_node.tracking.fusion import FusionConfig
    from vis_node.tracking.motion_gate import MotionSaliencyGate

    fusion = from_values(FusionConfig, config)
    if not fusion.motion_gate:
        return None
    flow = tracker.flow if tracker.flow is not None else LastPairFlow(DISFlow())
    return GateStage(MotionSaliencyGate(flow=flow, theta=fusion.theta, beta2=fusion.beta2))


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
        self._stage: TrackStage | None = None
        self._gate: GateStage | None = None
        self._matcher: StampMatcher[Pending, CameraImage] = StampMatcher()
        self._prefetched: int | None = None
        """Stamp of the frame prefetched last."""
        self._announced = False
        """Whether the perception node announces its frames (then only those are
        prefetched)."""
        self.label_map: LabelMap | None = None

    def configure_node(self) -> None:
        tracker = build_tracker(self.config)
        self._gate = build_gate(self.config, tracker)
        self._stage = TrackStage(tracker)
        self._matcher = StampMatcher(int(self.config["match_capacity"]))
        self._publisher = self.create_lifecycle_publisher(
            SalientInstanceArray, "tracked_instances", self.output_qos
        )

    def activate_node(self) -> None:
        self._matcher.clear()
        self._prefetched = None
        self._announced = False
        self.subscribe(LabelMapMsg, "label_map", self._on_label_map, LATCHED)
        # Before the instances: an executor that finds both ready takes them in this order.
        self.subscribe(Header, "inference_started", self._on_started, self.input_qos)
        self.subscribe(SalientInstanceArray, "instances", self._on_instances, self.input_qos)
        msg_type, topic = image_subscription(self.config["image_transport"])
        self.subscribe(msg_type, topic, self._on_image, self.input_qos)

    def deactivate_node(self) -> None:
        self._matcher.clear()

    def cleanup_node(self) -> None:
        self._stage = None
        self._gate = None
        self._publisher = None
        self.label_map = None

    def _on_label_map(self, msg: LabelMapMsg) -> None:
        self.label_map = self.receive_label_map(msg, self.label_map) or self.label_map

    def _on_started(self, msg: Header) -> None:
        """The model started on this frame: keep its image until its instances come."""
        self._announced = True
        self._matcher.keep_right(stamp_ns(msg))
        self._prefetch_announced()

    def _prefetch_announced(self) -> None:
        """Prefetch the frame the model works on once its image is here and every result
        before it is tracked (so the flow is from the frame the tracker last saw)."""
        announced = self._matcher.next_kept()
        if announced is not None and announced[1] is not None:
            self._prefetch(*announced)

    def _pixels(self, camera: CameraImage) -> np.ndarray | None:
        """The pixels of ``camera``, decoded on the first call (a bad image is rejected
        then, once); ``None`` for a rejected image."""
        msg = camera.msg
        if msg is not None:
            with self.stats.stage("decode"):
                camera.pixels, rejection = decode_image_msg(msg, self.budget.max_image_pixels)
            camera.msg = None
            if rejection is not None:
                self.reject(image_topic(msg), rejection)
        return camera.pixels

    def _prefetch(self, stamp: int, camera: CameraImage) -> None:
        """Flow and moving region of the frame ``stamp`` against the last tracked one,
        once per frame."""
        if self._stage is None or stamp == self._prefetched:
            return
        image = self._pixels(camera)
        if image is None:
            return
        self._prefetched = stamp
        with self.stats.stage("prefetch"):
            self._stage.prefetch(image)
            if self._gate is not None:
                self._gate.prefetch(image)

    def on_time_jump(self, topic: str, stamp_ns: int, back: bool) -> None:
        self._matcher.discard_outside(stamp_ns, newer=back)
        self._prefetched = None
        self.recover_node()

    def recover_node(self) -> None:
        if self._stage is not None:
            self._stage.reset()
        if self._gate is not None:
            self._gate.reset()

    def _on_instances(self, msg: SalientInstanceArray) -> None:
        if not self.check_header("instances", msg.header, every_frame=False):
            return
        if self.label_map is None:
            self.reject("instances", no_label_map())
            return
        rejection = check_finite_scores(score_values(msg))
        if rejection is None:
            rejection = check_class_count(msg, self.label_map)
        if rejection is None:
            with self.stats.stage("decode_instances"):
                instances, rejection = decode_instances(msg, len(self.label_map), self.budget)
        if rejection is not None:
            self.reject("instances", rejection)
            return
        self._handle(self._matcher.add_left(stamp_ns(msg.header), (msg, instances)))

    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Keep the image for its instances (decoded, with its flow prefetched, now if
        it is the next frame tracked, else once it is needed; a rejected image still
        pairs with its instances, which are consumed with it). Without announcements
        the next frame is an image that arrives while no other waits."""
        if not self.check_header(image_topic(msg), msg.header):
            return
        camera = CameraImage(msg)
        if not self._announced and not self._matcher.waiting_right():
            self._prefetch(stamp_ns(msg.header), camera)
        self._handle(self._matcher.add_right(stamp_ns(msg.header), camera))

    def _handle(self, pairs: list[tuple[int, Pending, CameraImage]]) -> None:
        # Instances whose image never came are results lost here; images without
        # instances are frames the model skipped (the perception node counts those);
        # an announced frame whose instances never came is a result lost on the way.
        self.stats.set_dropped(self._matcher.discarded_left)
        if self._matcher.unanswered:
            self.stats.set_missing("instances", self._matcher.unanswered)
        for _, (msg, instances), camera in pairs:
            image = self._pixels(camera)
            if image is not None:
                self._track(msg, instances, image)
        self._prefetch_announced()  # an image came, or the tracker moved on

    def _track(self, msg: SalientInstanceArray, instances: Instances, image: np.ndarray) -> None:
        if instances.image_size != image.shape[:2]:
            self.reject(
                "instances",
                Rejection(
                    "size_mismatch",
                    f"instances are {instances.image_size} but the image is {image.shape[:2]}",
                ),
            )
            return
        track = self._stage
        if track is None or self.label_map is None:
            return
        if track.size_changed(image):
            self.get_logger().warning(
                f"frame size changed to {image.shape[:2]}; starting new tracks"
            )
        detections = Detections(instances, msg.frame_confidence)
        if self._gate is not None:
            with self.stats.stage("gate"):
                detections = self._gate(detections, image)
        with self.stats.stage("tracking"):
            tracked = track(detections.instances, image)
        active = sum(t.state is not TrackState.LOST for t in track.tracker.tracks)
        self.stats.set_gauge("active_tracks", active)
        with self.stats.stage("publish"):
            out = instances_to_msg(
                tracked,
                msg.header,
                self.label_map.names,
                mask_encoding=self.config["mask_encoding"],
                frame_confidence=detections.frame_confidence,
            )
            self._publisher.publish(out)
        self.stats.frame_done()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracking_node`` executable."""
    return run_standalone(TrackingNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
