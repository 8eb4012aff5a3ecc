"""Frame readers for video files, image folders and DAVIS-style dataset roots.

Every reader validates its input when called (missing or empty inputs raise at once)
and returns an iterator of :class:`~vis_node.structures.frames.Frame`; decoding errors met
while iterating raise :class:`~vis_node.structures.errors.InputDataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from vis_node.structures.errors import InputDataError
from vis_node.structures.frames import Frame, freeze
from vis_node.io.labels import read_label_png

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
"""File suffixes (lower case) read as frames from image folders."""

DEFAULT_FPS = 30.0
"""Frame rate assumed for sources without timestamps, in frames per second."""


def _stamp_ns(index: int, fps: float) -> int:
    """Timestamp in nanoseconds of frame ``index`` at ``fps`` frames per second."""
    return round(index * 1e9 / fps)


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file fully.

    Parameters
    ----------
    path:
        JPEG, PNG or BMP file.

    Returns
    -------
    numpy.ndarray
        ``uint8[H, W, 3]`` RGB pixels.

    Raises
    ------
    InputDataError
        If the file is missing, not an image, or truncated.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise InputDataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputDataError(
            path, f"not a readable image, re-export or remove it ({exc})"
        ) from None
    return np.asarray(rgb, dtype=np.uint8)


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder, sorted by name.

    Parameters
    ----------
    folder:
        Folder holding ``.jpg``, ``.jpeg``, ``.png`` or ``.bmp`` files (any case).

    Returns
    -------
    list of pathlib.Path
        The image files, sorted by file name.

    Raises
    ------
    InputDataError
        If ``folder`` is not a folder or holds no image files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(folder, "folder not found; pass a folder of image files")
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )
    if not files:
        raise InputDataError(
            folder, f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder"
        )
    return files


def read_image_folder(
    folder: str | Path, *, fps: float = DEFAULT_FPS, sequence: str | None = None
) -> Iterator[Frame]:
    """Read a folder of images as one video.

    Parameters
    ----------
    folder:
        Folder of image files; frames are taken in file-name order.
    fps:
        Frame rate used for timestamps: ``stamp_ns = index / fps`` seconds.
    sequence:
        Sequence name given to the frames; defaults to the folder name.

    Returns
    -------
    Iterator[Frame]
        One frame per image, named by the file stem.

    Raises
    ------
    InputDataError
        At once if the folder is missing or empty; while iterating if an image is
        unreadable.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    folder = Path(folder)
    files = list_images(folder)
    name = sequence if sequence is not None else folder.name
    return _iterate_images(files, fps, name)


def _iterate_images(files: list[Path], fps: float, sequence: str) -> Iterator[Frame]:
    """Decode ``files`` lazily into frames."""
    for index, path in enumerate(files):
        yield Frame(
            image=freeze(read_image(path)),
            stamp_ns=_stamp_ns(index, fps),
            index=index,
            name=path.stem,
            sequence=sequence,
        )


