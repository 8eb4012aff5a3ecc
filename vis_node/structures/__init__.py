"""Bottom-layer data structures shared by every VSIS layer: :class:`Instances` (one
frame's instances, masks and boxes), :class:`LabelMap` (class names of a model).

Nothing here imports from perception, tracking, evaluation, pipelines or ROS.
"""

from vis_node.structures.instances import Instances, boxes_from_masks
from vis_node.structures.label_map import LabelMap

__all__ = ["Instances", "LabelMap", "boxes_from_masks"]
