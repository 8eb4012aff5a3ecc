"""The ROS path (bag -> live graph -> vsis replay) and `vsis run` write identical outputs."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from rosutil import require_ros
from vis_node.cli import main
from vis_node.io.labels import read_label_png, read_semantic_png
from vis_node.ros.cli import default_params_files
from vis_node.synth.generator import SynthConfig
from vis_node.synth.writer import write_synth_root

pytestmark = pytest.mark.ros


def _pngs(out: Path, kind: str) -> list[Path]:
    """Paths of ``out/<kind>/<sequence>/<frame>.png``, relative to ``out/<kind>``."""
    return sorted(p.relative_to(out / kind) for p in (out / kind).rglob("*.png"))


@pytest.mark.parametrize(
    ("motion_gate", "pace"),
    [(False, "max"), (True, "max"), (True, "stream")],
    ids=["plain", "motion_gate", "stream"],
)
def test_replay_writes_the_pngs_of_vsis_run(tmp_path, monkeypatch, request, motion_gate, pace):
    """Also at pace ``stream``, where a frame waits while the model works on the one
    before and frames overlap in the graph: same frames, same order, same outputs."""
    require_ros()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + zlib.crc32(request.node.name.encode()) % 50))
    root = write_synth_root(
        tmp_path / "synth", videos=1, seed=2027, config=SynthConfig(width=320, height=240, frames=12)
    )
    bag = tmp_path / "synth_000"
    assert main(["bag", "make", str(root), str(bag)]) == 0
    gate_flag, gate_params = [], []
    if not motion_gate:  # on by default in both
        (tmp_path / "no_gate.yaml").write_text(
            "/**/vsis_tracking:\n  ros__parameters:\n    motion_gate: false\n"
        )
        gate_flag = ["--no-motion-gate"]
        gate_params = [a for path in [*default_params_files(), tmp_path / "no_gate.yaml"]
                       for a in ("--params", str(path))]
    assert main(["run", str(bag), "--out", str(tmp_path / "run"),
                 "--model", "synth", "--no-overlay", *gate_flag]) == 0
    assert main(["replay", str(bag), "--out", str(tmp_path / "replay"),
                 "--model", "synth", "--graph", "composed", "--pace", pace, *gate_params]) == 0

    run, replay = tmp_path / "run", tmp_path / "replay"
    for kind, read in (("instances", lambda p: read_label_png(p)[0]),
                       ("semantics", read_semantic_png)):
        names = _pngs(run, kind)
        assert len(names) == 12
        assert _pngs(replay, kind) == names
        for name in names:
            direct, replayed = read(run / kind / name), read(replay / kind / name)
            assert direct.shape == replayed.shape and np.array_equal(direct, replayed), (
                f"{kind}/{name}: {int(np.sum(direct != replayed))} pixels differ"
            )
    ids = np.stack([read_label_png(run / "instances" / n)[0] for n in _pngs(run, "instances")])
    assert len(np.unique(ids)) > 2, "the shipped synth model should find several objects"
    report = json.loads((replay / "latency.json").read_text())
    assert report["frames_written"] == 12
    assert report["replay_cpu_ms_per_frame"] > 0.0  # the camera side's own CPU
    # max: each frame meets an idle model; stream: one more waits while it works
    assert report["max_at_first_stage"] == (2 if pace == "stream" else 1)


@pytest.mark.timeout(150)
def test_replay_at_the_bag_clock_ends_once_the_last_frame_is_out(
    tmp_path, monkeypatch, request, capsys
):
    """At pace ``recorded`` a model slower than the bag's clock skips frames (the newest
    wins); the replay ends once the last frame's outputs are in, as outputs come in
    frame order, instead of waiting ``--frame-timeout`` for frames that never come
    (before: 30 s per bag; here an hour, so that waiting fails the test). It says how to
    score the skipped frames as a subscriber saw them, and that command works."""
    require_ros()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(100 + zlib.crc32(request.node.name.encode()) % 50))
    root = write_synth_root(
        tmp_path / "synth", videos=1, seed=11, config=SynthConfig(width=320, height=240, frames=12)
    )
    bag, out = tmp_path / "bag", tmp_path / "out"
    assert main(["bag", "make", str(root), str(bag), "--fps", "240"]) == 0
    assert main(["replay", str(bag), "--out", str(out), "--model", "synth",
                 "--pace", "recorded", "--frame-timeout", "3600"]) == 0
    report = json.loads((out / "latency.json").read_text())
    assert report["published"] == 12 and 0 < report["delivered"] < 12
    assert report["delivered"] + report["dropped"] == 12
    written = _pngs(out, "instances")
    assert len(written) == report["delivered"] == report["frames_written"]
    assert written[-1] == Path("bag", "00011.png")  # the newest frame always runs
    hint = capsys.readouterr().out.split("score them as a subscriber saw them with: ")[1]
    command = hint.split()[1:]  # after "vsis"
    assert command[0] == "eval" and command[command.index("--missing") + 1] == "hold"
    scores = {}
    for rule in ("empty", "hold"):
        args = [a if a != "REPORT.json" else str(tmp_path / f"{rule}.json") for a in command]
        args[args.index("--missing") + 1] = rule
        assert main(args) == 0
        scores[rule] = json.loads((tmp_path / f"{rule}.json").read_text())["J"]["mean"]
    assert scores["hold"] > scores["empty"]


def test_replay_into_a_used_folder_fails_before_the_graph_starts(tmp_path, monkeypatch):
    """``run_replay`` (the API scripts call) refuses an ``out/record`` already there
    before it starts any node, so no graph is left running."""
    require_ros()
    import vis_node.ros.replay as replay
    from vis_node.ros.replay import ReplaySettings, run_replay
    from vis_node.structures.errors import InputDataError

    root = write_synth_root(
        tmp_path / "synth", videos=1, seed=5, config=SynthConfig(width=64, height=48, frames=2)
    )
    bag = tmp_path / "bag"
    assert main(["bag", "make", str(root), str(bag)]) == 0
    (tmp_path / "out" / "record").mkdir(parents=True)
    started = []
    monkeypatch.setattr(replay, "start_graph", lambda *a, **k: started.append(a))
    with pytest.raises(InputDataError, match="already there"):
        run_replay(bag, tmp_path / "out", ReplaySettings(model="synth", graph="processes"))
    assert started == []


def test_status_latencies_reads_each_nodes_mean_stage_times():
    require_ros()
    from builtin_interfaces.msg import Time

    from vis_node.ros.diagnostics import (
        NodeStats, stats_to_status, status_array, status_cpu, status_latencies,
    )

    cpu = iter((2.0, 2.1, 2.3))
    stats = NodeStats(cpu_clock=lambda: next(cpu))
    for _ in range(3):
        stats.frame_done()
    stats.add_latency("inference", 0.040)
    stats.add_latency("inference", 0.060)
    stats.add_latency("publish", 0.002)
    status = stats_to_status(stats.snapshot({}), name="vsis_perception: perception",
                             hardware_id="cpu", active=True)
    status.values.append(type(status.values[0])(key="latency_bad_ms", value="n/a"))
    latencies = status_latencies(status_array(status, Time()))
    assert latencies == {"vsis_perception: perception": {"inference": 50.0, "publish": 2.0}}
    assert status_cpu(status_array(status, Time())) == {
        "vsis_perception: perception": pytest.approx(150.0)
    }
    idle = stats_to_status(NodeStats().snapshot({}), name="idle", hardware_id="", active=True)
    assert status_cpu(status_array(idle, Time())) == {}  # nothing processed: not reported


@pytest.mark.parametrize("pace", ["max", "stream", "recorded"])
def test_replay_params_keep_every_frame_unless_the_bag_clock_paces(tmp_path, pace):
    """Reliable input everywhere and the perception node runs every frame in order; at
    pace ``recorded`` it takes the camera as on a robot: the newest frame."""
    import yaml

    from vis_node.ros.graph_process import graph_params

    params = yaml.safe_load(graph_params(tmp_path, "synth", pace).read_text())
    assert params["/**"]["ros__parameters"]["input_qos"] == "reliable"
    perception = params["vsis_perception"]["ros__parameters"]
    assert perception == {"model": "synth", "frames": "newest" if pace == "recorded" else "every"}
    assert list(params) == ["/**", "vsis_perception"]  # the node's own entry comes last
