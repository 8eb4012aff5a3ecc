"""Each node process imports only what it needs (issue 14, finding 7).

``vsis ros tracking`` used to import the whole stack (torch, the perception model,
all three nodes): about 900 MB against 180 MB for ``python -m
vis_node.ros.tracking_node``, the launch path. A subprocess runs each entry with the
node's ``run_standalone`` replaced by a recorder (nothing spins) and reports
``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rosutil import require_ros

pytestmark = pytest.mark.ros

HEAVY = ("torch", "torchvision", "onnxruntime", "tensorrt", "vis_node.perception")
"""Modules (and their submodules) a tracking or semantic process must not load."""

ENTRIES = {
    "launch": "import vis_node.ros.{kind}_node as node; node.main([])",
    "ros_cli": (
        "import argparse; from vis_node.ros.cli import register; "
        "parser = argparse.ArgumentParser(); register(parser.add_subparsers()); "
        "args = parser.parse_args(['ros', '{kind}']); args.func(args)"
    ),
    "vsis": "from vis_node.cli import main; main(['ros', '{kind}'])",
}


def _modules(entry: str, kind: str) -> tuple[list[str], list[str]]:
    """Modules loaded by ``entry`` for node ``kind``, and the node classes it started."""
    script = textwrap.dedent(
        f"""
        import json, sys
        import vis_node.ros.base_node as base
        started = []
        base.run_standalone = lambda cls, args=None: started.append(cls.__name__) or 0
        {ENTRIES[entry].format(kind=kind)}
        print(json.dumps([sorted(sys.modules), started]))
        """
    )
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    modules, started = json.loads(done.stdout.strip().splitlines()[-1])
    return modules, started


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize("kind", ["tracking", "semantic"])
def test_ros_command_starts_only_its_node_module(kind):
    require_ros()
    launch, started = _modules("launch", kind)
    assert started == [f"{kind.capitalize()}Node"]
    entry, started = _modules("ros_cli", kind)
    assert started == [f"{kind.capitalize()}Node"]
    assert _heavy(entry) == []
    others = {"perception", "tracking", "semantic"} - {kind}
    assert not {f"vis_node.ros.{o}_node" for o in others} & set(entry)
    extra = sorted(set(entry) - set(launch))
    assert len(extra) < 30, extra  # the CLI's own modules (argparse, vis_node.ros.cli ...)


def test_vsis_entry_point_of_the_tracking_node_is_light():
    require_ros()
    import vis_node.cli

    if not hasattr(vis_node.cli, "selected_command"):
        pytest.skip("needs the lazy `vsis` parser (one command module imported) of the CLI work")
    entry, started = _modules("vsis", "tracking")
    assert started == ["TrackingNode"]
    assert _heavy(entry) == []
    launch, _ = _modules("launch", "tracking")
    assert len(set(entry) - set(launch)) < 60
