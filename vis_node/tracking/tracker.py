"""Online instance tracker: flow propagation, look-alike-resistant re-id, lifecycle, coasting.

Per frame (SISO section 4.4 with the memory of MaskTrack R-CNN, hardened for real
detections):

1. *Identity propagation* (SISO 4.4.1). Every active track (tentative or confirmed,
   detected or coasted in the previous frame) has its mask warped into the current
   frame with dense optical flow; warped masks and detections are matched one-to-one by
   mask IoU (Hungarian), keeping pairs with IoU of at least ``propagation_iou``.
2. *Re-identification* (SISO 4.4.2). The remaining detections are scored against every
   other track held (coasting, tentative or lost) by an
   :class:`~vis_node.tracking.scores.AssociationScore`, by default
   :class:`~vis_node.tracking.scores.RelativeReidScore`: a pair must be in the
   same embedding space, the detection must lie where the track can be (its last
   velocity and the frames it has been gone), and the best track must beat the second
   best by a margin, else "new track" wins. Appearance is a bounded gallery per track
   (:class:`~vis_node.tracking.gallery.Gallery`) updated only on confident matches.
   Before that, a left-over detection lying inside another detection that scores at
   least as high (a spatial duplicate) gets id 0 (``drop_conflicts``).
3. Every detection left over starts a new track.
4. *Coasting*. A confirmed track without a detection keeps its flow-warped mask while it
   stays plausible (:mod:`vis_node.tracking.coasting`: forward-backward consistent
   flow, stable area, not covered by other detections; its colour still close to the
   track's gallery and unlike a ring around it, as a mask left on the background is);
   it is output as an extra instance with ``predicted`` set. When the mask stops being
   plausible the track is lost.

Lifecycle: a new track is ``TENTATIVE`` (its id is published); it is ``CONFIRMED``
once it has ``min_hits`` matched frames, and removed if it has not within
``confirm_window`` frames, so one missed detection does not throw its identity away.
A confirmed track that can no longer coast is ``LOST`` and stays in memory for
``max_lost_age`` frames; at most ``max_memory`` lost tracks are kept (the longest-lost
go first). A lost track that is matched again is ``CONFIRMED``.

Over 400 lines on purpose: the frame step and the track lifecycle are one state machine
(propagation, re-identification, coasting and ageing read and change the same tracks
and per-frame cache) and read best in one place. Its settings are in
:mod:`vis_node.tracking.tracker_config`, the association scores in
:mod:`vis_node.tracking.scores` and the coasting checks in :mod:`vis_node.tracking.coasting`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field

import cv2
import numpy as np

from vis_node.tracking.association import assign, box_iou, mask_iou, match_by_iou
from vis_node.tracking.coasting import check_coasted, forward_backward_error
from vis_node.tracking.embedding import ColourHistogramEmbedder, Embedder
from vis_node.tracking.flow import (
    DISFlow,
    FlowEstimator,
    reduced_flow,
    resize_masks,
    upscale_mask,
    warp_masks,
)
from vis_node.tracking.gallery import Gallery, Space
from vis_node.tracking.scores import AssociationScore, MatchCues, RelativeReidScore
from vis_node.tracking.tracker_config import TrackerConfig
from vis_node.structures.frames import snapshot
from vis_node.structures.instances import Instances, boxes_from_masks
from vis_node.tracking.validate import validate_instances


class TrackState(enum.Enum):
    """Lifecycle state of a track."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass
class Track:
    """One track held by an :class:`OnlineTracker` (read it, do not modify it).

    Attributes
    ----------
    track_id:
        Positive id, unique within the tracker since its last :meth:`OnlineTracker.reset`.
    state:
        Lifecycle state.
    hits:
        Number of frames with a matched detection.
    first_frame, last_frame:
        Frame indices (0-based, counted by the tracker) of the first and latest match.
    seen_frame:
        Latest frame the track had a mask in (matched or coasted).
    mask:
        ``bool[H, W]`` mask in ``seen_frame``; ``None`` once the track is lost.
    box:
        ``float32[4]`` box ``x1, y1, x2, y2`` in pixels of that mask.
    predicted:
        The mask is coasted (flow-propagated), not detected.
    grid_mask:
        ``bool[h, w]`` a coasted mask as carried on the flow's grid (``mask`` is its
        upscale); ``None`` when ``mask`` is a detection's.
    velocity:
        ``float64[2]`` box-centre velocity in pixels per frame (x, y): the latest step
        between two sightings (zero after a re-identification across a gap).
    area:
        Reference area in pixels (of the confident detections).
    gallery:
        Appearance embeddings of confident matches.
    gallery_frame:
        Frame of the latest gallery update.
    label:
        Class id of the latest detection (argmax of its class probabilities).
    class_probs:
        ``float32[C]`` class probabilities of the latest detection.
    saliency, score:
        Saliency and confidence of the latest detection.
    model_embedding:
        ``float32[D]`` the segmenter's embedding of the latest detection, if any.
    """

    track_id: int
    state: TrackState
    hits: int
    first_frame: int
    last_frame: int
    seen_frame: int
    mask: np.ndarray | None
    box: np.ndarray
    label: int
    class_probs: np.ndarray
    saliency: float
    score: float
    area: float
    gallery: Gallery
    gallery_frame: int
    model_embedding: np.ndarray | None = None
    predicted: bool = False
    grid_mask: np.ndarray | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0], dtype=np.float64)


