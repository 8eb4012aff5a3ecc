"""A per-sequence optical-flow cache for the offline methods.

Offline methods hand the same frame pair to several consumers (the motion gate, the
salient regions, SISO propagation, the tracker, Propose-Reduce); :class:`FlowTable`
lets them share every flow. The online path keeps only the last pair
(:class:`~vis_node.tracking.flow.LastPairFlow`): a stream must not keep every pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vis_node.tracking.flow import FlowEstimator, reduced_flow, upscale_flow


class FlowTable:
    """A flow estimator over one sequence's frames that computes each ordered pair once.

    The flows are kept at the estimator's reduced resolution (about 0.46 MB per pair on
    the default 320 x 180 grid); calling the table upscales.

    A frame is recognised by identity: it must be one of ``frames`` (the very array),
    and the frames must not change while the table is in use (the offline pipeline's
    frames are the readers' frozen frames). A pair with any other array is computed
    each time and not kept.

    Parameters
    ----------
    flow:
        The estimator doing the work.
    frames:
        The sequence's ``uint8[H, W, 3]`` RGB frames.
    """

    def __init__(self, flow: FlowEstimator, frames: Sequence[np.ndarray]) -> None:
        self.flow = flow
        # Holding the frames keeps their ids unique to them while the table lives, so
        # an id found in the index is that very frame.
        self._frames = list(frames)
        self._index = {id(frame): k for k, frame in enumerate(self._frames)}
        self._flows: dict[tuple[int, int], np.ndarray] = {}

    @property
    def computed(self) -> int:
        """Number of frame pairs whose flow has been computed and kept."""
        return len(self._flows)

    def reduced(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` at the estimator's resolution (see
        :func:`reduced_flow`)."""
        key = (self._index.get(id(source)), self._index.get(id(target)))
        if key[0] is None or key[1] is None:
            return reduced_flow(self.flow, source, target)
        if key not in self._flows:
            self._flows[key] = reduced_flow(self.flow, source, target)
        return self._flows[key]

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from ``source`` to ``target`` (see :class:`FlowEstimator`)."""
        return upscale_flow(self.reduced(source, target), np.shape(source)[:2])
