"""The online tracker of issue 4, frozen as the ``vsis bench track`` baseline ("issue-4 tracker").

A verbatim copy of :class:`vis_node.tracking.tracker.OnlineTracker` before issue 11
(tentative tracks deleted on their first miss, absolute re-id threshold, key-frame
embedding overwritten when the mask grows, no coasting), kept only so the benchmark can
show what the lifecycle, re-identification and coasting of the current tracker change.
Do not use it for anything else.

Over 400 lines on purpose: as a frozen copy of one tracker's state machine it is kept
whole, so that it can be read (and diffed) against the tracker it preserves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from vis_node.tracking.association import (
    NEW_TRACK,
    assign,
    box_iou,
    cosine_similarity,
    mask_iou,
    match_by_iou,
)
from vis_node.tracking.embedding import ColourHistogramEmbedder, Embedder
from vis_node.tracking.flow import DISFlow, FlowEstimator, warp_masks
from vis_node.tracking.scores import AssociationScore, CueFusionScore, MatchCues
from vis_node.structures.geometry import boxes_from_masks, mask_box
from vis_node.structures.instances import Instances


class TrackState(enum.Enum):
    """Lifecycle state of a track."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass
class Track:
    """One track held by an :class:`BaselineTracker` (read it, do not modify it).

    Attributes
    ----------
    track_id:
        Positive id, unique within the tracker since its last :meth:`BaselineTracker.reset`.
    state:
        Lifecycle state.
    hits:
        Number of frames with a matched detection.
    first_frame, last_frame:
        Frame indices (0-based, counted by the tracker) of the first and latest match.
    mask:
        ``bool[H, W]`` latest mask; ``None`` once the track is lost.
    box:
        ``float32[4]`` latest box ``x1, y1, x2, y2`` in pixels.
    label:
        Class id of the latest detection (argmax of its class probabilities).
    embedding:
        ``float32[D]`` appearance embedding at the key frame; ``None`` when the
        tracker's association ignores appearance.
    key_frame:
        Frame index of the key frame.
    key_area:
        Mean connected-region area (pixels) of the mask at the key frame.
    """

    track_id: int
    state: TrackState
    hits: int
    first_frame: int
    last_frame: int
    mask: np.ndarray | None
    box: np.ndarray
    label: int
    embedding: np.ndarray | None
    key_frame: int
    key_area: float


