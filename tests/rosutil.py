"""Helpers for tests that use a real rclpy graph (DDS on localhost only)."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def require_ros() -> None:
    """Skip when rclpy / vis_msgs are not importable, unless VSIS_REQUIRE_ROS=1 (make test).

    ``make test`` sets VSIS_REQUIRE_ROS=1, so there a missing ROS set-up fails the
    test instead of hiding it.
    """
    missing = [m for m in ("rclpy", "vis_msgs") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not importable: run 'make test' or '. scripts/env.sh'"
    if os.environ.get("VSIS_REQUIRE_ROS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def require_vision_msgs() -> None:
    """Skip when vision_msgs is not importable, unless VSIS_REQUIRE_ROS=1 (make test, CI).

    scripts/setup.sh builds it from ../shared/third_party/vision_msgs when no
    distribution package is installed.
    """
    if importlib.util.find_spec("vision_msgs") is not None:
        return
    reason = "vision_msgs not importable: run scripts/setup.sh, then . scripts/env.sh"
    if os.environ.get("VSIS_REQUIRE_ROS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def ros_context(domain_id: int) -> Iterator[Any]:
    """An initialised rclpy context on ``domain_id`` with discovery kept on localhost."""
    import rclpy
    from rclpy.context import Context

    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        yield context
    finally:
        context.try_shutdown()


def spin_until(executor: Any, done: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Spin ``executor`` until ``done()`` is true or ``timeout_s`` passes; returns ``done()``."""
    from vis_node.ros.spinning import SpinStep

    deadline = time.monotonic() + timeout_s
    step = SpinStep(executor)
    while not done() and time.monotonic() < deadline:
        step(0.05)
    return done()
