"""Shared test set-up.

Every test process keeps DDS discovery on this machine: the variables are forced here,
before any test can import rclpy, and each ROS test picks its own domain id.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from vis_node.training.salient_data import FrameFeatures

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated on Jazzy; the range above replaces it
os.environ.setdefault("ROS_DOMAIN_ID", "77")
# Exports and engines made by the tests go to a throw-away cache, never the user's.
os.environ["VSIS_CACHE_DIR"] = tempfile.mkdtemp(prefix="vsis-test-cache-")


def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout (override with VSIS_SHARED_DATA)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("VSIS_SHARED_DATA", default))


def synthetic_frame_features(rng: np.random.Generator) -> FrameFeatures:
    """A cached training frame of the salient model with random 64 x 96 px features: one
    salient candidate box framing the foreground rectangle, one background box."""
    import torch

    from vis_node.training.salient_data import FrameFeatures

    foreground = np.zeros((64, 96), np.uint8)
    foreground[16:48, 24:64] = 1
    return FrameFeatures(
        images=torch.from_numpy(rng.standard_normal((1, 3, 64, 96), np.float32)).half(),
        p3=torch.from_numpy(rng.standard_normal((1, 128, 8, 12), np.float32)).half(),
        p4=torch.from_numpy(rng.standard_normal((1, 128, 4, 6), np.float32)).half(),
        boxes=np.array([[24, 16, 64, 48], [0, 0, 20, 20]], np.float32),
        scores=np.array([0.6, 0.3], np.float32),
        labels=np.array([1.0, 0.0], np.float32),
        foreground=foreground,
        objects=np.array([[24, 16, 64, 48]], np.float32),
        valid_hw=(64.0, 96.0),
    )


@pytest.fixture(scope="session")
def davis2016_root() -> Path:
    """The shared DAVIS-2016 sample (12 sequences); read only, never copied."""
    root = shared_data_dir() / "davis2016"
    if not (root / "JPEGImages").is_dir():
        pytest.fail(f"{root} is missing: the shared data must sit beside the checkout")
    return root
