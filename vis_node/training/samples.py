"""The unit of training data: a labelled frame, a training sample, a frame source.

A :class:`FrameSource` is a list of sequences of frames (a still image is a one-frame
sequence) and reads a frame as a :class:`LabelledFrame` at its own resolution.
:func:`training_sample` turns one into a :class:`Sample` at the network input size
(aspect not kept, as S4Net), the unit the copy-paste and batching code works on. The
sources themselves are in :mod:`vis_node.training.video_sources` and
:mod:`vis_node.training.image_sources`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from vis_node.structures.instances import boxes_from_masks

IDENTITY_STRIDE = 1000
"""Identity of instance ``k`` of sequence ``s``: ``s * IDENTITY_STRIDE + k`` (plus the
source offset), unique across the sequences of a training mixture."""


@dataclass
class LabelledFrame:
    """One annotated frame at its native resolution.

    Attributes
    ----------
    image:
        ``uint8[H, W, 3]`` RGB.
    ids:
        ``uint16[H, W]`` instance ids, 0 = background.
    classes:
        Instance id -> class id (index into ``model.class_names``), for every id in
        ``ids``.
    """

    image: np.ndarray
    ids: np.ndarray
    classes: dict[int, int]

    def semantic(self) -> np.ndarray:
        """``uint8[H, W]`` class-id map of the instances (0 = background)."""
        out = np.zeros(self.ids.shape, dtype=np.uint8)
        for instance_id, class_id in self.classes.items():
            out[self.ids == instance_id] = class_id
        return out


@dataclass
class Sample:
    """A training image with its instances at the network input size.

    Attributes
    ----------
    image:
        ``uint8[S, S, 3]`` RGB.
    masks:
        ``bool[K, S, S]`` visible instance masks (disjoint).
    labels:
        ``int64[K]`` class ids in ``1..C-1``.
    identities:
        ``int64[K]`` object identities, equal for the same object in two frames.
    """

    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    identities: np.ndarray

    def flipped(self) -> Sample:
        """The horizontally mirrored sample."""
        return replace(
            self,
            image=np.ascontiguousarray(self.image[:, ::-1]),
            masks=np.ascontiguousarray(self.masks[:, :, ::-1]),
        )

    def zoomed(self, scale: float, anchor: tuple[float, float], min_area: int = 1) -> Sample:
        """The sample scaled by ``scale`` about a shifted origin, cropped or padded back.

        The output pixel ``p`` shows the input at ``(p - t) / scale`` with
        ``t = anchor * S * (1 - scale)``: zooming in (``scale > 1``) crops a window of
        side ``S / scale`` whose position along x and y is ``anchor`` (0 = left/top,
        1 = right/bottom); zooming out places the shrunken image there on black.
        Instances left with fewer than ``min_area`` pixels are dropped.

        Parameters
        ----------
        scale:
            Magnification (> 0).
        anchor:
            ``(u, v)`` in ``[0, 1]``.
        min_area:
            Smallest kept instance area in pixels.
        """
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        size = self.image.shape[0]
        shift = (1.0 - scale) * size
        # OpenCV puts pixel centres at integers: p -> scale * p + t in corner coordinates
        # is x -> scale * x + t + (scale - 1) / 2 in OpenCV's.
        centre = 0.5 * (scale - 1.0)
        matrix = np.array(
            [[scale, 0.0, anchor[0] * shift + centre], [0.0, scale, anchor[1] * shift + centre]],
            dtype=np.float64,
        )
        image = cv2.warpAffine(
            self.image, matrix, (size, size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        inside = cv2.warpAffine(
            np.ones((size, size), np.uint8), matrix, (size, size), flags=cv2.INTER_NEAREST
        )
        image[inside == 0] = 0
        if len(self.masks):
            warped = cv2.warpAffine(
                np.ascontiguousarray(self.masks.transpose(1, 2, 0).astype(np.uint8)),
                matrix,
                (size, size),
                flags=cv2.INTER_NEAREST,
            )
            masks = warped.reshape(size, size, -1).transpose(2, 0, 1).astype(bool)
        else:
            masks = self.masks
        keep = masks.reshape(len(masks), -1).sum(axis=1) >= min_area
        return Sample(
            image=image,
            masks=np.ascontiguousarray(masks[keep]),
            labels=self.labels[keep],
            identities=self.identities[keep],
        )

    def target(self) -> dict[str, torch.Tensor]:
        """The ``S4Net.forward`` target: ``boxes`` ``float32[K, 4]`` x1y1x2y2 (input
        pixels, exclusive end), ``masks`` ``bool[K, S, S]``, ``labels`` ``int64[K]``,
        ``track_ids`` ``int64[K]``."""
        return {
            "boxes": torch.from_numpy(boxes_from_masks(self.masks)),
            "masks": torch.from_numpy(np.ascontiguousarray(self.masks)),
            "labels": torch.from_numpy(self.labels.astype(np.int64)),
            "track_ids": torch.from_numpy(self.identities.astype(np.int64)),
        }


def training_sample(
    frame: LabelledFrame, input_size: int, identity_offset: int, *, min_area: int = 1
) -> Sample:
    """Resize a labelled frame to ``input_size`` squared and split it into instances.

    Parameters
    ----------
    frame:
        The frame at native resolution.
    input_size:
        Network input side in pixels.
    identity_offset:
        Added to the instance ids to form identities.
    min_area:
        Instances with fewer pixels after resizing are dropped.
    """
    size = (input_size, input_size)
    image = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
    ids = cv2.resize(frame.ids, size, interpolation=cv2.INTER_NEAREST)
    present = [int(i) for i in np.unique(ids) if i != 0]
    masks = np.stack([ids == i for i in present]) if present else np.zeros((0, *size), bool)
    keep = masks.reshape(len(present), -1).sum(axis=1) >= min_area
    return Sample(
        image=image,
        masks=masks[keep],
        labels=np.array([frame.classes[i] for i in present], dtype=np.int64)[keep],
        identities=np.array([identity_offset + i for i in present], dtype=np.int64)[keep],
    )


class FrameSource(ABC):
    """Sequences of annotated frames."""

    sequences: list[str]
    """Sequence names, in index order."""

    @abstractmethod
    def frame_names(self, sequence: int) -> list[str]:
        """Frame names (file stems) of sequence number ``sequence``."""

    @abstractmethod
    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """Frame number ``frame`` of sequence number ``sequence`` at native resolution."""


def class_index(class_names: tuple[str, ...], name: str, where: str) -> int:
    """Index of ``name`` in ``class_names`` (never 0, the background)."""
    if name not in class_names[1:]:
        raise ValueError(f"{where}: class {name!r} is not in model.class_names {class_names}")
    return class_names.index(name)
