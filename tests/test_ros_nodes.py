"""The three VSIS nodes on real DDS (localhost, one domain id per test).

A 12-frame 160x128 synthetic video goes through perception -> tracking -> semantic,
composed in this process and as three processes (``vsis ros up``). The perception
node runs the ground-truth oracle (``model: gt:<root>``), which shuffles the
instances of every frame and gives them no ids, so the checks on ids test the
tracker: its ids must map one-to-one onto the ground-truth ids over the sequence.
One test runs a real (tiny, random) S4Net checkpoint for the plumbing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rosutil import require_ros, ros_context, spin_until

pytestmark = pytest.mark.ros

FRAMES, WIDTH, HEIGHT = 12, 160, 128
FRAME_ID = "camera_optical"


def domain_for(request: pytest.FixtureRequest) -> int:
    """A DDS domain id of this test alone (100..159)."""
    return 100 + zlib.crc32(request.node.nodeid.encode()) % 60


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    from vis_node.synth.generator import SynthConfig
    from vis_node.synth.writer import write_synth_root

    root = tmp_path_factory.mktemp("synth") / "root"
    config = SynthConfig(width=WIDTH, height=HEIGHT, frames=FRAMES)
    return write_synth_root(root, videos=1, seed=5, config=config)


def ground_truth(root: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Frames (RGB), instance ids and semantic ids of the root's one sequence."""
    from vis_node.io.labels import read_semantic_png
    from vis_node.io.readers import DavisRoot

    davis = DavisRoot(root)
    sequence = davis.sequences[0]
    images = [f.image for f in davis.frames(sequence)]
    ids = [a[1] for a in davis.annotations(sequence)]
    semantic_dir = root / "Semantics" / "480p" / sequence
    semantic = [read_semantic_png(p) for p in sorted(semantic_dir.glob("*.png"))]
    return images, ids, semantic


def stamp_of(index: int) -> int:
    """Stamp in nanoseconds of frame ``index`` (DavisRoot's 30 fps clock)."""
    return round(index * 1e9 / 30.0)


def gt_params(root: Path) -> dict[str, dict[str, Any]]:
    """Node kind -> parameters for a reliable, oracle-driven graph (no motion gate: it
    would drop the still ground-truth objects)."""
    common = {"input_qos": "reliable", "expected_frame_id": FRAME_ID, "diagnostics_period": 0.2}
    return {
        "perception": {**common, "model": f"gt:{root}", "frames": "every"},
        "tracking": {**common, "motion_gate": False},
        "semantic": dict(common),
    }


class Probe:
    """A test node that publishes camera frames and records every VSIS output."""

    OUTPUTS = ("instances", "tracked_instances", "unified_instances", "instance_ids", "semantic")

    def __init__(self, context: Any) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from vis_msgs.msg import LabelMap, SalientInstanceArray

        from vis_node.ros import qos

        self.node = rclpy.create_node("vsis_probe", context=context)
        self.received: dict[str, list[Any]] = {name: [] for name in self.OUTPUTS}
        self.received.update(label_map=[], diagnostics=[], overlay=[])
        self._lock = threading.Lock()
        types = {"instance_ids": Image, "semantic": Image}
        for name in self.OUTPUTS:
            self.node.create_subscription(
                types.get(name, SalientInstanceArray), name, self._recorder(name), qos.RELIABLE
            )
        self.node.create_subscription(
            LabelMap, "label_map", self._recorder("label_map"), qos.LATCHED
        )
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._recorder("diagnostics"), 50
        )
        self.image_pub = self.node.create_publisher(Image, "image", qos.RELIABLE)

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(msg: Any) -> None:
            with self._lock:
                self.received[name].append(msg)

        return record

    def subscribe_overlay(self) -> Any:
        from sensor_msgs.msg import Image

        from vis_node.ros import qos

        return self.node.create_subscription(
            Image, "overlay", self._recorder("overlay"), qos.RELIABLE
        )

    def count(self, name: str) -> int:
        with self._lock:
            return len(self.received[name])

    def publish(self, image: np.ndarray, stamp_ns: int, frame_id: str = FRAME_ID) -> None:
        from std_msgs.msg import Header

        from vis_node.ros.convert import image_to_msg

        header = Header(frame_id=frame_id)
        header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        self.image_pub.publish(image_to_msg(image, "rgb8", header))

    def latest_diagnostics(self, node_name: str) -> dict[str, str]:
        """Key/values of the newest status from ``node_name``."""
        with self._lock:
            arrays = list(self.received["diagnostics"])
        for array in reversed(arrays):
            for status in array.status:
                if status.name.startswith(f"{node_name}:"):
                    return {kv.key: kv.value for kv in status.values}
        return {}


def send_frames(executor: Any, probe: Probe, images: list[np.ndarray], start: int = 0) -> None:
    """Publish frames one at a time, each once the previous one's outputs arrived."""
    for index, image in enumerate(images, start=start):
        expected = probe.count("unified_instances") + 1
        probe.publish(image, stamp_of(index))
        assert spin_until(
            executor,
            lambda: probe.count("unified_instances") >= expected
            and probe.count("semantic") >= expected,
            timeout_s=20.0,
        ), f"no output for frame {index}"


