"""Fine-tuning a shipped model with another class list (``init_from``)."""

from __future__ import annotations

import pytest
import torch
import yaml

from vis_node.perception.checkpoint import load_model, models_dir
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.training.model_setup import initialise_from


def _shipped_model_section(name: str) -> dict:
    model = yaml.safe_load((models_dir() / name / "train.yaml").read_text())["model"]
    return {**model, "pretrained_backbone": False}


def test_own_class_list_keeps_everything_but_the_classifier():
    section = {**_shipped_model_section("synth"), "class_names": ["background", "cup", "pen"]}
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_dict(section))
    fresh_weight = model.state_dict()["instance_head.classifier.weight"].clone()
    fresh = initialise_from(model, "synth")
    assert fresh == ["instance_head.classifier.bias", "instance_head.classifier.weight"]
    donor = load_model("synth")[0].state_dict()
    own = model.state_dict()
    assert own["instance_head.classifier.weight"].shape[0] == 3
    assert torch.equal(own["instance_head.classifier.weight"], fresh_weight)
    copied = [k for k in own if k not in fresh]
    assert len(copied) > 100
    assert all(torch.equal(own[k], donor[k]) for k in copied)


def test_another_architecture_is_refused_with_what_to_do():
    model = build_model(ModelConfig(pretrained_backbone=False, fpn_channels=8, head_channels=8,
                                    seg_in_channels=8, seg_channels=8, seg_dilated_channels=8,
                                    class_hidden_dim=8, embedding_dim=4, backbone="resnet50"))
    with pytest.raises(ValueError, match="copy the model section of its train.yaml"):
        initialise_from(model, "synth")
