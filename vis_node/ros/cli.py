"""``vsis ros``: run the VSIS ROS 2 nodes without ``ros2 launch``.

::

    vsis ros pipeline   [--params YAML ...] [GRAPH OPTIONS] [--remap FROM:=TO ...]  # one process
    vsis ros perception [--params YAML ...] [GRAPH OPTIONS] [--remap FROM:=TO ...]  # one node
    vsis ros tracking   ...
    vsis ros semantic   ...
    vsis ros up         [--params YAML ...] [GRAPH OPTIONS] [--remap FROM:=TO ...]  # three processes

GRAPH OPTIONS are the arguments of the launch files, with the same defaults:
``--namespace``, ``--image`` (camera topic), ``--model``, ``--runtime``, ``--device``,
``--params-file`` (applied over the defaults) and ``--use-sim-time``
(:mod:`vis_node.ros.graph`), so ``vsis ros up`` and ``ros2 launch vsis_bringup
vsis.launch.py`` with the same arguments start the same graph under the same topic
names. ``--params`` may repeat and replaces the default files (each file may hold
sections for several nodes). Without ``--params`` the package's
``launch/config/{perception,tracking,semantic}.yaml`` are used, as in the launch
files (:func:`vis_node.ros.graph.default_params_file`).
``up`` stops every node cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from vis_node.structures.errors import InputDataError
from vis_node.ros.graph import (
    GRAPH_ARGUMENTS,
    NODE_KINDS,
    default_params_file,
    parameter_overrides,
    remappings,
)

SHUTDOWN_TIMEOUT_S = 10.0
MAX_RESPAWNS = 3
"""Restarts of one node by ``vsis ros up`` before it stops the graph."""
RESPAWN_DELAY_S = 1.0
"""Seconds before a node that exited is started again."""


def default_params_files() -> list[Path]:
    """The package's default params YAML of every node (:func:`default_params_file`).

    Raises
    ------
    InputDataError
        When one is missing: the installed package is incomplete.
    """
    files = [default_params_file(kind) for kind in NODE_KINDS]
    for path in files:
        if not path.is_file():
            raise InputDataError(
                path, "default params file missing from the installed vis_node package; "
                "reinstall it (pip install -e . from the repository root)"
            )
    return files


def ros_arguments(
    params: Sequence[str | Path] | None,
    remaps: Sequence[str],
    graph: Mapping[str, str] | None = None,
) -> list[str]:
    """ROS command-line arguments for params files, graph arguments and remappings.

    Parameters
    ----------
    params:
        Params files replacing the package's defaults (``None`` = the defaults).
    remaps:
        Extra ``FROM:=TO`` remappings, applied after the graph's own.
    graph:
        Graph argument name -> value (:data:`vis_node.ros.graph.GRAPH_ARGUMENTS`);
        missing ones take their defaults.

    Raises
    ------
    InputDataError
        A params file that does not exist, or a remapping without ``:=``.
    ValueError
        ``use_sim_time`` other than ``true`` / ``false``.
    """
    values = {a.name: a.default for a in GRAPH_ARGUMENTS}
    values.update(graph or {})
    files = [Path(p) for p in params] if params else default_params_files()
    if values["params_file"]:
        files.append(Path(values["params_file"]))
    args = ["--ros-args"]
    for path in files:
        if not path.is_file():
            raise InputDataError(path, "params file not found; pass an existing YAML")
        args += ["--params-file", str(path)]
    for name, value in parameter_overrides(values).items():
        args += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    if values["namespace"].strip("/"):
        args += ["-r", f"__ns:=/{values['namespace'].strip('/')}"]
    for source, target in remappings(values["image"]):
        args += ["-r", f"{source}:={target}"]
    for remap in remaps:
        if ":=" not in remap:
            raise InputDataError(
                Path(remap), "a remapping reads FROM:=TO, e.g. image:=/camera/image_raw"
            )
        args += ["-r", remap]
    return args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vsis ros`` and its sub-commands."""
    parser = subparsers.add_parser(
        "ros", help="run the ROS 2 nodes (composed, single, or all three as processes)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="ros_command", required=True, metavar="NODE")
    helps = {
        "pipeline": "all three nodes in one process and executor",
        "perception": "the perception node (images -> instances)",
        "tracking": "the tracking node (instances + images -> tracked instances)",
        "semantic": "the semantic node (tracked -> unified instances, label images)",
        "up": "the three nodes as separate processes (like vsis.launch.py)",
    }
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--params", action="append", metavar="YAML",
            help="ROS params file (repeatable; default: launch/config/*.yaml)",
        )
        for argument in GRAPH_ARGUMENTS:
            sub.add_argument(
                f"--{argument.name.replace('_', '-')}", default=argument.default,
                help=f"{argument.description} (default: {argument.default or 'none'})",
            )
        sub.add_argument(
            "--remap", action="append", default=[], metavar="FROM:=TO",
            help="topic remapping for every node, e.g. instances:=/seg/instances (repeatable)",
        )
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the selected node(s) until Ctrl-C; returns the exit code."""
    graph = {a.name: getattr(args, a.name) for a in GRAPH_ARGUMENTS}
    ros_args = ros_arguments(args.params, args.remap, graph)
    if args.ros_command == "up":
        return run_up(ros_args)
    argv = ["vsis-ros", *ros_args]
    if args.ros_command == "pipeline":
        from vis_node.ros.pipeline import main as pipeline_main

        return pipeline_main(argv)
    from vis_node.ros.params import NODE_SPECS

    # Only the node's own module: a tracking process never loads the model stack.
    node_main = importlib.import_module(NODE_SPECS[args.ros_command].module).main
    return int(node_main(argv))


def node_commands(ros_args: Sequence[str]) -> list[list[str]]:
    """Command lines of the three node processes started by ``vsis ros up``."""
    from vis_node.ros.params import NODE_SPECS

    return [
        [sys.executable, "-m", NODE_SPECS[kind].module, *ros_args] for kind in NODE_KINDS
    ]


def run_up(ros_args: Sequence[str]) -> int:
    """Start the three nodes as child processes; Ctrl-C (or SIGTERM) stops them all.

    A node that exits on its own is restarted after :data:`RESPAWN_DELAY_S`, as launch's
    ``respawn`` would, at most :data:`MAX_RESPAWNS` times; each restart is logged.

    Returns 0 after a requested stop, 1 when a node kept exiting (the others are then
    stopped too).
    """
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    commands = node_commands(ros_args)
    children: list[subprocess.Popen] = []
    restarts = [0] * len(commands)
    exit_code = 0
    try:
        # Own sessions: a terminal Ctrl-C reaches only this process, which forwards
        # one SIGINT to each node.
        children = [subprocess.Popen(cmd, start_new_session=True) for cmd in commands]
        while not stopping and exit_code == 0:
            for index, child in enumerate(children):
                if child.poll() is None or stopping:
                    continue
                name = _node_name(commands[index])
                if restarts[index] >= MAX_RESPAWNS:
                    print(
                        f"vsis ros up: {name} exited with code {child.returncode} after "
                        f"{MAX_RESPAWNS} restarts; stopping the others",
                        file=sys.stderr,
                    )
                    exit_code = 1
                    break
                restarts[index] += 1
                print(
                    f"vsis ros up: {name} exited with code {child.returncode}; restarting it "
                    f"({restarts[index]} of {MAX_RESPAWNS})",
                    file=sys.stderr,
                )
                time.sleep(RESPAWN_DELAY_S)
                children[index] = subprocess.Popen(commands[index], start_new_session=True)
            time.sleep(0.2)
    finally:
        _stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code


def _node_name(command: Sequence[str]) -> str:
    """The node module of a ``python -m MODULE ...`` command line (else the program)."""
    return str(command[2]) if len(command) > 2 and command[1] == "-m" else str(command[0])


def _stop_children(children: Sequence[subprocess.Popen]) -> None:
    """SIGINT every running child, wait, then terminate / kill the stragglers."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