def wait_for_graph(
    executor: Any, probe: Probe, image_subscribers: int, nodes: Sequence[Any] = (),
    settle_s: float = 1.0,
) -> None:
    """Wait until every link of the chain has its publisher and subscribers.

    With the VSIS ``nodes`` in this process, until each of their publishers and
    subscriptions has matched every peer the probe's graph shows (with reliable,
    volatile QoS a message sent before two nodes matched each other is lost) and each
    node that needs the latched label map holds it (instances that come before it are
    skipped). Nodes in another process are seen only from the probe's side, so a
    settling spin of ``settle_s`` follows instead.
    """
    node = probe.node
    links = ("instances", "tracked_instances", "unified_instances", "semantic")
    assert spin_until(
        executor,
        lambda: probe.image_pub.get_subscription_count() >= image_subscribers
        and all(node.count_publishers(t) >= 1 and node.count_subscribers(t) >= 1 for t in links)
        and node.count_subscribers("instances") >= 2
        and node.count_subscribers("tracked_instances") >= 2
        and all(peers_matched(probe, n) for n in nodes)
        and all(getattr(n, "label_map", True) is not None for n in nodes),
        timeout_s=60.0,
    ), "the VSIS nodes did not come up"
    if not nodes:
        settle = time.monotonic() + settle_s
        spin_until(executor, lambda: time.monotonic() > settle, timeout_s=settle_s + 1.0)


def peers_matched(probe: Probe, node: Any) -> bool:
    """Whether each publisher and subscription of ``node`` has matched as many peers as
    the probe's graph shows on its topic."""
    graph = probe.node
    return all(
        pub.get_subscription_count() >= graph.count_subscribers(pub.topic_name)
        for pub in node.publishers
    ) and all(
        sub.get_publisher_count() >= graph.count_publishers(sub.topic_name)
        for sub in node.subscriptions
    )


def assert_ids_match_ground_truth(probe: Probe, gt_ids: list[np.ndarray]) -> None:
    """Every frame's mono16 id image is the ground truth under one fixed bijection."""
    from vis_node.ros.base_node import stamp_ns
    from vis_node.ros.convert import msg_to_labels

    images = sorted(probe.received["instance_ids"], key=lambda m: stamp_ns(m.header))
    assert [stamp_ns(m.header) for m in images] == [stamp_of(i) for i in range(len(gt_ids))]
    track_to_gt: dict[int, int] = {}
    for msg, gt in zip(images, gt_ids):
        assert msg.header.frame_id == FRAME_ID
        ids = msg_to_labels(msg)
        assert ids.shape == gt.shape
        for track in np.unique(ids[ids > 0]):
            overlap = np.unique(gt[ids == track])
            assert overlap.size == 1, f"track {track} covers several objects {overlap}"
            assert track_to_gt.setdefault(int(track), int(overlap[0])) == overlap[0]
        assert set(np.unique(gt[gt > 0])) == {track_to_gt[int(t)] for t in np.unique(ids[ids > 0])}
        relabelled = np.zeros_like(gt)
        for track, gt_id in track_to_gt.items():
            relabelled[ids == track] = gt_id
        np.testing.assert_array_equal(relabelled, gt)
    assert len(set(track_to_gt.values())) == len(track_to_gt), f"not one-to-one: {track_to_gt}"


def test_ground_truth_oracle_replays_shuffled_annotations(synth_root, tmp_path):
    from vis_node.structures.errors import InputDataError
    from vis_node.evaluation.oracle import SYNTH_NAMES, GroundTruthOracle
    from vis_node.pipeline.backends import load_backend

    images, gt_ids, gt_semantic = ground_truth(synth_root)
    backend = load_backend(f"gt:{synth_root}", gt_seed=3)
    assert (backend.name, backend.class_names) == ("gt", SYNTH_NAMES)
    orders = []
    for index in range(FRAMES):
        instances = backend.predict(images[index], stamp_of(index))
        gt = gt_ids[index]
        order = []
        for mask, probs in zip(instances.masks, instances.class_probs):
            (value,) = np.unique(gt[mask])
            np.testing.assert_array_equal(mask, gt == value)
            assert probs.argmax() == np.bincount(gt_semantic[index][mask]).argmax()
            order.append(int(value))
        assert sorted(order) == sorted(set(np.unique(gt)) - {0})
        assert not instances.track_ids.any() and instances.embeddings is None
        orders.append(order)
    assert len({tuple(o) for o in orders}) > 1, "instance order is never shuffled"
    assert len(backend.predict(images[0], stamp_of(FRAMES))) == 0
    with pytest.raises(InputDataError):
        GroundTruthOracle(tmp_path)


