"""Shared test set-up.

Every test process keeps DDS discovery on this machine: the variables are forced here,
before any test can import rclpy, and each ROS test picks its own domain id.
"""

from __future__ import annotations

import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ.setdefault("ROS_DOMAIN_ID", "77")
