"""Data in and out: frame readers, label PNGs, results JSON, overlays (no ROS)."""

from vis_node.io.errors import InputDataError, InvalidDataError
from vis_node.io.frames import Frame

__all__ = ["Frame", "InputDataError", "InvalidDataError"]
