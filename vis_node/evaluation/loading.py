"""Read prediction and ground-truth label folders into per-sequence arrays.

Both trees follow ``<root>/<sequence>/<frame>.png`` (see :mod:`vis_node.io.labels`).
The ground truth decides which sequences and frames are scored: a prediction frame
missing for a ground-truth frame counts as an empty prediction, or (rule ``hold``) as
the latest earlier prediction of its sequence, what a subscriber last received from a
graph that skipped the frame (a warning says how many either way); prediction
sequences absent from the ground truth are ignored (with a warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import read_label_folder, read_label_png, read_semantic_png

LOGGER = logging.getLogger(__name__)

MISSING_RULES: tuple[str, ...] = ("empty", "hold")
"""What a ground-truth frame without prediction is scored with: an empty prediction
(the default), or the latest earlier prediction of the sequence held (empty before the
first)."""


@dataclass(frozen=True)
class SequencePair:
    """Prediction and ground truth of one sequence, frame-aligned on the ground truth.

    Attributes
    ----------
    name:
        Sequence folder name.
    frame_names:
        Ground-truth frame names (file stems), length ``T``, sorted.
    gt:
        ``uint16[T, H, W]`` ground-truth instance ids, 0 = background.
    void:
        ``bool[T, H, W]`` void pixels of the ground truth (palette value 255), or
        ``None`` when no frame marks any.
    pred:
        ``uint16[T, H, W]`` predicted instance ids, 0 = background; on frames the
        prediction folder lacks all zero, or the latest earlier frame's (rule ``hold``).
    gt_semantics, pred_semantics:
        ``uint8[T, H, W]`` class-id maps (0 = background), or ``None`` when no
        semantics folder was given. A missing prediction semantic frame reads as 0, or
        as the latest earlier one (rule ``hold``).
    """

    name: str
    frame_names: list[str]
    gt: np.ndarray
    void: np.ndarray | None
    pred: np.ndarray
    gt_semantics: np.ndarray | None = None
    pred_semantics: np.ndarray | None = None


class FolderPairs:
    """Index of a PRED and a GT label tree, loading one sequence at a time.

    Parameters
    ----------
    pred_root, gt_root:
        ``<root>/<seq>/<frame>.png`` instance-id trees.
    pred_semantics, gt_semantics:
        Optional class-id PNG trees with the same layout.
    missing:
        One of :data:`MISSING_RULES`: how a ground-truth frame without prediction is
        scored.

    Raises
    ------
    InputDataError
        If a root is not a folder of label PNGs.
    ValueError
        An unknown ``missing`` rule.
    """

    def __init__(
        self,
        pred_root: str | Path,
        gt_root: str | Path,
        *,
        pred_semantics: str | Path | None = None,
        gt_semantics: str | Path | None = None,
        missing: str = MISSING_RULES[0],
    ) -> None:
        if missing not in MISSING_RULES:
            raise ValueError(f"missing={missing!r}: choose one of {', '.join(MISSING_RULES)}")
        self.hold = missing == "hold"
        self.gt_index = read_label_folder(gt_root)
        self.pred_index = read_label_folder(pred_root)
        self.pred_root = Path(pred_root)
        self.gt_semantics_root = None if gt_semantics is None else Path(gt_semantics)
        self.pred_semantics_root = None if pred_semantics is None else Path(pred_semantics)
        for root in (self.gt_semantics_root, self.pred_semantics_root):
            if root is not None and not root.is_dir():
                raise InputDataError(root, "not a folder of <sequence>/<frame>.png class-id maps")
        extra = sorted(set(self.pred_index) - set(self.gt_index))
        if extra:
            LOGGER.warning(
                "%d prediction sequence(s) have no ground truth and are ignored: %s",
                len(extra),
                ", ".join(extra),
            )

    @property
    def sequences(self) -> list[str]:
        """Ground-truth sequence names, sorted."""
        return sorted(self.gt_index)

    def load(self, sequence: str) -> SequencePair:
        """Read one sequence into arrays.

        Raises
        ------
        InputDataError
            If a PNG is unreadable or a frame's size differs from the ground truth's.
        """
        gt_frames = self.gt_index[sequence]
        pred_paths = dict(self.pred_index.get(sequence, []))
        names = [name for name, _ in gt_frames]
        gt_list: list[np.ndarray] = []
        void_list: list[np.ndarray | None] = []
        for _, path in gt_frames:
            ids, void = read_label_png(path)
            if gt_list and ids.shape != gt_list[0].shape:
                raise InputDataError(
                    path,
                    f"frame size {_size(ids.shape)} differs from {_size(gt_list[0].shape)} of "
                    "the sequence's first frame; all frames of a sequence must share a size",
                )
            gt_list.append(ids)
            void_list.append(void)
        shape = gt_list[0].shape
        gt = np.stack(gt_list)
        void = None
        if any(v is not None for v in void_list):
            void = np.stack([np.zeros(shape, bool) if v is None else v for v in void_list])

        pred = np.zeros_like(gt)
        missing = 0
        for t, (name, gt_path) in enumerate(gt_frames):
            path = pred_paths.get(name)
            if path is None:
                missing += 1
                if self.hold and t > 0:
                    pred[t] = pred[t - 1]
                continue
            ids, _ = read_label_png(path)
            _check_size(path, ids.shape, gt_path, shape)
            pred[t] = ids
        if missing == len(names):
            LOGGER.warning(
                "sequence %s is missing from %s: its %d frames count as empty predictions",
                sequence,
                self.pred_root,
                missing,
            )
        elif missing:
            LOGGER.warning(
                "sequence %s: %d of %d frames missing from %s count as %s",
                sequence,
                missing,
                len(names),
                self.pred_root,
                "the latest earlier prediction" if self.hold else "empty predictions",
            )
        return SequencePair(
            name=sequence,
            frame_names=names,
            gt=gt,
            void=void,
            pred=pred,
            gt_semantics=self._semantics(self.gt_semantics_root, sequence, gt_frames, shape, True),
            pred_semantics=self._semantics(
                self.pred_semantics_root, sequence, gt_frames, shape, False, self.hold
            ),
        )

    @staticmethod
    def _semantics(
        root: Path | None,
        sequence: str,
        gt_frames: list[tuple[str, Path]],
        shape: tuple[int, int],
        required: bool,
        hold: bool = False,
    ) -> np.ndarray | None:
        """Read ``uint8[T, H, W]`` class maps for the ground-truth frames, or ``None``;
        with ``hold`` a missing frame repeats the one before."""
        if root is None:
            return None
        frames: list[np.ndarray] = []
        missing = 0
        for name, gt_path in gt_frames:
            path = root / sequence / f"{name}.png"
            if not path.is_file():
                if required:
                    raise InputDataError(
                        path, f"ground-truth semantic map missing for annotated frame {gt_path}"
                    )
                missing += 1
                frames.append(frames[-1] if hold and frames else np.zeros(shape, np.uint8))
                continue
            classes = read_semantic_png(path)
            _check_size(path, classes.shape, gt_path, shape)
            frames.append(classes)
        if missing:
            LOGGER.warning(
                "sequence %s: %d predicted semantic frame(s) missing from %s read as %s",
                sequence,
                missing,
                root,
                "the latest earlier one" if hold else "background",
            )
        return np.stack(frames)


def _size(shape: tuple[int, ...]) -> str:
    """``(H, W)`` -> ``'WxH'``."""
    return f"{shape[1]}x{shape[0]}"


def _check_size(
    path: Path, shape: tuple[int, ...], gt_path: Path, gt_shape: tuple[int, ...]
) -> None:
    """Raise :class:`InputDataError` naming ``path`` when its size differs from the GT's."""
    if shape != gt_shape:
        raise InputDataError(
            path,
            f"size {_size(shape)} differs from ground truth {gt_path} ({_size(gt_shape)}); "
            "write predictions at the annotation resolution",
        )
