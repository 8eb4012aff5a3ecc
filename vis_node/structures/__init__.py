"""Bottom-layer data structures shared by every VSIS layer: :class:`Instances` (one
frame's instances, masks and boxes), mask / box geometry, :class:`Frame` and
:class:`FrameResult` (a pipeline's input and output per frame), :class:`LabelMap`
(class names of a model) and the error types.

Nothing here imports from perception, tracking, evaluation, pipelines or ROS.
"""

from vis_node.structures.errors import InputDataError, InvalidDataError
from vis_node.structures.frames import Frame
from vis_node.structures.geometry import boxes_from_masks, mask_box
from vis_node.structures.instances import Instances
from vis_node.structures.label_map import LabelMap
from vis_node.structures.results import FrameResult

__all__ = [
    "Frame", "FrameResult", "InputDataError", "Instances", "InvalidDataError", "LabelMap",
    "boxes_from_masks", "mask_box",
]
