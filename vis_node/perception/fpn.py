"""Feature pyramid P3..P6 on top of the backbone maps C3..C5 (no conv2 lateral)."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork


class LastLevelAvgPool(ExtraFPNBlock):
    """Adds P6 as the 2x2, stride-2 average pool of P5 (as in the released S4Net code)."""

    def forward(
        self, results: list[torch.Tensor], x: list[torch.Tensor], names: list[str]
    ) -> tuple[list[torch.Tensor], list[str]]:
        """Append ``avg_pool2d(results[-1], 2)`` named ``"p6"`` (see ``ExtraFPNBlock``)."""
        results.append(F.avg_pool2d(results[-1], kernel_size=2, stride=2, ceil_mode=True))
        names.append("p6")
        return results, names


class S4NetFPN(nn.Module):
    """FPN with levels P3, P4, P5 (strides 8, 16, 32) and pooled P6 (stride 64).

    Parameters
    ----------
    in_channels:
        Channels of C3, C4, C5.
    out_channels:
        Channels of every output level.
    """

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.fpn = FeaturePyramidNetwork(
            in_channels_list=list(in_channels),
            out_channels=out_channels,
            extra_blocks=LastLevelAvgPool(),
        )
        self.out_channels = out_channels

    def forward(self, features: OrderedDict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        """Pyramid of ``features`` = ``{"c3", "c4", "c5"}`` maps.

        Returns
        -------
        collections.OrderedDict
            ``"p3"``, ``"p4"``, ``"p5"``, ``"p6"``: ``float[B, out_channels, h_k, w_k]``.
        """
        renamed = OrderedDict((name.replace("c", "p"), value) for name, value in features.items())
        return self.fpn(renamed)
