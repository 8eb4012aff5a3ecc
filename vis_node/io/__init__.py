"""Data in and out: frame readers, label PNGs, results JSON, overlays (no ROS)."""

from vis_node.structures.errors import InputDataError, InvalidDataError
from vis_node.structures.frames import Frame

__all__ = ["Frame", "InputDataError", "InvalidDataError"]
