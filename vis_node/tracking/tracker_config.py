"""Settings of the online tracker (:class:`~vis_node.tracking.tracker.OnlineTracker`).

Kept apart from :mod:`vis_node.tracking.tracker` (the algorithm) so that the
``vsis run`` / ``vsis track`` flags, the ROS parameters and the unifier read the
defaults without importing OpenCV and the tracker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of :class:`~vis_node.tracking.tracker.OnlineTracker` (the one place
    their defaults are written).

    Attributes
    ----------
    propagation_iou:
        Smallest IoU between a warped track mask and a detection (SISO: 0.7; lower
        tolerates jittered boundaries of real detections).
    min_hits:
        Matched frames that confirm a tentative track.
    confirm_window:
        Frames since its first detection within which a tentative track must reach
        ``min_hits``; it survives misses until then.
    max_lost_age:
        Frames a lost track is remembered; 0 forgets tracks as soon as they are lost.
    max_memory:
        Most lost tracks remembered at once.
    drop_conflicts:
        A detection not propagated that lies inside another detection scoring at
        least as high (a spatial duplicate) gets id 0 instead of a track.
    duplicate_overlap:
        Share of a detection's area inside a matched detection that makes it a
        duplicate.
    publish_tentative:
        Report ids of tentative tracks (``True``) or 0 until they are confirmed.
    reid_min_similarity:
        Smallest cosine similarity for re-identification.
    reid_margin:
        Least lead of the best re-id candidate over the second best.
    reid_motion_weight:
        Weight of the motion cost in the re-id score (see
        :class:`~vis_node.tracking.scores.MatchCues`).
    gate_radius:
        Motion gate: distance, in box diagonals (the larger of track and detection),
        a detection may be from where the track's velocity puts it, one frame after
        its last detection (clipped to the image: an object that left re-enters where
        it left). A detection touched by the track's warped mask is always inside.
    gate_growth:
        Box diagonals the gate grows by per further frame gone.
    gallery_size:
        Embeddings kept per track and embedding space.
    gallery_every:
        Frames between two gallery updates of a track.
    gallery_iou:
        Smallest propagation IoU of a confident match (one that may update the gallery).
    max_area_ratio:
        Most a confident match's area may differ from the track's reference area, and
        a coasted mask's from the mask it was carried from (a factor, both ways).
    coast:
        Propagate confirmed tracks whose detection is missing.
    coast_fb_tolerance:
        Round-trip flow error counted consistent, in track box diagonals.
    coast_min_consistent:
        Least share of a coasted mask's pixels with consistent flow.
    coast_max_covered:
        Most share of a coasted mask that other detections may cover.
    coast_min_similarity:
        Least cosine similarity of a coasted mask's colour embedding with the track's
        colour gallery (on the realistic bench, correct coasts score >= 0.77, masks
        left on the background mostly <= 0.68).
    coast_max_surround_similarity:
        Most cosine similarity of a coasted mask's colour embedding with that of a ring
        around it: a mask left on the background (its object gone, or a false
        detection) looks like its surroundings, where flow consistency and area cannot
        tell (on the realistic benches, coasts on their object score <= 0.87 at the
        95th percentile, stale ones >= 0.89).
    """

    propagation_iou: float = 0.5
    min_hits: int = 2
    confirm_window: int = 5
    max_lost_age: int = 30
    max_memory: int = 64
    drop_conflicts: bool = True
    duplicate_overlap: float = 0.8
    publish_tentative: bool = True
    reid_min_similarity: float = 0.5
    reid_margin: float = 0.05
    reid_motion_weight: float = 0.2
    gate_radius: float = 0.5
    gate_growth: float = 0.25
    gallery_size: int = 8
    gallery_every: int = 5
    gallery_iou: float = 0.7
    max_area_ratio: float = 1.6
    coast: bool = True
    coast_fb_tolerance: float = 0.05
    coast_min_consistent: float = 0.6
    coast_max_covered: float = 0.5
    coast_min_similarity: float = 0.7
    coast_max_surround_similarity: float = 0.9

    def __post_init__(self) -> None:
        unit = ("propagation_iou", "duplicate_overlap", "gallery_iou")
        for name in unit:
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        for name in ("coast_min_consistent", "coast_max_covered", "reid_margin"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        counts = {
            "min_hits": 1,
            "confirm_window": 1,
            "max_lost_age": 0,
            "max_memory": 0,
            "gallery_size": 1,
            "gallery_every": 1,
        }
        for name, low in counts.items():
            value = getattr(self, name)
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value}")
        if self.confirm_window < self.min_hits:
            raise ValueError(
                f"confirm_window ({self.confirm_window}) must be >= min_hits ({self.min_hits})"
            )
        similarities = (
            "reid_min_similarity",
            "coast_min_similarity",
            "coast_max_surround_similarity",
        )
        for name in similarities:
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [-1, 1], got {getattr(self, name)}")
        for name in ("gate_radius", "gate_growth", "coast_fb_tolerance", "reid_motion_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_area_ratio < 1.0:
            raise ValueError(f"max_area_ratio must be >= 1, got {self.max_area_ratio}")
