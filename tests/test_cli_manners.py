"""``vsis`` manners: light --help, exit codes instead of tracebacks, guarded --out,
overlays at the source rate, frame-size changes in ``vsis run``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vis_node.cli import INTERRUPTED_EXIT, main
from vis_node.io.labels import read_label_png
from vis_node.io.bag_writer import ImageBagWriter
from vis_node.perception.checkpoint import save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.synth import SynthConfig, generate_video

READ_ONLY = Path("/proc/vsis-out")
"""A place no process can create files in (procfs), whatever its user."""


def _vsis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vis_node.cli", *args],
        capture_output=True, text=True, env=os.environ.copy(), timeout=240, check=False,
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random network whose masks fill their boxes, so tracks always exist."""
    torch.manual_seed(0)
    config = ModelConfig(
        input_size=64, fpn_channels=16, head_channels=16, seg_in_channels=16,
        seg_channels=16, seg_dilated_channels=8, seg_crop_size=8, class_hidden_dim=16,
        embedding_dim=8, pretrained_backbone=False, score_threshold=0.0, num_proposals=3,
        mask_threshold=0.0,
    )
    return save_model(build_model(config).eval(), tmp_path_factory.mktemp("m") / "model.pt")


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return generate_video(3, SynthConfig(width=96, height=72, frames=6)).frames


def _folder(path: Path, frames: list[np.ndarray]) -> Path:
    path.mkdir(parents=True)
    for index, image in enumerate(frames):
        cv2.imwrite(str(path / f"{index:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def _run(source: Path, out: Path, model: Path, *extra: str) -> int:
    return main(["run", str(source), "--out", str(out), "--model", str(model),
                 "--runtime", "torch", *extra])


def test_help_and_version_import_no_torch() -> None:
    probe = (
        "import sys\n"
        "from vis_node.cli import main\n"
        "for argv in (['--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in ('torch', 'cv2', 'rclpy', 'onnxruntime') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
    assert "  replay " in done.stdout and "  bench-model " in done.stdout
    assert "vsis 0.1.0" in done.stdout


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from vis_node.synth import cli as synth_cli

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(synth_cli, "run", interrupted)
    assert main(["synth", str(tmp_path / "s")]) == INTERRUPTED_EXIT == 130
    assert capsys.readouterr().err == "vsis: interrupted\n"


@pytest.mark.parametrize("case", ["file", "read-only"])
def test_unusable_out_is_exit_2_for_run_eval_and_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_file: Path,
    images: list[np.ndarray], case: str,
) -> None:
    frames = _folder(tmp_path / "frames", images[:1])
    if case == "file":
        out, report = tmp_path / "taken", tmp_path
        out.write_text("a file")
        folder_error = f"error: {out}: is a file; --out needs a folder"
        file_error = f"error: {report}: is a folder; --out needs a file name"
    else:
        out, report = READ_ONLY, READ_ONLY / "report.json"
        folder_error = file_error = "error: /proc: cannot write here"
    assert _run(frames, out, model_file) == 2
    assert main(["replay", str(tmp_path / "bag"), "--out", str(out)]) == 2
    assert main(["eval", "--pred", str(frames), "--gt", str(frames), "--protocol",
                 "davis2016", "--out", str(report)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" error: ")[0] for line in lines] == ["vsis run:", "vsis replay:", "vsis eval:"]
    assert folder_error in lines[0] and folder_error in lines[1] and file_error in lines[2]


def test_out_file_through_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    done = _vsis("run", str(tmp_path), "--out", str(tmp_path / "taken"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"vsis run: error: {tmp_path / 'taken'}: is a file; --out needs a folder (new or empty)"
    ]


def test_non_empty_out_needs_overwrite_which_replaces_only_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_file: Path,
    images: list[np.ndarray],
) -> None:
    frames = _folder(tmp_path / "frames", images[:2])
    out = tmp_path / "out"
    stale = out / "instances" / "old_sequence"
    stale.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    assert _run(frames, out, model_file, "--no-overlay") == 2
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert stale.is_dir()
    assert _run(frames, out, model_file, "--no-overlay", "--overwrite") == 0
    assert not stale.exists() and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (out / "instances" / "frames").iterdir()) == [
        "00000.png", "00001.png"
    ]
    assert main(["replay", str(tmp_path / "bag"), "--out", str(out)]) == 2
    assert "is not empty; pass --overwrite" in capsys.readouterr().err


def test_replay_input_errors_exit_2_before_any_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "missing"), "--out", str(tmp_path / "o1")]) == 2
    assert "missing: does not exist" in capsys.readouterr().err
    with ImageBagWriter(tmp_path / "empty", fmt="mcap") as writer:
        writer.add_topic("/camera/image_raw", "rgb8")
    assert main(["replay", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "empty: its image topic holds no messages" in err and "Traceback" not in err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_overlay_keeps_the_frame_rate_of_a_24_fps_video(
    tmp_path: Path, model_file: Path, images: list[np.ndarray]
) -> None:
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (96, 72))
    for image in images[:4]:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    assert _run(video, tmp_path / "out", model_file) == 0
    capture = cv2.VideoCapture(str(tmp_path / "out" / "overlay" / "clip.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(24.0, abs=0.01)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    capture.release()


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_run_starts_new_tracks_when_the_frame_size_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, model_file: Path,
    images: list[np.ndarray], mode: str,
) -> None:
    small = [cv2.resize(image, (64, 48)) for image in images[3:]]
    frames = _folder(tmp_path / "seq", [*images[:3], *small])
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert _run(frames, out, model_file, "--mode", mode) == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "seq: frame size changed from (72, 96) to (48, 64); starting new tracks"
    ]
    ids = [read_label_png(out / "instances" / "seq" / f"{i:05d}.png")[0] for i in range(6)]
    assert [m.shape for m in ids] == [(72, 96)] * 3 + [(48, 64)] * 3
    before = {int(v) for m in ids[:3] for v in np.unique(m) if v}
    after = {int(v) for m in ids[3:] for v in np.unique(m) if v}
    assert before and after and min(after) > max(before)
    assert json.loads((out / "timings.json").read_text())["frame_size_changes"] == 1
    results = json.loads((out / "results.json").read_text())
    assert len(results) == len(before) + len(after)
    assert all(len(r["segmentations"]) == 6 for r in results)
    capture = cv2.VideoCapture(str(out / "overlay" / "seq.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 6
    capture.release()
