"""Checks of instance messages against the label map of the model that made them.

The perception node publishes the loaded model's label map (latched); the tracking
and semantic nodes take class names only from it, so a name can never disagree with
the model. Pure functions of messages (no node), tested without a graph.
"""

from __future__ import annotations

from vis_msgs.msg import SalientInstanceArray

from vis_node.ros.input_guard import Rejection
from vis_node.structures.label_map import LabelMap


def no_label_map() -> Rejection:
    """Rejection of instances that arrive before any label map."""
    return Rejection(
        "no_label_map",
        "no label map received yet on 'label_map' (latched, published by the perception "
        "node when its model is loaded); check that the perception node is active and "
        "that 'label_map' is remapped like 'instances'",
    )


def check_class_count(msg: SalientInstanceArray, label_map: LabelMap) -> Rejection | None:
    """A ``size_mismatch`` rejection when an instance's class scores or id do not fit.

    Every instance needs ``len(label_map)`` class scores (or none) and a class id
    below ``len(label_map)``.
    """
    count = len(label_map)
    for item in msg.instances:
        if len(item.class_scores) not in (0, count) or item.class_id >= count:
            return Rejection(
                "size_mismatch",
                f"an instance has {len(item.class_scores)} class scores (class id "
                f"{item.class_id}) but the label map of model '{label_map.model_name}' has "
                f"{count} classes; the instances come from another model than the label map",
            )
    return None
