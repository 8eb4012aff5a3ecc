"""YouTube-VIS JSON files: ground-truth annotations and results (predictions).

Masks are stored as COCO compressed RLE (``pycocotools.mask.encode`` on a
Fortran-order ``uint8`` array, ``counts`` bytes decoded to ``str``). A frame where a
track is absent holds ``None`` (``null``) in ``segmentations``, ``bboxes`` and ``areas``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from vis_node.structures.geometry import mask_box


def encode_rle(mask: np.ndarray) -> dict[str, object]:
    """Encode one binary mask as COCO compressed RLE.

    Parameters
    ----------
    mask:
        ``bool[H, W]`` (or 0/1 integer) mask.

    Returns
    -------
    dict
        ``{"size": [H, W], "counts": str}``, JSON-serialisable.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H, W], got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": rle["counts"].decode("ascii"),
    }


def decode_rle(rle: Mapping[str, object]) -> np.ndarray:
    """Decode a compressed (``str`` or ``bytes`` counts) RLE to a ``bool[H, W]`` mask."""
    counts = rle["counts"]
    coco = {
        "size": list(rle["size"]),
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }
    return mask_utils.decode(coco).astype(bool)


def mask_bbox(mask: np.ndarray) -> list[float]:
    """Tight ``[x, y, w, h]`` box in pixels of a non-empty ``bool[H, W]`` mask."""
    box = mask_box(mask)
    if box is None:
        raise ValueError("mask is empty; an absent frame has no box")
    x1, y1, x2, y2 = box
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


@dataclass(frozen=True)
class YtvisVideo:
    """One video entry of an annotation file.

    Attributes
    ----------
    id:
        Video id (1-based by convention).
    name:
        Sequence name.
    width, height:
        Frame size in pixels.
    file_names:
        Frame paths relative to the image root, e.g. ``"seq/00000.jpg"``.
    """

    id: int
    name: str
    width: int
    height: int
    file_names: tuple[str, ...]


@dataclass(frozen=True)
class YtvisTrack:
    """One object track: a category and a mask (or ``None``) per frame.

    Attributes
    ----------
    video_id:
        Id of the :class:`YtvisVideo` it belongs to.
    category_id:
        Category id (1-based).
    masks:
        One ``bool[H, W]`` mask or ``None`` (absent) per frame of the video.
    score:
        Confidence in [0, 1]; used for results files only.
    """

    video_id: int
    category_id: int
    masks: tuple[np.ndarray | None, ...]
    score: float = 1.0


def tracks_from_id_maps(
    ids: np.ndarray, categories: Mapping[int, int], video_id: int
) -> list[YtvisTrack]:
    """Split an instance-id video into one track per instance.

    Parameters
    ----------
    ids:
        ``uint16[T, H, W]`` instance ids (0 = background).
    categories:
        Instance id -> category id; only these instances become tracks, in id order.
    video_id:
        Video id stored in each track.

    Returns
    -------
    list of YtvisTrack
        Tracks whose frames without pixels of the instance are ``None``.
    """
    tracks = []
    for instance_id in sorted(categories):
        masks = tuple((m if m.any() else None) for m in (ids == instance_id))
        tracks.append(YtvisTrack(video_id, int(categories[instance_id]), masks))
    return tracks


def _segmentations(track: YtvisTrack) -> list[dict[str, object] | None]:
    """Per-frame RLEs (``None`` where absent) of a track."""
    return [None if m is None or not np.any(m) else encode_rle(m) for m in track.masks]


def annotation_dict(
    videos: Sequence[YtvisVideo], tracks: Iterable[YtvisTrack], categories: Sequence[str]
) -> dict[str, object]:
    """Build a YouTube-VIS annotation (ground truth) document.

    Parameters
    ----------
    videos:
        The videos.
    tracks:
        Ground-truth tracks; annotation ids are assigned 1, 2, ... in order.
    categories:
        Category names; category id = index + 1.

    Returns
    -------
    dict
        ``{"info", "licenses", "videos", "annotations", "categories"}`` with per-frame
        ``segmentations`` (RLE), ``bboxes`` (``[x, y, w, h]``) and ``areas`` (pixels),
        ``None`` where the object is absent.
    """
    sizes = {v.id: (v.height, v.width, len(v.file_names)) for v in videos}
    annotations = []
    for annotation_id, track in enumerate(tracks, start=1):
        height, width, length = sizes[track.video_id]
        if len(track.masks) != length:
            raise ValueError(
                f"track of video {track.video_id} has {len(track.masks)} frames, video has {length}"
            )
        present = [m is not None and bool(np.any(m)) for m in track.masks]
        annotations.append(
            {
                "id": annotation_id,
                "video_id": track.video_id,
                "category_id": track.category_id,
                "iscrowd": 0,
                "height": height,
                "width": width,
                "length": 1,
                "segmentations": _segmentations(track),
                "bboxes": [
                    mask_bbox(m) if p else None for m, p in zip(track.masks, present, strict=True)
                ],
                "areas": [
                    float(np.count_nonzero(m)) if p else None
                    for m, p in zip(track.masks, present, strict=True)
                ],
            }
        )
    return {
        "info": {"description": "VSIS YouTube-VIS style annotations"},
        "licenses": [],
        "videos": [
            {
                "id": v.id,
                "name": v.name,
                "width": v.width,
                "height": v.height,
                "length": len(v.file_names),
                "file_names": list(v.file_names),
            }
            for v in videos
        ],
        "annotations": annotations,
        "categories": [
            {"id": index + 1, "name": name, "supercategory": "object"}
            for index, name in enumerate(categories)
        ],
    }


def results_list(tracks: Iterable[YtvisTrack]) -> list[dict[str, object]]:
    """Build a YouTube-VIS results list (one entry per predicted track).

    Returns
    -------
    list of dict
        ``{"video_id", "category_id", "score", "segmentations"}`` with one RLE or
        ``None`` per frame.
    """
    return [
        {
            "video_id": track.video_id,
            "category_id": track.category_id,
            "score": float(track.score),
            "segmentations": _segmentations(track),
        }
        for track in tracks
    ]


def write_json(path: str | Path, document: object) -> Path:
    """Write ``document`` as compact JSON, creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, separators=(",", ":"))
    return path


def write_annotation_json(
    path: str | Path,
    videos: Sequence[YtvisVideo],
    tracks: Iterable[YtvisTrack],
    categories: Sequence[str],
) -> Path:
    """Write a YouTube-VIS annotation file (see :func:`annotation_dict`)."""
    return write_json(path, annotation_dict(videos, tracks, categories))


def write_results_json(path: str | Path, tracks: Iterable[YtvisTrack]) -> Path:
    """Write a YouTube-VIS results file (see :func:`results_list`)."""
    return write_json(path, results_list(tracks))
