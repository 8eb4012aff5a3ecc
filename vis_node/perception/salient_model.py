"""S4Net's instance-level parts on the frozen, COCO-pretrained NanoDet-g detector.

The detector (:class:`~vis_node.perception.nanodet.NanoDetG`) proposes class-scored
boxes and gives its PAN features P3 (stride 8) and P4 (stride 16). For each candidate
box

* :class:`SaliencyHead` scores how **salient** it is from P3 / P4 features pooled
  inside the box and on the ring around it, and its geometry in the frame
  (:func:`candidate_geometry`); it is cheap and runs on every candidate;
* :class:`MaskHead` runs on the salient ones: it crops a window (the box grown by
  ``context_ratio`` on every side) from P3 and P4 with RoIAlign, multiplies it by
  S4Net's **ternary RoIMasking** grid (+1 inside the box, -1 on the ring around it, so
  the branch sees the box and, sign-flipped, its context), runs S4Net's **segmentation
  branch** (max-pool, residual block, max-pool, dilated conv, residual block),
  upsamples twice and fuses it with a small stem over the image itself sampled in the
  same window, which lets the mask follow the object's outline at twice the feature
  grid (``mask_size`` cells per window side); it also pools an **appearance
  embedding** from P3 under its own predicted mask.

The class of an instance is the detector's (:func:`class_distribution`), with an extra
class ``object`` for salient objects the detector does not know.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from vis_node.perception.head_ensemble import HeadEnsemble
from vis_node.perception.mask_refiner import MaskRefiner
from vis_node.perception.nanodet import NanoDetG
from vis_node.perception.roi_align import RoiGrid, roi_grid, weighted_pool
from vis_node.perception.roi_align import roi_align as align_on_grid
from vis_node.perception.roi_masking import expand_boxes
from vis_node.perception.salient_config import GEOMETRY_FEATURES, SalientConfig
from vis_node.perception.seg_branch import MaxPool3x3, ResidualBlock

P3_STRIDE = 8
P4_STRIDE = 16
SAMPLING = 2
"""RoIAlign samples per bin along each axis (``sampling_ratio``)."""


def ternary_grid(size: int, context_ratio: float) -> torch.Tensor:
    """S4Net's ternary RoIMasking values on a window's ``size x size`` grid.

    A window is its box grown by ``context_ratio`` of the box size on every side, so the
    box covers the same central square of every window.

    Returns
    -------
    torch.Tensor
        ``float[1, 1, size, size]``: +1 on cells whose centre lies in the box, -1 on the
        ring around it.
    """
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    low = context_ratio / (1.0 + 2.0 * context_ratio)
    inside_1d = (centres >= low) & (centres <= 1.0 - low)
    inside = inside_1d[:, None] & inside_1d[None, :]
    return torch.where(inside, 1.0, -1.0)[None, None]


def candidate_geometry(
    boxes: torch.Tensor, scores: torch.Tensor, valid_hw: tuple[float, float]
) -> torch.Tensor:
    """Scalars describing where each candidate sits among the others of its frame.

    Parameters
    ----------
    boxes:
        ``float[K, 4]`` x1y1x2y2 input pixels, candidates of one frame.
    scores:
        ``float[K]`` detector class probabilities.
    valid_hw:
        ``(h, w)`` of the image inside the letterboxed input, in input pixels.

    Returns
    -------
    torch.Tensor
        ``float[K, GEOMETRY_FEATURES]``: centre x and y, width and height (fractions of
        the image), square root of the area fraction, distance of the centre from the
        image centre, detector score, area relative to the largest candidate, score
        relative to the best candidate.
    """
    height, width = float(valid_hw[0]), float(valid_hw[1])
    if boxes.shape[0] == 0:
        return boxes.new_zeros((0, GEOMETRY_FEATURES))
    cx = (boxes[:, 0] + boxes[:, 2]) / (2.0 * width)
    cy = (boxes[:, 1] + boxes[:, 3]) / (2.0 * height)
    bw = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) / width
    bh = (boxes[:, 3] - boxes[:, 1]).clamp(min=0) / height
    area = bw * bh
    centre_distance = torch.sqrt((cx - 0.5) ** 2 + (cy - 0.5) ** 2)
    features = [
        cx,
        cy,
        bw,
        bh,
        area.sqrt(),
        centre_distance,
        scores,
        area / area.max().clamp(min=1e-6),
        scores / scores.max().clamp(min=1e-6),
    ]
    return torch.stack(features, dim=1)


def _window_rois(rois: torch.Tensor, context_ratio: float) -> torch.Tensor:
    """``float[K, 5]`` (index, box) rows -> the same rows with the boxes' mask windows."""
    return torch.cat([rois[:, :1], expand_boxes(rois[:, 1:], context_ratio)], dim=1)


