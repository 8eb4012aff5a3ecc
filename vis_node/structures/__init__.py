"""Bottom-layer data structures shared by every VSIS layer.

Nothing here imports from perception, tracking, evaluation, pipelines or ROS.
"""

from vis_node.structures.label_map import LabelMap

__all__ = ["LabelMap"]
