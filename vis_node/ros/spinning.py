"""Executors and the spin loop of the VSIS processes (no node code).

:func:`standalone_executor` builds the executor a node's ``executor`` parameter names;
:func:`spin_until_stopped` spins it until Ctrl-C, SIGTERM or context shutdown; every
step goes through :class:`SpinStep`, which outlasts rclpy's destroy-while-waiting race.
"""

from __future__ import annotations

import signal
import threading

from rclpy.context import Context
from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.logging import get_logger

from vis_node.ros.params import EXECUTOR_CHOICES


class SpinStep:
    """``executor.spin_once`` that survives rclpy's destroy race (ros2/rclpy#1206).

    A subscription destroyed while the executor builds its wait set in another thread
    (the semantic node drops its camera subscription when the last ``overlay``
    subscriber leaves; a lifecycle transition drops every subscription) makes that
    ``spin_once`` raise ``InvalidHandle`` before any callback was taken; the next wait
    set no longer holds the entity, so the step is simply repeated. Nothing is lost.
    ``max_consecutive`` failures in a row are no race: the error is raised then.
    """

    def __init__(self, executor: Executor, max_consecutive: int = 100) -> None:
        self.executor = executor
        self.max_consecutive = max_consecutive
        self.retried = 0
        """Steps repeated after the race, in all."""
        self._failing = 0

    def __call__(self, timeout_s: float) -> None:
        """Run at most one callback, waiting up to ``timeout_s`` seconds for one."""
        try:
            self.executor.spin_once(timeout_sec=timeout_s)
        except InvalidHandle:
            self._failing += 1
            if self._failing >= self.max_consecutive:
                raise
            self.retried += 1
            get_logger("vsis").debug("wait set held a destroyed entity; spinning again")
        else:
            self._failing = 0


def spin_until_stopped(executor: Executor, poll_s: float = 0.2) -> None:
    """Spin until Ctrl-C (SIGINT), SIGTERM or context shutdown; the context stays valid.

    The signal only sets a flag that the loop reads between callbacks (at most
    ``poll_s`` seconds later): raising from the handler would abort whichever callback
    was running, and the executor would log that as a fatal callback exception.
    """
    stop = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    step = SpinStep(executor)
    try:
        while executor.context.ok() and not stop.is_set():
            step(poll_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def standalone_executor(kind: str, context: Context | None = None) -> Executor:
    """The executor of a node run as its own process: its ``executor`` parameter.

    ``events`` is rclpy's EventsExecutor (``rclpy.experimental``; it calls subscription
    callbacks with the message alone, as every VSIS node's are); where this rclpy has
    none, the SingleThreadedExecutor stands in and a warning says so.
    """
    if kind not in EXECUTOR_CHOICES:
        raise ValueError(f"executor must be one of {EXECUTOR_CHOICES}, got {kind!r}")
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            get_logger("vsis").warning(
                "this rclpy has no EventsExecutor (Jazzy has one); using the SingleThreadedExecutor"
            )
        else:
            return EventsExecutor(context=context)
    return SingleThreadedExecutor(context=context)
