"""The tracker's ``predicted`` flag survives the ROS instance message round trip."""

from __future__ import annotations

import numpy as np
import pytest

from vis_node.structures.instances import Instances

pytest.importorskip("vis_msgs")


def test_predicted_flag_round_trips_through_salient_instance_array() -> None:
    from std_msgs.msg import Header

    from vis_node.ros.instances_msg import instances_from_msg, instances_to_msg

    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:8, 3:9] = True
    masks[1, 10:18, 12:25] = True
    instances = Instances.from_masks(
        masks, class_probs=np.array([[0.1, 0.9], [0.2, 0.8]], np.float32)
    )
    instances = Instances(
        masks=instances.masks,
        boxes=instances.boxes,
        class_probs=instances.class_probs,
        saliency=instances.saliency,
        track_ids=np.array([3, 4]),
        predicted=np.array([False, True]),
    )
    msg = instances_to_msg(instances, Header(), ["background", "thing"])
    assert [item.predicted for item in msg.instances] == [False, True]
    back = instances_from_msg(msg)
    assert back.predicted.tolist() == [False, True]
    assert back.track_ids.tolist() == [3, 4]
