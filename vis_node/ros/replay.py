"""Replay rosbag2 image topics through the live VSIS graph and record what it publishes.

:class:`Replayer` is a plain rclpy node: it publishes each bag frame on ``image``
(``sensor_msgs/Image`` rgb8, reliable QoS), listens to every VSIS output topic,
records them raw into an output bag (``OUT/record``), rebuilds the ``vsis run``
output layout from the unified instances and label images, and keeps a
:class:`~vis_node.replay.latency.LatencyLog` from the header stamps. Arrival times are
the middleware's reception times (``received_timestamp`` of the message info, system
clock), so the recorder's own Python work never delays them.

Pacing: ``max`` publishes the next frame once the graph delivered the previous one
(nothing dropped by design); ``stream`` keeps one frame waiting for the model, as a
camera faster than the model does, without dropping any (the next frame goes out once
the perception node published the instances of the one before the last: the model is
never idle, and tracking and unification of one frame overlap the model on the next; the
replay's perception node takes reliable input and ``frames: every``, so it queues frames
in order and the waiting frame is never replaced); ``recorded`` follows the bag's clock
and the perception node takes the newest frame, so a slow graph drops frames as a live
robot would. The report also carries each node's own mean stage times from its last
``/diagnostics`` status (``nodes``), to split the time between the stages' arrivals into
work and transport.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm
from ament_index_python import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore, get_types_from_msg
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vis_msgs.msg import LabelMap, SalientInstanceArray

from vis_node import DEFAULT_MODEL
from vis_node.pipeline.outputs import OUTPUT_ENTRIES
from vis_node.replay.bags import bag_sequences, check_bags, replay_frames, write_ground_truth
from vis_node.replay.latency import PACES, LatencyLog
from vis_node.ros import qos
from vis_node.ros.graph_process import graph_params, params_files, start_graph, stop_graph
from vis_node.ros.dds_profile import use_profile
from vis_node.ros.diagnostics import status_cpu, status_latencies
from vis_node.ros.spinning import SpinStep
from vis_node.ros.stamps import cdr_header_stamp_ns
from vis_node.ros.convert import image_to_msg
from vis_node.ros.instances_msg import frame_result_from_msgs
from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame
from vis_node.structures.results import FrameResult

STAGES = ("instances", "tracked_instances", "unified_instances")
"""Output topics in pipeline order (latency stages)."""

DISCOVERY_SETTLE_S = 1.0
"""Seconds spun after the graph looks ready, so the nodes' own matches complete too."""

SPIN_PERIOD_S = 0.1
"""Longest wait of one executor turn, seconds. A turn returns as soon as a message is
handled; a short period only adds idle turns, each costing about half a millisecond of
CPU (rclpy rebuilds its wait set) that the graph's processes then lack."""

LABEL_TOPICS = ("instance_ids", "semantic")
"""Label images of the semantic node, recorded and written as PNGs."""

REPLAY_OUTPUTS: tuple[str, ...] = (
    *OUTPUT_ENTRIES, "record", "gt", "gt_semantics", "latency.json", "replay_params.yaml"
)
"""What :func:`run_replay` writes directly under its output folder."""

_MSG_TYPES: dict[str, Any] = {
    "instances": SalientInstanceArray,
    "tracked_instances": SalientInstanceArray,
    "unified_instances": SalientInstanceArray,
    "instance_ids": Image,
    "semantic": Image,
    "label_map": LabelMap,
    "/diagnostics": DiagnosticArray,
}
_ROS_TYPE_NAMES = {
    SalientInstanceArray: "vis_msgs/msg/SalientInstanceArray",
    Image: "sensor_msgs/msg/Image",
    LabelMap: "vis_msgs/msg/LabelMap",
    DiagnosticArray: "diagnostic_msgs/msg/DiagnosticArray",
}


