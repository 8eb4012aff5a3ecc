"""Lifecycle plumbing shared by the three VSIS nodes.

:class:`VsisNode` declares the node's parameters (from its
:class:`~vis_node.ros.params.NodeSpec`), turns configure / activate / deactivate /
cleanup into four small hooks, publishes ``/diagnostics``, counts rejected input and
checks input headers. Every subscription and timer callback runs under a
:class:`~vis_node.ros.input_guard.CallbackGuard`: no exception raised while handling a
message ends the node (it is logged, counted and the message skipped, then
:meth:`VsisNode.recover_node` runs). Input stamps go through a
:class:`~vis_node.ros.stamps.StampClock` per topic: a clock jump is logged, counted and
followed (:meth:`VsisNode.on_time_jump` drops state of the old time line), and frames
that never arrived are counted. A hook that raises one of :data:`CONFIG_ERRORS` (e.g.
:class:`~vis_node.structures.errors.InputDataError` for a missing or corrupt model) fails its
transition with an error log instead of crashing the process, so the node stays
alive (unconfigured or inactive) and can be fixed and transitioned again.
:func:`run_standalone` is the ``main`` of each executable (executors and the spin loop:
:mod:`vis_node.ros.spinning`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Header

from vis_node.structures.errors import InputDataError
from vis_node.ros.convert import msg_to_label_map
from vis_node.ros.dds_profile import use_profile
from vis_node.ros.diagnostics import DIAGNOSTICS_TOPIC, NodeStats, stats_to_status, status_array
from vis_node.ros.input_guard import (
    CLOCK_EVENTS,
    Budget,
    CallbackGuard,
    Rejection,
    RejectionCounter,
    check_frame_id,
)
from vis_node.ros.node_params import declare, read
from vis_node.ros.params import OPENCV_THREADS, NodeSpec
from vis_node.ros.qos import INPUT_PRESETS, OUTPUT_PRESETS
from vis_node.ros.spinning import spin_until_stopped, standalone_executor
from vis_node.ros.stamps import StampClock, StampVerdict
from vis_node.structures.label_map import LabelMap

CONFIG_ERRORS = (InputDataError, ValueError, OSError, RuntimeError)
"""Errors of a hook that fail a transition (logged) rather than crash the node."""


def stamp_ns(header: Header) -> int:
    """Header stamp in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class VsisNode(LifecycleNode):
    """Base of the VSIS lifecycle nodes.

    Parameters
    ----------
    spec:
        The node's interface table.
    node_name:
        ROS node name; default ``spec.node_name``.
    **kwargs:
        Passed to ``rclpy.lifecycle.LifecycleNode`` (``context``, ``cli_args``, ...).

    Subclasses implement ``configure_node`` (read ``self.config``, create publishers),
    ``activate_node`` (load models, subscribe), ``deactivate_node`` (unsubscribe, free)
    and may override ``after_activate`` (runs once publishers are enabled),
    ``on_time_jump`` (an input's clock jumped) and ``recover_node`` (a callback failed).
    """

    def __init__(self, spec: NodeSpec, node_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(node_name or spec.node_name, **kwargs)
        self.spec = spec
        declare(self, spec)
        self.config: dict[str, Any] = {}
        self.input_qos: QoSProfile = INPUT_PRESETS["sensor"]
        self.output_qos: QoSProfile = OUTPUT_PRESETS["reliable"]
        self.budget = Budget.from_config(spec.defaults())
        self.stats = NodeStats()
        self.rejections = RejectionCounter(self.get_logger().warning)
        self.clock_events = RejectionCounter(
            self.get_logger().warning, kinds=CLOCK_EVENTS, action="resynchronised"
        )
        self.guard = CallbackGuard(self.rejections, self.get_logger().error, self.recover_node)
        self.active = False
        self._diagnostics_pub: Any = None
        self._diagnostics_timer: Any = None
        self._subscriptions_made: list[Any] = []
        self._stamp_clocks: dict[str, StampClock] = {}

    # hooks -----------------------------------------------------------------------

    def configure_node(self) -> None:
        """Create publishers and state from ``self.config``."""

    def activate_node(self) -> None:
        """Load what the node needs and subscribe (use :meth:`subscribe`)."""

    def after_activate(self) -> None:
        """Run once the lifecycle publishers are enabled."""

    def deactivate_node(self) -> None:
        """Stop work and free what :meth:`activate_node` loaded."""

    def cleanup_node(self) -> None:
        """Forget what :meth:`configure_node` created (the base then destroys the publishers)."""

    def on_time_jump(self, topic: str, stamp_ns: int, back: bool) -> None:
        """The clock of ``topic`` jumped to ``stamp_ns`` (``back``: into the past).

        Drop what belongs to the old time line (waiting messages, tracks whose identity
        cannot survive the jump); the message at ``stamp_ns`` is processed next.
        """

    def recover_node(self) -> None:
        """Restore a consistent state after an unexpected error in a callback."""

    # helpers ---------------------------------------------------------------------

    def subscribe(self, msg_type: Any, topic: str, callback: Any, qos: QoSProfile) -> Any:
        """Create a guarded subscription that :meth:`on_deactivate` destroys; returns it."""
        guarded = self.guard.wrap(topic, callback)
        subscription = self.create_subscription(msg_type, topic, guarded, qos)
        self._subscriptions_made.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Any) -> None:
        """Destroy a subscription made by :meth:`subscribe` before deactivation."""
        self._subscriptions_made.remove(subscription)
        self.destroy_subscription(subscription)

    def reject(self, topic: str, rejection: Rejection) -> None:
        """Count and (rate-limited) warn about a skipped message."""
        self.rejections.report(topic, rejection)

    def receive_label_map(self, msg: Any, current: LabelMap | None) -> LabelMap | None:
        """The label map of a ``label_map`` message when it differs from ``current``.

        A malformed message is counted and skipped; a new map is logged once. Returns
        ``None`` when there is nothing new to take.
        """
        try:
            label_map = msg_to_label_map(msg)
        except ValueError as exc:
            self.reject("label_map", Rejection("bad_label_map", str(exc)))
            return None
        if label_map == current:
            return None
        self.get_logger().info(
            f"label map of model '{label_map.model_name}' ({len(label_map)} classes)"
        )
        return label_map

    def check_header(self, topic: str, header: Header, *, every_frame: bool = True) -> bool:
        """Frame-id and stamp checks of an input; ``False`` (counted) to skip it.

        A stamp that jumps (see :class:`~vis_node.ros.stamps.StampClock`) is accepted:
        the jump is counted and logged, and :meth:`on_time_jump` runs first. Gaps in the
        stamps count as frames that never arrived only where the topic carries
        ``every_frame`` of its source (a camera); a stream of results (``instances``,
        ``tracked_instances``) carries only the frames the model ran, and the frames a
        busy model skipped are counted by the perception node, as dropped.
        """
        rejection = check_frame_id(header.frame_id, self.config["expected_frame_id"])
        if rejection is not None:
            self.reject(topic, rejection)
            return False
        stamp = stamp_ns(header)
        clock = self._stamp_clocks.setdefault(topic, StampClock())
        last = clock.last_ns
        check = clock.check(stamp)
        if not check.accepted:
            detail = (
                f"stamp {stamp} ns was already processed"
                if check.verdict is StampVerdict.REPEATED
                else f"stamp {stamp} ns is {-check.delta_ns / 1e9:.3f} s older than the last "
                f"one ({last} ns); a late message is skipped, a source that restarted is "
                f"followed after {clock.resync_after} such stamps"
            )
            self.reject(topic, Rejection(check.verdict.value, detail))
            return False
        if check.missing and every_frame:
            self.stats.add_missing(topic, check.missing)
        if check.jumped:
            back = check.verdict is StampVerdict.JUMP_BACK
            self.clock_events.report(
                topic,
                Rejection(
                    check.verdict.value,
                    f"stamp moved {check.delta_ns / 1e9:+.3f} s (from {last} to {stamp} ns); "
                    "starting a new time line",
                ),
            )
            self.on_time_jump(topic, stamp, back)
        return True

    def publish_diagnostics(self) -> None:
        """Publish the node's statistics on ``/diagnostics``."""
        if self._diagnostics_pub is None:
            return
        status = stats_to_status(
            self.stats.snapshot(self.rejections.counts, self.clock_events.counts),
            name=f"{self.get_name()}: {self.spec.kind}",
            hardware_id=self.get_fully_qualified_name(),
            active=self.active,
        )
        self._diagnostics_pub.publish(status_array(status, self.get_clock().now().to_msg()))

    # lifecycle -------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config = read(self, self.spec)
            self.input_qos = INPUT_PRESETS[self.config["input_qos"]]
            self.output_qos = OUTPUT_PRESETS[self.config["output_qos"]]
            self.budget = Budget.from_config(self.config)
            self.rejections.period_s = float(self.config["warn_period"])
            self.clock_events.period_s = float(self.config["warn_period"])
            if OPENCV_THREADS.name in self.config:
                # OpenCV reads a negative count as "its default" (0 would mean 1 as well).
                cv2.setNumThreads(int(self.config[OPENCV_THREADS.name]) or -1)
            self.configure_node()
        except CONFIG_ERRORS as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self._destroy_publishers()
            return TransitionCallbackReturn.FAILURE
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._diagnostics_timer = self.create_timer(
            float(self.config["diagnostics_period"]),
            self.guard.wrap("diagnostics", self.publish_diagnostics),
        )
        self.get_logger().info(
            f"configured (inputs {self.config['input_qos']}, outputs {self.config['output_qos']} QoS)"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stamp_clocks.clear()
        try:
            self.activate_node()
        except CONFIG_ERRORS as exc:
            self.get_logger().error(
                f"activate failed, staying inactive: {exc}. Fix the parameter and activate again."
            )
            self._unsubscribe()
            self.deactivate_node()
            return TransitionCallbackReturn.FAILURE
        result = super().on_activate(state)
        self.active = True
        self.after_activate()
        self.get_logger().info("active")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self._unsubscribe()
        self.deactivate_node()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup_node()
        self._destroy_publishers()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self.active = False
            self._unsubscribe()
            self.deactivate_node()
        return TransitionCallbackReturn.SUCCESS

    def _unsubscribe(self) -> None:
        for subscription in self._subscriptions_made:
            self.destroy_subscription(subscription)
        self._subscriptions_made = []

    def _destroy_publishers(self) -> None:
        for publisher in list(self._managed_entities):
            if hasattr(publisher, "publish"):
                self.destroy_lifecycle_publisher(publisher)
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        if self._diagnostics_pub is not None:
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_pub = None


def autostart(node: VsisNode) -> bool:
    """Configure and activate ``node``; returns whether it is active."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def init_ros(args: Sequence[str] | None) -> None:
    """``rclpy.init`` for an executable, leaving SIGINT / SIGTERM to :func:`spin_until_stopped`.

    rclpy's own handler would shut the context down before the nodes could run their
    deactivate transition (which publishes on the context). The VSIS Fast DDS profile
    applies unless another was chosen (:func:`~vis_node.ros.dds_profile.use_profile`).
    """
    use_profile()
    rclpy.init(
        args=list(sys.argv if args is None else args),
        signal_handler_options=SignalHandlerOptions.NO,
    )


def run_standalone(node_class: type[VsisNode], args: Sequence[str] | None = None) -> int:
    """Run one node in its own process until Ctrl-C, SIGTERM or shutdown.

    Parameters
    ----------
    node_class:
        A :class:`VsisNode` subclass constructible without arguments.
    args:
        Command line (``--ros-args --params-file YAML -r image:=/camera/image ...``);
        default ``sys.argv``.

    Returns
    -------
    int
        Exit code 0. A failed autostart leaves the node running but inactive (log says
        why), so a lifecycle manager can retry; it never exits into a restart loop.
    """
    init_ros(args)
    node = node_class()
    executor = standalone_executor(str(node.get_parameter("executor").value))
    executor.add_node(node)
    if node.get_parameter("autostart").value and not autostart(node):
        node.get_logger().error("autostart failed; the node stays up, waiting for a transition")
    try:
        spin_until_stopped(executor)
    finally:
        if node.active:
            node.trigger_deactivate()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
