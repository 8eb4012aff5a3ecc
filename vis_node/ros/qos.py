"""QoS presets of the VSIS topics, chosen per direction by the ``input_qos`` and
``output_qos`` node parameters.

Inputs default to ``sensor`` (a best-effort subscriber matches every publisher, and
a live camera's newest frame is all that matters); outputs default to ``reliable``,
depth 10, which every subscriber matches, best effort or reliable (RViz on Reliable,
``ros2 topic echo``, a default-QoS rclpy subscriber).
"""

from __future__ import annotations

from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
)

SENSOR = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.BEST_EFFORT,
    durability=QoSDurabilityPolicy.VOLATILE,
)
"""Live cameras: newest frame only, never block the publisher."""

RELIABLE = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
"""Bag replay and evaluation inputs: every message is delivered."""

RELIABLE_OUTPUT = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
)
"""Outputs: reliable, keep last 10 (as ``rclpy``'s default and yolo_ros)."""

LATCHED = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)
"""The label maps: late subscribers still receive the last message."""

INPUT_PRESETS: dict[str, QoSProfile] = {"sensor": SENSOR, "reliable": RELIABLE}
"""Presets selectable by the ``input_qos`` node parameter."""

OUTPUT_PRESETS: dict[str, QoSProfile] = {"reliable": RELIABLE_OUTPUT, "sensor": SENSOR}
"""Presets selectable by the ``output_qos`` node parameter."""
