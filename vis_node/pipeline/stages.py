"""The stages of one online frame step: detect, [motion gate], track, unify-and-paint.

:class:`~vis_node.pipeline.online.OnlinePipeline` composes them in one process (``vsis
run``); each ROS node wraps its part as ``message -> decode -> stage(s) -> encode``
(perception: :class:`DetectStage`; tracking: :class:`GateStage` and :class:`TrackStage`,
which share the frame pair's optical flow; semantic: :class:`UnifyStage`), so both
paths compute the same thing by construction.

Nothing here imports torch or rclpy: the semantic node loads this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from vis_node.io.labels import wrap_track_ids
from vis_node.pipeline.backends import Backend
from vis_node.pipeline.filters import InstanceFilter
from vis_node.structures.instances import Instances
from vis_node.structures.label_map import LabelMap
from vis_node.structures.results import NO_FUSION_CONFIDENCE
from vis_node.tracking.flow import LastPairFlow
from vis_node.tracking.motion_gate import MotionSaliencyGate
from vis_node.tracking.tracker import OnlineTracker
from vis_node.tracking.validate import validate_instances
from vis_node.tracking.unification import OnlineUnifier


def foreground_probs(class_probs: np.ndarray) -> np.ndarray:
    """Class probabilities with the background column removed and rows renormalised.

    Every S4Net instance is a salient object, so its label is the best *object* class;
    the background column (class 0) is set to 0.

    Parameters
    ----------
    class_probs:
        ``float[N, C]`` with column 0 = background, ``C >= 2``.

    Returns
    -------
    numpy.ndarray
        ``float32[N, C]`` rows summing to 1 with column 0 = 0; a row with no object
        probability becomes uniform over the object classes.
    """
    probs = np.array(class_probs, dtype=np.float32, copy=True)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"class_probs needs a background and >= 1 object column, got {probs.shape}"
        )
    probs[:, 0] = 0.0
    totals = probs.sum(axis=1, keepdims=True)
    uniform = np.full_like(probs, 1.0 / (probs.shape[1] - 1))
    uniform[:, 0] = 0.0
    return np.where(totals > 0, probs / np.maximum(totals, 1e-12), uniform).astype(np.float32)


def label_maps(instances: Instances, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Instance-id and semantic maps of tracked instances.

    Parameters
    ----------
    instances:
        Instances with ``track_ids`` >= 1 (0 = not painted).
    labels:
        ``int[N]`` class id (0..255) of each instance.

    Returns
    -------
    id_map, semantic_map:
        ``uint16[H, W]`` (:meth:`Instances.id_map`: overlaps go to the higher score)
        and ``uint8[H, W]`` with the label of the instance painted at each pixel. Track
        ids above 65535 (long streams) wrap within 1..65535 in the id map
        (:func:`vis_node.io.labels.wrap_track_ids`); messages and results keep the full id.
    """
    ids = instances.id_map()
    tracked = instances.track_ids > 0
    lookup = np.zeros(max(int(instances.track_ids.max(initial=0)) + 1, 256), dtype=np.uint8)
    lookup[instances.track_ids[tracked]] = np.asarray(labels)[tracked]
    # A table lookup per pixel: OpenCV's for 8-bit ids (4x faster than NumPy's).
    semantic = cv2.LUT(ids, lookup[:256]) if ids.dtype == np.uint8 else np.take(lookup, ids)
    return wrap_track_ids(ids), semantic


@dataclass(frozen=True)
class Detections:
    """Output of :class:`DetectStage` (and :class:`GateStage`) for one frame.

    Attributes
    ----------
    instances:
        The kept instances, masks ``bool[N, H, W]`` at frame resolution, no track ids.
    frame_confidence:
        SISO frame confidence in ``[0, 1]`` (:class:`MotionSaliencyGate`), or
        :data:`~vis_node.structures.results.NO_FUSION_CONFIDENCE` before or without a
        gate.
    """

    instances: Instances
    frame_confidence: float


class DetectStage:
    """Frame -> backend -> instance filter.

    Parameters
    ----------
    backend:
        The loaded model (or ground-truth oracle).
    instance_filter:
        Runtime filters applied to the backend's instances; default keeps all.

    Raises
    ------
    ValueError
        A ``class_allow`` name of the filter that the backend's label map lacks.
    """

    def __init__(self, backend: Backend, instance_filter: InstanceFilter | None = None) -> None:
        self.backend = backend
        self.label_map = LabelMap(backend.class_names, backend.name)
        self.instance_filter = instance_filter if instance_filter is not None else InstanceFilter()
        self.instance_filter.allowed_ids(self.label_map)

    def __call__(self, image: np.ndarray, stamp_ns: int) -> Detections:
        """Detect the salient instances of one frame.

        Parameters
        ----------
        image:
            ``uint8[H, W, 3]`` RGB frame.
        stamp_ns:
            Its capture time in nanoseconds (the oracle picks its annotation by it).
        """
        instances = self.instance_filter(self.backend.predict(image, stamp_ns), self.label_map)
        return Detections(instances, NO_FUSION_CONFIDENCE)


