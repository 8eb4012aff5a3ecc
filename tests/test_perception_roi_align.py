"""RoIAlign by matrix products against torchvision's RoIAlign, in eager and in ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import roi_align as torchvision_roi_align

from vis_node.perception.roi_align import roi_align, roi_grid, weighted_pool
from vis_node.perception.salient_config import SalientConfig
from vis_node.perception.salient_model import MaskHead


def _boxes(count: int, height: int, width: int, stride: int, seed: int) -> torch.Tensor:
    """``float[K, 5]`` boxes of every kind: inside, across and beyond the map's edges,
    thinner than a cell, and a degenerate one."""
    rng = np.random.default_rng(seed)
    span = np.array([width, height], np.float32) * stride
    corner = rng.uniform(-0.3, 1.2, (count, 2)) * span
    size = rng.uniform(0.01, 0.9, (count, 2)) * span
    size[0] = 0.3 * stride  # under a cell
    size[1] = 0.0  # a point
    corner[2] = span + 3 * stride  # wholly outside
    boxes = np.concatenate([np.zeros((count, 1)), corner, corner + size], axis=1)
    return torch.from_numpy(boxes.astype(np.float32))


@pytest.mark.parametrize(
    ("channels", "height", "width", "stride", "size"),
    [(16, 32, 52, 8, 28), (8, 16, 26, 16, 28), (3, 40, 64, 1, 14), (4, 1, 7, 8, 5)],
)
def test_roi_align_matches_torchvision(
    channels: int, height: int, width: int, stride: int, size: int
) -> None:
    torch.manual_seed(0)
    features = torch.randn(1, channels, height, width)
    rois = _boxes(12, height, width, stride, seed=height)
    grid = roi_grid(rois, size, 1.0 / stride, 2, features)
    expected = torchvision_roi_align(features, rois, size, 1.0 / stride, 2, True)
    torch.testing.assert_close(roi_align(features, grid), expected, atol=1e-4, rtol=1e-4)
    assert float(expected[2].abs().max()) == 0.0  # the box outside the map reads nothing


def test_weighted_pool_is_the_weighted_sum_of_the_crops() -> None:
    torch.manual_seed(1)
    features = torch.randn(1, 6, 20, 30)
    rois = _boxes(5, 20, 30, 8, seed=3)
    grid = roi_grid(rois, 7, 1.0 / 8, 2, features)
    crops = torchvision_roi_align(features, rois, 7, 1.0 / 8, 2, True)
    per_box = torch.rand(5, 7, 7)
    shared = torch.rand(7, 7)
    torch.testing.assert_close(
        weighted_pool(features, grid, per_box), (crops * per_box[:, None]).sum((2, 3)),
        atol=1e-4, rtol=1e-4,
    )
    torch.testing.assert_close(
        weighted_pool(features, grid, shared), (crops * shared).sum((2, 3)),
        atol=1e-4, rtol=1e-4,
    )


class _Align(nn.Module):
    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_align(features, roi_grid(rois, 7, 1.0 / 8, 2, features))


def test_onnx_export_keeps_the_map_size_dynamic(tmp_path) -> None:
    """One graph serves every letterbox shape, as the heads' graphs must."""
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "align.onnx"
    torch.onnx.export(
        _Align(), (torch.randn(1, 4, 16, 24), _boxes(3, 16, 24, 8, seed=0)), str(path),
        input_names=["features", "rois"], output_names=["crops"], opset_version=17,
        dynamic_axes={"features": {2: "h", 3: "w"}, "rois": {0: "k"}, "crops": {0: "k"}},
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for height, width in ((16, 24), (32, 52), (9, 40)):
        features = torch.randn(1, 4, height, width)
        rois = _boxes(6, height, width, 8, seed=width)
        (crops,) = session.run(None, {"features": features.numpy(), "rois": rois.numpy()})
        expected = torchvision_roi_align(features, rois, 7, 1.0 / 8, 2, True)
        np.testing.assert_allclose(crops, expected.numpy(), atol=1e-4)


def test_the_mask_head_takes_one_image() -> None:
    head = MaskHead(8, SalientConfig())
    rois = torch.tensor([[0.0, 8.0, 8.0, 64.0, 64.0]])
    with pytest.raises(ValueError, match="one image"):
        head(torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8), torch.randn(2, 3, 128, 128), rois)
