"""Writer of the ``vsis run`` output layout.

::

    OUT/instances/<seq>/<frame>.png   track ids (palette PNG, 16-bit past 254 ids)
    OUT/semantics/<seq>/<frame>.png   class ids (8-bit greyscale)
    OUT/overlay/<seq>.mp4             frames with masks and "id class score" tags
    OUT/results.json                  YouTube-VIS results: one entry per track
    OUT/timings.json                  per-stage milliseconds (mean, median, p90)
    OUT/label_map.json                {"<class id>": "<name>"}: the model's classes
                                      (the map the ROS label_map topic carries)

In ``results.json`` video ids are 1, 2, ... in the order the sequences were written;
``category_id`` is the track's unified label in the last frame where it has pixels
in the instance PNG (class ids count from 1, as the categories of a YouTube-VIS
annotation built from the same class names without "background"); ``score`` is the
track's mean detection score times that label's confidence; each frame's RLE is the
track's pixels in the instance PNG (``None`` where it has none). RLEs are encoded
frame by frame so long videos do not hold every mask in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from vis_node.io.labels import wrap_track_ids, write_instance_png, write_semantic_png
from vis_node.io.overlay import InstanceLabel, OverlayVideoWriter, draw_overlay
from vis_node.io.ytvis_json import encode_rle, write_json
from vis_node.structures.results import FrameResult

OUTPUT_ENTRIES: tuple[str, ...] = (
    "instances",
    "semantics",
    "overlay",
    "results.json",
    "timings.json",
    "label_map.json",
)
"""What :class:`OutputWriter` creates directly under its root (``--overwrite`` removes it)."""


@dataclass
class _TrackRecord:
    """Per-track accumulator of one sequence."""

    rles: dict[int, dict[str, object]] = field(default_factory=dict)
    score_sum: float = 0.0
    frames: int = 0
    label: int = 0
    confidence: float = 0.0


class OutputWriter:
    """Write :class:`FrameResult` streams (one or more sequences) to ``root``.

    Use as a context manager, or call :meth:`close` at the end, which writes
    ``results.json`` and ``timings.json``.

    Parameters
    ----------
    root:
        Output folder (created).
    class_names:
        Class names indexed by class id (0 = background), for the overlay tags.
    fps:
        Frame rate of the overlay videos; ``None`` (default) keeps the source's, taken
        from the frame stamps.
    overlay:
        Write ``overlay/<seq>.mp4``.
    metadata:
        Extra keys stored in ``timings.json`` (model, runtime, mode, ...).
    """

    def __init__(
        self,
        root: str | Path,
        class_names: tuple[str, ...],
        *,
        fps: float | None = None,
        overlay: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.class_names = tuple(class_names)
        self.fps = fps
        self.overlay = overlay
        self.metadata = dict(metadata or {})
        self._results: list[dict[str, object]] = []
        self._timings: dict[str, list[float]] = {}
        self._sequence: str | None = None
        self._video_id = 0
        self._frame_count = 0
        self._tracks: dict[int, _TrackRecord] = {}
        self._video: OverlayVideoWriter | None = None
        self._id_offset = 0
        self._max_id = 0
        self.frames_written = 0

    def __enter__(self) -> OutputWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, result: FrameResult) -> None:
        """Write one frame's PNGs and overlay frame; accumulate its tracks.

        A frame of a new sequence (``result.frame.sequence`` changed) finishes the
        previous sequence.
        """
        frame = result.frame
        if frame.sequence != self._sequence:
            self._finish_sequence()
            self._sequence = frame.sequence
            self._video_id += 1
            self._id_offset = self._max_id = 0
            if self.overlay:
                self._video = OverlayVideoWriter(
                    self.root / "overlay" / f"{frame.sequence}.mp4", fps=self.fps
                )
        track_ids = result.instances.track_ids + self._id_offset
        id_map = result.id_map
        if self._id_offset:
            shifted = wrap_track_ids(id_map.astype(np.int64) + self._id_offset)
            id_map = np.where(id_map > 0, shifted, 0).astype(id_map.dtype)
        self._max_id = max(self._max_id, int(track_ids.max(initial=0)))
        write_instance_png(self.root / "instances" / frame.sequence / f"{frame.name}.png", id_map)
        write_semantic_png(
            self.root / "semantics" / frame.sequence / f"{frame.name}.png", result.semantic_map
        )
        tags: dict[int, InstanceLabel] = {}
        for track_id, label, confidence, score in zip(
            track_ids.tolist(),
            result.labels.tolist(),
            result.confidences.tolist(),
            result.instances.scores.tolist(),
        ):
            mask = id_map == wrap_track_ids(track_id)
            record = self._tracks.setdefault(track_id, _TrackRecord())
            if mask.any():
                record.rles[self._frame_count] = encode_rle(mask)
                record.label = int(label)
                record.confidence = float(confidence)
            record.score_sum += score
            record.frames += 1
            tags[track_id] = InstanceLabel(self._class_name(int(label)), float(confidence))
        if self._video is not None:
            self._video.write(draw_overlay(frame.image, id_map, tags), frame.stamp_ns)
        for stage, ms in result.timings.items():
            self._timings.setdefault(stage, []).append(float(ms))
        self._frame_count += 1
        self.frames_written += 1

    def restart_tracks(self) -> None:
        """The pipeline restarted its track ids inside the current sequence (after a
        frame-size change): later ids are shifted past every id written so far, so a
        new track never takes an earlier track's id in the PNGs or ``results.json``."""
        self._id_offset = self._max_id

    def close(self) -> None:
        """Finish the last sequence and write ``results.json`` and ``timings.json``."""
        self._finish_sequence()
        write_json(self.root / "results.json", self._results)
        write_json(
            self.root / "label_map.json",
            {str(class_id): name for class_id, name in enumerate(self.class_names)},
        )
        stages = {
            stage: {
                "mean_ms": float(np.mean(values)),
                "median_ms": float(np.median(values)),
                "p90_ms": float(np.percentile(values, 90)),
            }
            for stage, values in self._timings.items()
        }
        total = [sum(v) for v in zip(*self._timings.values())] if self._timings else []
        summary = {
            **self.metadata,
            "frames": self.frames_written,
            "sequences": self._video_id,
            "stages": stages,
            "total_mean_ms": float(np.mean(total)) if total else 0.0,
        }
        write_json(self.root / "timings.json", summary)

    def _class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)

    def _finish_sequence(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None
        for record in self._tracks.values():
            if not record.rles:
                continue
            self._results.append(
                {
                    "video_id": self._video_id,
                    "category_id": record.label,
                    "score": record.score_sum / record.frames * record.confidence,
                    "segmentations": [record.rles.get(index) for index in range(self._frame_count)],
                }
            )
        self._tracks = {}
        self._frame_count = 0
