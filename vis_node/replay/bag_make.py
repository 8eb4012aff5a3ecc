"""Turn a video, image folder or DAVIS-style root into rosbag2 files (no ROS import).

Each bag holds the camera images and, when the input has ground truth (a DAVIS-style
root with ``Annotations`` and optionally ``Semantics``), the ground-truth label images
on their own topics with the same stamps, so a replay can be scored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame
from vis_node.io.labels import read_label_png, read_semantic_png
from vis_node.io.readers import DEFAULT_FPS, DavisRoot
from vis_node.io.bag_writer import BagFormat, ImageBagWriter
from vis_node.io.rosbag import GT_IDS_TOPIC, GT_SEMANTICS_TOPIC
from vis_node.io.sources import SourceKind, detect_source, open_source

IMAGE_TOPIC = "/camera/image_raw"
"""Default camera topic written into bags."""


@dataclass(frozen=True)
class BagSpec:
    """How to write the bags.

    Attributes
    ----------
    fmt:
        ``"mcap"`` or ``"sqlite3"``.
    topic:
        Camera image topic.
    encoding:
        Image encoding: a raw one (``rgb8``, ``bgr8``, ...) or ``jpeg`` / ``png`` for
        ``sensor_msgs/CompressedImage``.
    fps:
        Frame rate for stamps of image folders and DAVIS roots.
    frame_id:
        ``header.frame_id`` of every message.
    """

    fmt: BagFormat = "mcap"
    topic: str = IMAGE_TOPIC
    encoding: str = "rgb8"
    fps: float = DEFAULT_FPS
    frame_id: str = "camera"


def _ground_truth(root: DavisRoot, sequence: str, name: str) -> tuple[Path | None, Path | None]:
    """Annotation and semantics PNG paths of one frame (``None`` where absent)."""
    ids = root.annotation_root / sequence / f"{name}.png"
    semantics = root.root / "Semantics" / root.image_root.name / sequence / f"{name}.png"
    return (ids if ids.is_file() else None, semantics if semantics.is_file() else None)


def _write_bag(
    frames: Iterator[Frame], out: Path, spec: BagSpec, root: DavisRoot | None, label: str
) -> int:
    """Write one bag; returns the number of frames written."""
    count = 0
    with ImageBagWriter(out, fmt=spec.fmt, frame_id=spec.frame_id) as bag:
        bag.add_topic(spec.topic, spec.encoding)
        gt_topics: set[str] = set()
        for frame in tqdm(frames, desc=f"bag {label}", unit="frame"):
            stamp = frame.stamp_ns
            bag.write(spec.topic, stamp, frame.image)
            if root is not None:
                ids_path, semantics_path = _ground_truth(root, frame.sequence, frame.name)
                if ids_path is not None:
                    if GT_IDS_TOPIC not in gt_topics:
                        bag.add_topic(GT_IDS_TOPIC, "mono16")
                        gt_topics.add(GT_IDS_TOPIC)
                    bag.write(GT_IDS_TOPIC, stamp, read_label_png(ids_path)[0])
                if semantics_path is not None:
                    if GT_SEMANTICS_TOPIC not in gt_topics:
                        bag.add_topic(GT_SEMANTICS_TOPIC, "mono8")
                        gt_topics.add(GT_SEMANTICS_TOPIC)
                    bag.write(GT_SEMANTICS_TOPIC, stamp, read_semantic_png(semantics_path))
            count += 1
    if count == 0:
        raise InputDataError(out, "the input yielded no frames; nothing was written")
    return count


def make_bags(
    source: str | Path, out: str | Path, *, spec: BagSpec = BagSpec(), sequence: str | None = None
) -> dict[str, Path]:
    """Write rosbag2 files from a video, image folder or DAVIS-style root.

    Parameters
    ----------
    source:
        The input.
    out:
        Bag folder to create. For a DAVIS root with several sequences (and no
        ``sequence`` chosen) ``out`` becomes a folder with one bag per sequence,
        ``out/<seq>``.
    spec:
        Topic, encoding, storage format and clock settings.
    sequence:
        Only this sequence of a DAVIS root.

    Returns
    -------
    dict
        Sequence name -> bag folder written.

    Raises
    ------
    InputDataError
        Unreadable input, unknown sequence, or an input that is already a bag.
    FileExistsError
        If a bag folder to write exists already.
    """
    source, out = Path(source), Path(out)
    kind = detect_source(source)
    if kind is SourceKind.ROSBAG:
        raise InputDataError(
            source, "this is a rosbag2 already; pass a video, image folder or DAVIS root"
        )
    if kind is not SourceKind.DAVIS_ROOT:
        if sequence is not None:
            raise InputDataError(source, "--sequence applies to DAVIS-style roots only")
        _write_bag(open_source(source, fps=spec.fps), out, spec, None, source.stem)
        return {source.stem: out}
    root = DavisRoot(source)
    if sequence is not None and sequence not in root.sequences:
        raise InputDataError(
            source, f"no sequence {sequence!r}; this root has {', '.join(root.sequences)}"
        )
    sequences = [sequence] if sequence is not None else root.sequences
    written: dict[str, Path] = {}
    for name in sequences:
        target = out if len(sequences) == 1 else out / name
        _write_bag(root.frames(name, fps=spec.fps), target, spec, root, name)
        written[name] = target
    return written
