"""The ground-truth oracle: an **evaluation-only** predictor replaying annotations.

:class:`GroundTruthOracle` replays a DAVIS-style root's annotation PNGs for the frame
of the same stamp (as the oracle experiment of MaskTrack R-CNN, which feeds
ground-truth masks to the tracker). Its instances come in a random order per frame and
carry no ids, so what reaches the output ids is the tracker's work alone; it measures
tracking and plumbing independently of the segmentation model. ``vsis run --model
gt:ROOT`` and the perception node's ``model: gt:ROOT`` load it
(:func:`vis_node.pipeline.backends.load_backend`). Never use it for deployment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vis_node.io.labels import read_label_png, read_semantic_png
from vis_node.io.readers import DEFAULT_FPS, DavisRoot
from vis_node.structures.errors import InputDataError
from vis_node.structures.instances import Instances
from vis_node.structures.label_map import FALLBACK_CLASS
from vis_node.synth.generator import CATEGORIES

GT_PREFIX = "gt:"
"""Prefix of the ``model`` parameter that selects the ground-truth oracle."""

CLASS_AGNOSTIC_NAMES: tuple[str, ...] = ("background", FALLBACK_CLASS)
"""Oracle label map of a root without ``Semantics/`` (e.g. DAVIS-2016)."""

SYNTH_NAMES: tuple[str, ...] = ("background", *CATEGORIES)
"""Oracle label map of a root with ``Semantics/`` PNGs (as ``vsis synth`` writes)."""


class GroundTruthOracle:
    """Replay a DAVIS-style root's annotations as detections (evaluation oracle).

    Parameters
    ----------
    root:
        DAVIS-style root with ``Annotations/480p/<sequence>/*.png`` and, optionally,
        ``Semantics/480p/<sequence>/*.png`` class-id PNGs (then the class of each
        instance is the majority class under its mask and the label map is
        :data:`SYNTH_NAMES`; otherwise every instance is class 1 of
        :data:`CLASS_AGNOSTIC_NAMES`).
    sequence:
        Sequence to replay; ``""`` takes the first one.
    fps:
        Frame rate of the stamps: frame index = ``round(stamp_ns * fps / 1e9)``, as
        :meth:`vis_node.io.readers.DavisRoot.frames` stamps frames.
    seed:
        Seed of the per-frame shuffle of the instance order.

    Raises
    ------
    InputDataError
        If the root or sequence has no annotations.
    """

    def __init__(
        self, root: str | Path, *, sequence: str = "", fps: float = DEFAULT_FPS, seed: int = 0
    ) -> None:
        davis = DavisRoot(root)
        self.sequence = sequence or davis.sequences[0]
        if not davis.has_annotations(self.sequence):
            raise InputDataError(
                davis.annotation_root / self.sequence, "no annotation PNGs to replay"
            )
        self._annotations = sorted((davis.annotation_root / self.sequence).glob("*.png"))
        semantic_dir = Path(root) / "Semantics" / davis.annotation_root.name / self.sequence
        self._semantic_dir = semantic_dir if semantic_dir.is_dir() else None
        self.class_names = SYNTH_NAMES if self._semantic_dir else CLASS_AGNOSTIC_NAMES
        self.fps = float(fps)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self._annotations)

    def frame_index(self, stamp_ns: int) -> int:
        """Frame index of a stamp in nanoseconds."""
        return round(stamp_ns * self.fps / 1e9)

    def __call__(self, image: np.ndarray, stamp_ns: int) -> Instances:
        """The annotated instances of the frame at ``stamp_ns``, in random order.

        Parameters
        ----------
        image:
            ``uint8[H, W, 3]`` frame; only its size is used.
        stamp_ns:
            Header stamp in nanoseconds.

        Returns
        -------
        Instances
            One instance per annotated id (saliency and score 1, one-hot class
            probabilities, no embeddings, no track ids); none for a stamp outside the
            sequence or a frame whose size differs from the annotation.
        """
        height, width = image.shape[:2]
        index = self.frame_index(stamp_ns)
        num_classes = len(self.class_names)
        if not 0 <= index < len(self._annotations):
            return Instances.empty(height, width, num_classes)
        path = self._annotations[index]
        ids, _ = read_label_png(path)
        if ids.shape != (height, width):
            return Instances.empty(height, width, num_classes)
        values = np.unique(ids[ids > 0])
        rng = np.random.default_rng([self.seed, index])
        values = values[rng.permutation(values.size)]
        masks = ids[None] == values[:, None, None]
        labels = np.ones(values.size, dtype=np.int64)
        if self._semantic_dir is not None:
            classes = read_semantic_png(self._semantic_dir / path.name)
            for k, mask in enumerate(masks):
                counts = np.bincount(classes[mask], minlength=num_classes)
                labels[k] = int(np.argmax(counts[1:]) + 1)
        probs = np.zeros((values.size, num_classes), dtype=np.float32)
        probs[np.arange(values.size), labels] = 1.0
        return Instances.from_masks(masks, class_probs=probs, saliency=np.ones(values.size))
