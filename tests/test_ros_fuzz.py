"""Fuzzed messages into the three nodes' input stages (hypothesis, derandomised).

The perception input stage gets arbitrary ``Image`` / ``CompressedImage`` messages;
the tracking and semantic stages get instance messages with arbitrary field values,
lengths and stamps (so also arbitrary orders). Each fuzzed message must be either
processed or rejected, a rejection being a counted :class:`Rejection` or the core's
:class:`~vis_node.structures.errors.InvalidDataError`; any other exception fails the test. After
each one, a good message must give output (the node's processed count rises).

The callbacks are called directly on configured, active nodes (no DDS traffic), so
hundreds of messages run in seconds; the guard that wraps the real subscriptions is
tested in ``tests/test_ros_input_guard.py`` and through DDS in
``tests/test_ros_crash_inputs.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rosutil import require_ros, ros_context, spin_until

pytestmark = pytest.mark.ros

FRAME_ID = "camera_optical"
PERIOD_NS = 33_333_333
HEIGHT, WIDTH = 24, 32
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "bayer_rggb8", "", "x"]
FLOAT32 = st.floats(width=32)
UINT32 = st.integers(0, 2**32 - 1)
STAMPS = st.one_of(
    st.integers(0, 2**31 - 1).map(lambda s: s * 1_000_000_000),
    st.integers(-5, 5).map(lambda k: 10**12 + k * PERIOD_NS),
)
"""Stamps anywhere in time, and close to the good messages' time line."""


def _header(stamp_ns: int, frame_id: str = FRAME_ID):
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


@st.composite
def image_messages(draw: st.DrawFn, stamp_ns: int | None = None) -> Any:
    """A ``sensor_msgs/Image`` with arbitrary size, encoding, step and buffer."""
    from sensor_msgs.msg import Image

    height, width = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    encoding = draw(st.sampled_from(ENCODINGS))
    step = draw(st.one_of(st.just(width * 3), st.just(width), st.integers(0, 200)))
    size = draw(st.one_of(st.just(step * height), st.integers(0, 5000)))
    data = draw(st.binary(min_size=size, max_size=size))
    stamp = draw(STAMPS) if stamp_ns is None else stamp_ns
    return Image(
        header=_header(stamp, draw(st.sampled_from([FRAME_ID, FRAME_ID, "lidar"]))),
        height=height, width=width, encoding=encoding,
        is_bigendian=draw(st.integers(0, 1)), step=step, data=data,
    )


@st.composite
def compressed_messages(draw: st.DrawFn) -> Any:
    """A ``CompressedImage``: valid PNG / JPEG, truncated, or random bytes."""
    from sensor_msgs.msg import CompressedImage

    kind = draw(st.sampled_from(["png", "jpg", "truncated", "random", "png16"]))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    if kind == "png16":
        data = cv2.imencode(".png", pixels[:, :, 0].astype(np.uint16) * 257)[1].tobytes()
    elif kind == "random":
        data = draw(st.binary(max_size=300))
    else:
        data = cv2.imencode(".jpg" if kind == "jpg" else ".png", pixels)[1].tobytes()
        if kind == "truncated":
            data = data[: draw(st.integers(0, len(data) - 1))]
    return CompressedImage(
        header=_header(draw(STAMPS)),
        format=draw(st.sampled_from(["png", "jpeg", "", "rgb8; jpeg compressed bgr8"])),
        data=data,
    )