def _diagonal(box: np.ndarray) -> float:
    return max(1.0, float(np.hypot(box[2] - box[0], box[3] - box[1])))


class _Default:
    """Marker for "build the default component"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""Pass-through marker for :class:`OnlineTracker` components: build the default one."""


class OnlineTracker:
    """Assign stable track ids to per-frame instances.

    Parameters
    ----------
    config:
        Settings; default :class:`TrackerConfig`.
    flow:
        Dense optical-flow estimator for propagation and coasting; default
        :class:`~vis_node.tracking.flow.DISFlow`. ``None`` disables both (every track
        then goes to the association stage with its last box).
    association:
        Scores detections against held tracks (re-identification); default
        :class:`~vis_node.tracking.scores.RelativeReidScore` with the config's
        ``reid_min_similarity`` and ``reid_margin``. ``None`` disables the stage.
    embedder:
        Appearance embedder used when the instances carry no ``embeddings``; default
        :class:`~vis_node.tracking.embedding.ColourHistogramEmbedder`.
    **overrides:
        :class:`TrackerConfig` fields replacing those of ``config``.

    Raises
    ------
    ValueError
        If a setting is out of range; the message names it.
    TypeError
        If a component does not have the expected interface, or an override is not a
        setting; the message names it.

    Examples
    --------
    >>> tracker = OnlineTracker(TrackerConfig(min_hits=3))
    >>> for image, detections in stream:  # doctest: +SKIP
    ...     tracked = tracker.update(detections, image)
    ...     print(tracked.track_ids, tracked.predicted)
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        *,
        flow: FlowEstimator | _Default | None = DEFAULT,
        association: AssociationScore | _Default | None = DEFAULT,
        embedder: Embedder | _Default = DEFAULT,
        **overrides: object,
    ) -> None:
        config = config or TrackerConfig()
        names = {f.name for f in dataclasses.fields(TrackerConfig)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown tracker setting(s) {unknown}; settings: {sorted(names)}")
        self.config = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
        self.flow: FlowEstimator | None = DISFlow() if isinstance(flow, _Default) else flow
        self.association: AssociationScore | None = (
            RelativeReidScore(
                self.config.reid_min_similarity,
                self.config.reid_margin,
                self.config.reid_motion_weight,
            )
            if isinstance(association, _Default)
            else association
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
            The detections with ``track_ids`` set (0 only for a spatial duplicate of a
            tracked detection, and for tentative tracks when ``publish_tentative`` is
            off), followed by one ``predicted`` instance per coasting confirmed track.
        """
        instances = validate_instances(instances, image)
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
        frame = _FrameState(instances, image, self)
        active = [t for t in self._tracks if t.mask is not None]
        # Propagation works on the grid the flow is computed on (a reduced
        # resolution): masks are downscaled, warped and compared there.
        carried: dict[int, np.ndarray] = {}
        warped: dict[int, np.ndarray] = {}
        backward: np.ndarray | None = None
        if self.flow is not None and active and self._prev_image is not None:
            backward = reduced_flow(self.flow, image, self._prev_image)
            frame.grid = backward.shape[:2]
            carried = _on_grid(active, frame.grid)
            masks = warp_masks(np.stack([carried[t.track_id] for t in active]), backward)
            warped = {t.track_id: m for t, m in zip(active, masks)}

        matched: dict[int, Track] = {}
        confident: set[int] = set()
        overlaps: dict[int, np.ndarray] = {}
        if warped and len(instances):
            ious = mask_iou(np.stack([warped[t.track_id] for t in active]), frame.grid_masks())
            overlaps = {t.track_id: row > 0 for t, row in zip(active, ious)}
            rows, cols = match_by_iou(ious, self.config.propagation_iou)
            for r, c in zip(rows, cols):
                matched[int(c)] = active[r]
                if ious[r, c] >= self.config.gallery_iou:
                    confident.add(int(c))

        left = [i for i in range(len(instances)) if i not in matched]
        duplicates = self._duplicates(left, instances)
        left = [i for i in left if i not in duplicates]
        reidentified: set[int] = set()
        taken = {t.track_id for t in matched.values()}
        candidates = [t for t in self._tracks if t.track_id not in taken]
        if self.association is not None and left and candidates:
            cues = frame.cues(left, candidates, warped, overlaps, self._frame, self.config)
            codes = assign(self.association(cues), drop_conflicts=False)
            for det, code in zip(left, codes):
                if code >= 0:
                    matched[det] = candidates[code]
                    reidentified.add(det)
        left = [i for i in left if i not in matched]

        track_ids = np.zeros(len(instances), dtype=np.int64)
        for det, track in matched.items():
            self._update_track(track, det, frame, det in confident, det in reidentified)
            track_ids[det] = track.track_id
        updated = {t.track_id for t in matched.values()}
        self._age_unmatched(updated, carried, warped, backward, list(matched), frame)
        for det in left:
            track_ids[det] = self._new_track(det, frame).track_id
        if not self.config.publish_tentative:
            tentative = {t.track_id for t in self._tracks if t.state is TrackState.TENTATIVE}
            track_ids[np.isin(track_ids, list(tentative))] = 0
        self._prev_image = snapshot(image)
        return _with_coasted(instances.with_track_ids(track_ids), self._coasting(), image.shape)

    def _duplicates(self, left: list[int], instances: Instances) -> set[int]:
        """Left-over detections lying inside another detection that scores at least as
        high (when ``drop_conflicts``); that detection always gets an id."""
        if not self.config.drop_conflicts or not left or len(instances) < 2:
            return set()
        masks, scores = instances.masks, instances.scores
        out = set()
        for det in left:
            x1, y1, x2, y2 = boxes_from_masks(masks[det][None])[0].astype(int)
            crop = masks[:, y1:y2, x1:x2]  # the detection's mask lies inside
            area = np.count_nonzero(crop[det])
            for other in range(len(instances)):
                if other == det or other in out:
                    continue
                if scores[other] < scores[det] or (scores[other] == scores[det] and other > det):
                    continue
                inside = np.count_nonzero(crop[det] & crop[other])
                if area and inside >= self.config.duplicate_overlap * area:
                    out.add(det)
                    break
        return out

    def _looks_like(self, track: Track, mask: np.ndarray, image: np.ndarray) -> bool:
        """Whether ``mask``'s colour embedding in ``image`` is close to the track's colour
        gallery (when it has one) and unlike the colour of a ring around the mask."""
        vectors = np.asarray(self.embedder(image, np.stack([mask, _surround(mask)])))
        similarity = track.gallery.similarity(("colour", vectors.shape[1]), vectors[0])
        if similarity is not None and similarity < self.config.coast_min_similarity:
            return False
        return float(vectors[0] @ vectors[1]) <= self.config.coast_max_surround_similarity

    def _remember(self, track: Track, det: int, frame: _FrameState) -> None:
        """Add detection ``det``'s embedding (and its colour one) to the track's gallery."""
        embedding = frame.embedding(det)
        if embedding is None:
            return
        track.gallery.add(*embedding)
        if embedding[0][0] != "colour":
            track.gallery.add(*frame.colour(det))
        track.gallery_frame = self._frame

    def _coasting(self) -> list[Track]:
        return [
            t
            for t in self._tracks
            if t.predicted and t.state is TrackState.CONFIRMED and t.seen_frame == self._frame
        ]

    def _update_track(
        self, track: Track, det: int, frame: _FrameState, confident: bool, reidentified: bool
    ) -> None:
        instances = frame.instances
        box = instances.boxes[det].copy()
        if reidentified and track.seen_frame < self._frame - 1:
            # Back after a gap: where it was last says nothing of how it moves now.
            track.velocity = np.zeros(2)
        else:
            step = (_centre(box) - _centre(track.box)) / max(1, self._frame - track.seen_frame)
            track.velocity = step
        track.hits += 1
        track.last_frame = self._frame
        track.seen_frame = self._frame
        track.mask = instances.masks[det].copy()
        track.grid_mask = None
        track.box = box
        track.predicted = False
        track.label = int(frame.labels[det])
        track.class_probs = instances.class_probs[det].copy()
        track.saliency = float(instances.saliency[det])
        track.score = float(instances.scores[det])
        if instances.embeddings is not None:
            track.model_embedding = instances.embeddings[det].copy()
        if track.state is TrackState.LOST or track.hits >= self.config.min_hits:
            track.state = TrackState.CONFIRMED
        area = float(np.count_nonzero(instances.masks[det]))
        ratio = area / max(track.area, 1.0)
        limit = self.config.max_area_ratio
        if confident and 1.0 / limit <= ratio <= limit:
            track.area = 0.8 * track.area + 0.2 * area
            if self._frame - track.gallery_frame >= self.config.gallery_every:
                self._remember(track, det, frame)

    def _new_track(self, det: int, frame: _FrameState) -> Track:
        instances = frame.instances
        track = Track(
            track_id=self._next_id,
            state=TrackState.CONFIRMED if self.config.min_hits == 1 else TrackState.TENTATIVE,
            hits=1,
            first_frame=self._frame,
            last_frame=self._frame,
            seen_frame=self._frame,
            mask=instances.masks[det].copy(),
            box=instances.boxes[det].copy(),
            label=int(frame.labels[det]),
            class_probs=instances.class_probs[det].copy(),
            saliency=float(instances.saliency[det]),
            score=float(instances.scores[det]),
            area=float(np.count_nonzero(instances.masks[det])),
            gallery=Gallery(self.config.gallery_size),
            gallery_frame=self._frame,
            model_embedding=None
            if instances.embeddings is None
            else instances.embeddings[det].copy(),
        )
        self._remember(track, det, frame)
        self._next_id += 1
        self._tracks.append(track)
        return track

    def _age_unmatched(
        self,
        updated: set[int],
        carried: dict[int, np.ndarray],
        warped: dict[int, np.ndarray],
        backward: np.ndarray | None,
        matched: list[int],
        frame: _FrameState,
    ) -> None:
        """Coast, lose or forget the tracks not in ``updated``.

        ``carried`` and ``warped`` map track ids to their masks on the flow's grid in
        the previous frame and warped into this one, ``backward`` is the flow (this
        frame to the previous) on that grid and ``matched`` are this frame's matched
        detections.
        """
        config = self.config
        fb_error: np.ndarray | None = None
        covered: np.ndarray | None = None
        kept: list[Track] = []
        image = frame.image
        for track in self._tracks:
            if track.track_id in updated:
                kept.append(track)
                continue
            coasted = warped.get(track.track_id)
            if coasted is not None and (config.coast or track.state is TrackState.TENTATIVE):
                if fb_error is None or covered is None:
                    assert backward is not None and self.flow is not None
                    assert self._prev_image is not None
                    fb_error = forward_backward_error(
                        backward, reduced_flow(self.flow, self._prev_image, image)
                    )
                    grid_masks = frame.grid_masks()
                    covered = (
                        grid_masks[matched].any(axis=0)
                        if matched
                        else np.zeros(backward.shape[:2], bool)
                    )
                scale = backward.shape[1] / image.shape[1]
                check = check_coasted(
                    coasted,
                    fb_error,
                    float(np.count_nonzero(carried[track.track_id])),
                    covered,
                    fb_tolerance=config.coast_fb_tolerance * _diagonal(track.box) * scale,
                    min_consistent=config.coast_min_consistent,
                    max_area_ratio=config.max_area_ratio,
                    max_covered=config.coast_max_covered,
                )
                full = upscale_mask(coasted, image.shape[:2]) if check.plausible else None
                if full is not None and self._looks_like(track, full, image):
                    track.mask = full
                    track.grid_mask = coasted
                    track.box = boxes_from_masks(full[None])[0]
                    track.seen_frame = self._frame
                    track.predicted = True
                else:
                    track.mask = None
                    track.grid_mask = None
            elif track.state is not TrackState.TENTATIVE:
                track.mask = None
                track.grid_mask = None
            if track.state is TrackState.TENTATIVE:
                if self._frame - track.first_frame + 1 >= config.confirm_window:
                    continue
            elif track.mask is None:
                track.state = TrackState.LOST
                track.predicted = False
                if self._frame - track.last_frame > config.max_lost_age:
                    continue
            kept.append(track)
        lost = sorted((t for t in kept if t.state is TrackState.LOST), key=lambda t: t.last_frame)
        excess = {t.track_id for t in lost[: max(0, len(lost) - config.max_memory)]}
        self._tracks = [t for t in kept if t.track_id not in excess]


