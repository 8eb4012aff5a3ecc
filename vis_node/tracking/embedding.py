"""Cheap appearance embeddings for re-identification when the segmenter gives none."""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from vis_node.structures.instances import boxes_from_masks


class Embedder(Protocol):
    """Anything that maps an image and instance masks to appearance vectors."""

    def __call__(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Embed each masked region.

        Parameters
        ----------
        image:
            ``uint8[H, W, 3]`` RGB frame.
        masks:
            ``bool[N, H, W]`` instance masks.

        Returns
        -------
        numpy.ndarray
            ``float32[N, D]`` embeddings (compared by cosine similarity).
        """
        ...


class ColourHistogramEmbedder:
    """Normalised HSV colour histogram inside each mask.

    The histogram is square-rooted (Hellinger map), so the cosine similarity of two
    embeddings is the Bhattacharyya coefficient of the two colour distributions, then
    L2-normalised. An empty mask embeds to the zero vector.

    Parameters
    ----------
    bins:
        Number of bins for hue, saturation and value; ``D = prod(bins)``.
    """

    def __init__(self, bins: tuple[int, int, int] = (8, 4, 4)) -> None:
        if len(bins) != 3 or any(int(b) < 1 for b in bins):
            raise ValueError(f"bins must be three positive integers, got {bins}")
        self.bins = tuple(int(b) for b in bins)

    @property
    def dim(self) -> int:
        """Embedding length ``D``."""
        return int(np.prod(self.bins))

    def __call__(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Embed each masked region (see :class:`Embedder`)."""
        image = np.asarray(image)
        masks = np.asarray(masks, dtype=bool)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8[H, W, 3], got {image.dtype}{list(image.shape)}")
        if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
            raise ValueError(
                f"masks must be bool[N, {image.shape[0]}, {image.shape[1]}], got {masks.shape}"
            )
        out = np.zeros((masks.shape[0], self.dim), dtype=np.float32)
        if masks.shape[0] == 0:
            return out
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        for k, box in enumerate(boxes_from_masks(masks).astype(int)):
            x1, y1, x2, y2 = box
            if x2 <= x1:
                continue
            crop = np.ascontiguousarray(hsv[y1:y2, x1:x2])
            crop_mask = masks[k, y1:y2, x1:x2].view(np.uint8)
            hist = cv2.calcHist(
                [crop], [0, 1, 2], crop_mask, list(self.bins), [0, 180, 0, 256, 0, 256]
            ).ravel()
            hist = np.sqrt(hist / hist.sum())
            out[k] = hist / np.linalg.norm(hist)
        return out