class GateStage:
    """Detections -> SISO motion-saliency gate -> the instances covering what moves.

    It sits between detection and tracking and shares the tracker's
    :class:`~vis_node.tracking.flow.LastPairFlow`, so the flow of a frame pair is computed
    once for both (in the ROS graph both run in the tracking node, which computes that
    flow while the model works on the frame).

    Parameters
    ----------
    gate:
        The gate; it sets the frame confidence.
    """

    def __init__(self, gate: MotionSaliencyGate) -> None:
        self.gate = gate

    def reset(self) -> None:
        """Forget the previous frame (call between sequences)."""
        self.gate.reset()

    def prefetch(self, image: np.ndarray) -> None:
        """Compute the moving region of ``image`` (the next frame to be gated) ahead of
        time, from the flow the track stage prefetched
        (:meth:`MotionSaliencyGate.prefetch`); results never change."""
        self.gate.prefetch(image)

    def __call__(self, detections: Detections, image: np.ndarray) -> Detections:
        """Gate one frame's detections.

        Parameters
        ----------
        detections:
            The detect stage's output for ``image``.
        image:
            ``uint8[H, W, 3]`` RGB frame they come from.

        Raises
        ------
        vis_node.structures.errors.InvalidDataError
            Detections the tracker would refuse (checked here, before the gate may drop
            the offending instance, so bad input is reported whether or not it moves).
        """
        instances = validate_instances(detections.instances, image)
        kept, frame_confidence = self.gate(instances, image)
        return Detections(kept, frame_confidence)


class TrackStage:
    """Detections -> instances with track ids (:class:`OnlineTracker`).

    A frame of another size than the previous one starts new tracks: ids cannot follow
    objects across a change of resolution.

    Parameters
    ----------
    tracker:
        The tracker; default :class:`OnlineTracker` with its defaults. Give it a
        :class:`~vis_node.tracking.flow.LastPairFlow` to use :meth:`prefetch`.
    """

    def __init__(self, tracker: OnlineTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else OnlineTracker()
        self._shape: tuple[int, ...] | None = None
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget all tracks and the previous frame."""
        self.tracker.reset()
        self._shape = None
        self._previous = None

    def prefetch(self, image: np.ndarray) -> None:
        """Compute the flow from ``image`` to the last tracked frame ahead of time.

        For a caller that has the next frame before its detections (the tracking node
        gets the camera image while the model still runs): the flow :meth:`__call__`
        needs for it is then ready in the tracker's
        :class:`~vis_node.tracking.flow.LastPairFlow`, which hands it out only for the
        same pair of frames (:func:`~vis_node.structures.frames.same_pixels`), so
        results never change. A tracker without a ``LastPairFlow`` computes nothing here.

        Parameters
        ----------
        image:
            ``uint8[H, W, 3]`` RGB frame to be tracked next.
        """
        flow, previous = self.tracker.flow, self._previous
        if isinstance(flow, LastPairFlow) and previous is not None and previous.shape == image.shape:
            flow.reduced(image, previous)

    def size_changed(self, image: np.ndarray) -> bool:
        """Whether ``image`` differs in size from the previous frame (tracks restart)."""
        return self._shape is not None and self._shape != image.shape

    def __call__(self, instances: Instances, image: np.ndarray) -> Instances:
        """Track one frame.

        Parameters
        ----------
        instances:
            This frame's detections.
        image:
            ``uint8[H, W, 3]`` RGB frame they come from.

        Returns
        -------
        Instances
            As :meth:`OnlineTracker.update`: the detections with ``track_ids`` (0 for
            untracked duplicates), then one ``predicted`` instance per coasting track.
        """
        if self.size_changed(image):
            self.tracker.reset()
        self._shape = image.shape
        self._previous = image
        return self.tracker.update(instances, image)


@dataclass(frozen=True)
class Unified:
    """Output of :class:`UnifyStage` for one frame.

    Attributes
    ----------
    instances:
        The tracked instances (``track_ids > 0``).
    labels:
        ``int64[N]`` unified class id of each (>= 1).
    confidences:
        ``float32[N]`` confidence of each unified label.

    The label images (:attr:`id_map`, :attr:`semantic_map`) are painted on first use,
    so a node can publish the unified instances before it spends time on them.
    """

    instances: Instances
    labels: np.ndarray
    confidences: np.ndarray

    @cached_property
    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        return label_maps(self.instances, self.labels)

    @property
    def id_map(self) -> np.ndarray:
        """``uint16[H, W]`` track id per pixel, 0 = background."""
        return self._maps[0]

    @property
    def semantic_map(self) -> np.ndarray:
        """``uint8[H, W]`` unified class id per pixel."""
        return self._maps[1]


class UnifyStage:
    """Tracked instances -> one class per track (:class:`OnlineUnifier`) -> label images.

    Parameters
    ----------
    unifier:
        The unifier; default :class:`OnlineUnifier` with its defaults.
    """

    def __init__(self, unifier: OnlineUnifier | None = None) -> None:
        self.unifier = unifier if unifier is not None else OnlineUnifier()

    def reset(self) -> None:
        """Forget every track's class history."""
        self.unifier.reset()

    def __call__(self, tracked: Instances) -> Unified:
        """Unify the classes of one frame's tracked instances (painted when asked).

        Parameters
        ----------
        tracked:
            :class:`TrackStage` output; instances with track id 0 are dropped.
        """
        instances = tracked.select(tracked.track_ids > 0)
        labels, confidences = self.unifier.update(
            instances.track_ids, foreground_probs(instances.class_probs)
        )
        return Unified(instances, labels, confidences)
