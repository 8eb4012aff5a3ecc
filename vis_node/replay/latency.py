"""Latency bookkeeping of a replay, from header stamps (no ROS import).

The replayer notes when it published each frame and when each output topic delivered
the message carrying that frame's stamp. Stage latency is the time between the
previous stage's output and this stage's output for the same stamp; end-to-end is
from publishing the image to the last stage's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

PACES = ("max", "stream", "recorded")
"""How a replay feeds frames: ``max`` one at a time through an idle graph (latency),
``stream`` one frame always waiting for the model (throughput), ``recorded`` the bag's clock."""


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """``{"median", "p90", "max", "mean"}`` in milliseconds of durations in seconds."""
    if not values_s:
        return {"median": float("nan"), "p90": float("nan"), "max": float("nan"),
                "mean": float("nan")}
    values = np.asarray(values_s, dtype=np.float64) * 1000.0
    return {
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }


@dataclass
class LatencyLog:
    """Arrival times of each frame's messages along a chain of topics.

    Parameters
    ----------
    stages:
        Output topics in pipeline order, e.g. ``("instances", "tracked_instances",
        "unified_instances")``; the image publication is the implicit first event.
    """

    stages: tuple[str, ...]
    published: dict[int, float] = field(default_factory=dict)
    arrived: dict[str, dict[int, float]] = field(default_factory=dict)

    def publish(self, stamp_ns: int, t_s: float) -> None:
        """Note that the frame stamped ``stamp_ns`` was published at ``t_s`` (seconds)."""
        self.published[stamp_ns] = t_s

    def arrive(self, stage: str, stamp_ns: int, t_s: float) -> None:
        """Note the first arrival of ``stage``'s message for ``stamp_ns`` at ``t_s``."""
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r}; stages are {self.stages}")
        self.arrived.setdefault(stage, {}).setdefault(stamp_ns, t_s)

    def reached(self, stage: str, stamp_ns: int) -> bool:
        """Whether ``stage`` delivered the frame stamped ``stamp_ns``."""
        return stamp_ns in self.arrived.get(stage, {})

    def complete(self, stamp_ns: int) -> bool:
        """Whether the last stage delivered the frame stamped ``stamp_ns``."""
        return self.reached(self.stages[-1], stamp_ns)

    def report(self) -> dict[str, object]:
        """Per-stage and end-to-end latency (median / p90 / max / mean, ms) and drops.

        Returns
        -------
        dict
            ``"stages"``: stage -> summary; ``"end_to_end"``: summary; ``"published"``,
            ``"delivered"`` and ``"dropped"`` frame counts (a frame is dropped when the
            last stage never delivered it); ``"throughput_fps"``: frames delivered per
            second from the first publication to the last delivery (0 for none);
            ``"max_at_first_stage"``: the most frames that were published and not yet out
            of the first stage (the model) when a frame was published, this one
            included (1 when each frame meets an idle model, 2 when one frame waits
            while the model works on another).
        """
        stages: dict[str, dict[str, float]] = {}
        previous = self.published
        for stage in self.stages:
            current = self.arrived.get(stage, {})
            deltas = [current[s] - previous[s] for s in current if s in previous]
            stages[stage] = summary_ms(deltas)
            previous = current
        last = self.arrived.get(self.stages[-1], {})
        end_to_end = [last[s] - self.published[s] for s in last if s in self.published]
        delivered = sum(1 for s in self.published if s in last)
        delivered_at = [last[s] for s in last if s in self.published]
        span = max(delivered_at, default=0.0) - min(self.published.values(), default=0.0)
        return {
            "stages": stages,
            "end_to_end": summary_ms(end_to_end),
            "published": len(self.published),
            "delivered": delivered,
            "dropped": len(self.published) - delivered,
            "throughput_fps": delivered / span if delivered and span > 0 else 0.0,
            "max_at_first_stage": self._max_at_first_stage(),
        }

    def _max_at_first_stage(self) -> int:
        """Most frames published and not yet out of the first stage at a publication
        (a frame the stage never delivered counts as still in it)."""
        if not self.published:
            return 0
        first = self.arrived.get(self.stages[0], {})
        published = np.sort(np.fromiter(self.published.values(), dtype=np.float64))
        out = np.sort(np.array([first[s] for s in self.published if s in first], dtype=np.float64))
        inside = (np.searchsorted(published, published, side="right")
                  - np.searchsorted(out, published, side="right"))
        return int(inside.max())
