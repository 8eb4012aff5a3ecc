"""S4Net segmentation branch, run on one fixed-size window per proposal.

The paper applies the branch to the whole RoIMasked stride-8 map of every proposal.
The mask is zero outside the masked region (box, or box grown by ``alpha``), so here
each proposal is cropped to a square window around that region plus a margin, and the
branch runs on all windows as one batch:

* a window of ``crop_size`` cells is taken at native resolution, shifted to lie
  inside the map; when it also contains ``RECEPTIVE_FIELD_RADIUS`` cells of margin
  around the masked region (or reaches the map border there), the logits inside the
  region equal those of the full-map branch;
* a region larger than ``crop_size - 2 * margin`` gets a larger square window that is
  resampled to ``crop_size`` cells (each cell averages ``ceil(L / crop_size)**2``
  bilinear samples): same aspect ratio, coarser grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

RECEPTIVE_FIELD_RADIUS = 9
"""Cells on each side of an output cell that influence it (3x3 max-pool: 1, residual
block: 2, max-pool: 1, dilated conv: 2, residual block: 2, output conv: 1)."""


class MaxPool3x3(nn.Module):
    """3x3 max-pool with stride 1 and padding 1 (border cells see only real neighbours).

    Computed as the maximum of shifted copies: PyTorch's CPU ``max_pool2d`` on
    contiguous NCHW tensors is about ten times slower for this case (measured 111 ms
    vs 11 ms on ``[20, 256, 24, 24]``, one thread), but its backward pass is slow:
    during training and ONNX export the standard operator runs instead; both give
    identical values.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float[K, C, h, w]`` -> ``float[K, C, h, w]``."""
        if torch.onnx.is_in_onnx_export() or x.requires_grad:
            return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        padded = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
        rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
        return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


class ResidualBlock(nn.Module):
    """Two 3x3 convs with ReLU and a skip connection (1x1 conv when channels change).

    Parameters
    ----------
    in_channels, out_channels:
        Input and output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float[K, in, h, w]`` -> ``float[K, out, h, w]``."""
        return self.relu(self.body(x) + self.skip(x))


class SegmentationBranch(nn.Module):
    """Salient-instance discriminator of S4Net (paper Fig. 2c).

    3x3 max-pool (stride 1), residual block (``channels``), 3x3 max-pool, 3x3 conv with
    dilation 2 (``dilated_channels``), residual block (``dilated_channels``), 3x3 conv to
    two logits (background, salient). Every layer keeps the spatial size.

    Parameters
    ----------
    in_channels:
        Channels of the RoIMasked input.
    channels:
        Channels of the first residual block (paper: 128).
    dilated_channels:
        Channels of the dilated conv and the second residual block (paper: 64).
    """

    def __init__(self, in_channels: int, channels: int = 128, dilated_channels: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            MaxPool3x3(),
            ResidualBlock(in_channels, channels),
            MaxPool3x3(),
            nn.Conv2d(channels, dilated_channels, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            ResidualBlock(dilated_channels, dilated_channels),
            nn.Conv2d(dilated_channels, 2, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mask logits.

        Parameters
        ----------
        x:
            ``float[K, in_channels, h, w]`` RoIMasked features.

        Returns
        -------
        torch.Tensor
            ``float[K, 2, h, w]`` logits; channel 1 = salient instance.
        """
        return self.layers(x)


def crop_windows(
    regions: torch.Tensor,
    feature_size: tuple[int, int],
    stride: int,
    *,
    crop_size: int,
    margin: int,
) -> torch.Tensor:
    """Square crop window per proposal, in cells of the feature map.

    Parameters
    ----------
    regions:
        ``float[N, 4]`` x1y1x2y2 in input pixels outside of which the RoIMasking mask
        is zero (see :func:`vis_node.perception.roi_masking.masked_region`).
    feature_size:
        ``(h, w)`` of the map, both at least ``crop_size``.
    stride:
        Input pixels per cell.
    crop_size:
        Smallest window side in cells (the branch input size).
    margin:
        Cells added around the region's cells before sizing the window.

    Returns
    -------
    torch.Tensor
        ``float[N, 4]`` windows x1y1x2y2 in cells (integer-valued): side
        ``L = min(max(crop_size, extent), min(h, w))`` where ``extent`` is the larger
        side of the region's cells plus margins, centred on the region and shifted to
        lie inside the map.
    """
    height, width = feature_size
    scaled = regions / stride
    low = torch.floor(scaled[:, :2]).clamp(min=0) - margin
    high = torch.ceil(scaled[:, 2:]).clamp(min=1) + margin
    limits = torch.tensor([width, height], dtype=regions.dtype, device=regions.device)
    low = torch.maximum(low, torch.zeros_like(low))
    high = torch.minimum(high, limits)
    extent = (high - low).amax(dim=1, keepdim=True)
    side = extent.clamp(min=crop_size, max=min(height, width))
    origin = torch.floor((low + high - side) / 2.0 + 0.5)
    origin = torch.minimum(torch.maximum(origin, torch.zeros_like(origin)), limits - side)
    return torch.cat([origin, origin + side], dim=1)


def crop_to_windows(
    maps: torch.Tensor, map_index: torch.Tensor, windows: torch.Tensor, crop_size: int
) -> torch.Tensor:
    """Sample each window of a map onto a ``crop_size`` grid.

    A window of exactly ``crop_size`` cells returns the cells unchanged; a larger one
    averages ``ceil(L / crop_size)**2`` bilinear samples per output cell.

    Parameters
    ----------
    maps:
        ``float[M, C, h, w]``.
    map_index:
        ``int64[N]``: which map each window crops.
    windows:
        ``float[N, 4]`` x1y1x2y2 in cells, from :func:`crop_windows`.
    crop_size:
        Output side.

    Returns
    -------
    torch.Tensor
        ``float[N, C, crop_size, crop_size]``.
    """
    rois = torch.cat([map_index.to(windows.dtype)[:, None], windows], dim=1)
    return roi_align(
        maps, rois, output_size=crop_size, spatial_scale=1.0, sampling_ratio=0, aligned=True
    )
