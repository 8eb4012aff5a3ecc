"""Loading model and training files never runs code or opens paths named inside them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vis_node.cli import main
from vis_node.structures.errors import InputDataError
from vis_node.perception.checkpoint import FORMAT, load_model, save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.export_onnx import EXPORT_FORMAT
from vis_node.perception.model import build_model
from vis_node.training.state import load_training_checkpoint
from vis_node.training.trainer import Trainer

from test_training_trainer import _config


class _Payload:
    """Pickles to a call that creates ``marker`` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "vsis-train/1", "model": _Payload(marker)}, path)


def test_planted_pickle_in_a_training_checkpoint_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "run"
    _plant(run_dir / "checkpoint.pt", marker)
    with pytest.raises(InputDataError, match="not a loadable VSIS training checkpoint"):
        Trainer(_config(run_dir), resume=True)
    assert not marker.exists()


def test_resume_of_a_planted_checkpoint_is_an_input_error_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    marker = tmp_path / "pwned"
    run_dir = tmp_path / "run"
    _plant(run_dir / "checkpoint.pt", marker)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(_config(run_dir).to_dict()))
    assert main(["train", str(config), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt: not a loadable VSIS training checkpoint" in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_training_checkpoints_hold_only_plain_types(tmp_path: Path) -> None:
    trainer = Trainer(_config(tmp_path / "run", steps=1))
    trainer.state.validations.append({"step": 1, "JF": np.float64(0.5)})
    path = trainer.save_checkpoint()
    payload = load_training_checkpoint(path)
    assert payload["state"]["validations"] == [{"step": 1, "JF": 0.5}]
    assert payload["state"]["best_score"] == float("-inf")
    resumed = Trainer(_config(tmp_path / "run", steps=1), resume=True)
    assert resumed.state.validations == [{"step": 1, "JF": 0.5}]


def _tiny(backbone: str = "mobilenet_v2") -> ModelConfig:
    return ModelConfig(
        backbone=backbone, input_size=64, fpn_channels=8, head_channels=8, seg_in_channels=8,
        seg_channels=8, seg_dilated_channels=8, seg_crop_size=8, class_hidden_dim=8,
        embedding_dim=8, pretrained_backbone=False,
    )


def test_backbone_path_inside_a_model_file_is_never_opened(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for a model loader")
    opened: list[str] = []
    real_load = torch.load

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real_load(path, *args, **kwargs)

    model = build_model(_tiny("resnet50"))
    path = save_model(model, tmp_path / "model" / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["backbone_weights_path"] = str(secret)
    payload["config"]["pretrained_backbone"] = True
    torch.save(payload, path)
    torch.load = spy
    try:
        loaded, _ = load_model(path)
    finally:
        torch.load = real_load
    assert opened == [str(path)]
    assert loaded.config.backbone_weights_path is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_size": 64 * 100_000}, "input_size=6400000: use a multiple of 64"),
        ({"colour": "red"}, "unknown model config keys \\['colour'\\]"),
    ],
)
def test_model_file_with_a_bad_config_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, message: str
) -> None:
    config = _tiny().to_dict()
    config.update(change)
    path = tmp_path / "bad" / "model.pt"
    path.parent.mkdir()
    torch.save({"format": FORMAT, "config": config, "state_dict": {}, "meta": {}}, path)
    with pytest.raises(InputDataError, match=message):
        load_model(path)
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000.png"), np.zeros((32, 32, 3), np.uint8))
    assert main(["run", str(frames), "--out", str(tmp_path / "out"), "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid model config" in err and "Traceback" not in err


def test_export_folder_with_a_bad_config_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("dense.onnx", "instance.onnx"):
        (folder / name).write_bytes(b"")
    config = {**_tiny().to_dict(), "input_size": 64 * 100_000}
    manifest = {"format": EXPORT_FORMAT, "config": config, "fingerprint": "0", "batch_size": 1}
    (folder / "export.json").write_text(json.dumps(manifest))
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000.png"), np.zeros((32, 32, 3), np.uint8))
    assert main(["run", str(frames), "--out", str(tmp_path / "out"), "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "export.json: invalid export manifest (input_size=6400000" in err
    assert "Traceback" not in err


def test_training_config_with_unknown_keys_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({**_config(tmp_path / "run").to_dict(), "colour": "red"}))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vsis train: error: {path}: ") and "colour" in err
    assert "Traceback" not in err