def _typestore() -> Any:
    """A rosbags typestore that knows the ROS 2 Jazzy and ``vis_msgs`` definitions."""
    store = get_typestore(Stores.ROS2_JAZZY)
    msg_dir = Path(get_package_share_directory("vis_msgs")) / "msg"
    types: dict[str, Any] = {}
    for path in sorted(msg_dir.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"vis_msgs/msg/{path.stem}"))
    store.register(types)
    return store


@dataclass
class _Pending:
    """Serialised messages of one frame gathered until its outputs are complete; they
    are deserialised once the replay is over (:func:`frame_result`), so that converting
    them never takes CPU from the graph being measured."""

    frame: Frame
    messages: dict[str, bytes] = field(default_factory=dict)

    def complete(self) -> bool:
        return all(t in self.messages for t in ("unified_instances", *LABEL_TOPICS))


class Replayer(Node):
    """Publishes frames into the graph and collects its outputs.

    Parameters
    ----------
    record_path:
        Output bag folder for every received VSIS topic (mcap).
    """

    def __init__(self, record_path: Path, **kwargs: Any) -> None:
        super().__init__("vsis_replay", **kwargs)
        self.image_pub = self.create_publisher(Image, "image", qos.RELIABLE)
        self.latency = LatencyLog(stages=STAGES)
        self.node_latency: dict[str, dict[str, float]] = {}
        self.node_cpu: dict[str, float] = {}
        self.pending: dict[int, _Pending] = {}
        self.class_names: tuple[str, ...] = ()
        self._store = _typestore()
        self._writer = Writer(record_path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        for topic, msg_type in _MSG_TYPES.items():
            profile = qos.LATCHED if topic == "label_map" else qos.RELIABLE
            if topic == "/diagnostics":
                profile = 10
            self._connections[topic] = self._writer.add_connection(
                topic if topic.startswith("/") else f"/{topic}",
                _ROS_TYPE_NAMES[msg_type],
                typestore=self._store,
            )
            self.create_subscription(
                msg_type, topic, self._callback(topic, msg_type), profile, raw=True
            )

    def _callback(self, topic: str, msg_type: Any) -> Any:
        def receive(raw: bytes, info: dict[str, Any]) -> None:
            now = info.get("received_timestamp", 0) / 1e9 or time.time()
            stamp = cdr_header_stamp_ns(raw)
            self._writer.write(self._connections[topic], stamp or time.time_ns(), raw)
            if topic == "label_map":
                msg = deserialize_message(raw, msg_type)
                self.class_names = tuple(c.class_name for c in msg.classes)
                return
            if topic == "/diagnostics":
                status = deserialize_message(raw, msg_type)
                self.node_latency.update(status_latencies(status))
                self.node_cpu.update(status_cpu(status))
                return
            if topic in STAGES:
                self.latency.arrive(topic, stamp, now)
            pending = self.pending.get(stamp)
            if pending is not None and topic in ("unified_instances", *LABEL_TOPICS):
                pending.messages.setdefault(topic, raw)

        return receive

    def graph_ready(self) -> bool:
        """Whether all three nodes are up and wired: every hop has its subscriber.

        ``image`` is read by the perception and tracking nodes (the semantic node
        only while someone subscribes to ``overlay``); ``instances`` and
        ``tracked_instances`` by the next node and this recorder; the label map arrives
        once the semantic node is active.
        """
        return (
            self.count_subscribers("image") >= 2
            and self.count_subscribers("instances") >= 2
            and self.count_subscribers("tracked_instances") >= 2
            and self.count_publishers("unified_instances") >= 1
            and self.count_publishers("instance_ids") >= 1
            and bool(self.class_names)
        )

    def publish(self, frame: Frame, stamp: int, message: Image) -> None:
        """Publish ``message`` (:func:`camera_message` of ``frame`` stamped ``stamp`` ns)
        and start waiting for its outputs."""
        self.pending[stamp] = _Pending(frame)
        self.latency.publish(stamp, time.time())
        self.image_pub.publish(message)

    def close(self) -> None:
        """Finish the recorded bag."""
        self._writer.close()


def camera_message(frame: Frame, stamp: int) -> Image:
    """The ``rgb8`` camera message of ``frame``, stamped ``stamp`` ns."""
    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    return image_to_msg(frame.image, "rgb8", header)


def frame_result(pending: _Pending) -> FrameResult:
    """Rebuild the ``vsis run`` per-frame record from the graph's messages."""
    messages = {t: deserialize_message(raw, _MSG_TYPES[t]) for t, raw in pending.messages.items()}
    return frame_result_from_msgs(
        pending.frame, messages["unified_instances"], messages["instance_ids"], messages["semantic"]
    )


@dataclass(frozen=True)
class ReplaySettings:
    """How to run a replay.

    Attributes
    ----------
    model:
        Model for the perception node (shipped name, ``model.pt`` path, or
        ``gt:<DAVIS root>`` oracle).
    graph:
        ``composed`` (one process), ``processes`` (three) or ``external`` (a graph the
        user started, e.g. with ``ros2 launch``; its QoS must be ``reliable``, and its
        perception node's ``frames: every`` for every frame to come out).
    pace:
        ``max``: the next frame once the previous one is delivered (each frame crosses
        an idle graph: latency without queueing); ``stream``: one frame always waiting
        for the model, as with a live camera faster than the model, and no frame
        dropped, so the model never idles and tracking and unification of one frame
        overlap the model on the next (throughput); ``recorded``: the bag's clock.
    topic:
        Image topic of the bag (needed when it has several).
    params:
        Params YAMLs for the graph (default: the package's ``launch/config``).
    frame_timeout_s:
        Longest wait for one frame's outputs, seconds.
    startup_timeout_s:
        Longest wait for the graph to come up (model loading included), seconds.
    """

    model: str = DEFAULT_MODEL
    graph: str = "composed"
    pace: str = "max"
    topic: str | None = None
    params: tuple[Path, ...] = ()
    frame_timeout_s: float = 30.0
    startup_timeout_s: float = 180.0

    def __post_init__(self) -> None:
        if self.pace not in PACES:
            raise ValueError(f"pace={self.pace!r}: choose one of {', '.join(PACES)}")


def _spin_until(executor: Any, done: Any, timeout_s: float) -> bool:
    """Handle messages until ``done()`` or ``timeout_s`` seconds passed; returns ``done()``."""
    deadline = time.monotonic() + timeout_s
    step = SpinStep(executor)
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        step(min(left, SPIN_PERIOD_S))
    return bool(done())


def run_replay(bag: Path, out: Path, settings: ReplaySettings) -> dict[str, Any]:
    """Replay ``bag`` (or a folder of bags) through the graph; write outputs to ``out``.

    Writes ``out/instances``, ``out/semantics``, ``out/results.json``,
    ``out/overlay/<seq>.mp4`` (the ``vsis run`` layout), ``out/gt`` (and
    ``out/gt_semantics``) when the bag carries ground truth, ``out/record`` (every
    output topic, mcap) and ``out/latency.json``.

    Returns
    -------
    dict
        The latency report (see :meth:`LatencyLog.report`) plus ``"nodes"`` (each node's
        stage times, :func:`~vis_node.ros.diagnostics.status_latencies`),
        ``"nodes_cpu_ms_per_frame"`` (CPU of each node's process per frame,
        :func:`~vis_node.ros.diagnostics.status_cpu`), ``"replay_cpu_ms_per_frame"``
        (this process's own CPU per frame while the frames were in flight: the camera
        side, which shares the machine with the graph) and ``"frames_written"``.

    Raises
    ------
    InputDataError
        Missing or unreadable bags, a bag without frames, or ``out/record`` already
        there (all before the graph starts).
    RuntimeError
        When the graph does not come up or exits early; the message says how to see why.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from vis_node.io.ytvis_json import write_json
    from vis_node.pipeline.outputs import OutputWriter

    bags = bag_sequences(bag)
    check_bags(bags, settings.topic)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "record").exists():
        raise InputDataError(
            out / "record", "a recording is already there; replay into a new or empty folder"
        )
    use_profile()  # before the graph starts and this process joins it
    child = None
    context = Context()
    node: Replayer | None = None
    executor: SingleThreadedExecutor | None = None
    try:
        if settings.graph != "external":
            override = graph_params(out, settings.model, settings.pace)
            child = start_graph(settings.graph, params_files(list(settings.params), override))
        rclpy.init(context=context)
        node = Replayer(out / "record", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        up = _spin_until(
            executor,
            lambda: node.graph_ready() or (child is not None and child.poll() is not None),
            settings.startup_timeout_s,
        )
        if not up or not node.graph_ready():
            raise RuntimeError(
                "the VSIS graph did not come up (no label map / subscribers within "
                f"{settings.startup_timeout_s:.0f} s); run `vsis ros pipeline` by hand to see its log"
            )
        # The nodes discover each other about when this node discovers them: settle.
        _spin_until(executor, lambda: False, DISCOVERY_SETTLE_S)
        writer = OutputWriter(out, node.class_names, metadata={"source": str(bag), "graph": settings.graph})
        last_stamp = 0
        replay_cpu_s, replayed = 0.0, 0
        with tqdm(desc="vsis replay", unit="frame", total=0) as progress:
            for path in bags:
                write_ground_truth(path, out)
                frames = list(replay_frames(path, settings.topic))
                progress.total += len(frames)
                progress.set_postfix_str(path.name)
                shift = max(0, last_stamp + 1 - frames[0].stamp_ns)
                stamps = [f.stamp_ns + shift for f in frames]
                start, cpu_start = time.monotonic(), time.process_time()
                upcoming = camera_message(frames[0], stamps[0])
                for index, (frame, stamp) in enumerate(zip(frames, stamps)):
                    message = upcoming
                    if settings.pace == "recorded":
                        due = start + (stamp - stamps[0]) / 1e9
                        _spin_until(executor, lambda: False, due - time.monotonic())
                    node.publish(frame, stamp, message)
                    if index + 1 < len(frames):
                        # Built while the graph works, as a camera driver hands frames over
                        # ready-made: converting pixels is not the graph's time.
                        upcoming = camera_message(frames[index + 1], stamps[index + 1])
                    if settings.pace == "max":
                        _spin_until(executor, node.pending[stamp].complete, settings.frame_timeout_s)
                    elif settings.pace == "stream" and index > 0:
                        # One frame always waits for the model, as from a camera faster
                        # than it: the next goes out once the model published the one
                        # before this, so the model never waits on a hop. The perception
                        # node queues frames in order (``frames: every``).
                        previous = stamps[index - 1]
                        _spin_until(executor, lambda: node.latency.reached(STAGES[0], previous),
                                    settings.frame_timeout_s)
                    progress.update()
                # Outputs come in frame order, so once the last frame's are here every
                # frame the graph ran is done; the others were skipped (pace recorded:
                # the newest frame wins), and waiting for them would only time out.
                _spin_until(executor, node.pending[stamps[-1]].complete, settings.frame_timeout_s)
                replay_cpu_s += time.process_time() - cpu_start
                replayed += len(frames)
                for stamp in stamps:
                    pending = node.pending.pop(stamp)
                    if pending.complete():
                        writer.write(frame_result(pending))
                last_stamp = stamps[-1]
        writer.close()
        report = {
            **node.latency.report(),
            "nodes": node.node_latency,
            "nodes_cpu_ms_per_frame": node.node_cpu,
            "replay_cpu_ms_per_frame": 1000.0 * replay_cpu_s / max(replayed, 1),
            "frames_written": writer.frames_written,
        }
        write_json(out / "latency.json", report)
        return report
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        if executor is not None:
            executor.shutdown()
        context.try_shutdown()
        stop_graph(child)
