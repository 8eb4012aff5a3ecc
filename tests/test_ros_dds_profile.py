"""The Fast DDS profile of the VSIS processes (:mod:`vis_node.ros.dds_profile`)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from vis_node.ros.dds_profile import PROFILE_PATH, PROFILE_VARIABLES, use_profile

NS = {"dds": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def test_profile_is_set_when_nothing_else_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env: dict[str, str] = {}
    assert use_profile(env) == PROFILE_PATH
    assert env == {"FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE_PATH)}
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_dynamic_cpp"}
    assert use_profile(env) == PROFILE_PATH


@pytest.mark.parametrize(
    "env",
    [
        {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"},
        {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"},
        {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
    ],
)
def test_a_users_choice_is_left_alone(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = dict(env)
    assert use_profile(env) is None
    assert env == before


def test_a_working_directory_profile_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "DEFAULT_FASTRTPS_PROFILES.xml").write_text("<profiles/>")
    env: dict[str, str] = {}
    assert use_profile(env) is None and env == {}


def test_profile_sizes_shared_memory_and_heartbeat():
    root = ET.parse(PROFILE_PATH).getroot()
    segment = root.find(".//dds:transport_descriptor[dds:type='SHM']/dds:segment_size", NS)
    assert segment is not None and int(segment.text) >= 4 * 1024 * 1024
    period = root.find(".//dds:publisher/dds:times/dds:heartbeatPeriod", NS)
    assert period is not None
    seconds = int(period.find("dds:sec", NS).text) + int(period.find("dds:nanosec", NS).text) / 1e9
    assert 0 < seconds <= 0.5


@pytest.mark.ros
def test_fast_dds_loads_the_profile_without_complaint():
    """A participant created under the profile starts and Fast DDS reports no XML error."""
    code = (
        "import rclpy; rclpy.init(); node = rclpy.create_node('vsis_profile_check'); "
        "node.destroy_node(); rclpy.shutdown(); print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env[PROFILE_VARIABLES[0]] = str(PROFILE_PATH)
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    assert "error" not in run.stderr.lower(), run.stderr
