"""scripts/env.sh leaves the user's ROS 2 networking alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = (
    '. scripts/env.sh && echo "${ROS_DOMAIN_ID-unset} ${ROS_LOCALHOST_ONLY-unset} '
    '${ROS_AUTOMATIC_DISCOVERY_RANGE-unset}"'
)


def _source_env(**variables: str) -> list[str]:
    """What a shell sees after ``. scripts/env.sh`` when it started with ``variables``."""
    if not (REPO / ".venv" / "bin" / "activate").is_file():
        pytest.skip("no .venv: run scripts/setup.sh first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROS_")}
    env.update(variables)
    out = subprocess.run(
        ["bash", "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_env_sh_sets_no_ros_networking_of_its_own():
    assert _source_env() == ["unset", "unset", "unset"]


def test_env_sh_keeps_what_the_user_set():
    assert _source_env(ROS_DOMAIN_ID="5", ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET") == [
        "5", "unset", "SUBNET"
    ]


def test_env_sh_makes_the_built_interfaces_importable():
    if not (REPO / ".venv" / "bin" / "activate").is_file():
        pytest.skip("no .venv: run scripts/setup.sh first")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH")}
    probe = ". scripts/env.sh && python -c 'import vis_msgs.msg; print(1)'"
    out = subprocess.run(["bash", "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr[-2000:]