def _fit(probs: np.ndarray, length: int) -> np.ndarray:
    """``probs`` cut or zero-padded to ``length``."""
    out = np.zeros(length, np.float32)
    out[: min(length, len(probs))] = probs[:length]
    return out


def _surround(mask: np.ndarray) -> np.ndarray:
    """``bool[H, W]`` ring around a ``bool[H, W]`` mask, a tenth of its size wide
    (the square root of its area; at least 3 pixels)."""
    width = max(3, round(0.1 * np.sqrt(np.count_nonzero(mask))))
    x1, y1, x2, y2 = boxes_from_masks(mask[None])[0].astype(int)
    height, full_width = mask.shape
    y1, x1 = max(0, y1 - width), max(0, x1 - width)
    y2, x2 = min(height, y2 + width), min(full_width, x2 + width)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    ring = np.zeros_like(mask)
    crop = mask[y1:y2, x1:x2]
    ring[y1:y2, x1:x2] = cv2.dilate(crop.view(np.uint8), kernel).astype(bool) & ~crop
    return ring


def _on_grid(tracks: list[Track], grid: tuple[int, int]) -> dict[int, np.ndarray]:
    """Track id -> ``bool[h, w]`` mask of each of ``tracks`` (all with a mask) on the
    ``(h, w)`` grid: a coasted track's as carried there, the others downscaled."""
    out = {
        t.track_id: t.grid_mask
        for t in tracks
        if t.grid_mask is not None and t.grid_mask.shape == grid
    }
    rest = [t for t in tracks if t.track_id not in out and t.mask is not None]
    if rest:
        masks = resize_masks(np.stack([t.mask for t in rest if t.mask is not None]), grid)
        out.update({t.track_id: m for t, m in zip(rest, masks)})
    return out


