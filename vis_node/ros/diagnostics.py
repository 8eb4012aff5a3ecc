"""Per-node runtime statistics published on ``/diagnostics``.

:class:`NodeStats` collects stage latencies, processed / dropped frame counts and
gauges (such as active tracks) over a sliding window; :func:`stats_to_status` turns a
snapshot into one ``diagnostic_msgs/DiagnosticStatus``. Frames that never arrived
(stamp gaps against the observed period, per camera topic: a stream of results skips
the frames a busy model did not run) and clock jumps are counted too, so loss on the
way to the node is visible. Stage names used by the VSIS
nodes: ``decode`` (camera image), ``decode_instances`` (instance message),
``inference``, ``tracking``, ``unification``, ``publish``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

DIAGNOSTICS_TOPIC = "/diagnostics"
"""Absolute topic of every VSIS node's diagnostics (ROS convention)."""

CPU_KEY = "cpu_ms_per_frame"
"""Status value: CPU milliseconds of the node's process per processed frame."""


@dataclass(frozen=True)
class StatsSnapshot:
    """What :meth:`NodeStats.snapshot` reports.

    Attributes
    ----------
    latency_ms:
        Stage -> ``(mean, max)`` latency in milliseconds over the window.
    fps:
        Frames processed per second over the window.
    processed:
        Frames processed since start.
    dropped:
        Frames dropped since start (replaced while waiting, or never matched).
    rejected:
        Rejected input messages since start, by kind.
    gauges:
        Named current values (e.g. ``active_tracks``).
    missing:
        Input topic -> frames that never arrived (gaps in its stamps).
    events:
        Clock events (``clock_jump_ahead`` / ``clock_jump_back``) since start.
    cpu_ms_per_frame:
        CPU time of the node's whole process (every thread) per processed frame, in
        milliseconds, over the window; 0 before two frames.
    """

    latency_ms: dict[str, tuple[float, float]]
    fps: float
    processed: int
    dropped: int
    rejected: dict[str, int]
    gauges: dict[str, float] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_frame: float = 0.0


class NodeStats:
    """Thread-safe counters and stage timers of one node.

    Parameters
    ----------
    window:
        Number of recent samples per stage (and recent frame times) kept.
    clock:
        Monotonic time source in seconds (injectable for tests).
    cpu_clock:
        CPU time of the process in seconds (injectable for tests).
    """

    def __init__(
        self,
        window: int = 100,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        if int(window) != window or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window}")
        self.window = int(window)
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lock = threading.Lock()
        self._latency: dict[str, deque[float]] = {}
        self._frame_times: deque[float] = deque(maxlen=self.window)
        self._frame_cpu: deque[float] = deque(maxlen=self.window)
        self.processed = 0
        self.dropped = 0
        self.gauges: dict[str, float] = {}
        self.missing: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``."""
        start = self._clock()
        try:
            yield
        finally:
            self.add_latency(name, self._clock() - start)

    def add_latency(self, name: str, seconds: float) -> None:
        """Record one latency sample of stage ``name`` in seconds."""
        with self._lock:
            self._latency.setdefault(name, deque(maxlen=self.window)).append(seconds)

    def frame_done(self) -> None:
        """Count one processed frame (for fps)."""
        with self._lock:
            self.processed += 1
            self._frame_times.append(self._clock())
            self._frame_cpu.append(self._cpu_clock())

    def add_dropped(self, count: int = 1) -> None:
        """Count ``count`` dropped frames."""
        with self._lock:
            self.dropped += count

    def set_dropped(self, count: int) -> None:
        """Set the dropped-frame count kept by another component."""
        with self._lock:
            self.dropped = count

    def add_missing(self, topic: str, count: int) -> None:
        """Count ``count`` frames of ``topic`` that never arrived."""
        with self._lock:
            self.missing[topic] = self.missing.get(topic, 0) + count

    def set_missing(self, topic: str, count: int) -> None:
        """Set the count of frames of ``topic`` that never arrived (kept elsewhere)."""
        with self._lock:
            self.missing[topic] = count

    def set_gauge(self, name: str, value: float) -> None:
        """Set the current value of a gauge."""
        with self._lock:
            self.gauges[name] = float(value)

    def snapshot(
        self, rejected: Mapping[str, int], events: Mapping[str, int] | None = None
    ) -> StatsSnapshot:
        """Current statistics, with the node's rejection and clock-event counts."""
        with self._lock:
            latency = {
                name: (1000.0 * sum(v) / len(v), 1000.0 * max(v))
                for name, v in self._latency.items()
                if v
            }
            times = list(self._frame_times)
            fps = 0.0
            if len(times) >= 2 and times[-1] > times[0]:
                fps = (len(times) - 1) / (times[-1] - times[0])
            cpu = list(self._frame_cpu)
            cpu_ms = 1000.0 * (cpu[-1] - cpu[0]) / (len(cpu) - 1) if len(cpu) >= 2 else 0.0
            return StatsSnapshot(
                latency_ms=latency,
                fps=fps,
                processed=self.processed,
                dropped=self.dropped,
                rejected=dict(rejected),
                gauges=dict(self.gauges),
                missing=dict(self.missing),
                events=dict(events or {}),
                cpu_ms_per_frame=cpu_ms,
            )


