"""Per-proposal semantic class and appearance embedding from masked-average-pooled features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_average_pool(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted spatial mean of each crop.

    Parameters
    ----------
    features:
        ``float[N, C, h, w]``.
    weights:
        ``float[N, h, w]`` non-negative pixel weights (e.g. mask probability inside the box).

    Returns
    -------
    torch.Tensor
        ``float[N, C]``; a crop whose weights sum to zero pools to zeros.
    """
    total = weights.sum(dim=(1, 2)).clamp(min=1e-6)
    return torch.einsum("nchw,nhw->nc", features, weights) / total[:, None]


class InstanceHead(nn.Module):
    """Class logits and an L2-normalised embedding for each proposal.

    The crop features are pooled twice, once weighted by the predicted mask inside the
    box and once uniformly over the box; the concatenation goes through a two-layer MLP
    with two linear outputs.

    Parameters
    ----------
    in_channels:
        Channels of the crop features.
    num_classes:
        Class-head outputs (background included).
    embedding_dim:
        Embedding length.
    hidden_dim:
        Width of the hidden layer.
    """

    def __init__(
        self, in_channels: int, num_classes: int, embedding_dim: int, hidden_dim: int
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * in_channels, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(hidden_dim, num_classes)
        self.embedder = nn.Linear(hidden_dim, embedding_dim)

    def forward(
        self, features: torch.Tensor, mask_probs: torch.Tensor, in_box: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Classify and embed proposals.

        Parameters
        ----------
        features:
            ``float[N, C, h, w]`` crop features (not RoIMasked).
        mask_probs:
            ``float[N, h, w]`` salient-instance probability on the same grid.
        in_box:
            ``float[N, h, w]`` 1 on the cells of the proposal box, 0 elsewhere.

        Returns
        -------
        class_logits:
            ``float[N, num_classes]``.
        embeddings:
            ``float[N, embedding_dim]`` with unit L2 norm.
        """
        pooled = torch.cat(
            [
                masked_average_pool(features, mask_probs * in_box),
                masked_average_pool(features, in_box),
            ],
            dim=1,
        )
        hidden = self.mlp(pooled)
        return self.classifier(hidden), F.normalize(self.embedder(hidden), dim=1)
