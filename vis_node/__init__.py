"""VSIS: video semantic salient instance segmentation.

The core (``vis_node.io``, ``vis_node.synth``, ``vis_node.evaluation`` and the
perception / tracking packages) imports no ROS; only ``vis_node.ros`` touches rclpy.
"""

__version__ = "0.1.0"

DEFAULT_MODEL = "real"
"""Shipped model of ``vsis run``, ``vsis replay``, the ROS graph and the launch files
when none is named: the salient NanoDet model for real camera video
(``models/real``)."""