def mean_region_area(mask: np.ndarray) -> float:
    """SISO key-frame criterion: mask area divided by its number of connected regions.

    Parameters
    ----------
    mask:
        ``bool[H, W]``.

    Returns
    -------
    float
        Mean area in pixels of the 8-connected regions; 0 for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    box = mask_box(mask)
    if box is None:
        return 0.0
    x1, y1, x2, y2 = box
    crop = mask[y1:y2, x1:x2].view(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].sum()) / (count - 1)


class _Default:
    """Marker for "build the default component"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""Pass-through marker for :class:`BaselineTracker` components: build the default one."""


class BaselineTracker:
    """Assign stable track ids to per-frame instances.

    Parameters
    ----------
    flow:
        Dense optical-flow estimator for identity propagation; default
        :class:`~vis_node.tracking.flow.DISFlow` at half resolution. ``None`` disables
        propagation (every track then goes to the association stage with its last box).
    association:
        Scores detections against remembered tracks (re-identification); default
        :class:`~vis_node.tracking.scores.CueFusionScore` (MaskTrack Eq. 3).
        ``None`` disables the stage: detections not propagated start new tracks.
    embedder:
        Appearance embedder used when the instances carry no ``embeddings``; default
        :class:`~vis_node.tracking.embedding.ColourHistogramEmbedder`.
    propagation_iou:
        Smallest IoU between a warped track mask and a detection (SISO: 0.7).
    min_hits:
        Matched frames needed to confirm a tentative track.
    max_lost_age:
        Frames a lost track is remembered; 0 forgets tracks as soon as they are missed.
    max_memory:
        Most lost tracks remembered at once.
    drop_conflicts:
        A detection that loses the contest for its best track gets id 0 (MaskTrack R-CNN)
        instead of starting a new track.
    publish_tentative:
        Report ids of tentative tracks (``True``) or 0 until they are confirmed.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names it.
    TypeError
        If a component does not have the expected interface; the message names it.

    Examples
    --------
    >>> tracker = BaselineTracker()
    >>> for image, detections in stream:  # doctest: +SKIP
    ...     tracked = tracker.update(detections, image)
    ...     print(tracked.track_ids)
    """

    def __init__(
        self,
        *,
        flow: FlowEstimator | _Default | None = DEFAULT,
        association: AssociationScore | _Default | None = DEFAULT,
        embedder: Embedder | _Default = DEFAULT,
        propagation_iou: float = 0.7,
        min_hits: int = 2,
        max_lost_age: int = 30,
        max_memory: int = 64,
        drop_conflicts: bool = True,
        publish_tentative: bool = True,
    ) -> None:
        self.flow: FlowEstimator | None = DISFlow() if isinstance(flow, _Default) else flow
        self.association: AssociationScore | None = (
            CueFusionScore() if isinstance(association, _Default) else association
        )
        self.embedder: Embedder = (
            ColourHistogramEmbedder() if isinstance(embedder, _Default) else embedder
        )
        if self.flow is not None and not callable(self.flow):
            raise TypeError(f"flow must be a callable FlowEstimator or None, got {flow!r}")
        if self.association is not None and (
            not callable(self.association) or not hasattr(self.association, "uses_appearance")
        ):
            raise TypeError(
                "association must be callable with a 'uses_appearance' attribute (an "
                f"AssociationScore) or None, got {association!r}"
            )
        if not callable(self.embedder):
            raise TypeError(f"embedder must be a callable Embedder, got {embedder!r}")
        if not 0.0 < propagation_iou <= 1.0:
            raise ValueError(f"propagation_iou must lie in (0, 1], got {propagation_iou}")
        if int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits must be an integer >= 1, got {min_hits}")
        if int(max_lost_age) != max_lost_age or max_lost_age < 0:
            raise ValueError(f"max_lost_age must be an integer >= 0, got {max_lost_age}")
        if int(max_memory) != max_memory or max_memory < 0:
            raise ValueError(f"max_memory must be an integer >= 0, got {max_memory}")
        self.propagation_iou = float(propagation_iou)
        self.min_hits = int(min_hits)
        self.max_lost_age = int(max_lost_age)
        self.max_memory = int(max_memory)
        self.drop_conflicts = bool(drop_conflicts)
        self.publish_tentative = bool(publish_tentative)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 (call between sequences)."""
        self._tracks: list[Track] = []
        self._next_id = 1
        self._frame = -1
        self._prev_image: np.ndarray | None = None

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Tracks currently held (tentative, confirmed and lost)."""
        return tuple(self._tracks)

    @property
    def frame_index(self) -> int:
        """Index of the last frame passed to :meth:`update` (-1 before the first)."""
        return self._frame

    def update(self, instances: Instances, image: np.ndarray) -> Instances:
        """Track one frame.

        Parameters
        ----------
        instances:
            Detections of this frame (their ``track_ids`` are ignored).
        image:
            ``uint8[H, W, 3]`` RGB frame, the size of the masks.

        Returns
        -------
        Instances
            The same instances with ``track_ids`` set; 0 for a detection dropped in a
            conflict, and for tentative tracks when ``publish_tentative`` is off.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be uint8[H, W, 3] RGB, got {image.dtype}{list(image.shape)}"
            )
        if len(instances) and instances.image_size != image.shape[:2]:
            raise ValueError(f"masks are {instances.image_size} but the image is {image.shape[:2]}")
        if self._prev_image is not None and self._prev_image.shape != image.shape:
            raise ValueError(
                f"frame size changed from {self._prev_image.shape[:2]} to {image.shape[:2]}; "
                "call reset() before a new sequence"
            )
        self._frame += 1
        frame_state = _FrameState(instances, image, self)
        matched: dict[int, Track] = {}
        predicted_boxes: dict[int, np.ndarray] = {}

        recent = [t for t in self._tracks if t.last_frame == self._frame - 1]
        recent_masks = [t.mask for t in recent if t.mask is not None]
        if self.flow is not None and recent and self._prev_image is not None:
            flow = self.flow(image, self._prev_image)
            warped = warp_masks(np.stack(recent_masks), flow)
            for track, box in zip(recent, boxes_from_masks(warped)):
                predicted_boxes[track.track_id] = box
            if len(instances):
                rows, cols = match_by_iou(mask_iou(warped, instances.masks), self.propagation_iou)
                for r, c in zip(rows, cols):
                    matched[int(c)] = recent[r]

        unmatched_dets = [i for i in range(len(instances)) if i not in matched]
        propagated = {t.track_id for t in matched.values()}
        new_dets: list[int] = []
        if self.association is not None and unmatched_dets and self._tracks:
            taken = np.array([t.track_id in propagated for t in self._tracks])
            codes = assign(
                self.association(frame_state.cues(unmatched_dets, self._tracks, predicted_boxes)),
                self.drop_conflicts,
                taken,
            )
            for det, code in zip(unmatched_dets, codes):
                if code >= 0:
                    matched[det] = self._tracks[code]
                elif code == NEW_TRACK:
                    new_dets.append(det)
        else:
            new_dets = unmatched_dets

        track_ids = np.zeros(len(instances), dtype=np.int64)
        for det, track in matched.items():
            self._update_track(track, det, frame_state)
            track_ids[det] = track.track_id
        updated = {t.track_id for t in matched.values()}
        self._age_unmatched(updated)
        for det in new_dets:
            track = self._new_track(det, frame_state)
            track_ids[det] = track.track_id
        if not self.publish_tentative:
            tentative = {t.track_id for t in self._tracks if t.state is TrackState.TENTATIVE}
            track_ids[np.isin(track_ids, list(tentative))] = 0
        self._prev_image = image.copy()
        return instances.with_track_ids(track_ids)

    def _update_track(self, track: Track, det: int, frame_state: _FrameState) -> None:
        instances = frame_state.instances
        track.hits += 1
        track.last_frame = self._frame
        track.mask = instances.masks[det].copy()
        track.box = instances.boxes[det].copy()
        track.label = int(frame_state.labels[det])
        if track.state is TrackState.LOST or track.hits >= self.min_hits:
            track.state = TrackState.CONFIRMED
        area = mean_region_area(instances.masks[det])
        if area > track.key_area:
            track.key_area = area
            track.key_frame = self._frame
            track.embedding = frame_state.embedding(det)

    def _new_track(self, det: int, frame_state: _FrameState) -> Track:
        instances = frame_state.instances
        track = Track(
            track_id=self._next_id,
            state=TrackState.CONFIRMED if self.min_hits == 1 else TrackState.TENTATIVE,
            hits=1,
            first_frame=self._frame,
            last_frame=self._frame,
            mask=instances.masks[det].copy(),
            box=instances.boxes[det].copy(),
            label=int(frame_state.labels[det]),
            embedding=frame_state.embedding(det),
            key_frame=self._frame,
            key_area=mean_region_area(instances.masks[det]),
        )
        self._next_id += 1
        self._tracks.append(track)
        return track

    def _age_unmatched(self, updated: set[int]) -> None:
        kept: list[Track] = []
        for track in self._tracks:
            if track.track_id not in updated:
                if track.state is TrackState.TENTATIVE:
                    continue
                track.state = TrackState.LOST
                track.mask = None
                if self._frame - track.last_frame > self.max_lost_age:
                    continue
            kept.append(track)
        lost = sorted((t for t in kept if t.state is TrackState.LOST), key=lambda t: t.last_frame)
        excess = {t.track_id for t in lost[: max(0, len(lost) - self.max_memory)]}
        self._tracks = [t for t in kept if t.track_id not in excess]


