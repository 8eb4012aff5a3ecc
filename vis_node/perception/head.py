"""Detection head shared by all pyramid levels (RPN-like objectness and box deltas)."""

from __future__ import annotations

import torch
from torch import nn


class DetectionHead(nn.Module):
    """3x3 conv + ReLU, then sibling 3x3 convs for objectness and box deltas.

    Parameters
    ----------
    in_channels:
        Channels of each pyramid level.
    num_anchors:
        Anchors per cell (one per aspect ratio).
    hidden_channels:
        Channels of the shared 3x3 conv (paper: 512).

    Notes
    -----
    Objectness is one logit per anchor scored with a sigmoid, equivalent to the
    paper's two-way softmax (the softmax of ``(0, z)`` is the sigmoid of ``z``).
    """

    def __init__(self, in_channels: int, num_anchors: int, hidden_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.objectness = nn.Conv2d(hidden_channels, num_anchors, 3, padding=1)
        self.box_deltas = nn.Conv2d(hidden_channels, 4 * num_anchors, 3, padding=1)
        self.num_anchors = num_anchors
        for layer in (self.conv[0], self.objectness, self.box_deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and deltas of every anchor of every level.

        Parameters
        ----------
        features:
            ``float[B, C, h_k, w_k]`` per level.

        Returns
        -------
        objectness:
            ``float[B, A]`` logits, levels concatenated; within a level ordered by row,
            column, anchor (the order of :func:`vis_node.perception.anchors.grid_anchors`).
        box_deltas:
            ``float[B, A, 4]`` encoded ``(dx, dy, dw, dh)`` deltas in the same order.
        """
        scores, deltas = [], []
        for feature in features:
            hidden = self.conv(feature)
            batch = feature.shape[0]
            scores.append(self.objectness(hidden).permute(0, 2, 3, 1).reshape(batch, -1))
            deltas.append(self.box_deltas(hidden).permute(0, 2, 3, 1).reshape(batch, -1, 4))
        return torch.cat(scores, dim=1), torch.cat(deltas, dim=1)
