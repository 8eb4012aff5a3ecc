"""Perception model: S4Net-style salient instance segmentation (PyTorch, no ROS).

Entry points: :class:`~vis_node.perception.config.ModelConfig` and
:func:`~vis_node.perception.model.build_model`.
"""

from vis_node.perception.config import ModelConfig
from vis_node.perception.model import S4Net, build_model

__all__ = ["ModelConfig", "S4Net", "build_model"]
