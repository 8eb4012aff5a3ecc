"""The VSIS graph as a child process of ``vsis replay``: its params files, start, stop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from vis_node.ros.cli import default_params_files


def graph_params(out: Path, model: str, pace: str) -> Path:
    """A params YAML for replay: reliable QoS everywhere and the chosen model.

    The perception node runs every frame in order (``frames: every``), except at pace
    ``recorded``, where it takes the camera as on a live robot (``frames: newest``: a
    frame that arrives while the model is busy replaces the waiting one), so a model
    slower than the bag's clock skips frames instead of falling ever further behind.
    """
    perception = {"model": model, "frames": "newest" if pace == "recorded" else "every"}
    params = {
        "/**": {"ros__parameters": {"input_qos": "reliable"}},
        "vsis_perception": {"ros__parameters": perception},
    }
    path = out / "replay_params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def start_graph(kind: str, params: list[Path]) -> subprocess.Popen:
    """Start the VSIS graph (``composed`` or ``processes``) as a child process."""
    command = "pipeline" if kind == "composed" else "up"
    args = [sys.executable, "-m", "vis_node.cli", "ros", command]
    for path in params:
        args += ["--params", str(path)]
    return subprocess.Popen(args, env=dict(os.environ), start_new_session=True)


def params_files(user_params: list[Path] | None, override: Path) -> list[Path]:
    """The package's default params files (or the user's) followed by the replay overrides."""
    return [*(user_params or default_params_files()), override]


def stop_graph(child: subprocess.Popen | None) -> None:
    """Stop the graph process: SIGINT, then terminate / kill if it lingers."""
    if child is None or child.poll() is not None:
        return
    child.send_signal(2)
    try:
        child.wait(timeout=15.0)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5.0)
