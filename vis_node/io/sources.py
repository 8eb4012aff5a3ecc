"""Open any supported input as a stream of frames, detecting its kind from the path."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame
from vis_node.io.readers import (
    DEFAULT_FPS,
    IMAGE_SUFFIXES,
    DavisRoot,
    is_davis_root,
    read_image_folder,
    read_video,
)
from vis_node.io.rosbag import read_bag_frames

BAG_SUFFIXES: frozenset[str] = frozenset({".mcap", ".db3"})
"""Suffixes of bare rosbag2 storage files."""


class SourceKind(enum.Enum):
    """Kinds of input :func:`open_source` reads."""

    VIDEO = "video"
    IMAGE_FOLDER = "image_folder"
    DAVIS_ROOT = "davis_root"
    ROSBAG = "rosbag"


def detect_source(path: str | Path) -> SourceKind:
    """Decide what kind of input ``path`` is.

    Rules: a folder with ``metadata.yaml`` or a ``.mcap`` / ``.db3`` file is a
    rosbag2; a folder with ``JPEGImages/480p`` is a DAVIS root; any other folder is
    an image folder; any other file is a video.

    Raises
    ------
    InputDataError
        If ``path`` does not exist or is a single image file.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(
            path, "input not found; pass a video, image folder, DAVIS root or rosbag2"
        )
    if path.is_dir():
        if (path / "metadata.yaml").is_file():
            return SourceKind.ROSBAG
        if is_davis_root(path):
            return SourceKind.DAVIS_ROOT
        return SourceKind.IMAGE_FOLDER
    if path.suffix.lower() in BAG_SUFFIXES:
        return SourceKind.ROSBAG
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise InputDataError(path, "a single image is not a video; pass the folder that holds it")
    return SourceKind.VIDEO


def open_source(
    path: str | Path, *, topic: str | None = None, fps: float = DEFAULT_FPS
) -> Iterator[Frame]:
    """Open a video file, image folder, DAVIS root or rosbag2 as frames.

    Parameters
    ----------
    path:
        The input; its kind is found by :func:`detect_source`.
    topic:
        Image topic for rosbag2 inputs (needed when the bag has several).
    fps:
        Frame rate for timestamps of image folders and DAVIS roots (frames per
        second); videos and bags carry their own clocks.

    Returns
    -------
    Iterator[Frame]
        ``uint8[H, W, 3]`` RGB frames. A DAVIS root yields its sequences one after
        another (``Frame.sequence`` tells them apart; indices restart at 0).

    Raises
    ------
    InputDataError
        At once if the input is missing, empty or of the wrong kind; while
        iterating if a frame cannot be decoded.
    """
    kind = detect_source(path)
    if topic is not None and kind is not SourceKind.ROSBAG:
        raise InputDataError(
            path, f"--topic applies to rosbag2 inputs only, this is a {kind.value}"
        )
    if kind is SourceKind.ROSBAG:
        return read_bag_frames(path, topic=topic)
    if kind is SourceKind.DAVIS_ROOT:
        root = DavisRoot(path)
        return chain.from_iterable(root.frames(seq, fps=fps) for seq in root.sequences)
    if kind is SourceKind.IMAGE_FOLDER:
        return read_image_folder(path, fps=fps)
    return read_video(path)
