"""Instance tracking and semantic unification (no ROS).

* :class:`OnlineTracker` gives per-frame instances stable track ids (SISO identity
  propagation by optical flow + MaskTrack R-CNN style re-identification memory).
* :class:`OnlineUnifier` / :func:`unify_offline` give each track one class label.
* :func:`sequential_fusion` / :func:`fuse_instances` keep the salient instances (SISO
  Algorithm 1); :func:`motion_saliency` makes a saliency map from optical flow and
  :class:`MotionSaliencyGate` applies the fusion to it online.
* :func:`recurrent_propagation` (SISO 4.3) and :func:`sequence_nms` (Propose-Reduce)
  refine whole videos offline.
* Settings, each default written once: :class:`TrackerConfig`, :class:`UnifierConfig`,
  :class:`FusionConfig`, :class:`OfflineConfig` (flags and ROS parameters are made from
  them, :mod:`vis_node.settings`).

Names are imported lazily so that ``vsis --help`` does not load OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CueFusionScore": "scores",
    "IoUTrackerPlusScore": "scores",
    "MatchCues": "scores",
    "ColourHistogramEmbedder": "embedding",
    "DISFlow": "flow",
    "FarnebackFlow": "flow",
    "warp_masks": "flow",
    "FusionConfig": "fusion",
    "FusionResult": "fusion",
    "binarise_saliency": "fusion",
    "confidence_score": "fusion",
    "fuse_instances": "fusion",
    "motion_saliency": "motion_gate",
    "MotionSaliencyGate": "motion_gate",
    "sequential_fusion": "fusion",
    "OnlineTracker": "tracker",
    "TrackerConfig": "tracker_config",
    "Track": "tracker",
    "TrackState": "tracker",
    "OfflineConfig": "offline_config",
    "recurrent_propagation": "offline",
    "sequence_nms": "propose_reduce",
    "OnlineUnifier": "unification",
    "UnifierConfig": "unification",
    "unify_offline": "unification",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
