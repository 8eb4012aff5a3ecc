"""Label-image PNGs: instance-id maps and semantic class maps.

Conventions (shared by readers, writers and ``vsis eval``):

* An *instance-id map* is ``uint16[H, W]``: 0 = background, ``k > 0`` = instance /
  track ``k``. It is written as an 8-bit palette PNG (DAVIS style, viewable) when every
  id is < 255, else as a 16-bit greyscale PNG. Readers accept both.
* In palette PNGs (DAVIS-2017 style) the value 255 marks *void* pixels.
* A binary 0/255 greyscale PNG (DAVIS-2016 style) reads as a single object: 255 -> 1.
* A *semantic map* is ``uint8[H, W]`` of class ids (0 = background), written as an
  8-bit greyscale PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vis_node.structures.errors import InputDataError

VOID_ID = 255
"""Label value marking void (ignored) pixels in palette annotations."""

MAX_LABEL_ID = 65535
"""Largest id a 16-bit instance-id image holds."""


def wrap_track_ids(ids: np.ndarray | int) -> np.ndarray:
    """Track ids as stored in 16-bit id images: 1..65535 repeat, 0 stays background.

    Track ids grow without bound on long streams; label images wrap them instead of
    letting id 65536 become 0. Messages and results JSON keep the full id.

    Parameters
    ----------
    ids:
        Non-negative integer ids (any shape).

    Returns
    -------
    numpy.ndarray
        ``uint16`` ids of the same shape.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind == "u" and ids.dtype.itemsize <= 2:
        return ids.astype(np.uint16, copy=False)
    ids = ids.astype(np.int64)
    return np.where(ids > 0, (ids - 1) % MAX_LABEL_ID + 1, 0).astype(np.uint16)


def _davis_palette() -> list[int]:
    """The 256-colour PASCAL/DAVIS palette, flattened to ``[r0, g0, b0, r1, ...]``."""
    palette: list[int] = []
    for label in range(256):
        r = g = b = 0
        c = label
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


DAVIS_PALETTE = _davis_palette()


def _read_png(path: Path) -> tuple[str, np.ndarray]:
    """PIL mode and pixel array of a PNG; unreadable files raise :class:`InputDataError`."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.mode, np.array(image)
    except FileNotFoundError:
        raise InputDataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputDataError(path, f"not a readable PNG ({exc})") from None


def read_label_png(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an instance-id PNG.

    Parameters
    ----------
    path:
        Palette, 8-bit greyscale or 16-bit greyscale PNG.

    Returns
    -------
    ids, void:
        ``uint16[H, W]`` ids (0 = background) and a ``bool[H, W]`` void mask, or
        ``None`` when the file marks no void pixels.

    Raises
    ------
    InputDataError
        If the file is missing, corrupt, or is a colour (RGB) image.
    """
    path = Path(path)
    mode, array = _read_png(path)
    if array.ndim != 2:
        raise InputDataError(
            path, f"label PNGs must be single-channel (palette or greyscale), got mode {mode}"
        )
    if mode == "P":
        void = array == VOID_ID
        ids = np.where(void, 0, array).astype(np.uint16)
        return ids, (void if void.any() else None)
    if mode in ("L", "1"):
        if mode == "1":
            return array.astype(np.uint16), None
        values = np.unique(array)
        if set(values.tolist()) <= {0, 255}:
            return (array == 255).astype(np.uint16), None
        return array.astype(np.uint16), None
    if mode.startswith("I"):
        if array.min() < 0 or array.max() > np.iinfo(np.uint16).max:
            raise InputDataError(path, "16-bit label values out of range 0..65535")
        return array.astype(np.uint16), None
    raise InputDataError(path, f"unsupported PNG mode {mode} for a label image")


def write_instance_png(path: str | Path, ids: np.ndarray) -> None:
    """Write an instance-id map (palette PNG when all ids < 255, else 16-bit).

    Parameters
    ----------
    path:
        Output file; parent folders are created.
    ids:
        ``int[H, W]`` instance ids, 0 = background.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be 2-D [H, W], got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.uint16).max):
        raise ValueError("instance ids must lie in 0..65535")
    if ids.size == 0 or ids.max() < VOID_ID:
        image = Image.fromarray(ids.astype(np.uint8), mode="P")
        image.putpalette(DAVIS_PALETTE)
    else:
        image = Image.fromarray(ids.astype(np.uint16))
    image.save(path)


def read_semantic_png(path: str | Path) -> np.ndarray:
    """Read a semantic class-id PNG as ``uint8[H, W]`` (palette indices or grey values)."""
    path = Path(path)
    _, array = _read_png(path)
    if array.ndim != 2:
        raise InputDataError(path, "semantic PNGs must be single-channel class-id images")
    return array.astype(np.uint8)


def write_semantic_png(path: str | Path, classes: np.ndarray) -> None:
    """Write a ``uint8[H, W]`` class-id map as 8-bit greyscale PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"classes must be 2-D [H, W], got shape {classes.shape}")
    if classes.size and (classes.min() < 0 or classes.max() > 255):
        raise ValueError("class ids must lie in 0..255")
    Image.fromarray(classes.astype(np.uint8), mode="L").save(path)


def read_label_folder(root: str | Path) -> dict[str, list[tuple[str, Path]]]:
    """Index a ``<root>/<seq>/<frame>.png`` tree.

    Returns
    -------
    dict
        Sequence name -> list of ``(frame_name, png_path)`` sorted by frame name.

    Raises
    ------
    InputDataError
        If ``root`` is not a folder or holds no sequence folders with PNGs.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(root, "not a folder of <sequence>/<frame>.png label images")
    index: dict[str, list[tuple[str, Path]]] = {}
    for seq_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        pngs = sorted(seq_dir.glob("*.png"))
        if pngs:
            index[seq_dir.name] = [(p.stem, p) for p in pngs]
    if not index:
        raise InputDataError(root, "no <sequence>/<frame>.png files found")
    return index