@st.composite
def instance_items(draw: st.DrawFn) -> Any:
    """A ``SalientInstance`` with arbitrary fields."""
    from sensor_msgs.msg import Image, RegionOfInterest
    from vis_msgs.msg import BoundingBox2D, SalientInstance

    small = st.integers(0, 48)
    item = SalientInstance(
        track_id=draw(st.one_of(small, UINT32)),
        class_id=draw(st.one_of(st.integers(0, 8), st.integers(0, 2**16 - 1))),
        class_name=draw(st.text(max_size=4)),
        class_score=draw(FLOAT32),
        class_scores=draw(st.lists(FLOAT32, max_size=8)),
        saliency_score=draw(FLOAT32),
        bbox=BoundingBox2D(
            center_x=draw(st.floats()), center_y=draw(st.floats()),
            size_x=draw(st.floats()), size_y=draw(st.floats()),
        ),
        mask_encoding=draw(st.integers(0, 3)),
        mask_roi=RegionOfInterest(
            x_offset=draw(small), y_offset=draw(small),
            width=draw(small), height=draw(small),
        ),
        mask_rle=draw(st.text(max_size=12)),
        embedding=draw(st.lists(FLOAT32, max_size=6)),
    )
    if draw(st.booleans()):
        item.mask = draw(image_messages(stamp_ns=0))
    else:
        height, width = item.mask_roi.height, item.mask_roi.width
        item.mask = Image(
            height=height, width=width, encoding="mono8", step=width,
            data=draw(st.binary(min_size=height * width, max_size=height * width)),
        )
    return item


@st.composite
def instance_arrays(draw: st.DrawFn) -> Any:
    """A ``SalientInstanceArray``: 0-4 arbitrary instances, any declared size and stamp."""
    from vis_msgs.msg import SalientInstanceArray

    return SalientInstanceArray(
        header=_header(draw(STAMPS), draw(st.sampled_from([FRAME_ID, FRAME_ID, "lidar"]))),
        image_height=draw(st.one_of(st.just(HEIGHT), st.integers(0, 48), UINT32)),
        image_width=draw(st.one_of(st.just(WIDTH), st.integers(0, 48), UINT32)),
        frame_confidence=draw(FLOAT32),
        instances=draw(st.lists(instance_items(), max_size=4)),
    )


def _good_instances(stamp_ns: int, track_id: int) -> Any:
    """One valid instance of class 1, without class scores (fits any label map)."""
    from vis_msgs.msg import SalientInstanceArray

    from vis_node.ros.convert import instance_to_msg
    from vis_node.structures.geometry import mask_box

    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[4:14, 6:20] = True
    item = instance_to_msg(
        mask=mask, box=mask_box(mask) or (0, 0, 0, 0), track_id=track_id, class_scores=[0.1, 0.9],
        class_names=["background", "object"], saliency=0.8,
    )
    item.class_scores = []
    msg = SalientInstanceArray(header=_header(stamp_ns), image_height=HEIGHT, image_width=WIDTH)
    msg.instances = [item]
    return msg


def _good_image(stamp_ns: int) -> Any:
    from vis_node.ros.convert import image_to_msg

    pixels = np.random.default_rng(stamp_ns % 2**32).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    return image_to_msg(pixels, "rgb8", _header(stamp_ns))


