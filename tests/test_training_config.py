"""Training YAML configuration: loading, defaults, strict keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vis_node.structures.errors import InputDataError
from vis_node.training.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "model": {"pretrained_backbone": False, "input_size": 128, "seg_crop_size": 8},
    "data": [{"kind": "synth", "videos": 3, "seed": 5, "frames": 4}],
    "copy_paste": {"probability": 0.25, "scale": [0.3, 0.9]},
    "optimizer": {"name": "sgd", "lr": 0.002},
    "steps": 7,
    "batch_size": 4,
    "zoom_range": [0.5, 2.0],
}


def _write(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_loads_every_section(tmp_path: Path) -> None:
    config = load_train_config(_write(tmp_path, BASE))
    assert config.model.input_size == 128
    assert config.model.seg_crop_size == 8
    assert config.data[0].kind == "synth" and config.data[0].videos == 3
    assert config.copy_paste.probability == 0.25
    assert config.copy_paste.scale == (0.3, 0.9)
    assert config.optimizer.name == "sgd" and config.optimizer.lr == 0.002
    assert config.steps == 7 and config.batch_size == 4
    assert config.validation is None
    assert config.freeze_backbone_stages == 0
    assert config.zoom_range == (0.5, 2.0)


def test_round_trips_through_to_dict(tmp_path: Path) -> None:
    config = load_train_config(_write(tmp_path, BASE))
    again = TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (None, "stepz"),
        ("model", "fpn_chanels"),
        ("copy_paste", "probabilty"),
        ("optimizer", "lrate"),
    ],
)
def test_rejects_unknown_keys(tmp_path: Path, section: str | None, key: str) -> None:
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    if section is None:
        values[key] = 1
    else:
        values[section][key] = 1
    with pytest.raises(ValueError, match=key):
        load_train_config(_write(tmp_path, values))


def test_rejects_unknown_data_key_and_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vidoes"):
        load_train_config(_write(tmp_path, {**BASE, "data": [{"kind": "synth", "vidoes": 2}]}))
    with pytest.raises(ValueError, match="kind='kitti'"):
        load_train_config(_write(tmp_path, {**BASE, "data": [{"kind": "kitti"}]}))


def test_rejects_categories_outside_class_names(tmp_path: Path) -> None:
    data = [{"kind": "davis", "root": "/x", "categories": {"dog": "zebra"}}]
    with pytest.raises(ValueError, match="zebra"):
        load_train_config(_write(tmp_path, {**BASE, "data": data}))


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not found"):
        load_train_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["synth", "davis"])
def test_shipped_configs_load(name: str) -> None:
    config = load_train_config(REPO / "vis_node" / "models" / name / "train.yaml")
    assert config.model.input_size == 320
    assert config.model.backbone == "mobilenet_v2"
    assert config.test is not None
    if config.validation is not None:  # never the test set: no checkpoint picked on it
        assert config.validation != config.test


@pytest.mark.parametrize("zoom", [[0.0, 1.0], [1.5, 1.2]])
def test_rejects_bad_zoom_range(tmp_path: Path, zoom: list[float]) -> None:
    with pytest.raises(ValueError, match="zoom_range"):
        load_train_config(_write(tmp_path, {**BASE, "zoom_range": zoom}))