def test_instances_message_round_trip():
    require_ros()
    from std_msgs.msg import Header

    from vis_node.ros.instances_msg import decode_instances, instances_to_msg
    from vis_node.structures.instances import Instances

    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:8, 3:12] = True
    masks[1, 10:19, 20:29] = True
    probs = np.array([[0.1, 0.7, 0.2], [0.0, 0.3, 0.7]], np.float32)
    instances = Instances.from_masks(
        masks, class_probs=probs, saliency=np.array([0.9, 0.4]),
        embeddings=np.eye(2, 4, dtype=np.float32),
    ).with_track_ids(np.array([5, 9]))
    header = Header(frame_id="cam")
    header.stamp.sec = 3
    msg = instances_to_msg(
        instances, header, ["background", "a", "b"],
        labels=np.array([2, 1]), confidence=np.array([0.6, 0.5]), frame_confidence=0.25,
    )
    labelled = [(i.track_id, i.class_id, i.class_name) for i in msg.instances]
    assert labelled == [(5, 2, "b"), (9, 1, "a")]
    assert msg.instances[0].class_score == pytest.approx(0.6)
    assert msg.frame_confidence == pytest.approx(0.25)
    back, rejection = decode_instances(msg)
    assert rejection is None
    np.testing.assert_array_equal(back.masks, masks)
    np.testing.assert_allclose(back.boxes, instances.boxes)
    np.testing.assert_allclose(back.class_probs, probs)
    np.testing.assert_allclose(back.embeddings, np.eye(2, 4))
    np.testing.assert_array_equal(back.track_ids, [5, 9])
    np.testing.assert_allclose(back.scores, [0.9, 0.4])

    boxes_only = instances_to_msg(instances, header, ["background", "a", "b"], mask_encoding="none")
    for item in boxes_only.instances:
        item.class_scores = []
    back, _ = decode_instances(boxes_only, num_classes=5)
    np.testing.assert_array_equal(back.masks, masks)
    assert back.class_probs.shape == (2, 5)
    np.testing.assert_array_equal(back.class_probs.argmax(axis=1), [1, 2])

    none = instances.select(np.zeros(2, bool))
    empty, _ = decode_instances(instances_to_msg(none, header, ["bg", "a"]), 4)
    assert len(empty) == 0 and empty.class_probs.shape == (0, 4) and empty.image_size == (20, 30)


def test_node_stats_snapshot_and_status():
    require_ros()
    from diagnostic_msgs.msg import DiagnosticStatus

    from vis_node.ros.diagnostics import NodeStats, stats_to_status

    now, cpu = [0.0], [0.0]
    stats = NodeStats(window=3, clock=lambda: now[0], cpu_clock=lambda: cpu[0])
    for latency in (0.010, 0.020, 0.030, 0.040):
        stats.add_latency("inference", latency)
    for t, c in ((1.0, 5.0), (1.5, 5.2), (2.0, 5.25), (2.5, 5.4)):
        now[0], cpu[0] = t, c
        stats.frame_done()
    stats.add_dropped(2)
    stats.set_gauge("active_tracks", 3)
    snapshot = stats.snapshot({"bad_encoding": 1})
    assert snapshot.latency_ms["inference"] == pytest.approx((30.0, 40.0))
    assert snapshot.fps == pytest.approx(2.0)
    assert snapshot.cpu_ms_per_frame == pytest.approx(100.0)  # last 3 frames: 0.2 s / 2
    assert (snapshot.processed, snapshot.dropped) == (4, 2)
    status = stats_to_status(snapshot, name="n: perception", hardware_id="/n", active=True)
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN
    assert values["latency_inference_ms"] == "30.00"
    assert values["latency_inference_max_ms"] == "40.00"
    assert values["fps"] == "2.00" and values["cpu_ms_per_frame"] == "100.00"
    assert values["frames_dropped"] == "2" and values["rejected_bad_encoding"] == "1"
    assert values["active_tracks"] == "3"
    idle = stats_to_status(NodeStats().snapshot({}), name="n", hardware_id="/n", active=False)
    assert idle.level == DiagnosticStatus.STALE
    fine = stats_to_status(NodeStats().snapshot({}), name="n", hardware_id="/n", active=True)
    assert fine.level == DiagnosticStatus.OK


@pytest.fixture
def composed(request):
    """Factory: start the composed pipeline with per-node parameter overrides."""
    require_ros()
    from rclpy.executors import MultiThreadedExecutor

    from vis_node.ros.pipeline import compose, start, stop

    with ros_context(domain_for(request)) as context:
        executor = MultiThreadedExecutor(context=context)
        created: list[Any] = []

        def make(overrides: dict[str, dict[str, Any]]) -> tuple[list[Any], Probe]:
            nodes = compose(context=context, overrides=overrides)
            created.extend(nodes)
            for node in nodes:
                executor.add_node(node)
            assert start(nodes)
            probe = Probe(context)
            created.append(probe.node)
            executor.add_node(probe.node)
            wait_for_graph(executor, probe, image_subscribers=2, nodes=[*nodes, probe.node])
            return nodes, probe

        yield executor, make
        executor.shutdown()
        stop([n for n in created if hasattr(n, "active")])
        for node in created:
            if not hasattr(node, "active"):
                node.destroy_node()


