"""Leave-sequences-out scoring (`vis_node.training.cross_validate`): label accuracy and
the plumbing from the command line to `vsis run`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vis_node.io.labels import write_instance_png, write_semantic_png
from vis_node.training import cross_validate


def _write_frame(run: Path, gt: Path, name: str, ids: np.ndarray, classes: np.ndarray,
                 truth: np.ndarray) -> None:
    write_instance_png(run / "instances" / "dog" / name, ids)
    write_semantic_png(run / "semantics" / "dog" / name, classes)
    (gt / "dog").mkdir(parents=True, exist_ok=True)
    write_instance_png(gt / "dog" / name, truth.astype(np.uint16))


def test_semantic_accuracy_reads_the_label_of_the_main_instance(tmp_path: Path) -> None:
    run, gt = tmp_path / "run", tmp_path / "gt"
    run.mkdir()
    (run / "label_map.json").write_text(json.dumps({"0": "background", "2": "person",
                                                    "18": "dog"}))
    truth = np.zeros((8, 8), dtype=bool)
    truth[2:6, 2:6] = True
    # Frame 0: track 1 covers most of the object and is a dog; track 2 a sliver, a person.
    ids = np.zeros((8, 8), dtype=np.uint16)
    ids[2:6, 2:5] = 1
    ids[2:6, 5:6] = 2
    classes = np.where(ids == 1, 18, np.where(ids == 2, 2, 0)).astype(np.uint8)
    _write_frame(run, gt, "00000.png", ids, classes, truth)
    # Frame 1: the main instance is a person (wrong); frame 2: nothing on the object.
    _write_frame(run, gt, "00001.png", ids, np.where(ids > 0, 2, 0).astype(np.uint8), truth)
    _write_frame(run, gt, "00002.png", np.zeros_like(ids), np.zeros_like(classes), truth)
    assert cross_validate.semantic_accuracy(run, gt, "dog") == pytest.approx(1 / 3)


def test_run_args_reach_every_vsis_run(tmp_path: Path, monkeypatch) -> None:
    """``--run-args`` is split like a shell line and appended to each fold's `vsis run`."""
    root = tmp_path / "davis"
    for part in ("JPEGImages", "Annotations"):
        for sequence in ("dog", "cows"):
            (root / part / "480p" / sequence).mkdir(parents=True)
    config = tmp_path / "train.yaml"
    config.write_text(
        "type: salient-nanodet\n"
        f"data: {{root: {root}, sequences: [dog, cows], folds: [[dog], [cows]]}}\n"
        f"output_dir: {tmp_path / 'models'}\n"
    )
    for fold in (0, 1):
        (tmp_path / "models" / f"fold-{fold}").mkdir(parents=True)
        (tmp_path / "models" / f"fold-{fold}" / "model.pt").write_bytes(b"")
    commands: list[list[str]] = []

    def fake_run(command: list[str], check: bool) -> None:
        commands.append(command)
        if command[3] == "eval":
            sequence = "dog" if "fold-0" in command[-1] else "cows"
            Path(command[-1]).write_text(json.dumps(
                {"per_sequence": {sequence: {"J": 0.5, "F": 0.25}}}))

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(cross_validate, "semantic_accuracy", lambda run, gt, sequence: 1.0)
    out = tmp_path / "cv"
    assert cross_validate.main([str(config), str(out), "--skip-training",
                                "--run-args", "--no-refiner-flip --theta 0.2"]) == 0
    runs = [c for c in commands if c[3] == "run"]
    assert len(runs) == 2
    for fold, command in enumerate(runs):
        assert command[-4:] == [str(tmp_path / "models" / f"fold-{fold}" / "model.pt"),
                                "--no-refiner-flip", "--theta", "0.2"]
    scores = json.loads((out / "cv.json").read_text())["held_out"]
    assert scores == {s: {"J": 0.5, "F": 0.25, "label_accuracy": 1.0} for s in ("dog", "cows")}