def stats_to_status(
    snapshot: StatsSnapshot, *, name: str, hardware_id: str, active: bool
) -> DiagnosticStatus:
    """One ``DiagnosticStatus`` for a node.

    Level: ``STALE`` while the node is not active, ``WARN`` once any input was
    rejected, frames were dropped or missing, else ``OK``. Values: ``latency_<stage>_ms``
    (mean) and ``latency_<stage>_max_ms``, ``fps``, ``cpu_ms_per_frame``, ``frames_processed``,
    ``frames_dropped``, ``frames_missing`` (all topics) and ``frames_missing_<topic>``,
    ``rejected_<kind>``, each clock event and each gauge.
    """
    rejected_total = sum(snapshot.rejected.values())
    missing_total = sum(snapshot.missing.values())
    if not active:
        level, message = DiagnosticStatus.STALE, "inactive"
    elif rejected_total or snapshot.dropped or missing_total:
        level = DiagnosticStatus.WARN
        message = (
            f"{snapshot.dropped} frames dropped, {missing_total} never arrived, "
            f"{rejected_total} messages rejected"
        )
    else:
        level, message = DiagnosticStatus.OK, "ok"
    values = [
        KeyValue(key="fps", value=f"{snapshot.fps:.2f}"),
        KeyValue(key=CPU_KEY, value=f"{snapshot.cpu_ms_per_frame:.2f}"),
    ]
    for stage, (mean, peak) in sorted(snapshot.latency_ms.items()):
        values.append(KeyValue(key=f"latency_{stage}_ms", value=f"{mean:.2f}"))
        values.append(KeyValue(key=f"latency_{stage}_max_ms", value=f"{peak:.2f}"))
    values.append(KeyValue(key="frames_processed", value=str(snapshot.processed)))
    values.append(KeyValue(key="frames_dropped", value=str(snapshot.dropped)))
    values.append(KeyValue(key="frames_missing", value=str(missing_total)))
    for topic, count in sorted(snapshot.missing.items()):
        key = "frames_missing_" + topic.strip("/").replace("/", "_")
        values.append(KeyValue(key=key, value=str(count)))
    for event, count in sorted(snapshot.events.items()):
        values.append(KeyValue(key=event, value=str(count)))
    for kind, count in sorted(snapshot.rejected.items()):
        values.append(KeyValue(key=f"rejected_{kind}", value=str(count)))
    for gauge, value in sorted(snapshot.gauges.items()):
        values.append(KeyValue(key=gauge, value=f"{value:g}"))
    return DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id, values=values
    )


def _numbers(status: DiagnosticStatus) -> dict[str, float]:
    """Key -> value of a status's values that parse as numbers (the others left out)."""
    numbers: dict[str, float] = {}
    for item in status.values:
        try:
            numbers[item.key] = float(item.value)
        except ValueError:
            continue
    return numbers


def status_latencies(msg: DiagnosticArray) -> dict[str, dict[str, float]]:
    """Status name -> stage -> mean milliseconds, read back from the
    ``latency_<stage>_ms`` values :func:`stats_to_status` writes into a ``/diagnostics``
    message; the ``_max_ms`` values and unparsable ones are left out."""
    result: dict[str, dict[str, float]] = {}
    for status in msg.status:
        stages = {
            key[len("latency_"):-len("_ms")]: value
            for key, value in _numbers(status).items()
            if key.startswith("latency_") and key.endswith("_ms") and not key.endswith("_max_ms")
        }
        if stages:
            result[status.name] = stages
    return result


def status_cpu(msg: DiagnosticArray) -> dict[str, float]:
    """Status name -> CPU milliseconds per frame of its process (:data:`CPU_KEY`), for
    the statuses that report it (a node that has processed at least two frames)."""
    result: dict[str, float] = {}
    for status in msg.status:
        value = _numbers(status).get(CPU_KEY, 0.0)
        if value > 0.0:
            result[status.name] = value
    return result


def status_array(status: DiagnosticStatus, stamp: object) -> DiagnosticArray:
    """Wrap one status into a ``DiagnosticArray`` stamped ``stamp`` (a ``Time`` message)."""
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
