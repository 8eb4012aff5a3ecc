"""Configuration of the salient-instance model on NanoDet-g (one dataclass, YAML-friendly).

The model (:mod:`vis_node.perception.salient_model`) keeps the COCO-pretrained NanoDet-g
detector frozen and adds S4Net's instance-level parts on its PAN features: ternary
RoIMasking and a segmentation branch (guided by the image itself at a finer grid), a
salient-instance head that decides which detections are the salient ones, and an
appearance embedding for re-identification.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vis_node.perception.mask_refiner import REFINER_STRIDES
from vis_node.perception.nanodet import COCO_CLASSES, NANODET_INPUT_SIZE
from vis_node.structures.label_map import FALLBACK_CLASS

MODEL_TYPE = "salient-nanodet"
"""``type`` of this model in shipped checkpoints and ONNX export manifests."""

SALIENT_CLASS_NAMES: tuple[str, ...] = ("background", FALLBACK_CLASS, *COCO_CLASSES)
"""Class id -> name: 0 background, 1 ``object`` (a salient object whose class the
detector does not know), 2.. the 80 COCO classes in NanoDet's order."""

GEOMETRY_FEATURES = 9
"""Per-candidate scalars fed to the saliency head next to its pooled features (see
:func:`vis_node.perception.salient_model.candidate_geometry`)."""


