"""The per-frame instance record shared by perception, tracking, fusion, unification and ROS."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vis_node.structures.geometry import boxes_from_masks


@dataclass(init=False, eq=False)
class Instances:
    """Instances detected (and possibly tracked) in one frame.

    Attributes
    ----------
    masks:
        ``bool[N, H, W]`` instance masks.
    boxes:
        ``float32[N, 4]`` boxes ``x1, y1, x2, y2`` in pixels.
    class_probs:
        ``float32[N, C]`` class probabilities (column ``c`` = class id ``c``).
    saliency:
        ``float32[N]`` saliency score of each instance in ``[0, 1]``.
    embeddings:
        ``float32[N, D]`` appearance embeddings from the segmenter, or ``None`` (the
        tracker then computes its own colour embedding).
    track_ids:
        ``int64[N]`` track ids; 0 = untracked. Defaults to all zeros.
    scores:
        ``float32[N]`` detection confidences in ``(0, 1]``. Defaults to the winning
        class probability ``class_probs.max(axis=1)``, which is how Mask R-CNN scores
        a detection.
    predicted:
        ``bool[N]``: the instance was not detected in this frame but predicted by the
        tracker (a coasted track, its last mask carried by optical flow). Defaults to
        all ``False``.

    Raises
    ------
    ValueError
        If shapes disagree; the message names the field.
    """

    masks: np.ndarray
    boxes: np.ndarray
    class_probs: np.ndarray
    saliency: np.ndarray
    embeddings: np.ndarray | None
    track_ids: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray

    def __init__(
        self,
        masks: np.ndarray,
        boxes: np.ndarray,
        class_probs: np.ndarray,
        saliency: np.ndarray,
        embeddings: np.ndarray | None = None,
        track_ids: np.ndarray | None = None,
        scores: np.ndarray | None = None,
        predicted: np.ndarray | None = None,
    ) -> None:
        self.masks = np.asarray(masks, dtype=bool)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be bool[N, H, W], got shape {self.masks.shape}")
        n = self.masks.shape[0]
        self.boxes = np.asarray(boxes, dtype=np.float32)
        if n == 0 and self.boxes.size == 0:
            self.boxes = self.boxes.reshape(0, 4)
        _check_shape("boxes", self.boxes, (n, 4))
        self.class_probs = np.asarray(class_probs, dtype=np.float32)
        if self.class_probs.ndim != 2 or self.class_probs.shape[0] != n:
            raise ValueError(
                f"class_probs must be float32[N={n}, C], got shape {self.class_probs.shape}"
            )
        self.saliency = np.asarray(saliency, dtype=np.float32)
        _check_shape("saliency", self.saliency, (n,))
        self.embeddings = None if embeddings is None else np.asarray(embeddings, np.float32)
        if self.embeddings is not None and (
            self.embeddings.ndim != 2 or self.embeddings.shape[0] != n
        ):
            raise ValueError(
                f"embeddings must be float32[N={n}, D] or None, got shape {self.embeddings.shape}"
            )
        self.track_ids = np.asarray(
            np.zeros(n, np.int64) if track_ids is None else track_ids, dtype=np.int64
        )
        _check_shape("track_ids", self.track_ids, (n,))
        if scores is None:
            scores = self.class_probs.max(axis=1) if self.class_probs.shape[1] else np.ones(n)
        self.scores = np.asarray(scores, dtype=np.float32)
        _check_shape("scores", self.scores, (n,))
        self.predicted = np.asarray(
            np.zeros(n, bool) if predicted is None else predicted, dtype=bool
        )
        _check_shape("predicted", self.predicted, (n,))

    @classmethod
    def from_masks(
        cls,
        masks: np.ndarray,
        class_probs: np.ndarray | None = None,
        saliency: np.ndarray | None = None,
        scores: np.ndarray | None = None,
        embeddings: np.ndarray | None = None,
    ) -> Instances:
        """Build instances from masks, computing the boxes.

        Parameters
        ----------
        masks:
            ``bool[N, H, W]`` masks.
        class_probs:
            ``float32[N, C]``; default one class-agnostic class (id 0) with probability 1.
        saliency:
            ``float32[N]``; default all ones.
        scores:
            ``float32[N]`` detection confidences; default the winning class probability.
        embeddings:
            ``float32[N, D]`` or ``None``.
        """
        masks = np.asarray(masks, dtype=bool)
        n = masks.shape[0]
        return cls(
            masks=masks,
            boxes=boxes_from_masks(masks),
            class_probs=np.ones((n, 1), np.float32) if class_probs is None else class_probs,
            saliency=np.ones(n, np.float32) if saliency is None else saliency,
            embeddings=embeddings,
            scores=scores,
        )

    @classmethod
    def empty(cls, height: int, width: int, num_classes: int = 1) -> Instances:
        """No instances in a ``height x width`` frame with ``num_classes`` classes."""
        return cls(
            masks=np.zeros((0, height, width), dtype=bool),
            boxes=np.zeros((0, 4), dtype=np.float32),
            class_probs=np.zeros((0, num_classes), dtype=np.float32),
            saliency=np.zeros(0, dtype=np.float32),
        )

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the masks in pixels."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    @property
    def labels(self) -> np.ndarray:
        """``int64[N]`` per-frame class ids (argmax of ``class_probs``)."""
        return self.class_probs.argmax(axis=1).astype(np.int64)

    def select(self, index: np.ndarray) -> Instances:
        """The instances at ``index`` (an integer index array or a ``bool[N]`` mask)."""
        index = np.asarray(index)
        return Instances(
            masks=self.masks[index],
            boxes=self.boxes[index],
            class_probs=self.class_probs[index],
            saliency=self.saliency[index],
            embeddings=None if self.embeddings is None else self.embeddings[index],
            track_ids=self.track_ids[index],
            scores=self.scores[index],
            predicted=self.predicted[index],
        )

    def with_track_ids(self, track_ids: np.ndarray) -> Instances:
        """A copy with ``track_ids`` (``int64[N]``) replaced; arrays are shared."""
        return dataclasses.replace(self, track_ids=np.asarray(track_ids, dtype=np.int64))

    def id_map(self) -> np.ndarray:
        """Paint tracked instances into an instance-id image.

        Returns
        -------
        numpy.ndarray
            ``[H, W]`` of the smallest unsigned integer type that holds the largest
            track id (``uint8`` up to 255): the track id of the instance covering each
            pixel, 0 where none does. Where tracked instances overlap, the
            higher-scoring one wins. Untracked instances (id 0) are not painted.
        """
        height, width = self.image_size
        dtype = np.min_scalar_type(max(int(self.track_ids.max(initial=0)), 0))
        ids = np.zeros((height, width), dtype=dtype)
        for k in np.argsort(self.scores, kind="stable"):
            if self.track_ids[k] > 0:
                ids[self.masks[k]] = self.track_ids[k]
        return ids


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
