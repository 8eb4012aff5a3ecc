"""Offline pipeline: whole sequences, SISO recurrent propagation, offline unification.

Per sequence:

1. the predictor runs on every frame;
2. a salient-region mask is made per frame (:func:`salient_regions`: the union of
   the frame's instance masks and its binarised motion saliency);
3. :func:`~vis_node.tracking.offline.recurrent_propagation` (SISO 4.3) moves confident
   instances into neighbouring frames where that raises the frame confidence, and
   keeps the confident instances of Algorithm 1 per frame;
4. an :class:`~vis_node.tracking.tracker.OnlineTracker` gives those instances track
   ids, and :func:`~vis_node.tracking.unification.unify_offline` one label per track
   over the whole sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from vis_node.io.frames import Frame
from vis_node.perception.predictor import Predictor
from vis_node.pipeline.online import FrameResult, foreground_probs, label_maps
from vis_node.tracking.flow import DISFlow, FlowEstimator
from vis_node.tracking.fusion import binarise_saliency, motion_saliency
from vis_node.tracking.offline import recurrent_propagation
from vis_node.tracking.tracker import OnlineTracker
from vis_node.tracking.types import Instances
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


class OfflinePipeline:
    """Whole-sequence processing (see the module docstring).

    Parameters
    ----------
    predictor:
        Turns an RGB frame into instances.
    flow:
        Optical flow for motion saliency and propagation; default
        :class:`~vis_node.tracking.flow.DISFlow`.
    tracker_factory:
        Makes the tracker that numbers the propagated instances; default
        ``OnlineTracker(flow=flow)``.
    rule:
        Offline unification rule (``"sum"``, SISO; or ``"vote"``).
    theta, beta2, max_sweeps:
        Parameters of :func:`recurrent_propagation`.
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        flow: FlowEstimator | None = None,
        tracker_factory: Callable[[], OnlineTracker] | None = None,
        rule: str = "sum",
        theta: float = 0.1,
        beta2: float = 0.3,
        max_sweeps: int = 5,
    ) -> None:
        self.predictor = predictor
        self.flow: FlowEstimator = flow if flow is not None else DISFlow()
        self.tracker_factory = tracker_factory or (lambda: OnlineTracker(flow=self.flow))
        self.rule = rule
        self.theta = theta
        self.beta2 = beta2
        self.max_sweeps = max_sweeps

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
            One per frame; timings ``predict`` (per frame) and ``propagate``,
            ``track``, ``unify`` (sequence totals divided by the frame count), in ms.
        """
        if not frames:
            return []
        images = [f.image for f in frames]
        detections, predict_ms = [], []
        for image in images:
            start = time.perf_counter()
            detections.append(self.predictor(image))
            predict_ms.append((time.perf_counter() - start) * 1000.0)
            if progress is not None:
                progress()
        count = len(frames)
        start = time.perf_counter()
        salient = salient_regions(images, detections, self.flow)
        propagated = recurrent_propagation(
            images, detections, salient, self.flow, self.theta, self.beta2, self.max_sweeps
        )
        propagate_ms = (time.perf_counter() - start) * 1000.0 / count
        start = time.perf_counter()
        tracker = self.tracker_factory()
        tracked = []
        for image, confident in zip(images, propagated.confident):
            instances = tracker.update(confident, image)
            tracked.append(instances.select(instances.track_ids > 0))
        track_ms = (time.perf_counter() - start) * 1000.0 / count
        start = time.perf_counter()
        unified = unify_offline(
            ((t.track_ids, foreground_probs(t.class_probs)) for t in tracked), self.rule
        )
        results = []
        for frame, instances, ms in zip(frames, tracked, predict_ms):
            pairs = [unified[int(k)] for k in instances.track_ids]
            labels = np.array([label for label, _ in pairs], dtype=np.int64)
            confidences = np.array([conf for _, conf in pairs], dtype=np.float32)
            id_map, semantic_map = label_maps(instances, labels)
            results.append(
                FrameResult(
                    frame,
                    instances,
                    labels,
                    confidences,
                    id_map,
                    semantic_map,
                    {"predict": ms, "propagate": propagate_ms, "track": track_ms},
                )
            )
        unify_ms = (time.perf_counter() - start) * 1000.0 / count
        for result in results:
            result.timings["unify"] = unify_ms
        return results
