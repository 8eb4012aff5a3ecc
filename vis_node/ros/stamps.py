"""Message buffers keyed by header stamp, and a clock that follows jumps (no rclpy).

``message_filters`` is not available as a wheel; :class:`StampMatcher` pairs two
streams (e.g. instances and the image they were computed from) by *exact* header
stamp, as every VSIS output carries its input's stamp.

:class:`StampClock` checks the stamps of one input topic: it learns the frame period,
rejects repeated and late (reordered) stamps, counts frames that never arrived, and
reports a jump (a stamp far ahead, a jump back, a sim-time reset, a looping bag) so the
node resynchronises by itself instead of rejecting every later frame.

:func:`cdr_header_stamp_ns` reads the stamp of a serialised message without
deserialising it (the replay recorder keys every output by it).
"""

from __future__ import annotations

import enum
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

L = TypeVar("L")
R = TypeVar("R")
T = TypeVar("T")


class StampMatcher(Generic[L, R]):
    """Pair a left and a right stream by equal stamps.

    Items wait until the other stream delivers the same stamp. When a pair is
    emitted, every item older than it in either stream is discarded (its partner was
    lost or will come too late to be processed in order), and each stream keeps at
    most ``capacity`` waiting items (the oldest go first, except kept right items).
    Discarded items are counted per stream (:attr:`discarded_left`,
    :attr:`discarded_right`).

    Right items can be kept (:meth:`keep_right`) for a model that skips frames (left =
    its results, right = the camera's images): when the model announces the frame it
    started on, that image stays while the images of the frames it skipped make room,
    however many camera frames one result takes.

    Parameters
    ----------
    capacity:
        Most items waiting per stream (over it, kept items go only when nothing else can).

    Examples
    --------
    >>> matcher = StampMatcher(capacity=4)
    >>> matcher.add_left(10, "instances@10")
    []
    >>> matcher.add_right(10, "image@10")
    [(10, 'instances@10', 'image@10')]
    """

    def __init__(self, capacity: int = 8) -> None:
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._left: OrderedDict[int, L] = OrderedDict()
        self._right: OrderedDict[int, R] = OrderedDict()
        self._kept: set[int] = set()
        self._last_pair: int | None = None
        self.discarded_left = 0
        """Left items dropped without a partner (stale or over capacity)."""
        self.discarded_right = 0
        """Right items dropped without a partner (stale or over capacity)."""
        self.unanswered = 0
        """Kept stamps that a later pair passed while no left item of theirs had come
        (an announced frame whose result never arrived)."""

    @property
    def discarded(self) -> int:
        """Items dropped without a partner, both streams."""
        return self.discarded_left + self.discarded_right

    def __len__(self) -> int:
        """Items waiting in both streams."""
        return len(self._left) + len(self._right)

    def waiting_right(self) -> int:
        """Right items waiting for their left partner."""
        return len(self._right)

    def clear(self) -> None:
        """Drop every waiting item (not counted as discarded); start over as before the
        first pair."""
        self._left.clear()
        self._right.clear()
        self._kept.clear()
        self._last_pair = None

    def add_left(self, stamp_ns: int, item: L) -> list[tuple[int, L, R]]:
        """Add a left item; returns the pair it completes, if any, as ``[(stamp, l, r)]``."""
        if stamp_ns in self._right:
            return [self._emit(stamp_ns, item, self._right[stamp_ns])]
        self._insert(self._left, stamp_ns, item)
        return []

    def add_right(self, stamp_ns: int, item: R) -> list[tuple[int, L, R]]:
        """Add a right item; returns the pair it completes, if any, as ``[(stamp, l, r)]``."""
        if stamp_ns in self._left:
            return [self._emit(stamp_ns, self._left[stamp_ns], item)]
        self._insert(self._right, stamp_ns, item)
        return []

    def discard_outside(self, stamp_ns: int, *, newer: bool) -> None:
        """After a clock jump to ``stamp_ns``: drop items of the old time line (counted).

        ``newer=True`` (the clock jumped back) drops items stamped after ``stamp_ns``;
        ``newer=False`` (it jumped ahead) drops those stamped before it.
        """
        for queue in (self._left, self._right):
            stale = [s for s in queue if (s > stamp_ns if newer else s < stamp_ns)]
            for stamp in stale:
                del queue[stamp]
            self._count_discarded(queue, len(stale))
        self._kept.clear()
        self._last_pair = None

    def _count_discarded(self, queue: OrderedDict[int, Any], count: int) -> None:
        if queue is self._left:
            self.discarded_left += count
        else:
            self.discarded_right += count

    def keep_right(self, stamp_ns: int) -> None:
        """Keep the right item of ``stamp_ns`` (waiting or still to come) until its pair
        or a later one is emitted; at most ``capacity`` stamps are kept (newest)."""
        if self._last_pair is not None and stamp_ns <= self._last_pair:
            return
        self._kept.add(stamp_ns)
        while len(self._kept) > self.capacity:
            self._kept.remove(min(self._kept))

    def next_kept(self) -> tuple[int, R] | None:
        """The oldest kept stamp (the next result to come, for a model that announces
        its frames) with its right item, once that item is waiting; else ``None``."""
        if not self._kept:
            return None
        stamp = min(self._kept)
        return (stamp, self._right[stamp]) if stamp in self._right else None

    def _insert(self, queue: OrderedDict[int, T], stamp_ns: int, item: T) -> None:
        queue[stamp_ns] = item
        kept = self._kept if queue is self._right else set()
        while len(queue) > self.capacity:
            free = [s for s in queue if s not in kept]
            del queue[min(free or queue)]
            self._count_discarded(queue, 1)

    def _emit(self, stamp_ns: int, left: L, right: R) -> tuple[int, L, R]:
        self.unanswered += sum(1 for s in self._kept if s < stamp_ns and s not in self._left)
        for queue in (self._left, self._right):
            for stamp in [s for s in queue if s <= stamp_ns]:
                del queue[stamp]
                if stamp != stamp_ns:
                    self._count_discarded(queue, 1)
        self._last_pair = stamp_ns
        self._kept = {s for s in self._kept if s > stamp_ns}
        return stamp_ns, left, right