def test_composed_pipeline_tracks_ground_truth_ids(composed, synth_root):
    from vis_node.ros.base_node import stamp_ns
    from vis_node.ros.convert import msg_to_labels, msg_to_mask
    from vis_node.evaluation.oracle import SYNTH_NAMES

    executor, make = composed
    (perception, tracking, semantic), probe = make(gt_params(synth_root))
    images, gt_ids, gt_semantic = ground_truth(synth_root)
    send_frames(executor, probe, images[:6])
    assert semantic._matcher.discarded == 0 and len(semantic._matcher) == 0
    overlay = probe.subscribe_overlay()
    # The semantic node takes camera images only while someone watches the overlay.
    assert spin_until(
        executor,
        lambda: semantic._overlay_wanted() and probe.image_pub.get_subscription_count() == 3,
        timeout_s=10.0,
    )
    send_frames(executor, probe, images[6:], start=6)
    probe.node.destroy_subscription(overlay)
    assert spin_until(
        executor, lambda: probe.image_pub.get_subscription_count() == 2, timeout_s=10.0
    ), "the semantic node kept its camera subscription without an overlay subscriber"

    assert_ids_match_ground_truth(probe, gt_ids)
    for msg, classes in zip(probe.received["semantic"], gt_semantic):
        assert msg.encoding == "mono8"
        np.testing.assert_array_equal(msg_to_labels(msg), classes)
    for msg in probe.received["unified_instances"]:
        index = round(stamp_ns(msg.header) * 30 / 1e9)
        assert msg.header.frame_id == FRAME_ID
        assert (msg.image_height, msg.image_width) == (HEIGHT, WIDTH)
        for item in msg.instances:
            mask = msg_to_mask(item, HEIGHT, WIDTH)
            assert item.track_id > 0
            expected_class = np.bincount(gt_semantic[index][mask]).argmax()
            assert (item.class_id, item.class_name) == (expected_class, SYNTH_NAMES[expected_class])
            assert item.class_score == pytest.approx(1.0)
    overlay_stamps = [stamp_ns(m.header) for m in probe.received["overlay"]]
    assert overlay_stamps and set(overlay_stamps) <= {stamp_of(i) for i in range(6, FRAMES)}
    assert all(m.encoding == "rgb8" and (m.height, m.width) == (HEIGHT, WIDTH)
               for m in probe.received["overlay"])

    assert spin_until(executor, lambda: probe.count("label_map") >= 1, timeout_s=10.0)
    label_map = probe.received["label_map"][0]
    assert [c.class_name for c in label_map.classes] == list(SYNTH_NAMES)
    assert label_map.model_name == "gt"

    objects = len(np.unique(gt_ids[-1])) - 1
    assert spin_until(
        executor,
        lambda: probe.latest_diagnostics("vsis_tracking").get("frames_processed") == str(FRAMES)
        and probe.latest_diagnostics("vsis_semantic").get("frames_processed") == str(FRAMES)
        and probe.latest_diagnostics("vsis_perception").get("frames_processed") == str(FRAMES),
        timeout_s=10.0,
    )
    tracking_diag = probe.latest_diagnostics("vsis_tracking")
    assert tracking_diag["active_tracks"] == str(objects)
    assert tracking_diag["frames_dropped"] == "0"
    perception_diag = probe.latest_diagnostics("vsis_perception")
    stages = {"latency_decode_ms", "latency_inference_ms", "latency_publish_ms", "fps"}
    assert stages <= set(perception_diag)
    assert "latency_tracking_ms" in tracking_diag
    assert "latency_unification_ms" in probe.latest_diagnostics("vsis_semantic")
    assert [n.rejections.total for n in (perception, tracking, semantic)] == [0, 0, 0]


def test_label_images_are_painted_only_while_subscribed(composed, synth_root):
    """Without a subscriber to ``instance_ids`` or ``semantic`` the semantic node neither
    paints nor publishes that image; ``unified_instances`` still comes for every frame,
    and the image comes back with a subscriber."""
    from sensor_msgs.msg import Image

    from vis_node.ros import qos

    executor, make = composed
    (_, _, semantic), probe = make(gt_params(synth_root))
    images = ground_truth(synth_root)[0]
    send_frames(executor, probe, images[:2])
    probe.received["semantic"].clear()
    published = {"instance_ids": 0, "semantic": 0}
    for topic in published:
        publisher = semantic._pubs[topic]

        def counted(msg, publish=publisher.publish, topic=topic):
            published[topic] += 1
            publish(msg)

        publisher.publish = counted
    for subscription in list(probe.node.subscriptions):
        if subscription.topic_name.lstrip("/") in published:
            probe.node.destroy_subscription(subscription)
    assert spin_until(
        executor,
        lambda: not any(semantic._pubs[t].get_subscription_count() for t in published),
        timeout_s=10.0,
    )
    for index in range(2, 5):
        expected = probe.count("unified_instances") + 1
        probe.publish(images[index], stamp_of(index))
        assert spin_until(
            executor, lambda: probe.count("unified_instances") >= expected, timeout_s=20.0
        ), f"no unified instances for frame {index}"
    assert published == {"instance_ids": 0, "semantic": 0}
    probe.node.create_subscription(Image, "semantic", probe._recorder("semantic"), qos.RELIABLE)
    assert spin_until(
        executor, lambda: semantic._pubs["semantic"].get_subscription_count() == 1, timeout_s=10.0
    )
    # Until the probe's side has matched too, an image may be published and not received.
    for index in range(5, FRAMES):
        probe.publish(images[index], stamp_of(index))
        if spin_until(executor, lambda: probe.count("semantic") > 0, timeout_s=3.0):
            break
    assert probe.count("semantic") > 0
    assert published["instance_ids"] == 0 and published["semantic"] >= 1


