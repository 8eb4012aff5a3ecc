"""Small message buffers keyed by header stamp (pure Python, no rclpy).

``message_filters`` is not available as a wheel; the nodes need only two things:

* :class:`StampMatcher` pairs two streams (e.g. instances and the image they were
  computed from) by *exact* header stamp, as every VSIS output carries its input's
  stamp;
* :class:`LatestSlot` is the one-slot hand-over between a subscription callback and an
  inference thread: a new item replaces the waiting one, so the worker always takes
  the newest frame and latency stays bounded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

L = TypeVar("L")
R = TypeVar("R")
T = TypeVar("T")


class StampMatcher(Generic[L, R]):
    """Pair a left and a right stream by equal stamps.

    Items wait until the other stream delivers the same stamp. When a pair is
    emitted, every item older than it in either stream is discarded (its partner was
    lost or will come too late to be processed in order), and each stream keeps at
    most ``capacity`` waiting items (the oldest go first). Discarded items are
    counted in :attr:`discarded`.

    Parameters
    ----------
    capacity:
        Most items waiting per stream.

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
        self.discarded = 0
        """Items dropped without a partner (stale or over capacity), both streams."""

    def __len__(self) -> int:
        """Items waiting in both streams."""
        return len(self._left) + len(self._right)

    def clear(self) -> None:
        """Drop every waiting item (not counted as discarded)."""
        self._left.clear()
        self._right.clear()

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

    def _insert(self, queue: OrderedDict[int, T], stamp_ns: int, item: T) -> None:
        queue[stamp_ns] = item
        while len(queue) > self.capacity:
            oldest = min(queue)
            del queue[oldest]
            self.discarded += 1

    def _emit(self, stamp_ns: int, left: L, right: R) -> tuple[int, L, R]:
        for queue in (self._left, self._right):
            for stamp in [s for s in queue if s <= stamp_ns]:
                del queue[stamp]
                if stamp != stamp_ns:
                    self.discarded += 1
        return stamp_ns, left, right


class LatestSlot(Generic[T]):
    """Thread-safe one-item buffer where a newer item replaces the waiting one.

    Replaced items are counted in :attr:`dropped`. :meth:`take` blocks until an item
    is there or :meth:`close` is called.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.dropped = 0
        """Items replaced before a consumer took them."""

    def put(self, item: T) -> bool:
        """Store ``item``; returns ``True`` when it replaced a waiting one."""
        with self._cond:
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout_s: float | None = None) -> T | None:
        """The waiting item (emptying the slot), or ``None`` after close / timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._full or self._closed, timeout=timeout_s)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake every waiting :meth:`take` with ``None``; later puts are still kept."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Undo :meth:`close` and drop any waiting item (for a restarted worker)."""
        with self._cond:
            self._closed = False
            self._item, self._full = None, False
