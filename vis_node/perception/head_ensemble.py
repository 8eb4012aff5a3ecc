"""Heads of one kind trained apart, run side by side, their outputs averaged.

The salient model's heads train on few sequences, so the seed of one training moves
the held-out score by about 0.01 J&F (``models/real/MODEL_CARD.md``). Averaging the
logits of heads trained with different seeds removes part of that spread at the cost of
running each head once per member (the heads are small next to the detector).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class HeadEnsemble(nn.Module):
    """Members with the same inputs and outputs; each output averaged over the members.

    Parameters
    ----------
    members:
        Modules of one kind (e.g. every :class:`~vis_node.perception.salient_model.MaskHead`
        of a model), at least one.
    unit_outputs:
        Indices of tuple outputs that hold unit-length rows (embeddings): their mean is
        normalised back to unit length along dimension 1.
    """

    def __init__(self, members: Sequence[nn.Module], unit_outputs: tuple[int, ...] = ()) -> None:
        super().__init__()
        if not members:
            raise ValueError("a head ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.unit_outputs = unit_outputs

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Every member on ``inputs``; a tensor output, or each tensor of a tuple output,
        averaged over the members (same shapes as one member's outputs)."""
        outputs = [member(*inputs) for member in self.members]
        if isinstance(outputs[0], torch.Tensor):
            return torch.stack(outputs).mean(dim=0)
        averaged = [torch.stack(parts).mean(dim=0) for parts in zip(*outputs)]
        for index in self.unit_outputs:
            averaged[index] = F.normalize(averaged[index], dim=1)
        return tuple(averaged)