def read_video(
    path: str | Path, *, fps: float | None = None, sequence: str | None = None
) -> Iterator[Frame]:
    """Read a video file with OpenCV.

    Parameters
    ----------
    path:
        Any video file OpenCV's FFmpeg backend decodes (mp4, avi, mkv, ...).
    fps:
        If given, timestamps are ``index / fps``; otherwise they come from the
        container (``CAP_PROP_POS_MSEC``), falling back to the stream frame rate
        (or 30) when the container gives none.
    sequence:
        Sequence name given to the frames; defaults to the file stem.

    Returns
    -------
    Iterator[Frame]
        Frames named ``00000``, ``00001``, ...

    Raises
    ------
    InputDataError
        At once if the file is missing or is not a decodable video.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputDataError(path, "not a video file OpenCV can open (check the format)")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise InputDataError(path, "no frame could be decoded; the video is empty or corrupt")
    stream_fps = capture.get(cv2.CAP_PROP_FPS)
    fallback_fps = fps or (stream_fps if stream_fps > 0 else DEFAULT_FPS)
    name = sequence if sequence is not None else path.stem
    return _iterate_video(capture, first, fps is None, fallback_fps, name)


def _iterate_video(
    capture: cv2.VideoCapture,
    first: np.ndarray,
    use_container_clock: bool,
    fps: float,
    sequence: str,
) -> Iterator[Frame]:
    """Yield the already decoded ``first`` frame, then the rest of ``capture``."""
    try:
        image: np.ndarray | None = first
        index = 0
        last_stamp = -1
        while image is not None:
            stamp = _stamp_ns(index, fps)
            if use_container_clock:
                container = round(capture.get(cv2.CAP_PROP_POS_MSEC) * 1e6)
                if container > last_stamp and (container > 0 or index == 0):
                    stamp = container
            last_stamp = stamp
            yield Frame(
                image=freeze(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)),
                stamp_ns=stamp,
                index=index,
                name=f"{index:05d}",
                sequence=sequence,
            )
            index += 1
            ok, image = capture.read()
            if not ok:
                image = None
    finally:
        capture.release()


class DavisRoot:
    """A DAVIS-style dataset root.

    Layout: ``<root>/JPEGImages/<resolution>/<seq>/<frame>.jpg`` and, optionally,
    ``<root>/Annotations/<resolution>/<seq>/<frame>.png`` holding binary 0/255 masks
    (DAVIS-2016) or palette instance-id PNGs (DAVIS-2017, 255 = void).

    Parameters
    ----------
    root:
        The dataset root folder.
    resolution:
        Resolution folder name under ``JPEGImages`` and ``Annotations``.

    Raises
    ------
    InputDataError
        If ``<root>/JPEGImages/<resolution>`` holds no sequence folders.
    """

    def __init__(self, root: str | Path, *, resolution: str = "480p") -> None:
        self.root = Path(root)
        self.image_root = self.root / "JPEGImages" / resolution
        self.annotation_root = self.root / "Annotations" / resolution
        if not self.image_root.is_dir():
            raise InputDataError(
                self.root,
                f"not a DAVIS-style root: JPEGImages/{resolution}/<sequence>/ folder missing",
            )
        self.sequences: list[str] = sorted(p.name for p in self.image_root.iterdir() if p.is_dir())
        """Sequence names, sorted."""
        if not self.sequences:
            raise InputDataError(self.image_root, "no sequence folders in this DAVIS root")

    def _check(self, sequence: str) -> None:
        """Raise if ``sequence`` is not part of the root."""
        if sequence not in self.sequences:
            raise InputDataError(
                self.image_root / sequence,
                f"unknown sequence; this root has {', '.join(self.sequences)}",
            )

    def frames(self, sequence: str, *, fps: float = DEFAULT_FPS) -> Iterator[Frame]:
        """Frames of one sequence (timestamps ``index / fps``).

        Parameters
        ----------
        sequence:
            One of :attr:`sequences`.
        fps:
            Frame rate used for timestamps, in frames per second.

        Returns
        -------
        Iterator[Frame]
            Frames in file-name order.
        """
        self._check(sequence)
        return read_image_folder(self.image_root / sequence, fps=fps, sequence=sequence)

    def has_annotations(self, sequence: str) -> bool:
        """Whether ``sequence`` has an annotation folder with at least one PNG."""
        folder = self.annotation_root / sequence
        return folder.is_dir() and any(folder.glob("*.png"))

    def annotations(self, sequence: str) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        """Annotations of one sequence, in frame-name order.

        Parameters
        ----------
        sequence:
            One of :attr:`sequences`.

        Returns
        -------
        Iterator[tuple[str, numpy.ndarray, numpy.ndarray | None]]
            ``(frame_name, ids, void)``: ``uint16[H, W]`` instance ids (0 =
            background; a binary mask reads as id 1) and a ``bool[H, W]`` void mask
            or ``None``, as from :func:`vis_node.io.labels.read_label_png`.

        Raises
        ------
        InputDataError
            At once if the sequence has no annotation PNGs.
        """
        self._check(sequence)
        folder = self.annotation_root / sequence
        pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if not pngs:
            raise InputDataError(folder, "no annotation PNGs for this sequence")
        return ((p.stem, *read_label_png(p)) for p in pngs)


def is_davis_root(path: str | Path, *, resolution: str = "480p") -> bool:
    """Whether ``path`` looks like a DAVIS-style root (has ``JPEGImages/<resolution>``)."""
    return (Path(path) / "JPEGImages" / resolution).is_dir()