@pytest.mark.parametrize(
    ("input_qos", "frames"), [("sensor", "newest"), ("reliable", "newest"), ("reliable", "every")]
)
def test_perception_frames_newest_or_every(composed, synth_root, input_qos, frames):
    """A model slower than the camera: with ``frames: newest`` the newest frame wins
    (frames are skipped, by the best-effort subscription or by the node's one-place
    queue, which counts those it replaces: under reliable QoS every frame is accounted
    for); with ``every`` each frame is run, in order."""
    from vis_node.ros.base_node import stamp_ns

    executor, make = composed
    params = gt_params(synth_root)
    params["perception"].update(input_qos=input_qos, frames=frames)
    nodes, probe = make(params)
    perception = nodes[0]
    images, _, _ = ground_truth(synth_root)
    backend = perception._detect.backend
    predict = backend.predict

    def slow_predict(image: np.ndarray, stamp: int):
        time.sleep(0.3)
        return predict(image, stamp)

    backend.predict = slow_predict
    for index in range(6):
        probe.publish(images[index], stamp_of(index))
    assert spin_until(
        executor,
        lambda: probe.count("instances") > 0
        and stamp_ns(probe.received["instances"][-1].header) == stamp_of(5),
        timeout_s=20.0,
    )
    stamps = [stamp_ns(m.header) for m in probe.received["instances"]]
    assert stamps == sorted(stamps) and len(stamps) == perception.stats.processed
    # Tracking and semantics follow the frames the model ran; images it skipped are no error.
    assert spin_until(executor, lambda: probe.count("unified_instances") == len(stamps), 10.0), (
        {t: probe.count(t) for t in ("instances", "tracked_instances", "unified_instances")},
        [(n.stats.processed, n.stats.dropped, n.rejections.total) for n in nodes],
    )
    assert [stamp_ns(m.header) for m in probe.received["unified_instances"]] == stamps
    assert [n.rejections.total for n in nodes] == [0, 0, 0]
    if frames == "every":
        assert perception.stats.dropped == 0
        assert stamps == [stamp_of(k) for k in range(6)]
        return
    assert len(stamps) < 6
    if input_qos == "reliable":
        assert perception.stats.processed + perception.stats.dropped == 6
        # The skipped frames' images are no loss at the tracking node.
        assert [n.stats.dropped for n in nodes[1:]] == [0, 0]
    else:
        assert perception.stats.processed + perception.stats.dropped <= 6


def test_a_model_slower_than_many_camera_frames_still_gets_every_result_tracked(
    composed, synth_root
):
    """A 30 Hz camera and a model taking 0.4 s (12 camera frames, more than the tracking
    node's ``match_capacity`` of 8 waiting images): the node keeps the image of the
    frame the model is working on, so each result is tracked and none counted lost."""
    from vis_node.ros.base_node import stamp_ns

    executor, make = composed
    params = gt_params(synth_root)
    params["perception"]["frames"] = "newest"
    nodes, probe = make(params)
    perception, tracking = nodes[0], nodes[1]
    assert tracking.config["match_capacity"] == 8
    images, _, _ = ground_truth(synth_root)
    backend = perception._detect.backend
    predict = backend.predict

    def slow_predict(image: np.ndarray, stamp: int):
        time.sleep(0.4)
        return predict(image, stamp_of(round(stamp * 30 / 1e9) % FRAMES))

    backend.predict = slow_predict
    for index in range(45):
        probe.publish(images[index % FRAMES], stamp_of(index))
        spin_until(executor, lambda: False, timeout_s=1 / 30)
    assert spin_until(executor, lambda: len(perception._queue) == 0
                      and probe.count("instances") == perception.stats.processed, 30.0)
    # The composed graph may trail the camera under load: wait for it, then compare.
    assert spin_until(
        executor, lambda: probe.count("unified_instances") == probe.count("instances"), 30.0
    )
    assert perception.stats.processed >= 2 and perception.stats.dropped > 0
    assert tracking.stats.dropped == 0 and "instances" not in tracking.stats.missing
    # Only the frames the model ran were decoded and given a flow (the first image also
    # before any announcement); test_tracking_node_decodes_and_prefetches_only_the_frames_
    # the_model_runs checks that each is prefetched while the model runs.
    assert len(tracking.stats._latency["decode"]) <= perception.stats.processed + 1
    assert len(tracking.stats._latency.get("prefetch", ())) <= perception.stats.processed + 1
    assert [stamp_ns(m.header) for m in probe.received["tracked_instances"]] == [
        stamp_ns(m.header) for m in probe.received["instances"]
    ]