class _FrameState:
    """Per-frame lazily computed detection features."""

    def __init__(self, instances: Instances, image: np.ndarray, tracker: BaselineTracker) -> None:
        self.instances = instances
        self.image = image
        self.labels = instances.labels
        self._embedder = tracker.embedder
        self.uses_appearance = bool(
            tracker.association is not None and tracker.association.uses_appearance
        )
        self._embeddings: dict[int, np.ndarray] = {}

    def embedding(self, det: int) -> np.ndarray | None:
        """``float32[D]`` embedding of detection ``det`` (the model's, else computed).

        ``None`` when the association ignores appearance, so nothing is computed.
        """
        if not self.uses_appearance:
            return None
        self._ensure([det])
        return self._embeddings[det]

    def _ensure(self, dets: list[int]) -> None:
        missing = [d for d in dets if d not in self._embeddings]
        if not missing:
            return
        if self.instances.embeddings is not None:
            vectors = self.instances.embeddings[missing]
        else:
            vectors = self._embedder(self.image, self.instances.masks[missing])
        for d, vector in zip(missing, np.asarray(vectors, dtype=np.float32)):
            self._embeddings[d] = vector

    def cues(
        self, dets: list[int], candidates: list[Track], predicted_boxes: dict[int, np.ndarray]
    ) -> MatchCues:
        """Cues between detections ``dets`` and ``candidates``."""
        track_boxes = np.stack([predicted_boxes.get(t.track_id, t.box) for t in candidates])
        if self.uses_appearance:
            self._ensure(dets)
            det_vectors = np.stack([self._embeddings[d] for d in dets])
            track_vectors = np.stack([cast(np.ndarray, t.embedding) for t in candidates])
            similarity = cosine_similarity(det_vectors, track_vectors)
        else:
            similarity = np.zeros((len(dets), len(candidates)))
        track_labels = np.array([t.label for t in candidates])
        return MatchCues(
            similarity=similarity,
            det_scores=self.instances.scores[dets],
            box_iou=box_iou(self.instances.boxes[dets], track_boxes),
            same_class=self.labels[dets][:, None] == track_labels[None, :],
        )
