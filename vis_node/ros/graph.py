"""The VSIS graph's arguments and topic names, shared by ``vsis ros`` and the launch files.

``vsis ros up`` / ``vsis ros pipeline`` and ``vsis.launch.py`` / ``vsis_composed.launch.py``
(and ``vsis.launch.xml``, which includes ``vsis.launch.py``) take the same arguments
and turn them into ROS arguments with these functions, so both start the same graph
under the same topic names. No rclpy or launch import: it is tested on names alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vis_node.registry import RUNTIMES
from vis_node.resources import ros_config_dir
from vis_node.ros.params import NODE_SPECS


@dataclass(frozen=True)
class GraphArgument:
    """One argument of the graph (a launch argument, and a ``vsis ros`` flag).

    Attributes
    ----------
    name:
        Launch argument name (the flag is ``--name`` with ``-`` for ``_``).
    default:
        Default value as a string; ``""`` for a node parameter means "keep the params
        file's value".
    description:
        Shown by ``ros2 launch -s`` and ``vsis ros --help``.
    """

    name: str
    default: str
    description: str


NODE_KINDS: tuple[str, ...] = ("perception", "tracking", "semantic")
"""The graph's nodes, in start order (each has ``launch/config/<kind>.yaml``)."""

GRAPH_ARGUMENTS: tuple[GraphArgument, ...] = (
    GraphArgument("namespace", "", "namespace of the three nodes and of their topics"),
    GraphArgument(
        "image", "image",
        "camera image topic; the compressed transport reads <image>/compressed",
    ),
    GraphArgument("model", "", "perception model: shipped name, model.pt or folder "
                  "('' keeps the params file's)"),
    GraphArgument("runtime", "", f"{', '.join(RUNTIMES.names())} ('' keeps the params file's)"),
    GraphArgument("device", "", "torch device: cpu, cuda, cuda:N ('' keeps the params file's)"),
    GraphArgument("params_file", "", "params YAML applied over launch/config/*.yaml "
                  "(sections /**/vsis_perception, ...; '' = none)"),
    GraphArgument("use_sim_time", "false", "take time from /clock (bag playback with --clock)"),
)
"""Every argument, in the order ``ros2 launch -s`` lists them."""

NODE_PARAMETER_ARGUMENTS = ("model", "runtime", "device")
"""Arguments that set a perception parameter of the same name when not empty."""


def default_params_file(kind: str) -> Path:
    """The default parameter file of node ``kind``, shipped as package data.

    The launch files and ``vsis ros`` both start from it (``params_file`` and
    ``--params`` apply over or replace it).
    """
    if kind not in NODE_KINDS:
        raise ValueError(f"no node kind {kind!r}; expected one of {', '.join(NODE_KINDS)}")
    return ros_config_dir() / f"{kind}.yaml"


def remappings(image: str) -> list[tuple[str, str]]:
    """Topic remappings of every node: only the camera topic and its compressed sibling."""
    return [("image", image), ("image/compressed", f"{image}/compressed")]


def parameter_overrides(values: Mapping[str, str]) -> dict[str, Any]:
    """Node parameters set by the arguments ``values`` (argument name -> string).

    ``model`` / ``runtime`` / ``device`` only when not empty; ``use_sim_time`` always.

    Raises
    ------
    ValueError
        ``use_sim_time`` other than ``true`` / ``false``.
    """
    overrides: dict[str, Any] = {
        name: values[name] for name in NODE_PARAMETER_ARGUMENTS if values.get(name)
    }
    sim_time = str(values.get("use_sim_time", "false")).lower()
    if sim_time not in ("true", "false"):
        raise ValueError(f"use_sim_time must be true or false, got {sim_time!r}")
    overrides["use_sim_time"] = sim_time == "true"
    return overrides


def resolve(name: str, namespace: str) -> str:
    """Fully qualified name of a relative or absolute topic ``name`` in ``namespace``."""
    if name.startswith("/"):
        return name
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{name}"


def topic_names(
    kind: str, namespace: str, remaps: list[tuple[str, str]]
) -> dict[str, str]:
    """Relative topic -> fully qualified topic of node ``kind`` under ``remaps``."""
    spec = NODE_SPECS[kind]
    table = dict(remaps)
    return {
        topic: resolve(table.get(topic, topic), namespace)
        for topic in (*spec.subscribes, *spec.publishes)
    }
