"""Online pipeline: each frame goes through the detect, [gate], track and unify stages.

:class:`OnlinePipeline` composes the stages of :mod:`vis_node.pipeline.stages` in one
process (``vsis run``); the ROS nodes wrap the same stages one per process, so the two
paths give identical outputs.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vis_node.pipeline.backends import Backend, backend_of
from vis_node.pipeline.filters import InstanceFilter
from vis_node.pipeline.stages import DetectStage, GateStage, TrackStage, UnifyStage
from vis_node.structures.frames import Frame
from vis_node.structures.instances import Instances
from vis_node.structures.results import FrameResult
from vis_node.tracking.flow import DISFlow, FlowEstimator, LastPairFlow
from vis_node.tracking.fusion import FusionConfig
from vis_node.tracking.motion_gate import MotionSaliencyGate
from vis_node.tracking.tracker import OnlineTracker
from vis_node.tracking.tracker_config import TrackerConfig
from vis_node.tracking.unification import OnlineUnifier, UnifierConfig

PlainPredictor = Callable[[np.ndarray], Instances]
"""``uint8[H, W, 3] RGB -> Instances`` with a ``class_names`` attribute."""


class OnlinePipeline:
    """Frame -> :class:`DetectStage` -> [:class:`GateStage`] -> :class:`TrackStage` ->
    :class:`UnifyStage`.

    Parameters
    ----------
    detect, track, unify:
        The three stages (see :meth:`build` for the usual assembly).
    gate:
        The optional motion gate between detection and tracking.

    Examples
    --------
    >>> pipeline = OnlinePipeline.build(load_backend("synth"))  # doctest: +SKIP
    >>> for frame in open_source("clip.mp4"):  # doctest: +SKIP
    ...     result = pipeline.step(frame)
    """

    def __init__(
        self,
        detect: DetectStage,
        track: TrackStage,
        unify: UnifyStage,
        gate: GateStage | None = None,
    ) -> None:
        self.detect = detect
        self.gate = gate
        self.track = track
        self.unify = unify

    @classmethod
    def build(
        cls,
        backend: Backend | PlainPredictor,
        *,
        instance_filter: InstanceFilter | None = None,
        tracker_config: TrackerConfig | None = None,
        unifier_config: UnifierConfig | None = None,
        fusion_config: FusionConfig | None = None,
        flow: FlowEstimator | None = None,
    ) -> OnlinePipeline:
        """The usual pipeline around a backend.

        Parameters
        ----------
        backend:
            A loaded backend, or a plain predictor (wrapped by :func:`backend_of`).
        instance_filter:
            Runtime filters of the detect stage; default keeps all.
        tracker_config:
            Tracker settings (default :class:`TrackerConfig`'s).
        unifier_config:
            Unifier settings (default :class:`UnifierConfig`'s); its ``max_idle`` is
            replaced by the tracker's ``max_lost_age``, so the unifier forgets a track
            when the tracker does.
        fusion_config:
            Settings of the motion gate (default :class:`FusionConfig`'s: on). With the
            gate, a :class:`GateStage` (SISO :class:`MotionSaliencyGate`) runs between
            detection and tracking, and gate and tracker share one
            :class:`LastPairFlow`, so the flow of a frame pair is computed once.
        flow:
            Optical flow of the tracker (and gate); default :class:`DISFlow`.
        """
        if not isinstance(backend, Backend):
            backend = backend_of(backend)
        config = tracker_config if tracker_config is not None else TrackerConfig()
        unifier = dataclasses.replace(
            unifier_config if unifier_config is not None else UnifierConfig(),
            max_idle=config.max_lost_age,
        )
        fusion = fusion_config if fusion_config is not None else FusionConfig()
        estimator = flow if flow is not None else DISFlow()
        if not isinstance(estimator, LastPairFlow):
            estimator = LastPairFlow(estimator)
        gate = None
        if fusion.motion_gate:
            gate = GateStage(
                MotionSaliencyGate(flow=estimator, theta=fusion.theta, beta2=fusion.beta2)
            )
        detect = DetectStage(backend, instance_filter)
        return cls(
            detect,
            TrackStage(OnlineTracker(config, flow=estimator)),
            UnifyStage(OnlineUnifier(unifier, fallback_class=detect.label_map.fallback_class)),
            gate,
        )

    def reset(self) -> None:
        """Forget all tracks and the previous frame (call between sequences)."""
        if self.gate is not None:
            self.gate.reset()
        self.track.reset()
        self.unify.reset()

    def step(self, frame: Frame) -> FrameResult:
        """Process one frame.

        Returns
        -------
        FrameResult
            With timings ``detect`` (the gate included), ``track`` and ``unify`` in
            milliseconds.

        The frame pair's optical flow (tracker and gate) and the gate's moving region
        are computed on a second thread while the model runs (:meth:`prefetch`), as the
        tracking node does in the ROS graph.
        """
        clock = LapTimer()
        flow = _flow_thread().submit(self.prefetch, frame.image)
        detections = self.detect(frame.image, frame.stamp_ns)
        # Wait, so that no two threads use the flow at once; a failed prefetch is
        # computed again (and raises) by whoever needs the flow.
        flow.exception()
        if self.gate is not None:
            detections = self.gate(detections, frame.image)
        clock.lap("detect")
        tracked = self.track(detections.instances, frame.image)
        clock.lap("track")
        unified = self.unify(tracked)
        id_map, semantic_map = unified.id_map, unified.semantic_map  # painted: part of unify
        clock.lap("unify")
        return FrameResult(
            frame,
            unified.instances,
            unified.labels,
            unified.confidences,
            id_map,
            semantic_map,
            frame_confidence=detections.frame_confidence,
            timings=clock.laps,
        )

    def prefetch(self, image: np.ndarray) -> None:
        """What the track and gate stages can compute before ``image``'s detections:
        the flow to the previous frame and the moving region (results never change).

        Parameters
        ----------
        image:
            ``uint8[H, W, 3]`` RGB frame to be stepped next.
        """
        self.track.prefetch(image)
        if self.gate is not None:
            self.gate.prefetch(image)


@functools.cache
def _flow_thread() -> ThreadPoolExecutor:
    """The one thread of this process that computes the next frame pair's flow while
    the model runs (``vsis run`` builds a pipeline per sequence; two pipelines stepping
    at once would take turns, with unchanged results)."""
    return ThreadPoolExecutor(1, thread_name_prefix="vsis-flow")


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
