"""Offline pipeline: whole sequences, SISO recurrent propagation or Propose-Reduce.

The methods are named in :data:`vis_node.registry.OFFLINE_METHODS` (:func:`run_siso`,
:func:`run_propose_reduce`). Per sequence, with ``offline_method="siso"`` (default,
:class:`~vis_node.tracking.offline_config.OfflineConfig`):

1. the predictor runs on every frame, and with ``FusionConfig.motion_gate`` (on by
   default, as online) a :class:`~vis_node.tracking.motion_gate.MotionSaliencyGate`
   keeps the instances covering what moves, exactly as the online gate stage;
2. a salient-region mask is made per frame (:func:`salient_regions`: the union of
   the frame's instance masks and its binarised motion saliency);
3. :func:`~vis_node.tracking.offline.recurrent_propagation` (SISO 4.3) moves confident
   instances into neighbouring frames where that raises the frame confidence, and
   keeps the confident instances of Algorithm 1 per frame;
4. an :class:`~vis_node.tracking.tracker.OnlineTracker` gives those instances track
   ids, and :func:`~vis_node.tracking.unification.unify_offline` one label per track
   over the whole sequence.

Every step uses one :class:`~vis_node.tracking.flow_table.FlowTable` per sequence, so the
flow of a frame pair is computed once, however many steps need it.

With ``offline_method="propose-reduce"``, step 1 (gate included) is followed by
:func:`~vis_node.tracking.propose_reduce.propose_reduce` on the detections, whose class
scores are objectness times :func:`~vis_node.pipeline.online.foreground_probs` (so the
sequence score of Eq. 2 counts how confidently and how often the segmenter saw the
object): each kept sequence is a track whose label is its category.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from vis_node.structures.frames import Frame, freeze, is_frozen
from vis_node.perception.predictor import Predictor
from vis_node.pipeline.stages import foreground_probs, label_maps
from vis_node.registry import OFFLINE_METHODS
from vis_node.structures.results import FrameResult
from vis_node.tracking.flow import DISFlow, FlowEstimator
from vis_node.tracking.flow_table import FlowTable
from vis_node.tracking.fusion import FusionConfig, binarise_saliency
from vis_node.tracking.motion_gate import MotionSaliencyGate, motion_saliency
from vis_node.tracking.offline import recurrent_propagation
from vis_node.tracking.propose_reduce import SequenceTrack, propose_reduce
from vis_node.tracking.offline_config import OfflineConfig
from vis_node.tracking.tracker import OnlineTracker
from vis_node.tracking.tracker_config import TrackerConfig
from vis_node.structures.instances import Instances, boxes_from_masks
from vis_node.tracking.unification import unify_offline


def salient_regions(
    images: Sequence[np.ndarray], instances: Sequence[Instances], flow: FlowEstimator
) -> list[np.ndarray]:
    """Salient-region mask of every frame (SISO's saliency stream).

    Parameters
    ----------
    images:
        ``T`` frames ``uint8[H, W, 3]`` RGB.
    instances:
        ``T`` per-frame detections (S4Net instances are salient objects).
    flow:
        Optical flow for the motion saliency of frame ``t`` against ``t - 1`` (frame 0
        uses frame 1).

    Returns
    -------
    list of numpy.ndarray
        ``T`` masks ``bool[H, W]``: union of the frame's instance masks and
        :func:`binarise_saliency` of :func:`motion_saliency`.
    """
    regions = []
    for t, (image, detected) in enumerate(zip(images, instances)):
        region = detected.masks.any(axis=0) if len(detected) else np.zeros(image.shape[:2], bool)
        if len(images) > 1:
            other = images[t - 1] if t > 0 else images[1]
            region = region | binarise_saliency(motion_saliency(flow(image, other)))
        regions.append(region)
    return regions


def track_instances(
    tracks: Sequence[SequenceTrack], frame: int, height: int, width: int, num_classes: int
) -> Instances:
    """The instances of whole-sequence tracks present in one frame.

    Parameters
    ----------
    tracks:
        Tracks from :func:`~vis_node.tracking.propose_reduce.propose_reduce`.
    frame:
        Frame index ``t``.
    height, width:
        Frame size in pixels.
    num_classes:
        Number of classes ``C`` of the tracks' class scores.

    Returns
    -------
    Instances
        One instance per track with a non-empty mask at ``t``: its mask, class
        probabilities at ``t``, ``track_ids`` = track id, ``scores`` = sequence score
        (so the better sequence wins overlapping pixels), ``saliency`` 1.
    """
    present = [k for k in tracks if k.masks[frame].any()]
    if not present:
        return Instances.empty(height, width, num_classes)
    masks = np.stack([k.masks[frame] for k in present])
    return Instances(
        masks=masks,
        boxes=boxes_from_masks(masks),
        class_probs=np.stack([k.class_scores[frame] for k in present]),
        saliency=np.ones(len(present), np.float32),
        track_ids=np.array([k.track_id for k in present], np.int64),
        scores=np.array([k.score for k in present], np.float32),
    )


def _frame_result(
    frame: Frame,
    instances: Instances,
    labels: np.ndarray,
    confidences: np.ndarray,
    timings: dict[str, float],
) -> FrameResult:
    """A :class:`FrameResult` with its id and semantic maps painted from ``labels``."""
    id_map, semantic_map = label_maps(instances, labels)
    return FrameResult(
        frame, instances, labels, confidences, id_map, semantic_map, timings=timings
    )


class OfflinePipeline:
    """Whole-sequence processing (see the module docstring).

    Parameters
    ----------
    predictor:
        Turns an RGB frame into instances.
    flow:
        Optical flow of every step (gate, motion saliency, propagation, tracker);
        default :class:`~vis_node.tracking.flow.DISFlow`. Each sequence wraps it in a
        :class:`~vis_node.tracking.flow_table.FlowTable`.
    tracker_config:
        Settings of the tracker that numbers SISO's propagated instances; default
        :class:`TrackerConfig`'s.
    config:
        Method and its settings; default :class:`OfflineConfig`.
    fusion:
        SISO fusion settings of the motion gate (applied to every frame's detections
        when ``motion_gate`` is on) and of the propagation; default :class:`FusionConfig`.
    fallback_class:
        Class id of the model's ``object`` class, which SISO's unification gives a track
        only when no named class led any of its frames
        (:func:`~vis_node.tracking.unification.unify_offline`); ``None``: none.

    Raises
    ------
    ValueError
        An unknown method (the message lists the known ones).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        flow: FlowEstimator | None = None,
        tracker_config: TrackerConfig | None = None,
        config: OfflineConfig | None = None,
        fusion: FusionConfig | None = None,
        fallback_class: int | None = None,
    ) -> None:
        self.config = config if config is not None else OfflineConfig()
        self.fusion = fusion if fusion is not None else FusionConfig()
        self._method = OFFLINE_METHODS.get(self.config.offline_method)
        self.predictor = predictor
        self.flow: FlowEstimator = flow if flow is not None else DISFlow()
        self.tracker_config = tracker_config if tracker_config is not None else TrackerConfig()
        self.fallback_class = fallback_class

    def run(
        self, frames: Sequence[Frame], progress: Callable[[], None] | None = None
    ) -> list[FrameResult]:
        """Process one sequence.

        Parameters
        ----------
        frames:
            The frames of one sequence, in order.
        progress:
            Called once per predicted frame (e.g. a progress bar's ``update``).

        Returns
        -------
        list of FrameResult
            One per frame; timings ``predict`` (per frame, the gate included) and ``propagate``,
            ``track``, ``unify`` (sequence totals divided by the frame count), in ms;
            ``"propose-reduce"`` has ``predict`` and ``propose_reduce`` instead.

        Raises
        ------
        ValueError
            An unknown method (when the pipeline was made).
        """
        if not frames:
            return []
        # The flow table knows frames by identity, and the gate keeps a snapshot of the
        # previous frame, which is the frame itself only when it is frozen: freeze a
        # private copy of any frame that is not (readers' frames already are).
        frames = [
            f if is_frozen(f.image) else dataclasses.replace(f, image=freeze(np.array(f.image)))
            for f in frames
        ]
        images = [f.image for f in frames]
        flow = FlowTable(self.flow, images)
        gate = (
            MotionSaliencyGate(flow, self.fusion.theta, self.fusion.beta2)
            if self.fusion.motion_gate else None
        )
        detections, predict_ms = [], []
        for image in images:
            start = time.perf_counter()
            instances = self.predictor(image)
            if gate is not None:
                instances, _ = gate(instances, image)
            detections.append(instances)
            predict_ms.append((time.perf_counter() - start) * 1000.0)
            if progress is not None:
                progress()
        return self._method(self, frames, detections, predict_ms, flow)


