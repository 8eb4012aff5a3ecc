"""Copy-paste composites for the salient heads: a training object on another sequence's frame.

The heads of the ``real`` model learn from the frames of a few sequences, each object
always on its own background. A composite pastes the object of one annotated frame
(:func:`~vis_node.training.copy_paste.paste_objects`: cropped to its box, rescaled,
maybe mirrored, colour-jittered, placed anywhere inside the frame) onto an annotated
frame of *another* training sequence (mirrored at random). The pasted object alone is
the composite's foreground: the background frame's own object, partly covered or not,
is one more salient-looking object that is not the target.

Composites train the **mask head only** (the pasted object's candidates and its jittered
box, as real frames do; see
:func:`~vis_node.training.salient_trainer.frame_losses`): which object is *the* salient
one is a question of the whole scene, which a pasted object does not answer.
The frozen detector runs on every composite (about 40 ms each on this CPU), so the
features are built once per training run and not cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from vis_node.perception.salient_config import SalientConfig
from vis_node.perception.salient_predictor import DenseRunner
from vis_node.training.config import CopyPasteConfig
from vis_node.training.copy_paste import Donor, paste_objects
from vis_node.training.salient_data import FrameFeatures, frame_features, saliency_labels
from vis_node.training.samples import Sample


@dataclass
class CompositeConfig:
    """How many composites a run adds and how objects are pasted.

    Attributes
    ----------
    count:
        Composite frames added to the training frames (0: none).
    scale:
        Range of the pasted object's size relative to its own frame.
    color_jitter:
        Largest relative brightness, contrast and saturation change of the object.
    """

    count: int = 0
    scale: tuple[float, float] = (0.5, 1.0)
    color_jitter: float = 0.2

    def __post_init__(self) -> None:
        if int(self.count) != self.count or self.count < 0:
            raise ValueError(f"composites.count={self.count}: must be an integer >= 0")
        self.count = int(self.count)
        try:
            self.scale = self.paste.scale
        except ValueError as exc:
            raise ValueError(str(exc).replace("copy_paste.", "composites.")) from None

    @property
    def paste(self) -> CopyPasteConfig:
        """These settings as a one-object :class:`CopyPasteConfig`."""
        return CopyPasteConfig(probability=1.0, max_objects=1, scale=tuple(self.scale),
                               color_jitter=self.color_jitter)


def composite_images(
    frames: list[tuple[np.ndarray, np.ndarray]],
    sequence_of: list[int],
    config: CompositeConfig,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``config.count`` composites of ``frames``, each object pasted onto a frame of
    another sequence.

    Parameters
    ----------
    frames:
        ``(uint8[H, W, 3] RGB, uint8[H, W] foreground)`` annotated frames.
    sequence_of:
        The sequence index of each frame; at least two sequences are needed.
    config:
        Count and paste settings.
    rng:
        Source of every choice.

    Yields
    ------
    image, mask:
        ``uint8[H', W', 3]`` composite (the background frame's size) and ``bool[H', W']``
        the pasted object's visible pixels.

    Raises
    ------
    ValueError
        If the frames come from fewer than two sequences.
    """
    sequences = np.asarray(sequence_of)
    if len(np.unique(sequences)) < 2:
        raise ValueError("composites need the frames of at least two sequences")
    paste = config.paste
    made = 0
    while made < config.count:
        donor_index = int(rng.integers(len(frames)))
        others = np.flatnonzero(sequences != sequences[donor_index])
        background_index = int(others[rng.integers(len(others))])
        image, foreground = frames[background_index]
        if rng.random() < 0.5:
            image, foreground = image[:, ::-1], foreground[:, ::-1]
        base = Sample(
            image=np.ascontiguousarray(image),
            masks=np.ascontiguousarray(foreground)[None] > 0,
            labels=np.array([1]),
            identities=np.array([1]),
        )
        donor_image, donor_mask = frames[donor_index]
        composite = paste_objects(base, [Donor(donor_image, donor_mask > 0, 1, 2)], rng, paste)
        pasted = composite.masks[composite.identities == 2]
        if len(pasted):
            made += 1
            yield composite.image, pasted[0]


def composite_features(
    dense: DenseRunner,
    frames: list[tuple[np.ndarray, np.ndarray]],
    sequence_of: list[int],
    model_config: SalientConfig,
    config: CompositeConfig,
    rng: np.random.Generator,
    *,
    box_cover: float,
    object_cover: float,
) -> list[FrameFeatures]:
    """Detector features and targets of :func:`composite_images` (see the module
    docstring); candidate labels by the rule ``box_cover`` / ``object_cover`` against
    the pasted object."""
    out = []
    images = composite_images(frames, sequence_of, config, rng)
    for image, mask in tqdm(images, total=config.count, desc="composites", leave=False):
        features = frame_features(dense, image, mask, model_config)
        features.labels = saliency_labels(
            features.boxes, features.foreground, features.objects,
            box_cover=box_cover, object_cover=object_cover,
        )
        out.append(features)
    return out
