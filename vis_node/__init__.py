"""VSIS: video semantic salient instance segmentation.

The core (``vis_node.io``, ``vis_node.synth``, ``vis_node.evaluation`` and the
perception / tracking packages) imports no ROS; only ``vis_node.ros`` touches rclpy.
"""

__version__ = "0.1.0"
