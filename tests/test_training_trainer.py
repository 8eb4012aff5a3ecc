"""Training loop: checkpoints, exact resume, export, validation maps, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from vis_node.perception.checkpoint import load_model
from vis_node.structures.instances import Instances
from vis_node.training import cli
from vis_node.training.config import TrainConfig
from vis_node.training.trainer import train
from vis_node.training.validation import evaluate_model, instance_maps

TINY_MODEL = {
    "pretrained_backbone": False,
    "input_size": 128,
    "fpn_channels": 16,
    "head_channels": 16,
    "seg_in_channels": 8,
    "seg_channels": 8,
    "seg_dilated_channels": 8,
    "seg_crop_size": 8,
    "class_hidden_dim": 16,
    "embedding_dim": 8,
    "pre_nms_top_k": 50,
    "num_proposals": 3,
    "score_threshold": 0.0,
}


def _config(out: Path, **extra: object) -> TrainConfig:
    values = {
        "model": dict(TINY_MODEL),
        "data": [{"kind": "synth", "videos": 4, "seed": 1, "frames": 4, "width": 96, "height": 64}],
        "copy_paste": {"probability": 0.5, "max_objects": 1, "min_area": 4},
        "optimizer": {"name": "sgd", "lr": 0.01, "warmup_steps": 1},
        "steps": 3,
        "batch_size": 2,
        "checkpoint_interval": 10,
        "seed": 7,
        "num_threads": 1,
        "output_dir": str(out),
        **extra,
    }
    return TrainConfig.from_dict(values)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = train(_config(tmp_path / "straight"))
    interrupted = _config(tmp_path / "split")
    train(interrupted, max_steps=2)
    checkpoint = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert checkpoint["state"]["step"] == 2
    assert not (tmp_path / "split" / "final.pt").exists()
    train(interrupted, resume=True)
    resumed = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert resumed["state"]["step"] == 3
    assert [h["step"] for h in resumed["state"]["history"]] == [1, 2, 3]
    a, b = _weights(straight), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    first = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    assert first["state"]["history"] == resumed["state"]["history"]


def test_run_folder_and_exported_model(tmp_path: Path) -> None:
    run_dir = train(_config(tmp_path / "run"))
    names = ("checkpoint.pt", "history.json", "curves.png", "config.yaml", "final.pt", "best.pt")
    for name in names:
        assert (run_dir / name).is_file(), name
    model, meta = load_model(run_dir / "final.pt")
    assert meta["step"] == 3
    assert not model.training
    trained = _weights(run_dir)
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key].half().float()), key
    assert (run_dir / "final.pt").stat().st_size < 15 * 2**20


def test_fresh_start_refuses_an_existing_checkpoint(tmp_path: Path) -> None:
    config = _config(tmp_path / "run", steps=1)
    train(config)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(_config(tmp_path / "other"), resume=True)


def test_validation_writes_pngs_and_metrics(tmp_path: Path) -> None:
    validation = {"kind": "synth", "videos": 1, "seed": 99, "frames": 4, "width": 96,
                  "height": 64, "frame_step": 2}
    run_dir = train(_config(tmp_path / "run", steps=1, validation=validation))
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)["state"]
    [metrics] = state["validations"]
    assert metrics["step"] == 1 and metrics["protocol"] == "davis2017-unsupervised"
    assert 0.0 <= metrics["JF"] <= 1.0 and 0.0 <= metrics["AP50"] <= 1.0
    assert set(metrics["per_sequence"]) == {"synth_000"}
    folder = run_dir / "validation" / "step_000001" / "ids" / "synth_000"
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == ["00000.png", "00002.png"]
    report = evaluate_model(
        _config(tmp_path / "run", validation=validation), run_dir / "final.pt",
        tmp_path / "eval", frame_step=1,
    )
    assert (tmp_path / "eval" / "report.json").is_file()
    assert set(report) >= {"J", "F", "JF", "AP50", "per_sequence"}
    folder = tmp_path / "eval" / "pred" / "ids" / "synth_000"
    frames = sorted(p.name for p in folder.glob("*.png"))
    assert frames == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert len(list((tmp_path / "eval" / "gt" / "ids" / "synth_000").glob("*.png"))) == 4


def test_instance_maps_rank_by_score() -> None:
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, :2] = True
    masks[1, 1:] = True
    probs = np.array([[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]], dtype=np.float32)
    instances = Instances(
        masks=masks,
        boxes=np.zeros((2, 4), np.float32),
        class_probs=probs,
        saliency=np.array([0.6, 0.9], np.float32),
        embeddings=np.zeros((2, 2), np.float32),
        scores=np.array([0.6, 0.9], np.float32),
    )
    ids, classes, scores = instance_maps(instances)
    assert ids.tolist() == [[2] * 4, [1] * 4, [1] * 4, [1] * 4]
    assert classes.tolist() == [[2] * 4, [1] * 4, [1] * 4, [1] * 4]
    assert scores == pytest.approx({1: 0.9, 2: 0.6})


def test_cli_trains_and_resumes(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path / "run", steps=2).to_dict()))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", str(path), "--max-steps", "1"])
    assert args.func(args) == 0
    assert not (tmp_path / "run" / "final.pt").exists()
    args = parser.parse_args(["train", str(path), "--resume"])
    assert args.func(args) == 0
    assert (tmp_path / "run" / "final.pt").is_file()
    args = parser.parse_args(["train", str(path)])
    assert args.func(args) == 2
