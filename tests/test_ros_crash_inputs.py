"""The instance messages that used to kill the tracking node, through real DDS.

Each case sends a short stream of instance messages (with their camera images) to a
tracking node, one of them bad: a saliency of 0.0 (legal) or below 0 while a track is
alive; embeddings whose length changes (8 then 4, 64 from a model then the 128-long
colour fallback, one instance missing its embedding); NaN or infinite embedding
values; a frame stamped one hour ahead or a clock reset, followed by normal frames.
Before the fix every one of them raised out of the node's callback (here: out of
``spin_once``, failing the test) or starved it of output. Now each bad message is
either processed or counted as rejected, and the normal frames after it give output.

One ROS context and executor serve every case; each case gets a fresh tracking node
(a new tracker), so the cases do not depend on each other.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from rosutil import require_ros, ros_context, spin_until

pytestmark = pytest.mark.ros

HEIGHT, WIDTH = 64, 80
FRAME_ID = "camera_optical"
PERIOD_NS = 100_000_000
"""10 fps."""
START_NS = 1_000 * 1_000_000_000
HOUR_NS = 3_600 * 1_000_000_000
NAMES = ["background", "a", "b"]


@dataclass(frozen=True)
class Item:
    """One instance of a test frame: object 0 or 1, its saliency and embedding."""

    obj: int
    saliency: float = 0.9
    embedding: tuple[float, ...] = ()


@dataclass(frozen=True)
class Frame:
    """One instance message (and its image) at ``stamp_ns``; ``bad`` may be rejected."""

    stamp_ns: int
    items: tuple[Item, ...]
    bad: bool = False


@dataclass
class Case:
    """Frames before, the bad ones, and normal frames after (those must give output)."""

    before: list[Frame]
    bad: list[Frame]
    after: list[Frame]
    clock_events: dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    """Bad frames that must be rejected as ``invalid_data`` (the others may be processed)."""


def _stamp(index: int, offset: int = 0) -> int:
    return START_NS + offset + index * PERIOD_NS


def _vec(length: int, seed: int, *, poison: float | None = None) -> tuple[float, ...]:
    values = np.random.default_rng(seed).normal(size=length)
    if poison is not None:
        values[length // 2] = poison
    return tuple(float(v) for v in values)


def _frames(indices: range, embeddings: dict[int, tuple[float, ...]] | None = None, *,
            offset: int = 0, bad: bool = False) -> list[Frame]:
    embeddings = embeddings or {}
    return [
        Frame(_stamp(i, offset), tuple(Item(o, embedding=embeddings.get(o, ())) for o in (0, 1)),
              bad)
        for i in indices
    ]


def _with(frame_index: int, embeddings: dict[int, tuple[float, ...]] | None = None,
          **item_changes: Any) -> Frame:
    """Frame ``frame_index`` whose object 1 has ``item_changes`` (a bad frame)."""
    first = Item(0, embedding=(embeddings or {}).get(0, ()))
    return Frame(_stamp(frame_index), (first, Item(1, **item_changes)), bad=True)


E8 = {0: _vec(8, 1), 1: _vec(8, 2)}
E4 = {0: _vec(4, 1), 1: _vec(4, 2)}
E64 = {0: _vec(64, 3), 1: _vec(64, 4)}

CASES: dict[str, Case] = {
    "saliency_zero_with_live_track": Case(
        _frames(range(3)), [_with(3, saliency=0.0)], _frames(range(4, 6))
    ),
    "saliency_negative": Case(
        _frames(range(3)), [_with(3, saliency=-0.5)], _frames(range(4, 6)), invalid=1
    ),
    "saliency_slightly_negative": Case(
        _frames(range(3)), [_with(3, saliency=-0.01)], _frames(range(4, 6)), invalid=1
    ),
    "embedding_8_then_4": Case(
        _frames(range(3), E8), _frames(range(3, 5), E4, bad=True), _frames(range(5, 7), E4)
    ),
    "embedding_model_64_then_colour_fallback": Case(
        _frames(range(3), E64), _frames(range(3, 5), bad=True), _frames(range(5, 7))
    ),
    "embedding_colour_fallback_then_model_64": Case(
        _frames(range(3)), _frames(range(3, 5), E64, bad=True), _frames(range(5, 7), E64)
    ),
    "embedding_missing_after_ones_with": Case(
        _frames(range(3), E8),
        [Frame(_stamp(3), (Item(0, embedding=E8[0]), Item(1)), bad=True)],
        _frames(range(4, 6), E8),
    ),
    "embedding_nan": Case(
        _frames(range(3), E8),
        [_with(3, E8, embedding=_vec(8, 2, poison=float("nan")))],
        _frames(range(4, 6), E8),
        invalid=1,
    ),
    "embedding_inf": Case(
        _frames(range(3), E8),
        [_with(3, E8, embedding=_vec(8, 2, poison=float("inf")))],
        _frames(range(4, 6), E8),
        invalid=1,
    ),
    "embedding_minus_inf": Case(
        _frames(range(3), E8),
        [_with(3, E8, embedding=_vec(8, 2, poison=float("-inf")))],
        _frames(range(4, 6), E8),
        invalid=1,
    ),
    "frame_one_hour_ahead_then_normal": Case(
        _frames(range(3), E64),
        _frames(range(3, 4), offset=HOUR_NS, bad=True),
        _frames(range(4, 7), E64),
        {"clock_jump_ahead": 2, "clock_jump_back": 2},
    ),
    "clock_reset_to_zero": Case(
        _frames(range(3)),
        [],
        _frames(range(3), offset=-START_NS + PERIOD_NS),
        {"clock_jump_back": 2},
    ),
}


def _mask(obj: int, index: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    top, left = (8, 6) if obj == 0 else (34, 40)
    shift = index % 3
    mask[top + shift : top + shift + 20, left + shift : left + shift + 26] = True
    return mask


def _image(stamp_ns: int) -> np.ndarray:
    return np.random.default_rng(stamp_ns % 2**32).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)


def _header(stamp_ns: int):
    from std_msgs.msg import Header

    header = Header(frame_id=FRAME_ID)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def _messages(frame: Frame):
    from vis_msgs.msg import SalientInstanceArray

    from vis_node.ros.convert import image_to_msg, instance_to_msg
    from vis_node.structures.geometry import mask_box

    index = (frame.stamp_ns // PERIOD_NS) % 1000
    msg = SalientInstanceArray(
        header=_header(frame.stamp_ns), image_height=HEIGHT, image_width=WIDTH
    )
    for item in frame.items:
        mask = _mask(item.obj, index)
        scores = [0.05, 0.9, 0.05] if item.obj == 0 else [0.05, 0.05, 0.9]
        instance = instance_to_msg(
            mask=mask, box=mask_box(mask) or (0, 0, 0, 0), track_id=0, class_scores=scores,
            class_names=NAMES, saliency=0.5,
        )
        instance.saliency_score = item.saliency
        instance.embedding = list(item.embedding)
        msg.instances.append(instance)
    return msg, image_to_msg(_image(frame.stamp_ns), "rgb8", _header(frame.stamp_ns))


class Harness:
    """A probe publishing instances + images and recording ``tracked_instances`` stamps.

    It also latches the graph's label map (``NAMES``) on ``label_map``, as the
    perception node of a full graph does.
    """

    def __init__(self, context: Any, executor: Any) -> None:
        import rclpy
        from sensor_msgs.msg import Image
        from vis_msgs.msg import ClassLabel, LabelMap, SalientInstanceArray

        from vis_node.ros import qos
        from vis_node.ros.base_node import stamp_ns

        self.context, self.executor = context, executor
        self.node = rclpy.create_node("vsis_crash_probe", context=context)
        self.stamps: set[int] = set()
        self.node.create_subscription(
            SalientInstanceArray, "tracked_instances",
            lambda m: self.stamps.add(stamp_ns(m.header)), qos.RELIABLE,
        )
        self.instances_pub = self.node.create_publisher(
            SalientInstanceArray, "instances", qos.RELIABLE
        )
        self.image_pub = self.node.create_publisher(Image, "image", qos.RELIABLE)
        label_map = self.node.create_publisher(LabelMap, "label_map", qos.LATCHED)
        classes = [ClassLabel(class_id=i, class_name=n) for i, n in enumerate(NAMES)]
        label_map.publish(LabelMap(header=_header(0), classes=classes, model_name="crash-test"))
        executor.add_node(self.node)

    def start_tracker(self) -> Any:
        from rclpy.parameter import Parameter

        from vis_node.ros.base_node import autostart
        from vis_node.ros.tracking_node import TrackingNode

        self.stamps.clear()
        params = {"expected_frame_id": FRAME_ID, "flow": "none"}
        node = TrackingNode(
            context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
        )
        assert autostart(node)
        self.executor.add_node(node)
        assert spin_until(
            self.executor,
            lambda: self.instances_pub.get_subscription_count() == 1
            and self.image_pub.get_subscription_count() == 1
            and self.node.count_publishers("tracked_instances") == 1,
            timeout_s=20.0,
        ), "the tracking node did not connect"
        spin_until(self.executor, lambda: False, timeout_s=0.5)  # let both sides match
        return node

    def stop_tracker(self, node: Any) -> None:
        self.executor.remove_node(node)
        node.trigger_deactivate()
        node.destroy_node()

    def send(self, node: Any, frame: Frame) -> bool:
        """Publish one frame; ``True`` once it gave output, ``False`` if it was counted."""
        instances, image = _messages(frame)
        skipped = node.rejections.total
        self.instances_pub.publish(instances)
        self.image_pub.publish(image)
        assert spin_until(
            self.executor,
            lambda: frame.stamp_ns in self.stamps or node.rejections.total > skipped,
            timeout_s=10.0,
        ), f"frame at {frame.stamp_ns} ns neither gave output nor was counted"
        return frame.stamp_ns in self.stamps


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    require_ros()
    from rclpy.executors import SingleThreadedExecutor

    domain = 170 + zlib.crc32(__name__.encode()) % 30
    with ros_context(domain) as context:
        executor = SingleThreadedExecutor(context=context)
        probe = Harness(context, executor)
        yield probe
        executor.shutdown()
        probe.node.destroy_node()


@pytest.mark.parametrize("name", list(CASES))
def test_crash_input_is_survived_and_normal_frames_give_output(harness, name):
    case = CASES[name]
    node = harness.start_tracker()
    try:
        for frame in case.before:
            assert harness.send(node, frame), f"good frame {frame.stamp_ns} gave no output"
        for frame in case.bad:
            harness.send(node, frame)
        for frame in case.after:
            assert harness.send(node, frame), f"frame {frame.stamp_ns} after the bad input"
        assert node.rejections.counts["unexpected_error"] <= len(case.bad) - case.invalid
        for event, count in case.clock_events.items():
            assert node.clock_events.counts[event] == count, event
        assert node.active
        assert node.rejections.counts["invalid_data"] == case.invalid
    finally:
        harness.stop_tracker(node)


def test_bad_scores_are_rejected_with_the_data_error(harness):
    node = harness.start_tracker()
    try:
        for frame in _frames(range(3)):
            assert harness.send(node, frame)
        for index, value in ((3, -0.5), (4, 1.5)):
            assert not harness.send(node, _with(index, saliency=value))
        assert harness.send(node, _with(5, saliency=0.0))
        assert node.rejections.counts["invalid_data"] == 2
        assert node.rejections.counts["unexpected_error"] == 0
    finally:
        harness.stop_tracker(node)


def test_frames_that_never_arrived_are_counted_in_diagnostics(harness):
    from diagnostic_msgs.msg import DiagnosticStatus

    from vis_node.ros.diagnostics import stats_to_status

    node = harness.start_tracker()
    try:
        for frame in _frames(range(4)) + _frames(range(7, 9)) + _frames(range(12, 13)):
            assert harness.send(node, frame)
        status = stats_to_status(
            node.stats.snapshot(node.rejections.counts, node.clock_events.counts),
            name="t", hardware_id="t", active=True,
        )
        values = {kv.key: kv.value for kv in status.values}
        # Gaps in the instances are frames the model skipped (the perception node counts
        # them); only the camera's gaps are frames that never arrived.
        assert "frames_missing_instances" not in values
        assert values["frames_missing_image"] == "6"
        assert values["frames_missing"] == "6"
        assert values["clock_jump_back"] == "0"
        assert status.level == DiagnosticStatus.WARN
        assert status.message == "0 frames dropped, 6 never arrived, 0 messages rejected"
    finally:
        harness.stop_tracker(node)


def test_instance_bombs_are_rejected_by_the_node_and_it_carries_on(harness):
    from vis_msgs.msg import SalientInstance

    node = harness.start_tracker()
    try:
        for frame in _frames(range(2)):
            assert harness.send(node, frame)
        huge, _ = _messages(_frames(range(2, 3))[0])
        huge.image_height = huge.image_width = 12000
        many, _ = _messages(_frames(range(3, 4))[0])
        many.instances = [SalientInstance(saliency_score=0.5) for _ in range(1000)]
        for bomb in (huge, many):
            before = node.rejections.counts["too_large"]
            harness.instances_pub.publish(bomb)
            assert spin_until(
                harness.executor, lambda: node.rejections.counts["too_large"] == before + 1
            )
        for frame in _frames(range(4, 6)):
            assert harness.send(node, frame)
    finally:
        harness.stop_tracker(node)
