"""Small messages that used to cost gigabytes are rejected before any allocation.

Each bomb of issue 14 (a 69 KB PNG of 8000x8000 zeros, a ~300-byte instance message
declaring 12000x12000, 1000 instances in one message, and the semantic node's int64 id
map) is checked with the peak memory traced in this process (``tracemalloc`` sees
NumPy and OpenCV arrays); never with wall time.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from rosutil import require_ros

pytestmark = pytest.mark.ros

MB = 1_000_000


def _peak_bytes(action: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``action``; return its result and the peak of traced memory it added."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = action()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def budget():
    require_ros()
    from vis_node.ros.input_guard import Budget
    from vis_node.ros.params import TRACKING

    return Budget.from_config(TRACKING.defaults())


def test_default_budgets(budget):
    from vis_node.ros.params import NODE_SPECS

    limits = (budget.max_image_pixels, budget.max_instance_pixels, budget.max_message_instances)
    assert limits == (3840 * 2160, 3840 * 2160, 100)
    for spec in NODE_SPECS.values():
        names = [p.name for p in spec.params]
        assert len(names) == len(set(names)), f"{spec.kind} declares a parameter twice"
        defaults = spec.defaults()
        assert defaults["max_image_pixels"] == 3840 * 2160
        assert defaults["max_message_instances"] == 100


def test_png_bomb_is_rejected_from_its_header(budget):
    from sensor_msgs.msg import CompressedImage

    from vis_node.ros.input_guard import decode_image_msg

    bomb = cv2.imencode(".png", np.zeros((8000, 8000), np.uint8))[1].tobytes()
    assert len(bomb) < 100_000  # 64 megapixels in ~69 KB
    msg = CompressedImage(format="png", data=bomb)
    (image, rejection), peak = _peak_bytes(lambda: decode_image_msg(msg, budget.max_image_pixels))
    assert image is None and rejection.kind == "too_large"
    assert "8000x8000 = 64000000 pixels" in rejection.detail
    assert peak < 2 * MB  # decoding would take 64 MB (grey) to 192 MB (RGB)


def test_image_within_budget_still_decodes(budget):
    from sensor_msgs.msg import CompressedImage

    from vis_node.ros.input_guard import decode_image_msg

    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    png = cv2.imencode(".png", pixels)[1].tobytes()
    image, rejection = decode_image_msg(CompressedImage(format="png", data=png), 48 * 64)
    assert rejection is None
    np.testing.assert_array_equal(image, pixels[:, :, ::-1])
    image, rejection = decode_image_msg(CompressedImage(format="png", data=png), 48 * 64 - 1)
    assert image is None and rejection.kind == "too_large"


def test_raw_image_declaring_a_huge_size_is_rejected_before_decoding(budget):
    from sensor_msgs.msg import Image

    from vis_node.ros.input_guard import decode_image_msg

    msg = Image(height=12000, width=12000, encoding="rgb8", step=36000, data=bytes(16))
    (image, rejection), peak = _peak_bytes(lambda: decode_image_msg(msg, budget.max_image_pixels))
    assert image is None and rejection.kind == "too_large"
    assert peak < MB


def _instances(count: int, height: int, width: int):
    from vis_msgs.msg import SalientInstance, SalientInstanceArray

    msg = SalientInstanceArray(image_height=height, image_width=width)
    for _ in range(count):
        item = SalientInstance(mask_encoding=SalientInstance.MASK_NONE, saliency_score=0.5)
        item.bbox.center_x = item.bbox.center_y = 8.0
        item.bbox.size_x = item.bbox.size_y = 4.0
        msg.instances.append(item)
    return msg


def test_instance_message_declaring_a_huge_image_is_rejected_before_its_masks(budget):
    from rclpy.serialization import serialize_message

    from vis_node.ros.instances_msg import decode_instances

    msg = _instances(1, 12000, 12000)
    assert len(serialize_message(msg)) < 400
    (instances, rejection), peak = _peak_bytes(lambda: decode_instances(msg, budget=budget))
    assert instances is None and rejection.kind == "too_large"
    assert "12000x12000" in rejection.detail
    assert peak < MB  # the masks alone would be 144 MB


def test_a_thousand_instances_are_rejected_before_decoding(budget):
    from vis_node.ros.instances_msg import decode_instances

    msg = _instances(1000, 480, 640)
    (instances, rejection), peak = _peak_bytes(lambda: decode_instances(msg, budget=budget))
    assert instances is None and rejection.kind == "too_large"
    assert "1000 instances" in rejection.detail
    assert peak < MB  # the masks alone would be 307 MB
    instances, rejection = decode_instances(_instances(100, 48, 64), budget=budget)
    assert rejection is None and len(instances) == 100


def test_semantic_id_map_uses_the_smallest_dtype():
    from vis_node.pipeline.stages import label_maps
    from vis_node.structures.instances import Instances

    height, width = 2000, 2000
    masks = np.zeros((2, height, width), bool)
    masks[0, :1000], masks[1, 1000:] = True, True
    instances = Instances.from_masks(masks).with_track_ids(np.array([3, 200]))
    assert instances.id_map().dtype == np.uint8
    (ids, classes), peak = _peak_bytes(lambda: label_maps(instances, np.array([1, 2])))
    assert ids.dtype == np.uint16 and classes.dtype == np.uint8
    assert np.unique(ids).tolist() == [3, 200] and np.unique(classes).tolist() == [1, 2]
    # outputs 8 MB (uint16) + 4 MB (uint8); an int64 map alone would be 32 MB
    assert peak < 20 * MB
    wide = instances.with_track_ids(np.array([3, 70_000]))
    assert wide.id_map().dtype == np.uint32
