"""The ROS path (bag -> live graph -> vsis replay) and `vsis run` give the same J&F."""

from __future__ import annotations

import zlib

import pytest

from rosutil import require_ros
from vis_node.cli import main
from vis_node.evaluation import evaluate
from vis_node.synth.generator import SynthConfig
from vis_node.synth.writer import write_synth_root

pytestmark = pytest.mark.ros


def test_replay_matches_vsis_run(tmp_path, monkeypatch, request):
    require_ros()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + zlib.crc32(request.node.name.encode()) % 50))
    root = write_synth_root(
        tmp_path / "synth", videos=1, seed=2027, config=SynthConfig(width=320, height=240, frames=12)
    )
    assert main(["run", str(root), "--out", str(tmp_path / "run"), "--model", "synth",
                 "--no-overlay"]) == 0
    assert main(["bag", "make", str(root), str(tmp_path / "synth_000")]) == 0
    assert main(["replay", str(tmp_path / "synth_000"), "--out", str(tmp_path / "replay"),
                 "--model", "synth", "--graph", "composed"]) == 0

    gt = root / "Annotations" / "480p"
    direct = evaluate("davis2016", tmp_path / "run" / "instances", gt)
    replayed = evaluate("davis2016", tmp_path / "replay" / "instances", gt)
    assert direct["num_sequences"] == replayed["num_sequences"] == 1
    assert direct["JF"] > 0.2, "the shipped synth model should find the synthetic objects"
    assert abs(direct["JF"] - replayed["JF"]) <= 0.01
    assert sorted(p.name for p in (tmp_path / "replay" / "gt" / "synth_000").iterdir()) == sorted(
        p.name for p in (gt / "synth_000").iterdir()
    )