def run_siso(
    pipeline: OfflinePipeline,
    frames: Sequence[Frame],
    detections: list[Instances],
    predict_ms: list[float],
    flow: FlowEstimator,
) -> list[FrameResult]:
    """SISO offline method: recurrent propagation, tracking, offline unification.

    Parameters
    ----------
    pipeline:
        Supplies the tracker, rule and propagation settings.
    frames, detections, predict_ms:
        One sequence's frames, their detections and prediction times (ms).
    flow:
        The sequence's optical flow (:class:`~vis_node.tracking.flow_table.FlowTable`).

    Returns
    -------
    list of FrameResult
        Timings ``predict``, ``propagate``, ``track`` and ``unify`` in ms.
    """
    images = [f.image for f in frames]
    count = len(frames)
    start = time.perf_counter()
    salient = salient_regions(images, detections, flow)
    propagated = recurrent_propagation(
        images, detections, salient, flow, pipeline.fusion.theta,
        pipeline.fusion.beta2, pipeline.config.max_sweeps,
    )
    propagate_ms = (time.perf_counter() - start) * 1000.0 / count
    start = time.perf_counter()
    tracker = OnlineTracker(pipeline.tracker_config, flow=flow)
    tracked = []
    for image, confident in zip(images, propagated.confident):
        instances = tracker.update(confident, image)
        tracked.append(instances.select(instances.track_ids > 0))
    track_ms = (time.perf_counter() - start) * 1000.0 / count
    start = time.perf_counter()
    unified = unify_offline(
        ((t.track_ids, foreground_probs(t.class_probs)) for t in tracked),
        pipeline.config.unification_rule,
        pipeline.fallback_class,
    )
    results = []
    for frame, instances, ms in zip(frames, tracked, predict_ms):
        pairs = [unified[int(k)] for k in instances.track_ids]
        results.append(
            _frame_result(
                frame,
                instances,
                np.array([label for label, _ in pairs], dtype=np.int64),
                np.array([conf for _, conf in pairs], dtype=np.float32),
                {"predict": ms, "propagate": propagate_ms, "track": track_ms},
            )
        )
    unify_ms = (time.perf_counter() - start) * 1000.0 / count
    for result in results:
        result.timings["unify"] = unify_ms
    return results


