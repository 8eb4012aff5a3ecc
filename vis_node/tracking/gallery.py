"""Bounded per-track appearance galleries, one per embedding space.

A track's appearance is a few embeddings from confident matches, kept per *embedding
space*: the space of an embedding is its origin (``"model"`` for the segmenter's
embedding head, ``"colour"`` for the tracker's colour fallback) and its length.
Embeddings of different spaces are never compared: a pair without a common space is
"not comparable" rather than a crash or a meaningless cosine.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from vis_node.tracking.association import cosine_similarity

Space = tuple[str, int]
"""An embedding space: ``(origin, length)``, e.g. ``("colour", 128)``."""


class Gallery:
    """The last ``size`` confident embeddings of one track, per embedding space.

    Parameters
    ----------
    size:
        Most embeddings kept per space (the oldest go first).
    """

    def __init__(self, size: int) -> None:
        if int(size) != size or size < 1:
            raise ValueError(f"gallery size must be an integer >= 1, got {size}")
        self.size = int(size)
        self._entries: dict[Space, deque[np.ndarray]] = {}

    @property
    def spaces(self) -> tuple[Space, ...]:
        """Spaces with at least one embedding."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def add(self, space: Space, vector: np.ndarray) -> None:
        """Store ``float32[D]`` ``vector`` of ``space`` (``D`` must equal ``space[1]``)."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != space[1]:
            raise ValueError(f"embedding of length {vector.shape[0]} does not fit space {space}")
        self._entries.setdefault(space, deque(maxlen=self.size)).append(vector)

    def similarity(self, space: Space, vector: np.ndarray) -> float | None:
        """Largest cosine similarity of ``vector`` with the gallery of ``space``.

        Returns ``None`` when the gallery holds nothing of that space.
        """
        entries = self._entries.get(space)
        if not entries:
            return None
        return float(cosine_similarity(np.asarray(vector)[None], np.stack(entries)).max())