class Stage:
    """One node under fuzz: feeds messages, tracks stamps, checks good output."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.latest_ns = 10**12

    def feed(self, callback: Callable[[Any], None], msg: Any) -> None:
        """Call ``callback(msg)``; only a counted rejection or the data error may stop it."""
        from vis_node.structures.errors import InvalidDataError
        from vis_node.ros.base_node import stamp_ns

        self.latest_ns = max(self.latest_ns, stamp_ns(msg.header))
        try:
            callback(msg)
        except InvalidDataError:
            pass

    def next_stamp(self) -> int:
        self.latest_ns += PERIOD_NS
        return self.latest_ns

    def expect_output(self, send: Callable[[int], None]) -> None:
        before = self.node.stats.processed
        send(self.next_stamp())
        assert self.node.stats.processed == before + 1, "the good message gave no output"
        assert self.node.rejections.counts["unexpected_error"] == 0


@pytest.fixture(scope="module")
def oracle_root(tmp_path_factory) -> Path:
    """A one-frame DAVIS-style root for the ground-truth oracle (no model to load)."""
    from vis_node.io.labels import write_instance_png

    root = tmp_path_factory.mktemp("oracle")
    (root / "JPEGImages" / "480p" / "s").mkdir(parents=True)
    cv2.imwrite(str(root / "JPEGImages" / "480p" / "s" / "00000.jpg"),
                np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    ids[4:14, 6:20] = 1
    write_instance_png(root / "Annotations" / "480p" / "s" / "00000.png", ids)
    return root


@pytest.fixture(scope="module")
def stages(oracle_root: Path) -> Iterator[dict[str, Stage]]:
    require_ros()
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from vis_node.ros.base_node import autostart
    from vis_node.ros.pipeline import NODE_CLASSES

    common = {"expected_frame_id": FRAME_ID, "warn_period": 3600.0}
    params = {
        "perception": {**common, "model": f"gt:{oracle_root}"},
        "tracking": {**common, "flow": "none"},
        "semantic": dict(common),
    }
    domain = 170 + zlib.crc32(__name__.encode()) % 30
    with ros_context(domain) as context:
        made = {
            kind: cls(
                context=context,
                parameter_overrides=[Parameter(k, value=v) for k, v in params[kind].items()],
            )
            for kind, cls in NODE_CLASSES.items()
        }
        executor = SingleThreadedExecutor(context=context)
        for node in made.values():
            assert autostart(node)
            executor.add_node(node)
        # Deliver the latched label map (the model's class names) to the other nodes.
        assert spin_until(
            executor, lambda: made["tracking"].count_publishers("label_map") >= 1, 30.0
        )
        spin_until(executor, lambda: False, timeout_s=2.0)
        executor.shutdown()
        yield {kind: Stage(node) for kind, node in made.items()}
        for node in made.values():
            node.trigger_deactivate()
            node.destroy_node()


def _perceive(node: Any, msg: Any) -> None:
    topic = "image" if hasattr(msg, "encoding") else "image/compressed"
    if node.check_header(topic, msg.header):
        node._process(msg)


@given(msg=st.one_of(image_messages(), compressed_messages()))
@FUZZ
def test_perception_input_stage_survives_arbitrary_images(stages, msg):
    stage = stages["perception"]
    stage.feed(lambda m: _perceive(stage.node, m), msg)
    stage.expect_output(lambda stamp: _perceive(stage.node, _good_image(stamp)))


def _track_pair(node: Any, instances: Any, image: Any) -> None:
    node._on_instances(instances)
    node._on_image(image)


@given(msg=instance_arrays(), seed=st.integers(0, 2**16))
@FUZZ
def test_tracking_stage_survives_arbitrary_instance_messages(stages, msg, seed):
    from vis_node.ros.convert import image_to_msg

    stage = stages["tracking"]
    node = stage.node
    height, width = min(msg.image_height, 48), min(msg.image_width, 48)
    pixels = np.random.default_rng(seed).integers(0, 256, (max(height, 1), max(width, 1), 3))
    image = image_to_msg(pixels.astype(np.uint8), "rgb8", msg.header)
    stage.feed(lambda m: _track_pair(node, m, image), msg)
    stage.expect_output(
        lambda stamp: _track_pair(node, _good_instances(stamp, 0), _good_image(stamp))
    )


@given(msg=instance_arrays())
@FUZZ
def test_semantic_stage_survives_arbitrary_instance_messages(stages, msg):
    stage = stages["semantic"]
    node = stage.node
    stage.feed(node._on_instances, msg)
    stage.expect_output(lambda stamp: node._on_instances(_good_instances(stamp, 1)))


@given(stamps=st.lists(STAMPS, min_size=1, max_size=12))
@FUZZ
def test_announcements_of_any_stamp_never_stop_output(stages, stamps):
    """``inference_started`` headers with any stamps (far off the time line, repeated,
    never followed by their instances) leave the tracking and semantic stages working."""
    tracking, semantic = stages["tracking"], stages["semantic"]
    for stamp in stamps:
        tracking.node._on_started(_header(stamp))
        semantic.node._on_started(_header(stamp))
    tracking.expect_output(
        lambda stamp: _track_pair(tracking.node, _good_instances(stamp, 0), _good_image(stamp))
    )
    semantic.expect_output(lambda stamp: semantic.node._on_instances(_good_instances(stamp, 1)))
