"""Shared test set-up.

Every test process keeps DDS discovery on this machine: the variables are forced here,
before any test can import rclpy, and each ROS test picks its own domain id.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated on Jazzy; the range above replaces it
os.environ.setdefault("ROS_DOMAIN_ID", "77")
# Exports and engines made by the tests go to a throw-away cache, never the user's.
os.environ["VSIS_CACHE_DIR"] = tempfile.mkdtemp(prefix="vsis-test-cache-")


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout (override with VSIS_SHARED_DATA)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("VSIS_SHARED_DATA", default))


@pytest.fixture(scope="session")
def davis2016_root() -> Path:
    """The shared DAVIS-2016 sample (12 sequences); read only, never copied."""
    root = shared_data_dir() / "davis2016"
    if not (root / "JPEGImages").is_dir():
        pytest.fail(f"{root} is missing: the shared data must sit beside the checkout")
    return root
