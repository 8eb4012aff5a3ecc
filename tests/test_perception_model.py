"""End-to-end behaviour of the S4Net perception model on small CPU inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from vis_node.perception import ModelConfig, S4Net, build_model
from vis_node.perception.seg_branch import SegmentationBranch

SIZE = 128


def _small_config(**overrides: object) -> ModelConfig:
    settings: dict[str, object] = {
        "input_size": SIZE,
        "fpn_channels": 32,
        "head_channels": 32,
        "seg_in_channels": 32,
        "seg_channels": 32,
        "seg_dilated_channels": 16,
        "seg_crop_size": 12,
        "class_hidden_dim": 32,
        "embedding_dim": 16,
    }
    settings.update(overrides)
    return ModelConfig(**settings)


def _two_discs(seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A red and a blue disc on uniform noise, with their targets."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(3, SIZE, SIZE, generator=generator) * 0.3
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    discs = [((40.0, 44.0), 22.0, (0.9, 0.1, 0.1), 1), ((90.0, 84.0), 26.0, (0.1, 0.2, 0.9), 3)]
    masks, boxes, labels = [], [], []
    for (cx, cy), radius, colour, label in discs:
        mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
        image[:, mask] = torch.tensor(colour)[:, None]
        masks.append(mask)
        boxes.append([cx - radius, cy - radius, cx + radius, cy + radius])
        labels.append(label)
    target = {
        "boxes": torch.tensor(boxes),
        "masks": torch.stack(masks),
        "labels": torch.tensor(labels),
        "track_ids": torch.tensor([1, 2]),
    }
    return image, target


def _empty_target() -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.zeros(0, 4),
        "masks": torch.zeros(0, SIZE, SIZE, dtype=torch.bool),
        "labels": torch.zeros(0, dtype=torch.int64),
        "track_ids": torch.zeros(0, dtype=torch.int64),
    }


def test_training_losses_are_finite_and_reach_every_head() -> None:
    torch.manual_seed(0)
    model = build_model(_small_config())
    image, target = _two_discs()
    flipped = {
        **target,
        "masks": target["masks"].flip(-1),
        "boxes": torch.stack(
            [
                SIZE - target["boxes"][:, 2],
                target["boxes"][:, 1],
                SIZE - target["boxes"][:, 0],
                target["boxes"][:, 3],
            ],
            dim=1,
        ),
    }
    losses = model(torch.stack([image, image.flip(-1)]), [target, flipped])
    assert set(losses) == {
        "loss_objectness",
        "loss_box",
        "loss_mask",
        "loss_class",
        "loss_embedding",
    }
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    for name in ("backbone", "fpn", "head", "seg_compress", "seg_branch", "instance_head"):
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name
    assert model.instance_head.embedder.weight.grad.abs().sum() > 0
    assert model.instance_head.classifier.weight.grad.abs().sum() > 0


def test_empty_targets_give_zero_instance_losses() -> None:
    torch.manual_seed(0)
    model = build_model(_small_config())
    losses = model(torch.rand(2, 3, SIZE, SIZE), [_empty_target(), _empty_target()])
    assert torch.isfinite(losses["loss_objectness"]) and losses["loss_objectness"] > 0
    for name in ("loss_box", "loss_mask", "loss_class", "loss_embedding"):
        assert losses[name].item() == 0.0, name
    sum(losses.values()).backward()


def test_training_mode_without_targets_is_an_error() -> None:
    model = build_model(_small_config(pretrained_backbone=False))
    with pytest.raises(ValueError, match="needs targets"):
        model(torch.rand(1, 3, SIZE, SIZE))


def test_eval_outputs_shapes_and_dtypes() -> None:
    torch.manual_seed(0)
    config = _small_config(score_threshold=0.0, num_proposals=7)
    model = build_model(config).eval()
    with torch.inference_mode():
        outputs = model(torch.rand(2, 3, SIZE, SIZE))
    assert len(outputs) == 2
    for out in outputs:
        n = len(out["boxes"])
        assert n == 7
        assert out["masks"].shape == (n, SIZE, SIZE) and out["masks"].dtype == torch.bool
        assert out["boxes"].shape == (n, 4) and out["boxes"].dtype == torch.float32
        assert out["scores"].shape == (n,) and out["scores"].dtype == torch.float32
        assert out["class_probs"].shape == (n, config.num_classes)
        assert out["embeddings"].shape == (n, config.embedding_dim)
        assert torch.allclose(out["class_probs"].sum(1), torch.ones(n))
        assert torch.allclose(out["embeddings"].norm(dim=1), torch.ones(n))
        assert (out["boxes"] >= 0).all() and (out["boxes"] <= SIZE).all()
        assert bool((out["scores"][:-1] >= out["scores"][1:]).all())


def test_eval_with_nothing_worth_segmenting() -> None:
    model = build_model(_small_config(score_threshold=1.0)).eval()
    with torch.inference_mode():
        (out,) = model(torch.rand(1, 3, SIZE, SIZE))
    assert out["masks"].shape == (0, SIZE, SIZE) and out["class_probs"].shape == (0, 6)


def test_overfitting_one_image_halves_the_loss() -> None:
    torch.manual_seed(0)
    model = build_model(_small_config())
    image, target = _two_discs()
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(20):
        losses = model(image[None], [target])
        optimiser.zero_grad()
        sum(losses.values()).backward()
        optimiser.step()
        history.append({name: value.item() for name, value in losses.items()})
    first, last = history[0], history[-1]
    assert sum(last.values()) < 0.5 * sum(first.values())
    for name in ("loss_objectness", "loss_mask", "loss_class"):
        assert last[name] < 0.5 * first[name], name


def test_config_yaml_round_trip_and_validation(tmp_path: Path) -> None:
    config = _small_config(roi_masking="expanded", loss_weights={"mask": 2.0})
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert ModelConfig.from_dict(yaml.safe_load(path.read_text())) == config
    assert config.loss_weight("mask") == 2.0 and config.loss_weight("box") == 1.0
    with pytest.raises(ValueError, match="roi_masking='quad'"):
        _small_config(roi_masking="quad")
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"fpn_chanels": 8})
    with pytest.raises(ValueError, match="seg_crop_size=24"):
        ModelConfig(input_size=128)
    with pytest.raises(ValueError, match="class_names"):
        _small_config(class_names=("disc", "box"))


def test_default_labels_match_the_synthetic_data() -> None:
    from vis_node.synth.generator import CATEGORIES

    assert ModelConfig().class_names == ("background", *CATEGORIES)


def test_resnet50_variant_builds_and_runs() -> None:
    torch.manual_seed(0)
    model = build_model(_small_config(backbone="resnet50", score_threshold=0.0, num_proposals=3))
    assert isinstance(model, S4Net)
    with torch.inference_mode():
        (out,) = model.eval()(torch.rand(1, 3, SIZE, SIZE))
    assert out["masks"].shape == (3, SIZE, SIZE)


def test_constructor_takes_the_given_stages() -> None:
    built = S4Net.from_config(_small_config(pretrained_backbone=False))
    branch = SegmentationBranch(32, 8, 4)
    stages = {name: getattr(built, name) for name in (
        "backbone", "fpn", "head", "seg_compress", "instance_head")}
    model = S4Net(config=built.config, seg_branch=branch, **stages)
    assert model.seg_branch is branch and model.fpn is built.fpn
    assert model.head.objectness.out_channels == 3