@dataclass
class SalientConfig:
    """Every setting of :class:`vis_node.perception.salient_model.SalientNanoDet`.

    Boxes are ``x1, y1, x2, y2`` in network-input pixels; the input is the frame
    letterboxed so that its long side is ``input_size`` (aspect ratio kept, padded up to
    a multiple of 32 at the bottom / right).

    Attributes
    ----------
    input_size:
        Long side of the network input in pixels (NanoDet-g was trained at 416).
    candidate_threshold:
        Lowest detector class probability of a candidate box.
    candidate_nms_iou:
        IoU above which class-aware NMS drops the weaker of two candidate boxes.
    max_candidates:
        Candidates (strongest first) passed to the instance heads per frame.
    context_ratio:
        Width of the ternary RoIMasking ring around a box, as a fraction of the box's
        width / height on each side (S4Net: the box grown by this is the mask window).
    saliency_grid:
        Side in cells of the coarse window crop the saliency head pools (box and ring).
    roi_size:
        Side in cells of the feature crop of each window in the mask head.
    mask_size:
        Side in cells of the predicted mask of each window (the image guides the
        segmentation at this grid; ``mask_size = 2 * roi_size``).
    head_channels:
        Channels of the mask head's segmentation branch (first stage).
    guide_channels:
        Channels of the image-guidance stem.
    head_ensemble:
        Sets of saliency and mask heads, each trained apart with its own seed (the
        training config's ``seed`` plus the set's index); their logits are averaged
        (:class:`vis_node.perception.salient_model.HeadEnsemble`). 1: one set, as in
        checkpoints without this setting.
    saliency_threshold:
        Saliency probability from which a candidate is reported as a salient instance.
    fallback_score:
        When no candidate reaches ``saliency_threshold``, the most confident detection
        is still reported if its class probability is at least this (a frame
        with a confidently detected object is never left empty because the saliency
        head, trained on large foreground objects, under-rates a small or distant
        one); 1.0 disables the fallback.
    fallback_box_mask:
        A fallback detection's coarse mask is its box, shaped by the refiner, instead of
        the mask head's: the mask head learnt to leave the detections the saliency head
        rejects empty, so it shares the rejection the fallback overrides (on a held-out
        car in smoke it painted 0-250 pixels of a 2400-25000 pixel car).
    mask_threshold:
        Mask probability from which a pixel belongs to an instance (coarse and refined).
    refiner_size:
        Crop side (px, a multiple of 8) of the full-resolution mask refiner
        (:mod:`vis_node.perception.mask_refiner`); 0: no refiner, masks stay the mask
        head's.
    refiner_margin:
        The refiner's crop is an instance mask's tight box grown by this fraction of its
        size on every side.
    refiner_flip:
        Test-time mirroring: the refiner also sees each crop mirrored left-right and
        its two probability maps are averaged (a second refiner pass per instance).
    refiner_flip_max_instances:
        The mirrored pass runs only on frames with at most this many instances to
        refine (0: on every frame). A frame's refiner cost is one crop per instance
        plus one per mirrored instance, so 1 keeps a frame with two or three instances
        near the cost of a single mirrored instance.
    refiner_stride:
        Deepest stride of the refiner's frozen ImageNet stem: 8 (MobileNetV2 features
        0-6) or 16 (also features 7-13, whose decoder stage sees the whole crop);
        ``refiner_size`` must be a multiple of it.
    duplicate_overlap:
        A salient instance whose mask lies by at least this fraction inside the masks
        of stronger instances is a part of them and is dropped.
    max_instances:
        Salient instances reported per frame at most.
    min_class_probability:
        Below this detector probability, the class column ``object`` outweighs the
        COCO class (see :func:`vis_node.perception.salient_model.class_distribution`).
    class_sharpness:
        Exponent that turns the detector's independent class probabilities into one
        distribution (:func:`vis_node.perception.salient_model.class_distribution`).
    class_names:
        Class id -> name (:data:`SALIENT_CLASS_NAMES`).
    """

    input_size: int = NANODET_INPUT_SIZE
    candidate_threshold: float = 0.08
    candidate_nms_iou: float = 0.6
    max_candidates: int = 16
    context_ratio: float = 0.25
    saliency_grid: int = 9
    roi_size: int = 28
    mask_size: int = 56
    head_channels: int = 32
    guide_channels: int = 8
    head_ensemble: int = 1
    saliency_threshold: float = 0.5
    fallback_score: float = 0.3
    fallback_box_mask: bool = True
    mask_threshold: float = 0.5
    refiner_size: int = 0
    refiner_margin: float = 0.15
    refiner_flip: bool = True
    refiner_flip_max_instances: int = 0
    refiner_stride: int = 8
    duplicate_overlap: float = 0.7
    max_instances: int = 10
    min_class_probability: float = 0.3
    class_sharpness: float = 4.0
    class_names: tuple[str, ...] = SALIENT_CLASS_NAMES

    def __post_init__(self) -> None:
        self.class_names = tuple(str(c) for c in self.class_names)
        if self.input_size % 32 or self.input_size < 64:
            raise ValueError(f"input_size={self.input_size}: a multiple of 32, at least 64")
        if self.mask_size != 2 * self.roi_size:
            raise ValueError(
                f"mask_size={self.mask_size} must be twice roi_size={self.roi_size}"
            )
        if self.refiner_stride not in REFINER_STRIDES:
            raise ValueError(f"refiner_stride={self.refiner_stride}: one of {REFINER_STRIDES}")
        if self.refiner_size < 0 or self.refiner_size % self.refiner_stride:
            raise ValueError(
                f"refiner_size={self.refiner_size}: 0 or a positive multiple of "
                f"refiner_stride={self.refiner_stride}"
            )
        if self.refiner_flip_max_instances < 0:
            raise ValueError(
                f"refiner_flip_max_instances={self.refiner_flip_max_instances}: 0 (every "
                "frame) or a positive instance count"
            )
        if self.head_ensemble < 1:
            raise ValueError(f"head_ensemble={self.head_ensemble}: at least one set of heads")
        if self.refiner_margin < 0:
            raise ValueError(f"refiner_margin={self.refiner_margin}: must not be negative")
        if self.class_sharpness <= 0:
            raise ValueError(f"class_sharpness={self.class_sharpness}: must be positive")
        if self.class_names != SALIENT_CLASS_NAMES:
            raise ValueError("class_names must be SALIENT_CLASS_NAMES (the detector's classes)")
        for name in ("candidate_threshold", "saliency_threshold", "fallback_score", "mask_threshold",
                     "duplicate_overlap", "min_class_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value}: must lie in [0, 1]")

    def refiner_mirrors(self, instances: int) -> bool:
        """Whether the refiner's mirrored pass runs on a frame with ``instances`` instances
        to refine (``refiner_flip`` and ``refiner_flip_max_instances``)."""
        limit = self.refiner_flip_max_instances
        return self.refiner_flip and (limit == 0 or instances <= limit)

    @property
    def num_classes(self) -> int:
        """Number of class ids, background included."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (tuples as lists) for YAML / checkpoints."""
        values = dataclasses.asdict(self)
        values["class_names"] = list(self.class_names)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SalientConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown salient-model settings {unknown}; known: {sorted(known)}")
        values = dict(values)
        if "class_names" in values:
            values["class_names"] = tuple(values["class_names"])
        return cls(**values)


@dataclass(frozen=True)
class SalientOverrides:
    """Settings of a salient model that one run replaces (``vsis run`` flags, perception
    parameters); ``None`` keeps the model's own.

    Attributes
    ----------
    refiner_flip:
        :attr:`SalientConfig.refiner_flip`: the refiner's mirrored second pass.
    refiner_flip_max_instances:
        :attr:`SalientConfig.refiner_flip_max_instances`: the mirrored pass only on frames
        with at most this many instances (0: every frame).
    saliency_threshold:
        :attr:`SalientConfig.saliency_threshold`: below the model's, the candidates it
        ranks as less salient are reported too (the spectators, the parked cars), up to
        :attr:`SalientConfig.max_instances`; above it, only the clearest.
    """

    refiner_flip: bool | None = None
    refiner_flip_max_instances: int | None = None
    saliency_threshold: float | None = None

    def apply(self, config: SalientConfig) -> SalientConfig:
        """``config`` with the given settings replaced.

        Raises
        ------
        ValueError
            A value the model's config refuses (the message names it).
        """
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(config, **given)