def _crop(features: torch.Tensor, rois: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """RoIAlign of ``float[B, C, h, w]`` (stride in input px) -> ``float[K, C, size, size]``."""
    return roi_align(
        features, rois, size, spatial_scale=1.0 / stride, sampling_ratio=SAMPLING, aligned=True
    )


def _grid(features: torch.Tensor, windows: torch.Tensor, size: int, stride: int) -> RoiGrid:
    """Separable RoIAlign weights (:mod:`vis_node.perception.roi_align`) of ``windows``
    over one image's ``float[1, C, h, w]`` map, as :func:`_crop` samples them."""
    if features.shape[0] != 1:
        raise ValueError(f"the heads take the features of one image, got {features.shape[0]}")
    return roi_grid(windows, size, 1.0 / stride, SAMPLING, features)


class SaliencyHead(nn.Module):
    """Which candidates are salient: box and ring features of P3 / P4 plus geometry.

    Cheap enough to run on every candidate; the mask head then runs only on the
    salient ones.

    Parameters
    ----------
    feature_channels:
        Channels of P3 and P4.
    config:
        Model settings.
    """

    def __init__(self, feature_channels: int, config: SalientConfig) -> None:
        super().__init__()
        self.grid = config.saliency_grid
        self.context_ratio = config.context_ratio
        ternary = ternary_grid(config.saliency_grid, config.context_ratio)
        inside, ring = (ternary > 0).float(), (ternary < 0).float()
        # weights of the means over the box and over the ring around it
        self.register_buffer("inside_mean", inside / inside.sum(), persistent=False)
        self.register_buffer("ring_mean", ring / ring.sum(), persistent=False)
        self.mlp = nn.Sequential(
            nn.Linear(4 * feature_channels + GEOMETRY_FEATURES, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 1),
        )

    def forward(
        self, p3: torch.Tensor, p4: torch.Tensor, rois: torch.Tensor, geometry: torch.Tensor
    ) -> torch.Tensor:
        """Saliency logits of candidate boxes.

        Parameters
        ----------
        p3, p4:
            ``float[1, C, H/8, W/8]`` and ``float[1, C, H/16, W/16]`` detector features
            of one image.
        rois:
            ``float[K, 5]`` rows ``0, x1, y1, x2, y2`` in input pixels.
        geometry:
            ``float[K, GEOMETRY_FEATURES]`` from :func:`candidate_geometry`.

        Returns
        -------
        torch.Tensor
            ``float[K]`` logits.
        """
        windows = _window_rois(rois, self.context_ratio)
        pooled = []
        for features, stride in ((p3, P3_STRIDE), (p4, P4_STRIDE)):
            grid = _grid(features, windows, self.grid, stride)
            pooled.append(weighted_pool(features, grid, self.inside_mean))
            pooled.append(weighted_pool(features, grid, self.ring_mean))
        return self.mlp(torch.cat([*pooled, geometry], dim=1))[:, 0]


class MaskHead(nn.Module):
    """S4Net's ternary RoIMasking and segmentation branch, guided by the image.

    Parameters
    ----------
    feature_channels:
        Channels of P3 and P4.
    config:
        Model settings (window sizes, channels, context ratio).
    """

    def __init__(self, feature_channels: int, config: SalientConfig) -> None:
        super().__init__()
        channels = config.head_channels
        dilated = 32
        fused = 16
        self.roi_size = config.roi_size
        self.mask_size = config.mask_size
        self.context_ratio = config.context_ratio
        self.register_buffer(
            "ternary", ternary_grid(config.roi_size, config.context_ratio), persistent=False
        )
        self.reduce = nn.Sequential(nn.Conv2d(2 * feature_channels, channels, 1), nn.ReLU())
        self.branch = nn.Sequential(
            MaxPool3x3(),
            ResidualBlock(channels, channels),
            MaxPool3x3(),
            nn.Conv2d(channels, dilated, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            ResidualBlock(dilated, dilated),
        )
        guide = config.guide_channels
        self.guide = nn.Sequential(
            nn.Conv2d(3, guide, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(guide, guide, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(dilated + guide, fused, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(fused, fused, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(fused, 1, 1),
        )

    def forward(
        self, p3: torch.Tensor, p4: torch.Tensor, images: torch.Tensor, rois: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and embeddings of (salient) boxes.

        Parameters
        ----------
        p3, p4:
            ``float[1, C, H/8, W/8]`` and ``float[1, C, H/16, W/16]`` detector features
            of one image.
        images:
            ``float[1, 3, H, W]`` the normalised network input.
        rois:
            ``float[K, 5]`` rows ``0, x1, y1, x2, y2`` in input pixels.

        Returns
        -------
        mask_logits:
            ``float[K, mask_size, mask_size]`` over each box's window (the box grown by
            ``context_ratio`` on every side).
        embeddings:
            ``float[K, C]`` L2-normalised P3 features averaged under the predicted mask.
        """
        windows = _window_rois(rois, self.context_ratio)
        grid3 = _grid(p3, windows, self.roi_size, P3_STRIDE)
        grid4 = _grid(p4, windows, self.roi_size, P4_STRIDE)
        pixels = _crop(images, windows, self.mask_size, 1)
        branch = self.branch(self._reduced_crops(p3, p4, grid3, grid4) * self.ternary)
        upsampled = F.interpolate(branch, scale_factor=2.0, mode="bilinear", align_corners=False)
        mask_logits = self.fuse(torch.cat([upsampled, self.guide(pixels)], dim=1))[:, 0]
        weights = F.avg_pool2d(torch.sigmoid(mask_logits)[:, None], 2)[:, 0]
        embedding = weighted_pool(p3, grid3, weights) / weights.sum(dim=(1, 2))[:, None].clamp(
            min=1e-6
        )
        return mask_logits, F.normalize(embedding, dim=1)

    def _reduced_crops(
        self, p3: torch.Tensor, p4: torch.Tensor, grid3: RoiGrid, grid4: RoiGrid
    ) -> torch.Tensor:
        """``self.reduce`` of the windows' P3 and P4 crops, ``float[K, head_channels, R,
        R]``. Its 1 x 1 convolution is linear, as RoIAlign is, so it runs on the whole
        maps first and only ``head_channels`` channels are aligned instead of 2 x 128."""
        conv, activation = self.reduce[0], self.reduce[1]
        split = p3.shape[1]
        crops = align_on_grid(F.conv2d(p3, conv.weight[:, :split]), grid3) + align_on_grid(
            F.conv2d(p4, conv.weight[:, split:]), grid4
        )
        return activation(crops + conv.bias[None, :, None, None])


class SalientNanoDet(nn.Module):
    """The frozen detector plus the trainable :class:`SaliencyHead` and :class:`MaskHead`
    (a :class:`~vis_node.perception.head_ensemble.HeadEnsemble` of each when
    ``config.head_ensemble`` is above 1), and the
    :class:`~vis_node.perception.mask_refiner.MaskRefiner` when ``config.refiner_size``
    is set.

    Parameters
    ----------
    config:
        Model settings.
    detector:
        The NanoDet-g network (its weights are frozen here).
    pretrained_refiner:
        Start the refiner's stem from ImageNet weights (training; a checkpoint holds them).
    """

    def __init__(
        self, config: SalientConfig, detector: NanoDetG, *, pretrained_refiner: bool = False
    ) -> None:
        super().__init__()
        self.config = config
        self.detector = detector
        for parameter in self.detector.parameters():
            parameter.requires_grad_(False)
        self.saliency_head = SaliencyHead(detector.feature_channels, config)
        self.mask_head = MaskHead(detector.feature_channels, config)
        self.refiner = (
            MaskRefiner(pretrained=pretrained_refiner, deepest_stride=config.refiner_stride)
            if config.refiner_size else None
        )
        if config.head_ensemble > 1:
            # the further sets are made after the refiner, so the first set and the
            # refiner start from the same draws whatever the ensemble's size
            channels = detector.feature_channels
            self.saliency_head = HeadEnsemble([
                self.saliency_head,
                *(SaliencyHead(channels, config) for _ in range(config.head_ensemble - 1)),
            ])
            self.mask_head = HeadEnsemble([
                self.mask_head,
                *(MaskHead(channels, config) for _ in range(config.head_ensemble - 1)),
            ], unit_outputs=(1,))

    def head_sets(self) -> list[tuple[SaliencyHead, MaskHead]]:
        """``(saliency head, mask head)`` of each set (one unless ``config.head_ensemble``
        is above 1), in training order."""
        if isinstance(self.saliency_head, HeadEnsemble):
            return list(zip(self.saliency_head.members, self.mask_head.members))
        return [(self.saliency_head, self.mask_head)]

    def train(self, mode: bool = True) -> SalientNanoDet:
        """Train the heads; the frozen detector always stays in eval mode."""
        super().train(mode)
        self.detector.eval()
        if self.refiner is not None:
            self.refiner.train(mode)
        return self


def class_distribution(
    detector_probs: torch.Tensor, min_probability: float, sharpness: float
) -> torch.Tensor:
    """Per-instance distribution over :data:`SALIENT_CLASS_NAMES`.

    NanoDet's class probabilities are independent sigmoids: a dog's box also scores
    "cat", "sheep" and "bear". They are sharpened into one distribution, a softmax of
    ``sharpness * log(p)`` (``p ** sharpness``, normalised), so the online unifier
    averages a clear vote per frame rather than a flat spread.

    Parameters
    ----------
    detector_probs:
        ``float[K, 80]`` NanoDet's sigmoid class probabilities of each instance's box.
    min_probability:
        Detector probability at which the best COCO class and ``object`` weigh the same.
    sharpness:
        Exponent of the sharpening (1 keeps the raw ratios).

    Returns
    -------
    torch.Tensor
        ``float[K, 82]`` rows summing to 1: column 0 (background) is 0, column 1
        (``object``) weighs as a COCO class of probability ``min_probability``, so a box
        whose best class stays below it is labelled ``object``.
    """
    count = detector_probs.shape[0]
    unknown = torch.full((count, 1), float(min_probability), dtype=detector_probs.dtype)
    weights = torch.cat([torch.zeros_like(unknown), unknown, detector_probs], dim=1) ** sharpness
    return weights / weights.sum(dim=1, keepdim=True)