def _with_coasted(
    tracked: Instances, coasting: list[Track], image_shape: tuple[int, ...]
) -> Instances:
    """``tracked`` followed by one ``predicted`` instance per coasting track."""
    if not coasting:
        return tracked
    classes = (
        tracked.class_probs.shape[1] if len(tracked) else max(len(t.class_probs) for t in coasting)
    )
    embeddings = None
    if tracked.embeddings is not None:
        dim = tracked.embeddings.shape[1]
        extra = [
            t.model_embedding
            if t.model_embedding is not None and len(t.model_embedding) == dim
            else np.zeros(dim, np.float32)
            for t in coasting
        ]
        embeddings = np.concatenate([tracked.embeddings, np.stack(extra)])
    height, width = image_shape[:2]
    masks = np.stack([t.mask for t in coasting if t.mask is not None])
    return Instances(
        masks=np.concatenate([tracked.masks.reshape(-1, height, width), masks]),
        boxes=np.concatenate([tracked.boxes, boxes_from_masks(masks)]),
        class_probs=np.concatenate(
            [
                tracked.class_probs if len(tracked) else np.zeros((0, classes), np.float32),
                np.stack([_fit(t.class_probs, classes) for t in coasting]),
            ]
        ),
        saliency=np.concatenate([tracked.saliency, [t.saliency for t in coasting]]),
        embeddings=embeddings,
        track_ids=np.concatenate([tracked.track_ids, [t.track_id for t in coasting]]),
        scores=np.concatenate([tracked.scores, [t.score for t in coasting]]),
        predicted=np.concatenate([tracked.predicted, np.ones(len(coasting), bool)]),
    )


