"""Settings of the offline pipeline (``vsis run --mode offline``), one default each.

Kept apart from :mod:`vis_node.tracking.offline` (the algorithms) so that the
``vsis run`` flags and their defaults are read without importing the algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vis_node.registry import OFFLINE_METHODS
from vis_node.tracking.unification import UNIFICATION_RULES


@dataclass(frozen=True)
class OfflineConfig:
    """Settings of the offline pipeline (``vsis run --mode offline``).

    The one place their defaults are written; the fusion settings of the SISO method
    are a :class:`~vis_node.tracking.fusion.FusionConfig`.

    Attributes
    ----------
    offline_method:
        Whole-sequence method: siso (recurrent propagation + offline unification) or
        propose-reduce (key-frame sequence proposals + category-aware sequence NMS).
    unification_rule:
        siso: one label per track from the class scores summed over the video (sum,
        SISO) or from the majority of its per-frame labels (vote).
    max_sweeps:
        siso: most recurrent-propagation sweeps (the paper observes about five).
    key_frames:
        propose-reduce: key frames whose instances seed sequence proposals.
    min_sequence_score:
        propose-reduce: smallest sequence score (Eq. 2 on objectness times class
        probability) kept; the best sequence stays when none reaches it, so a video
        with detections is never emptied. 0.3 with sequence_nms_iou 0.3 brought the
        synth model's track count to the true object count on three synthetic
        320 x 240 videos (0.5 / 0.5 kept part and drift duplicates).
    sequence_nms_iou:
        propose-reduce: sequence mask IoU (Eq. 3) above which the lower-scoring of
        two sequences of one category is suppressed.
    """

    offline_method: str = field(
        default=OFFLINE_METHODS.default, metadata={"choices": OFFLINE_METHODS.names()}
    )
    unification_rule: str = field(
        default=UNIFICATION_RULES[0], metadata={"choices": UNIFICATION_RULES}
    )
    max_sweeps: int = 5
    key_frames: int = 5
    min_sequence_score: float = 0.3
    sequence_nms_iou: float = 0.3

    def __post_init__(self) -> None:
        OFFLINE_METHODS.check(self.offline_method)
        if self.unification_rule not in UNIFICATION_RULES:
            raise ValueError(
                f"unification_rule={self.unification_rule!r}: choose one of "
                f"{', '.join(UNIFICATION_RULES)}"
            )
        for name in ("max_sweeps", "key_frames"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)}")
        for name in ("min_sequence_score", "sequence_nms_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
