"""The bags of a replay: which to play, their frames and their ground truth (no ROS import).

``vsis replay`` (:mod:`vis_node.ros.replay`) plays each bag's frames into the graph and
writes the bag's ground-truth topics beside the outputs, so they can be scored as
``vsis run`` outputs are.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vis_node.io.labels import write_instance_png, write_semantic_png
from vis_node.io.rosbag import (
    GT_IDS_TOPIC, GT_SEMANTICS_TOPIC, image_topics, read_bag_frames, read_bag_labels,
)
from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame


def bag_sequences(path: Path) -> list[Path]:
    """The bags to replay: ``path`` itself, or every bag folder directly inside it."""
    if (path / "metadata.yaml").is_file() or path.is_file():
        return [path]
    if not path.is_dir():
        raise InputDataError(path, "does not exist; pass a bag or a folder of bags")
    bags = sorted(p for p in path.iterdir() if (p / "metadata.yaml").is_file())
    if not bags:
        raise InputDataError(path, "no rosbag2 here; pass a bag or a folder of bags")
    return bags


def check_bags(bags: list[Path], topic: str | None) -> None:
    """Make sure every bag has a frame to replay, before any graph is started.

    Raises
    ------
    InputDataError
        If a bag is unreadable, its image topic is ambiguous, or the topic holds no
        messages.
    """
    for path in bags:
        if next(iter(replay_frames(path, topic)), None) is None:
            raise InputDataError(
                path, "its image topic holds no messages; record some frames, or pass --topic"
            )


def replay_frames(bag: Path, topic: str | None) -> Iterator[Frame]:
    """Frames of one bag, named by index and with the bag folder as sequence.

    Without ``topic``, the bag's one image topic that is not ground truth is used.
    """
    for index, frame in enumerate(read_bag_frames(bag, topic=topic)):
        yield Frame(frame.image, frame.stamp_ns, index, f"{index:05d}", bag.name)


def write_ground_truth(bag: Path, out: Path) -> bool:
    """Write the bag's ground-truth topics as ``out/gt[_semantics]/<seq>/<frame>.png``."""
    topics = image_topics(bag)
    if GT_IDS_TOPIC not in topics:
        return False
    for index, (_, ids) in enumerate(read_bag_labels(bag, topic=GT_IDS_TOPIC)):
        write_instance_png(out / "gt" / bag.name / f"{index:05d}.png", ids)
    if GT_SEMANTICS_TOPIC in topics:
        for index, (_, classes) in enumerate(read_bag_labels(bag, topic=GT_SEMANTICS_TOPIC)):
            write_semantic_png(out / "gt_semantics" / bag.name / f"{index:05d}.png", classes)
    return True
