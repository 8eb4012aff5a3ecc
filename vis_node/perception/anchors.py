"""Anchor boxes: one size and several aspect ratios per pyramid level."""

from __future__ import annotations

import math

import torch


def cell_anchors(size: float, ratios: tuple[float, ...]) -> torch.Tensor:
    """Anchors of one cell centred on the origin.

    Parameters
    ----------
    size:
        Anchor side in input pixels; every anchor has area ``size**2``.
    ratios:
        Aspect ratios ``height / width``.

    Returns
    -------
    torch.Tensor
        ``float32[len(ratios), 4]`` boxes x1y1x2y2 with width ``size / sqrt(r)`` and
        height ``size * sqrt(r)``.
    """
    rows = []
    for ratio in ratios:
        half_w = size / math.sqrt(ratio) / 2.0
        half_h = size * math.sqrt(ratio) / 2.0
        rows.append([-half_w, -half_h, half_w, half_h])
    return torch.tensor(rows, dtype=torch.float32)


def grid_anchors(
    feature_size: tuple[int, int],
    stride: int,
    size: float,
    ratios: tuple[float, ...],
    device: torch.device | None = None,
) -> torch.Tensor:
    """Anchors of one pyramid level.

    Parameters
    ----------
    feature_size:
        ``(h, w)`` of the level's feature map.
    stride:
        Input pixels per feature cell; cell ``(i, j)`` is centred on pixel
        ``((j + 0.5) * stride, (i + 0.5) * stride)``.
    size, ratios:
        See :func:`cell_anchors`.
    device:
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``float32[h * w * len(ratios), 4]`` boxes x1y1x2y2 in input pixels, ordered by
        row, then column, then ratio (the order of the head outputs).
    """
    height, width = feature_size
    base = cell_anchors(size, ratios).to(device)
    cx = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) * stride
    cy = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) * stride
    grid_y, grid_x = torch.meshgrid(cy, cx, indexing="ij")
    shifts = torch.stack([grid_x, grid_y, grid_x, grid_y], dim=-1).reshape(-1, 1, 4)
    return (shifts + base.reshape(1, -1, 4)).reshape(-1, 4)


def pyramid_anchors(
    feature_sizes: list[tuple[int, int]],
    strides: tuple[int, ...],
    sizes: tuple[float, ...],
    ratios: tuple[float, ...],
    device: torch.device | None = None,
) -> list[torch.Tensor]:
    """Anchors of every level (see :func:`grid_anchors`).

    Returns
    -------
    list of torch.Tensor
        One ``float32[h_k * w_k * len(ratios), 4]`` tensor per level.
    """
    if not len(feature_sizes) == len(strides) == len(sizes):
        raise ValueError(
            f"got {len(feature_sizes)} feature maps, {len(strides)} strides and "
            f"{len(sizes)} anchor sizes: give one of each per level"
        )
    return [
        grid_anchors(fs, stride, size, ratios, device)
        for fs, stride, size in zip(feature_sizes, strides, sizes)
    ]
