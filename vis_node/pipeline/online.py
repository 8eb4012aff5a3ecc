"""Online pipeline: each frame goes through predictor, tracker and online unifier.

The per-frame steps are small free functions (:func:`foreground_probs`,
:func:`label_maps`) and one class, :class:`OnlinePipeline`, whose :meth:`step` the
``vsis run`` command and the ROS nodes both call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vis_node.io.frames import Frame
from vis_node.io.labels import wrap_track_ids
from vis_node.tracking.flow import DISFlow, FlowEstimator, LastPairFlow
from vis_node.tracking.fusion import MotionSaliencyGate
from vis_node.tracking.tracker import OnlineTracker
from vis_node.structures.instances import Instances
from vis_node.tracking.unification import OnlineUnifier

if TYPE_CHECKING:  # the predictor module imports torch; the semantic node needs none of it
    from vis_node.perception.predictor import Predictor


@dataclass
class FrameResult:
    """Everything the pipeline produces for one frame.

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
    timings:
        Milliseconds per stage (``"predict"``, ``"track"``, ``"unify"``, ...).
    """

    frame: Frame
    instances: Instances
    labels: np.ndarray
    confidences: np.ndarray
    id_map: np.ndarray
    semantic_map: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


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
    lookup = np.zeros(int(instances.track_ids.max(initial=0)) + 1, dtype=np.uint8)
    lookup[instances.track_ids[tracked]] = np.asarray(labels)[tracked]
    return wrap_track_ids(ids), lookup[ids]


class OnlinePipeline:
    """Frame -> predictor -> [motion-saliency gate] -> tracker -> online unifier -> label maps.

    Parameters
    ----------
    predictor:
        Turns an RGB frame into instances (any :class:`Predictor`).
    tracker:
        Gives the instances track ids; default :class:`OnlineTracker` with its defaults.
    unifier:
        Gives each track one label; default :class:`OnlineUnifier` with its defaults.
    gate:
        Optional :class:`~vis_node.tracking.fusion.MotionSaliencyGate` that keeps only
        the instances covering the moving salient region (SISO fusion, online).

    Examples
    --------
    >>> pipeline = OnlinePipeline(TorchPredictor(model))  # doctest: +SKIP
    >>> for frame in open_source("clip.mp4"):  # doctest: +SKIP
    ...     result = pipeline.step(frame)
    """

    def __init__(
        self,
        predictor: Predictor,
        tracker: OnlineTracker | None = None,
        unifier: OnlineUnifier | None = None,
        gate: MotionSaliencyGate | None = None,
    ) -> None:
        self.predictor = predictor
        self.tracker = tracker if tracker is not None else OnlineTracker()
        self.unifier = (
            unifier if unifier is not None else OnlineUnifier(max_idle=self.tracker.config.max_lost_age)
        )
        self.gate = gate

    @classmethod
    def with_motion_gate(
        cls, predictor: Predictor, flow: FlowEstimator | None = None
    ) -> OnlinePipeline:
        """A pipeline with a :class:`MotionSaliencyGate` whose optical flow (frame ``t``
        to ``t - 1``) the tracker reuses, so it is computed once per frame.

        Parameters
        ----------
        predictor:
            Turns an RGB frame into instances.
        flow:
            Flow estimator of both; default :class:`~vis_node.tracking.flow.DISFlow`.
        """
        shared = LastPairFlow(flow if flow is not None else DISFlow())
        return cls(predictor, OnlineTracker(flow=shared), gate=MotionSaliencyGate(flow=shared))

    def reset(self) -> None:
        """Forget all tracks and the previous frame (call between sequences)."""
        self.tracker.reset()
        self.unifier.reset()
        if self.gate is not None:
            self.gate.reset()

    def step(self, frame: Frame) -> FrameResult:
        """Process one frame.

        Parameters
        ----------
        frame:
            The next frame of the current sequence.

        Returns
        -------
        FrameResult
            With timings ``predict``, (``gate``,) ``track``, ``unify`` and ``maps`` in
            milliseconds.
        """
        clock = LapTimer()
        detections = self.predictor(frame.image)
        clock.lap("predict")
        if self.gate is not None:
            detections, _ = self.gate(detections, frame.image)
            clock.lap("gate")
        tracked = self.tracker.update(detections, frame.image)
        tracked = tracked.select(tracked.track_ids > 0)
        clock.lap("track")
        labels, confidences = self.unifier.update(
            tracked.track_ids, foreground_probs(tracked.class_probs)
        )
        clock.lap("unify")
        id_map, semantic_map = label_maps(tracked, labels)
        clock.lap("maps")
        return FrameResult(frame, tracked, labels, confidences, id_map, semantic_map, clock.laps)


class LapTimer:
    """Lap timer: :meth:`lap` stores the milliseconds since the previous lap under a name."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Record the time since the previous lap (or construction) as ``name``."""
        now = time.perf_counter()
        self.laps[name] = (now - self._last) * 1000.0
        self._last = now