def test_an_announced_frame_without_result_counts_as_missing(composed, synth_root):
    """The model fails on frame 1 after announcing it: the tracking node counts one
    result that never arrived (a skipped frame would not count)."""
    executor, make = composed
    nodes, probe = make(gt_params(synth_root))
    perception, tracking = nodes[0], nodes[1]
    images, _, _ = ground_truth(synth_root)
    backend = perception._detect.backend
    predict = backend.predict

    def failing_predict(image: np.ndarray, stamp: int):
        if stamp == stamp_of(1):
            raise RuntimeError("model failure on frame 1")
        return predict(image, stamp)

    backend.predict = failing_predict
    for index in range(3):
        probe.publish(images[index], stamp_of(index))
        spin_until(executor, lambda: perception.stats.processed + perception.rejections.total
                   > index, 10.0)
    assert spin_until(executor, lambda: probe.count("tracked_instances") == 2, 10.0)
    assert perception.rejections.counts["unexpected_error"] == 1
    assert tracking.stats.missing == {"instances": 1}


def test_perception_refuses_every_frame_on_best_effort_input(synth_root, request):
    """``frames: every`` under ``input_qos: sensor`` cannot keep its promise: configure
    fails (logged) and the node stays alive; with ``input_qos: reliable`` it configures."""
    require_ros()
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from vis_node.ros.perception_node import PerceptionNode

    params = {"model": f"gt:{synth_root}", "input_qos": "sensor", "frames": "every"}
    with ros_context(domain_for(request)) as context:
        node = PerceptionNode(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
            node.set_parameters([Parameter("input_qos", value="reliable")])
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        finally:
            node.destroy_node()


def test_real_checkpoint_plumbing(composed, tmp_path):
    import torch

    from vis_node.perception.checkpoint import save_model
    from vis_node.perception.config import ModelConfig
    from vis_node.perception.model import build_model
    from vis_node.ros.convert import msg_to_mask
    from vis_node.synth.generator import SynthConfig, generate_video

    torch.manual_seed(0)
    config = ModelConfig(
        input_size=128, fpn_channels=32, head_channels=32, seg_crop_size=12,
        pretrained_backbone=False, score_threshold=0.0, num_proposals=5,
    )
    path = save_model(build_model(config).eval(), tmp_path / "tiny" / "model.pt")
    executor, make = composed
    params = {
        "perception": {"model": str(path), "input_qos": "reliable", "frames": "every",
                       "mask_encoding": "rle"},
        "tracking": {"input_qos": "reliable", "motion_gate": False},  # one in, one out
        "semantic": {"input_qos": "reliable"},
    }
    _, probe = make(params)
    video = generate_video(1, SynthConfig(width=WIDTH, height=HEIGHT, frames=3))
    send_frames(executor, probe, list(video.frames))

    instances = probe.received["instances"]
    assert len(instances) == 3
    for msg in instances:
        assert (msg.image_height, msg.image_width) == (HEIGHT, WIDTH)
        assert 1 <= len(msg.instances) <= 5
        for item in msg.instances:
            assert len(item.class_scores) == len(config.class_names)
            assert len(item.embedding) == config.embedding_dim
            assert item.mask_encoding == item.MASK_RLE
            assert msg_to_mask(item, HEIGHT, WIDTH).shape == (HEIGHT, WIDTH)
    assert spin_until(executor, lambda: probe.count("tracked_instances") == 3, timeout_s=10.0)
    for detections, tracked in zip(instances, probe.received["tracked_instances"]):
        assert tracked.header == detections.header
        assert len(tracked.instances) == len(detections.instances)
    unified = probe.received["unified_instances"]
    assert all(item.track_id > 0 and item.class_id >= 1 for m in unified for item in m.instances)


def test_lifecycle_failures_keep_the_node_alive(tmp_path, synth_root, request):
    require_ros()
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from vis_node.ros.perception_node import PerceptionNode

    with ros_context(domain_for(request)) as context:
        node = PerceptionNode(
            context=context, parameter_overrides=[Parameter("model", value="no_such_model")]
        )
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
            assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED

            corrupt = tmp_path / "corrupt.pt"
            corrupt.write_bytes(b"\x00not a checkpoint")
            node.set_parameters([Parameter("model", value=str(corrupt))])
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.FAILURE
            assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
            assert not node.active and node._detect is None

            node.set_parameters([Parameter("model", value=f"gt:{synth_root}")])
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert node._state_machine.current_state[0] == State.PRIMARY_STATE_ACTIVE
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert node._detect is None
        finally:
            node.destroy_node()


def test_perception_runtime_parameters_reach_the_runtime(synth_root, request, monkeypatch):
    require_ros()
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    import vis_node.ros.perception_node as perception_node
    from vis_node.perception.salient_config import SalientOverrides

    calls: list[dict[str, Any]] = []
    load = perception_node.load_backend

    def recording(spec: str, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return load(spec, **kwargs)

    monkeypatch.setattr(perception_node, "load_backend", recording)
    with ros_context(domain_for(request)) as context:
        node = perception_node.PerceptionNode(
            context=context,
            parameter_overrides=[
                Parameter("model", value=f"gt:{synth_root}"), Parameter("threads", value=1),
                Parameter("refiner_flip", value="off"),
                Parameter("refiner_flip_max_instances", value=2),
                Parameter("saliency_threshold", value=0.25),
            ],
        )
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert [(c["threads"], c["overrides"]) for c in calls] == [
                (1, SalientOverrides(refiner_flip=False, refiner_flip_max_instances=2,
                                     saliency_threshold=0.25))
            ]
            node.set_parameters([Parameter("threads", value=-1)])
            assert node.get_parameter("threads").value == 1  # out of range: refused
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        finally:
            node.destroy_node()


def test_tracking_node_decodes_and_prefetches_only_the_frames_the_model_runs(
    synth_root, request, monkeypatch
):
    """A model that runs on every third camera frame and announces it: the tracking node
    decodes only the announced frames' images (the first one before any announcement)
    and computes each one's flow before its instances come; the skipped frames' images
    are dropped undecoded and uncounted."""
    require_ros()
    from rclpy.lifecycle import TransitionCallbackReturn
    from std_msgs.msg import Header

    import vis_node.ros.tracking_node as tracking_node
    from vis_node.ros.base_node import stamp_ns
    from vis_node.ros.convert import image_to_msg
    from vis_node.ros.instances_msg import instances_to_msg
    from vis_node.structures.instances import Instances
    from vis_node.structures.label_map import LabelMap

    decoded: list[int] = []
    decode = tracking_node.decode_image_msg

    def counted(msg: Any, max_pixels: Any) -> Any:
        decoded.append(stamp_ns(msg.header))
        return decode(msg, max_pixels)

    monkeypatch.setattr(tracking_node, "decode_image_msg", counted)
    images, gt_ids, _ = ground_truth(synth_root)
    names = ("background", "object")
    with ros_context(domain_for(request)) as context:
        node = tracking_node.TrackingNode(context=context)
        try:
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            node.label_map = LabelMap(names, "test")
            prefetched: list[np.ndarray] = []
            prefetch = node._stage.prefetch
            node._stage.prefetch = lambda image: prefetched.append(image) or prefetch(image)
            published: list[Any] = []
            node._publisher.publish = published.append
            run = [stamp_of(i) for i in range(0, len(images), 3)]
            for index, image in enumerate(images):
                header = Header(frame_id="camera")
                header.stamp.sec, header.stamp.nanosec = divmod(stamp_of(index), 10**9)
                node._on_image(image_to_msg(image, "rgb8", header))
                if stamp_of(index) in run:
                    node._on_started(header)
                    ids = gt_ids[index]
                    masks = np.stack([ids == k for k in np.unique(ids[ids > 0])])
                    instances = Instances.from_masks(masks, np.ones((len(masks), 2), np.float32))
                    node._on_instances(instances_to_msg(instances, header, names))
            assert [stamp_ns(m.header) for m in published] == run
            assert decoded == run
            assert len(prefetched) == len(run)
            assert node.stats.dropped == 0 and node.rejections.total == 0
        finally:
            node.destroy_node()


@pytest.mark.parametrize("kind", ["tracking", "semantic"])
def test_opencv_threads_parameter_sizes_the_process_pool(kind, request):
    require_ros()
    import cv2
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from vis_node.ros.semantic_node import SemanticNode
    from vis_node.ros.tracking_node import TrackingNode

    node_class = TrackingNode if kind == "tracking" else SemanticNode
    before = cv2.getNumThreads()
    try:
        with ros_context(domain_for(request)) as context:
            node = node_class(context=context)
            try:
                assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                assert cv2.getNumThreads() == 1  # the default: cores left to the model
                assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
                node.set_parameters([Parameter("opencv_threads", value=2)])
                assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                assert cv2.getNumThreads() == 2
            finally:
                node.destroy_node()
    finally:
        cv2.setNumThreads(before)


def test_standalone_executor_follows_the_executor_parameter(request):
    """A node's own process spins on the executor its ``executor`` parameter names
    (``events`` by default: rclpy's C++ EventsExecutor); ``vsis ros up`` runs on the
    default in test_three_processes_track_ground_truth_ids."""
    require_ros()
    from rclpy.executors import SingleThreadedExecutor

    from vis_node.ros.spinning import standalone_executor
    from vis_node.ros.params import COMMON_PARAMS

    assert {p.name: p.default for p in COMMON_PARAMS}["executor"] == "events"
    with ros_context(domain_for(request)) as context:
        single = standalone_executor("single", context)
        events = standalone_executor("events", context)
        try:
            assert type(single) is SingleThreadedExecutor
            assert type(events).__name__ == "EventsExecutor"
            assert events.context is context
        finally:
            single.shutdown()
            events.shutdown()
        with pytest.raises(ValueError, match="executor must be one of"):
            standalone_executor("multi", context)


def ros_env(domain: int) -> dict[str, str]:
    """This process's environment (scripts/env.sh) with DDS kept on localhost."""
    env = dict(os.environ)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1",
    )
    return env


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text().splitlines()[-lines:])


