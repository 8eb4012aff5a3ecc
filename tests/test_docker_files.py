"""The Dockerfiles (not built here: no Docker engine) keep to what would build and run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = ("Dockerfile", "Dockerfile.jetson")


def test_dockerignore_keeps_host_build_outputs_out():
    entries = set((REPO / ".dockerignore").read_text().split())
    required = {".venv", ".stamps", "ros_ws/build", "ros_ws/install", "ros_ws/log", "out", "runs"}
    assert required <= entries
    assert "**/__pycache__" in entries and ".pytest_cache" in entries


def test_no_ros_networking_is_baked_in():
    for name in DOCKERFILES:
        text = (REPO / name).read_text()
        env_lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        assert not any("ROS_DOMAIN_ID" in line for line in env_lines), name
        assert not any("ROS_LOCALHOST_ONLY" in line for line in env_lines), name


def test_engine_cache_is_a_volume():
    for name in DOCKERFILES:
        text = (REPO / name).read_text()
        assert "VSIS_CACHE_DIR=/var/cache/vsis" in text, name
        assert re.search(r"^VOLUME /var/cache/vsis$", text, re.M), name


def test_jetson_image_uses_a_published_jazzy_base_with_its_ros_path():
    text = (REPO / "Dockerfile.jetson").read_text()
    assert "ARG BASE=dustynv/ros:jazzy-ros-base-r36.4.0-cu128-24.04" in text
    assert "/opt/ros/jazzy/setup.bash" not in text
    assert text.count("/opt/ros/jazzy/install/setup.bash") == 2
    assert re.search(r"pip3 install .*--index-url \"\$\{TORCH_INDEX\}\" torch torchvision", text)
    assert "--no-deps trackeval deep-sort-realtime -e ." in text
    assert "! pip3 show opencv-python opencv-python-headless" in text
