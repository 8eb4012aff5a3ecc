"""The Fast DDS profile of the VSIS processes (``vis_node/ros/fastdds.xml``).

Fast DDS's defaults lose large messages on a busy machine: a 512 KiB shared-memory
segment cannot hold one frame's camera, id and semantic images while a slow reader
still holds their fragments, so a fragment is dropped and the reliable sample is
repaired only at the next heartbeat, 3 s later (measured on 854x480 replays: the
semantic hop stalled 1-3 s on about one frame in seven, and ``vsis replay --pace max``
ran at 4-20% of the model's rate). The profile gives an 8 MiB segment and a 0.1 s heartbeat period.

:func:`use_profile` points Fast DDS at it through the environment, before the process
creates its first participant (``rclpy.init``); the graph's child processes inherit it.
A profile the user chose, or another RMW implementation, is left alone.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PROFILE_PATH = Path(__file__).with_name("fastdds.xml")
"""The VSIS Fast DDS profile (installed with the package)."""

PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
"""Environment variables through which a user names a Fast DDS profile (2.x and 3.x)."""

WORKING_DIR_PROFILE = "DEFAULT_FASTRTPS_PROFILES.xml"
"""A profile Fast DDS loads from the working directory by itself."""

DEFAULT_RMW = "rmw_fastrtps_cpp"
"""The RMW implementation used when ``RMW_IMPLEMENTATION`` is unset (ROS 2 Jazzy)."""


def use_profile(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Set ``FASTRTPS_DEFAULT_PROFILES_FILE`` to :data:`PROFILE_PATH` when nothing else is set.

    Parameters
    ----------
    environ:
        Environment to update; default ``os.environ`` (inherited by child processes).

    Returns
    -------
    Path or None
        The profile now in use, or ``None`` when the RMW is not Fast DDS or the user
        chose a profile (a variable of :data:`PROFILE_VARIABLES` or
        :data:`WORKING_DIR_PROFILE`); then nothing is changed.
    """
    env = os.environ if environ is None else environ
    rmw = env.get("RMW_IMPLEMENTATION") or DEFAULT_RMW
    if not rmw.startswith("rmw_fastrtps"):
        return None
    if any(env.get(name) for name in PROFILE_VARIABLES) or Path(WORKING_DIR_PROFILE).is_file():
        return None
    env[PROFILE_VARIABLES[0]] = str(PROFILE_PATH)
    return PROFILE_PATH
