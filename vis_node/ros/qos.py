"""QoS presets used by every VSIS topic."""

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
"""Bag replay and evaluation: every message is delivered."""

LATCHED = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)
"""The label map: late subscribers still receive the last message."""

PRESETS: dict[str, QoSProfile] = {"sensor": SENSOR, "reliable": RELIABLE}
"""Presets selectable by the ``qos`` node parameter."""
