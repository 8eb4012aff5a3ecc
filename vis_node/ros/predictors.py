"""Predictor backends selected by the perception node's ``model`` parameter (no ROS import).

* A shipped model name, ``model.pt`` file or model folder: the S4Net network run by
  the chosen runtime (:func:`vis_node.perception.runtime.make_predictor`).
* ``gt:<DAVIS root>``: :class:`GroundTruthOracle`, an **evaluation-only oracle** that
  replays the root's annotation PNGs for the frame of the same stamp (as the oracle
  experiment of MaskTrack R-CNN, which feeds ground-truth masks to the tracker). Its
  instances come in a random order per frame and carry no ids, so what reaches the
  output ids is the tracker's work alone; it measures tracking and plumbing
  independently of the segmentation model. Never use it for deployment.

Every backend is called as ``predictor(image, stamp_ns) -> Instances``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vis_node.io.errors import InputDataError
from vis_node.io.labels import read_label_png, read_semantic_png
from vis_node.io.readers import DEFAULT_FPS, DavisRoot
from vis_node.synth.generator import CATEGORIES
from vis_node.structures.instances import Instances

GT_PREFIX = "gt:"
"""Prefix of the ``model`` parameter that selects the ground-truth oracle."""

CLASS_AGNOSTIC_NAMES: tuple[str, ...] = ("background", "object")
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


@dataclass
class Backend:
    """A loaded predictor.

    Attributes
    ----------
    name:
        Model name for the label map (checkpoint stem / folder, or ``gt``).
    class_names:
        Label map, index = class id.
    predict:
        ``(uint8[H, W, 3] RGB, stamp_ns) -> Instances``.
    """

    name: str
    class_names: tuple[str, ...]
    predict: Callable[[np.ndarray, int], Instances]


def check_model_spec(spec: str) -> None:
    """Fail early (at configure) when ``spec`` names nothing loadable.

    Raises
    ------
    InputDataError
        Missing checkpoint or oracle root; the message says what is expected.
    """
    from vis_node.perception.checkpoint import resolve_model

    if spec.startswith(GT_PREFIX):
        root = Path(spec[len(GT_PREFIX) :])
        if not (root / "Annotations").is_dir():
            raise InputDataError(root, "oracle root needs an Annotations/ folder")
        return
    resolve_model(spec)


def load_backend(
    spec: str, *, runtime: str = "onnx", device: str = "cpu", gt_sequence: str = "",
    gt_fps: float = DEFAULT_FPS, gt_seed: int = 0,
) -> Backend:
    """Load the backend named by ``spec`` (see the module docstring).

    ``runtime`` and ``device`` apply to networks, the ``gt_*`` settings to the oracle.

    Raises
    ------
    InputDataError
        Missing or corrupt checkpoint, or oracle root without annotations.
    vis_node.perception.tensorrt.TensorRTUnavailableError
        ``runtime="tensorrt"`` without TensorRT or a CUDA GPU.
    """
    if spec.startswith(GT_PREFIX):
        oracle = GroundTruthOracle(
            spec[len(GT_PREFIX) :], sequence=gt_sequence, fps=gt_fps, seed=gt_seed
        )
        return Backend("gt", oracle.class_names, oracle)
    from vis_node.perception.checkpoint import model_name, resolve_model
    from vis_node.perception.runtime import make_predictor

    path = resolve_model(spec)
    predictor = make_predictor(path, runtime, device=device)
    return Backend(
        model_name(path), predictor.class_names, lambda image, stamp_ns: predictor(image)
    )