def test_three_processes_track_ground_truth_ids(synth_root, tmp_path, request):
    """``vsis ros up`` with one params YAML; Ctrl-C stops all three nodes cleanly."""
    require_ros()
    from rclpy.executors import SingleThreadedExecutor

    params = {
        f"vsis_{kind}": {"ros__parameters": values}
        for kind, values in gt_params(synth_root).items()
    }
    params_file = tmp_path / "vsis.yaml"
    params_file.write_text(yaml.safe_dump(params))
    domain = domain_for(request)
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "vis_node.cli", "ros", "up", "--params", str(params_file)],
        env=ros_env(domain), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        with ros_context(domain) as context:
            probe = Probe(context)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(probe.node)
            wait_for_graph(executor, probe, image_subscribers=2, settle_s=3.0)
            images, gt_ids, _ = ground_truth(synth_root)
            try:
                send_frames(executor, probe, images)
            except AssertionError as exc:
                log.flush()
                raise AssertionError(f"{exc}; node log:\n{_tail(tmp_path / 'up.log')}") from None
            assert_ids_match_ground_truth(probe, gt_ids)
            executor.shutdown()
            probe.node.destroy_node()
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=30)
        log.close()
    output = (tmp_path / "up.log").read_text()
    for name in ("vsis_perception", "vsis_tracking", "vsis_semantic"):
        assert f"[{name}]: active" in output
        assert f"[{name}]: inactive" in output, output[-2000:]


