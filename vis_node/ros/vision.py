"""VSIS outputs as standard ``vision_msgs`` (Detection2DArray, LabelInfo).

What downstream consumers (Isaac ROS, ros_deep_learning, yolo_ros users) speak. Pure
functions of messages; import this module only where ``vision_msgs`` is importable
(the semantic node checks, and logs once when it is not).
"""

from __future__ import annotations

from std_msgs.msg import Header
from vis_msgs.msg import SalientInstanceArray
from vision_msgs.msg import (
    Detection2D,
    Detection2DArray,
    LabelInfo,
    ObjectHypothesisWithPose,
    VisionClass,
)

from vis_node.structures.label_map import LabelMap


def label_info_msg(label_map: LabelMap, header: Header, threshold: float = 0.0) -> LabelInfo:
    """``vision_msgs/LabelInfo`` of a label map (class id ``i`` -> ``label_map.names[i]``).

    ``threshold`` is the smallest score of a published detection, in ``[0, 1]``.
    """
    msg = LabelInfo(header=header, threshold=float(threshold))
    msg.class_map = [VisionClass(class_id=i, class_name=n) for i, n in enumerate(label_map.names)]
    return msg


def detections_msg(
    msg: SalientInstanceArray, label_map: LabelMap, max_hypotheses: int
) -> Detection2DArray:
    """``vision_msgs/Detection2DArray`` of the unified instances of one frame.

    Each instance gives one ``Detection2D``: ``id`` = its track id as a string,
    ``bbox`` = its box (centre and size in pixels), and ``results`` = class
    hypotheses named by ``label_map``: first the instance's (unified) class with its
    score, then the other non-background classes with a non-zero frame probability,
    most probable first, ``max_hypotheses`` in all (0 = no limit; each hypothesis
    carries a 6x6 pose covariance, so all 80 COCO classes of 4 instances took 4 ms to
    build). ``class_id`` holds the class *name* (vision_msgs' convention for string
    labels; ``LabelInfo`` maps ids to the same names).
    """
    out = Detection2DArray(header=msg.header)
    for item in msg.instances:
        detection = Detection2D(header=msg.header, id=str(item.track_id))
        detection.bbox.center.position.x = float(item.bbox.center_x)
        detection.bbox.center.position.y = float(item.bbox.center_y)
        detection.bbox.size_x = float(item.bbox.size_x)
        detection.bbox.size_y = float(item.bbox.size_y)
        hypotheses = [(label_map.names[item.class_id], float(item.class_score))]
        others = sorted(
            (
                (float(score), class_id)
                for class_id, score in enumerate(item.class_scores)
                if class_id not in (0, item.class_id) and score > 0.0
            ),
            reverse=True,
        )
        hypotheses += [(label_map.names[class_id], score) for score, class_id in others]
        if max_hypotheses > 0:
            hypotheses = hypotheses[:max_hypotheses]
        for name, score in hypotheses:
            result = ObjectHypothesisWithPose()
            result.hypothesis.class_id = name
            result.hypothesis.score = score
            detection.results.append(result)
        out.detections.append(detection)
    return out