class _FrameState:
    """Per-frame lazily computed detection embeddings and re-id cues."""

    def __init__(self, instances: Instances, image: np.ndarray, tracker: OnlineTracker) -> None:
        self.instances = instances
        self.image = image
        self.labels = instances.labels
        self._embedder = tracker.embedder
        self.uses_appearance = bool(
            tracker.association is not None and tracker.association.uses_appearance
        )
        self._colour: dict[int, np.ndarray] = {}
        self.grid: tuple[int, int] | None = None
        """``(h, w)`` of the flow's grid this frame (``None`` without flow)."""
        self._grid_masks: np.ndarray | None = None

    def grid_masks(self) -> np.ndarray:
        """``bool[N, h, w]`` the detections' masks on the flow's grid (set ``grid`` first)."""
        assert self.grid is not None
        if self._grid_masks is None:
            self._grid_masks = resize_masks(self.instances.masks, self.grid)
        return self._grid_masks

    def frame_box(self, grid_mask: np.ndarray) -> np.ndarray:
        """``float32[4]`` box, in frame pixels, of a ``bool[h, w]`` mask on the grid."""
        height, width = self.image.shape[:2]
        box = boxes_from_masks(grid_mask[None])[0]
        scale = np.array([width, height, width, height], np.float32) / np.array(
            [grid_mask.shape[1], grid_mask.shape[0]] * 2, np.float32
        )
        return box * scale

    def embedding(self, det: int) -> tuple[Space, np.ndarray] | None:
        """Embedding space and ``float32[D]`` vector of detection ``det``.

        The segmenter's embedding when the instances carry one, else the colour
        fallback; ``None`` when the association ignores appearance.
        """
        if not self.uses_appearance:
            return None
        if self.instances.embeddings is not None:
            vector = self.instances.embeddings[det]
            return ("model", len(vector)), vector
        return self.colour(det)

    def colour(self, det: int) -> tuple[Space, np.ndarray]:
        """The colour-fallback embedding of detection ``det``."""
        if det not in self._colour:
            vector = np.asarray(self._embedder(self.image, self.instances.masks[det][None]))[0]
            self._colour[det] = vector.astype(np.float32)
        vector = self._colour[det]
        return ("colour", len(vector)), vector

    def similarity(self, det: int, track: Track) -> float | None:
        """Gallery similarity in a common embedding space; ``None`` if there is none."""
        first = self.embedding(det)
        if first is None:
            return None
        space, vector = first
        if space in track.gallery.spaces:
            return track.gallery.similarity(space, vector)
        if space[0] != "colour":
            space, vector = self.colour(det)
            return track.gallery.similarity(space, vector)
        return None

    def cues(
        self,
        dets: list[int],
        candidates: list[Track],
        warped: dict[int, np.ndarray],
        overlaps: dict[int, np.ndarray],
        frame_index: int,
        config: TrackerConfig,
    ) -> MatchCues:
        """Cues between detections ``dets`` and ``candidates``.

        ``warped`` maps the ids of tracks seen in the previous frame to their warped
        masks (on the flow's grid) and ``overlaps`` to ``bool[N_all]``, which detections
        their warped mask touches: a touched detection is plausible for the track even
        outside its gate.
        """
        n, m = len(dets), len(candidates)
        similarity = np.zeros((n, m))
        comparable = np.zeros((n, m), bool)
        if self.uses_appearance:
            for i, det in enumerate(dets):
                for j, track in enumerate(candidates):
                    value = self.similarity(det, track)
                    if value is not None:
                        similarity[i, j] = value
                        comparable[i, j] = True
        track_boxes = np.stack(
            [
                self.frame_box(warped[t.track_id]) if t.track_id in warped else t.box
                for t in candidates
            ]
        )
        det_boxes = self.instances.boxes[dets]
        det_centres = np.stack([_centre(b) for b in det_boxes])
        det_diagonals = np.array([_diagonal(b) for b in det_boxes])
        height, width = self.image.shape[:2]
        cost = np.zeros((n, m))
        for j, track in enumerate(candidates):
            gone = frame_index - track.last_frame
            expected = _centre(track.box) + track.velocity * (frame_index - track.seen_frame)
            expected = np.clip(expected, 0, [width, height])  # it left: it re-enters there
            # Judge the track's size by its confident area too, not only its last
            # (possibly partly occluded) box.
            track_size = max(_diagonal(track.box), float(np.sqrt(2.0 * track.area)))
            base = np.maximum(track_size, det_diagonals) * config.gate_radius
            radius = base + track_size * config.gate_growth * (gone - 1)
            distance = np.linalg.norm(det_centres - expected, axis=1) / radius
            inside = distance <= 1.0
            if track.track_id in overlaps:
                inside |= overlaps[track.track_id][dets]
            cost[:, j] = np.where(inside, np.minimum(distance, 1.0) + np.log(radius / base), np.inf)
        return MatchCues(
            similarity=similarity,
            det_scores=self.instances.scores[dets],
            box_iou=box_iou(det_boxes, track_boxes),
            same_class=self.labels[dets][:, None]
            == np.array([t.label for t in candidates])[None, :],
            comparable=comparable if self.uses_appearance else None,
            motion_cost=cost,
        )
