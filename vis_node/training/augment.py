"""Batches of augmented training samples: source mixing, copy-paste, zoom, horizontal flip.

Every random choice of a batch comes from the generator passed in; the trainer seeds
one per step from ``(seed, step)``, so a batch depends only on the step number and a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np

from vis_node.training.config import CopyPasteConfig
from vis_node.training.copy_paste import donors_of, paste_objects
from vis_node.training.samples import IDENTITY_STRIDE, FrameSource, Sample, training_sample

SOURCE_IDENTITY_STRIDE = 10_000_000
"""Identity offset between sources (beyond any sequence's ``s * IDENTITY_STRIDE``)."""


class BatchSampler:
    """Draws augmented training batches from weighted frame sources.

    Parameters
    ----------
    sources:
        Training sources.
    weights:
        Relative sampling frequency of each source.
    input_size:
        Network input side in pixels.
    copy_paste:
        Copy-paste settings.
    flip_probability:
        Chance of mirroring each sample (after pasting).
    zoom_range:
        ``(low, high)`` magnifications; each sample is zoomed by a factor drawn
        log-uniformly from it about a uniformly drawn anchor (see
        :meth:`~vis_node.training.samples.Sample.zoomed`). ``(1, 1)`` disables zoom.
    """

    def __init__(
        self,
        sources: list[FrameSource],
        weights: list[float],
        *,
        input_size: int,
        copy_paste: CopyPasteConfig,
        flip_probability: float,
        zoom_range: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        if len(sources) != len(weights) or not sources:
            raise ValueError("give one weight per source and at least one source")
        self.sources = sources
        self.weights = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        self.input_size = input_size
        self.copy_paste = copy_paste
        self.flip_probability = flip_probability
        self.zoom_range = (float(zoom_range[0]), float(zoom_range[1]))
        if not 0 < self.zoom_range[0] <= self.zoom_range[1]:
            raise ValueError(f"zoom_range={zoom_range}: need 0 < low <= high")

    def _load(self, rng: np.random.Generator, count: int) -> list[Sample]:
        """``count`` frames of one randomly drawn sequence (distinct frames when possible)."""
        s = int(rng.choice(len(self.sources), p=self.weights))
        source = self.sources[s]
        q = int(rng.integers(len(source.sequences)))
        length = len(source.frame_names(q))
        frames = rng.choice(length, size=count, replace=count > length)
        offset = s * SOURCE_IDENTITY_STRIDE + q * IDENTITY_STRIDE
        return [
            training_sample(
                source.read(q, int(t)), self.input_size, offset, min_area=self.copy_paste.min_area
            )
            for t in frames
        ]

    def _augment(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Copy-paste (with its probability), zoom, then a horizontal flip (with its
        probability)."""
        if rng.random() < self.copy_paste.probability:
            donors = []
            for _ in range(int(rng.integers(1, self.copy_paste.max_objects + 1))):
                candidates = donors_of(self._load(rng, 1)[0])
                if candidates:
                    donors.append(candidates[int(rng.integers(len(candidates)))])
            sample = paste_objects(sample, donors, rng, self.copy_paste)
        low, high = self.zoom_range
        if high > low:
            scale = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            anchor = (float(rng.random()), float(rng.random()))
            sample = sample.zoomed(scale, anchor, self.copy_paste.min_area)
        if rng.random() < self.flip_probability:
            sample = sample.flipped()
        return sample

    def batch(self, rng: np.random.Generator, batch_size: int) -> list[Sample]:
        """``batch_size`` samples: pairs of frames of one sequence (shared identities),
        plus one single frame when ``batch_size`` is odd."""
        samples: list[Sample] = []
        while len(samples) < batch_size:
            samples += self._load(rng, min(2, batch_size - len(samples)))
        return [self._augment(sample, rng) for sample in samples]