@pytest.mark.parametrize("kind", ["events", "single"])
def test_a_stop_signal_lets_the_running_callback_finish(request, kind):
    """Ctrl-C while a callback runs ends the spin after it, without aborting it."""
    require_ros()
    from rclpy.node import Node

    from vis_node.ros.spinning import spin_until_stopped, standalone_executor

    with ros_context(domain_for(request)) as context:
        node = Node("vsis_signal_probe", context=context)
        calls: list[str] = []

        def slow() -> None:
            calls.append("start")
            if len(calls) == 1:
                os.kill(os.getpid(), signal.SIGINT)  # arrives while this callback runs
            time.sleep(0.3)
            calls.append("end")

        node.create_timer(0.05, slow)
        executor = standalone_executor(kind, context)
        executor.add_node(node)
        # A spin that never sees the signal would run forever: end it after 10 s.
        guard = threading.Timer(10.0, context.shutdown)
        guard.start()
        try:
            spin_until_stopped(executor, poll_s=0.05)
        finally:
            guard.cancel()
            executor.shutdown()
            node.destroy_node()
        assert calls == ["start", "end"]
        assert context.ok()  # stopped by the signal, not by the guard


def test_a_spin_step_repeats_after_the_destroy_race_and_raises_a_lasting_error():
    """rclpy raises ``InvalidHandle`` from ``spin_once`` when another thread destroys a
    subscription while the wait set is built (ros2/rclpy#1206; seen here when the
    semantic node drops its camera subscription): the step is repeated, but an error
    that lasts is raised."""
    require_ros()
    from rclpy.exceptions import InvalidHandle

    from vis_node.ros.spinning import SpinStep

    class RacingExecutor:
        def __init__(self, failures: int) -> None:
            self.failures = failures
            self.spun = 0

        def spin_once(self, timeout_sec: float) -> None:
            if self.failures:
                self.failures -= 1
                raise InvalidHandle("cannot use Destroyable because destruction was requested")
            self.spun += 1

    executor = RacingExecutor(failures=2)
    step = SpinStep(executor, max_consecutive=3)
    for _ in range(4):
        step(0.01)
    assert (executor.spun, step.retried) == (2, 2)
    executor.failures = 2  # a success in between: the count starts again
    for _ in range(3):
        step(0.01)
    assert (executor.spun, step.retried) == (3, 4)
    executor.failures = 3
    step(0.01)
    step(0.01)
    with pytest.raises(InvalidHandle):
        step(0.01)


def test_standalone_node_with_missing_model_stays_up_inactive(tmp_path, request):
    """Autostart with a missing model logs why and keeps running (no crash loop)."""
    require_ros()
    log_path = tmp_path / "node.log"
    with log_path.open("w") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "vis_node.ros.perception_node", "--ros-args",
             "-p", f"model:={tmp_path / 'missing.pt'}"],
            env=ros_env(domain_for(request)), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60.0
            while "autostart failed" not in log_path.read_text() and time.monotonic() < deadline:
                assert node.poll() is None, log_path.read_text()
                time.sleep(0.2)
            time.sleep(1.0)
            assert node.poll() is None, "the node exited after a failed autostart"
            node.send_signal(signal.SIGINT)
            assert node.wait(timeout=20) == 0
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
    output = log_path.read_text()
    assert "configure failed" in output and "missing.pt" in output
    assert "no such model" in output