class StampVerdict(enum.Enum):
    """What :meth:`StampClock.check` made of a stamp."""

    NEXT = "next"
    """In order: process it."""
    REPEATED = "repeated_stamp"
    """Equal to the last accepted stamp: skip it."""
    LATE = "stamp_out_of_order"
    """Older than the last accepted stamp by less than a jump: skip it (reordering)."""
    JUMP_AHEAD = "clock_jump_ahead"
    """Far ahead of the last stamp: process it on a new time line (resynchronise)."""
    JUMP_BACK = "clock_jump_back"
    """Far behind (or persistently behind): process it on a new time line."""


@dataclass(frozen=True)
class StampCheck:
    """Result of :meth:`StampClock.check`.

    Attributes
    ----------
    verdict:
        What to do with the message.
    delta_ns:
        Stamp minus the last accepted stamp in nanoseconds (0 for the first stamp).
    missing:
        Frames that should have arrived between the last accepted stamp and this one
        but never did (gap / period - 1, rounded); 0 across a jump or before the period
        is known.
    """

    verdict: StampVerdict
    delta_ns: int
    missing: int = 0

    @property
    def accepted(self) -> bool:
        """Whether the message is processed."""
        return self.verdict in (StampVerdict.NEXT, StampVerdict.JUMP_AHEAD, StampVerdict.JUMP_BACK)

    @property
    def jumped(self) -> bool:
        """Whether the time line changed (state tied to the old one must go)."""
        return self.verdict in (StampVerdict.JUMP_AHEAD, StampVerdict.JUMP_BACK)


