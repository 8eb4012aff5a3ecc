"""The per-frame output record of every pipeline (online, offline, ROS replay)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vis_node.structures.frames import Frame
from vis_node.structures.instances import Instances

NO_FUSION_CONFIDENCE = 1.0
"""SISO frame confidence of a frame whose instances all passed unfused (no motion gate,
no motion evidence, or no instances): the segmenter's own saliency decides."""


@dataclass
class FrameResult:
    """Everything a pipeline produces for one frame.

    Attributes
    ----------
    frame:
        The input frame.
    instances:
        Tracked instances (``track_ids > 0`` only), masks at frame resolution.
    labels:
        ``int64[N]`` unified class id of each instance (>= 1).
    confidences:
        ``float32[N]`` confidence of the unified label (mean class probability of the
        track's frames so far, online; over the whole track, offline).
    id_map:
        ``uint16[H, W]`` track id per pixel, 0 = background.
    semantic_map:
        ``uint8[H, W]`` class id per pixel (the label of the track painted there).
    frame_confidence:
        SISO frame confidence in ``[0, 1]``: the mean confidence score of the instances
        the motion gate selected, :data:`NO_FUSION_CONFIDENCE` where nothing was fused.
    timings:
        Milliseconds per stage (``"detect"``, ``"track"``, ``"unify"``, ...).
    """

    frame: Frame
    instances: Instances
    labels: np.ndarray
    confidences: np.ndarray
    id_map: np.ndarray
    semantic_map: np.ndarray
    frame_confidence: float = NO_FUSION_CONFIDENCE
    timings: dict[str, float] = field(default_factory=dict)
