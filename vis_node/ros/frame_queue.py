"""The hand-over of frames between a subscription callback and an inference thread (no
rclpy).

:class:`FrameQueue`: with one place (live cameras, ``frames: newest``) a new item
replaces the waiting one, so the worker always takes the newest frame and latency stays
bounded; with more (``frames: every``, bag replay) items wait first in, first out, and
only a full queue drops its oldest.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameQueue(Generic[T]):
    """Thread-safe bounded first-in-first-out hand-over; a full queue drops its oldest item.

    With ``capacity`` 1 a newer item replaces the waiting one (newest frame wins). Items
    dropped before a consumer took them are counted in :attr:`dropped`. :meth:`take`
    blocks until an item is there or :meth:`close` is called.

    Parameters
    ----------
    capacity:
        Most items waiting at once (>= 1).
    """

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._cond = threading.Condition()
        self._items: deque[T] = deque()
        self._closed = False
        self.dropped = 0
        """Items dropped (oldest first) because the queue was full."""

    def put(self, item: T) -> bool:
        """Append ``item``; returns ``True`` when the queue was full and dropped its oldest."""
        with self._cond:
            dropped = len(self._items) >= self.capacity
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
            return dropped

    def __len__(self) -> int:
        """Items waiting now."""
        with self._cond:
            return len(self._items)

    def take(self, timeout_s: float | None = None) -> T | None:
        """The oldest waiting item (removed), or ``None`` once closed or after the timeout."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout=timeout_s)
            if self._closed or not self._items:
                return None
            return self._items.popleft()

    def close(self) -> None:
        """Make every :meth:`take` return ``None`` (waking those that wait) until
        :meth:`reopen`; items put meanwhile wait for it."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self, capacity: int | None = None) -> None:
        """Undo :meth:`close` and drop any waiting item (for a restarted worker),
        optionally with a new ``capacity``."""
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        with self._cond:
            self._closed = False
            self._items.clear()
            self.capacity = capacity or self.capacity