class StampClock:
    """Stamp checks of one input topic, relative to its observed frame period.

    The period is the shortest of the last ``history`` gaps between accepted stamps:
    under loss most gaps span several frames, so a median would grow with the loss,
    while any two consecutive frames that both arrived give the true period. Gaps
    under ``min_period_ns`` are bursts, not a frame rate, and are left out.
    A stamp more than ``jump_periods`` periods away from the last one (ahead or back)
    is a jump: it is accepted and starts a new time line. Before the period is known
    the jump threshold is ``initial_jump_ns``. A stamp a little older than the last is
    late (skipped), but ``resync_after`` late stamps in a row mean the source restarted
    (a short looping bag): the last of them is accepted as a jump back.

    Parameters
    ----------
    jump_periods:
        Distance, in frame periods, from which a stamp counts as a jump.
    initial_jump_ns:
        Jump threshold in nanoseconds until two gaps have been seen.
    min_period_ns:
        Shortest gap taken as a frame period (default 1 ms: cameras up to 1 kHz).
    resync_after:
        Consecutive late stamps after which the clock follows them.
    history:
        Gaps kept for the period estimate.

    Examples
    --------
    >>> clock = StampClock()
    >>> [clock.check(t).verdict.value for t in (0, 100, 200, 3_600_000_000_000, 300)]
    ['next', 'next', 'next', 'clock_jump_ahead', 'clock_jump_back']
    """

    def __init__(
        self,
        *,
        jump_periods: float = 30.0,
        initial_jump_ns: int = 1_000_000_000,
        min_period_ns: int = 1_000_000,
        resync_after: int = 3,
        history: int = 16,
    ) -> None:
        if jump_periods <= 1.5:
            raise ValueError(
                f"jump_periods must be > 1.5 (a gap of one lost frame), got {jump_periods}"
            )
        if initial_jump_ns <= 0:
            raise ValueError(f"initial_jump_ns must be > 0, got {initial_jump_ns}")
        if min_period_ns < 1:
            raise ValueError(f"min_period_ns must be >= 1, got {min_period_ns}")
        if int(resync_after) != resync_after or resync_after < 1:
            raise ValueError(f"resync_after must be an integer >= 1, got {resync_after}")
        if int(history) != history or history < 2:
            raise ValueError(f"history must be an integer >= 2, got {history}")
        self.jump_periods = float(jump_periods)
        self.initial_jump_ns = int(initial_jump_ns)
        self.min_period_ns = int(min_period_ns)
        self.resync_after = int(resync_after)
        self._gaps: deque[int] = deque(maxlen=int(history))
        self.reset()

    def reset(self) -> None:
        """Forget the last stamp and the period (e.g. on lifecycle activation)."""
        self.last_ns: int | None = None
        """Latest accepted stamp in nanoseconds, ``None`` before the first."""
        self._gaps.clear()
        self._late_run = 0

    @property
    def period_ns(self) -> float | None:
        """Observed frame period in nanoseconds (shortest gap), ``None`` until two gaps."""
        return float(min(self._gaps)) if len(self._gaps) >= 2 else None

    @property
    def jump_ns(self) -> float:
        """Current jump threshold in nanoseconds."""
        period = self.period_ns
        return self.initial_jump_ns if period is None else self.jump_periods * period

    def check(self, stamp_ns: int) -> StampCheck:
        """Classify ``stamp_ns`` and, if it is accepted, move the clock to it."""
        if self.last_ns is None:
            self.last_ns = stamp_ns
            return StampCheck(StampVerdict.NEXT, 0)
        delta = stamp_ns - self.last_ns
        if delta == 0:
            return StampCheck(StampVerdict.REPEATED, 0)
        threshold = self.jump_ns
        if delta < 0:
            self._late_run += 1
            if -delta <= threshold and self._late_run < self.resync_after:
                return StampCheck(StampVerdict.LATE, delta)
            return self._jump(StampVerdict.JUMP_BACK, stamp_ns, delta)
        self._late_run = 0
        if delta > threshold:
            return self._jump(StampVerdict.JUMP_AHEAD, stamp_ns, delta)
        period = self.period_ns
        missing = 0 if period is None else max(0, round(delta / period) - 1)
        if delta >= self.min_period_ns:
            self._gaps.append(delta)
        self.last_ns = stamp_ns
        return StampCheck(StampVerdict.NEXT, delta, missing)

    def _jump(self, verdict: StampVerdict, stamp_ns: int, delta: int) -> StampCheck:
        self.last_ns = stamp_ns
        self._late_run = 0
        return StampCheck(verdict, delta)


def cdr_header_stamp_ns(raw: bytes) -> int:
    """Stamp in nanoseconds of a serialised message whose first field is a
    ``std_msgs/Header`` (every VSIS output), read without deserialising the message.

    Parameters
    ----------
    raw:
        The CDR bytes as the middleware delivers them: a 4-byte encapsulation header
        (byte 1 says little- or big-endian), then ``stamp.sec`` (int32) and
        ``stamp.nanosec`` (uint32).

    Raises
    ------
    ValueError
        Fewer than 12 bytes.
    """
    if len(raw) < 12:
        raise ValueError(f"a serialised message with a header has at least 12 bytes, got {len(raw)}")
    sec, nanosec = struct.unpack_from("<iI" if raw[1] & 1 else ">iI", raw, 4)
    return sec * 1_000_000_000 + nanosec