def run_propose_reduce(
    pipeline: OfflinePipeline,
    frames: Sequence[Frame],
    detections: list[Instances],
    predict_ms: list[float],
    flow: FlowEstimator,
) -> list[FrameResult]:
    """Propose-Reduce offline method: frame results of :func:`propose_reduce` tracks.

    Parameters
    ----------
    pipeline:
        Supplies the sequence-proposal settings.
    frames, detections, predict_ms:
        One sequence's frames, their detections and prediction times (ms).
    flow:
        The sequence's optical flow (:class:`~vis_node.tracking.flow_table.FlowTable`).

    Returns
    -------
    list of FrameResult
        Timings ``predict`` and ``propose_reduce`` in ms.
    """
    start = time.perf_counter()
    foreground = [
        dataclasses.replace(d, class_probs=foreground_probs(d.class_probs) * d.scores[:, None])
        for d in detections
    ]
    tracks = propose_reduce(
        [f.image for f in frames],
        foreground,
        flow,
        key_frames=pipeline.config.key_frames,
        nms_iou=pipeline.config.sequence_nms_iou,
        score_threshold=pipeline.config.min_sequence_score,
    )
    reduce_ms = (time.perf_counter() - start) * 1000.0 / len(frames)
    category = {k.track_id: k.category for k in tracks}
    confidence = {k.track_id: _label_confidence(k) for k in tracks}
    height, width = frames[0].image.shape[:2]
    num_classes = detections[0].class_probs.shape[1]
    results = []
    for t, (frame, ms) in enumerate(zip(frames, predict_ms)):
        instances = track_instances(tracks, t, height, width, num_classes)
        results.append(
            _frame_result(
                frame,
                instances,
                np.array([category[int(i)] for i in instances.track_ids], np.int64),
                np.array([confidence[int(i)] for i in instances.track_ids], np.float32),
                {"predict": ms, "propose_reduce": reduce_ms},
            )
        )
    return results


def _label_confidence(track: SequenceTrack) -> float:
    """Mean score of the track's category over the frames a detection supports."""
    supported = track.class_scores.any(axis=1)
    return float(track.class_scores[supported, track.category].mean())
