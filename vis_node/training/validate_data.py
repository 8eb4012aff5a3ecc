"""``vsis train CONFIG --validate-data``: check every data source before training.

Each source of the config (``data``, ``validation``, ``test``) is read the way training
reads it, file by file, and every defect is reported with the file it concerns instead
of stopping at the first: missing or unreadable files, image/mask size mismatches,
empty masks, classes outside ``model.class_names``, malformed COCO JSON. Errors stop
training; warnings (empty masks, unknown classes that are skipped) do not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import read_label_png
from vis_node.io.readers import read_image
from vis_node.training.config import SourceConfig, TrainConfig
from vis_node.training.image_sources import read_salient_mask, salient_pairs
from vis_node.training.video_sources import YtvisSource

MAX_LISTED = 20
"""Problems listed per source and kind of problem; the rest are counted."""


@dataclass
class SourceReport:
    """What a check found in one data source.

    Attributes
    ----------
    name:
        ``data[0]``, ``validation``, ...
    kind:
        Source kind.
    frames:
        Annotated frames (images) that are usable.
    instances:
        Instances over those frames.
    errors, warnings:
        ``"<path>: <problem>"`` lines.
    """

    name: str
    kind: str
    frames: int = 0
    instances: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: Path | str, message: str) -> None:
        """Record an error about ``path``."""
        self.errors.append(f"{path}: {message}")

    def warn(self, path: Path | str, message: str) -> None:
        """Record a warning about ``path``."""
        self.warnings.append(f"{path}: {message}")

    def format(self) -> str:
        """Human-readable block: a summary line, then the problems (first
        :data:`MAX_LISTED` of errors and of warnings)."""
        status = "ERRORS" if self.errors else "ok"
        lines = [
            f"{self.name} ({self.kind}): {status}; {self.frames} usable frames, "
            f"{self.instances} instances, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings"
        ]
        for label, items in (("error", self.errors), ("warning", self.warnings)):
            lines += [f"  {label}: {item}" for item in items[:MAX_LISTED]]
            if len(items) > MAX_LISTED:
                lines.append(f"  ... and {len(items) - MAX_LISTED} more {label}s")
        return "\n".join(lines)


def _check_pair(report: SourceReport, image_path: Path, ids: np.ndarray, label: Path) -> None:
    """Compare an annotation with its image; count it, or record what is wrong."""
    try:
        image = read_image(image_path)
    except InputDataError as exc:
        report.error(image_path, f"unreadable image ({exc.reason})")
        return
    if ids.shape != image.shape[:2]:
        report.error(label, f"mask size {ids.shape[::-1]} (w, h) differs from the image's "
                     f"{image.shape[1::-1]}")
        return
    count = len(np.unique(ids[ids > 0]))
    if count == 0:
        report.warn(label, "empty mask (no instance): trains as a background-only frame")
    report.frames += 1
    report.instances += count


def check_davis(source: SourceConfig, class_names: tuple[str, ...], report: SourceReport) -> None:
    """DAVIS-style root: folders, sequences, categories, frame/annotation pairs."""
    root = Path(str(source.root))
    images = root / "JPEGImages" / source.resolution
    labels = root / "Annotations" / source.resolution
    for folder in (images, labels):
        if not folder.is_dir():
            report.error(folder, "folder missing (expected <root>/JPEGImages|Annotations/<res>)")
    if report.errors:
        return
    available = sorted(p.name for p in images.iterdir() if p.is_dir())
    sequences = list(source.sequences) or available
    for name in sequences:
        if name not in available:
            report.error(images / name, f"sequence not found (the root has {available})")
            continue
        category = source.categories.get(name)
        if category is None:
            report.error(name, "no entry in categories: add `<sequence>: <class name>`")
        elif category not in class_names[1:]:
            report.error(name, f"class {category!r} is not in model.class_names {class_names}")
        pngs = sorted((labels / name).glob("*.png"))
        if not pngs:
            report.error(labels / name, "no annotation PNGs for this sequence")
        for png in pngs:
            image_path = images / name / f"{png.stem}.jpg"
            if not image_path.is_file():
                report.error(png, f"no frame {image_path.name} for this annotation")
                continue
            try:
                ids, _ = read_label_png(png)
            except InputDataError as exc:
                report.error(png, exc.reason)
                continue
            _check_pair(report, image_path, ids, png)


def check_salient(source: SourceConfig, class_names: tuple[str, ...], report: SourceReport) -> None:
    """Salient-object folders: image/mask pairing, readability, sizes, the category."""
    if source.category not in class_names[1:]:
        report.error("category", f"{source.category!r} is not in model.class_names {class_names}")
    try:
        pairs, unmatched = salient_pairs(Path(str(source.images)), Path(str(source.masks)))
    except InputDataError as exc:
        report.error(exc.path, exc.reason)
        return
    for image_path in unmatched:
        report.error(image_path, f"no mask {image_path.stem}.png in {source.masks}")
    if not pairs and not unmatched:
        report.error(str(source.images), "no images (.jpg, .jpeg, .png, .bmp)")
    for image_path, mask_path in pairs:
        try:
            ids = read_salient_mask(mask_path)
        except InputDataError as exc:
            report.error(mask_path, exc.reason)
            continue
        _check_pair(report, image_path, ids, mask_path)


def _load_coco(path: Path, report: SourceReport) -> dict[str, Any] | None:
    """The COCO JSON as a dict, or ``None`` after recording why it is unusable."""
    if not path.is_file():
        report.error(path, "COCO annotation JSON not found")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.error(path, f"not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        report.error(path, "a COCO file is a JSON object with images, annotations, categories")
        return None
    keys = ("images", "annotations", "categories")
    missing = [k for k in keys if not isinstance(data.get(k), list)]
    if missing:
        report.error(path, f"missing or non-list keys {missing} (COCO instance format)")
        return None
    return data


def check_coco(source: SourceConfig, class_names: tuple[str, ...], report: SourceReport) -> None:
    """COCO instance JSON: structure, references, segmentations, images on disk, classes."""
    path = Path(str(source.annotations))
    data = _load_coco(path, report)
    if data is None:
        return
    from pycocotools import mask as mask_utils

    categories: dict[Any, str] = {}
    for cat in data["categories"]:
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            report.error(path, f"category without id and name: {cat!r}")
            continue
        categories[cat["id"]] = str(cat["name"])
        name = source.categories.get(cat["name"], cat["name"])
        if name not in class_names[1:]:
            report.warn(path, f"category {cat['name']!r} is not a model class: its "
                        "annotations are skipped (map it with categories: {coco: model})")
    images: dict[Any, dict[str, Any]] = {}
    for info in data["images"]:
        if not isinstance(info, dict) or not {"id", "file_name", "width", "height"} <= set(info):
            report.error(path, f"image entry needs id, file_name, width, height: {info!r}")
            continue
        images[info["id"]] = info
    per_image: dict[Any, int] = {key: 0 for key in images}
    for ann in data["annotations"]:
        where = f"{path} annotation {ann.get('id', '?') if isinstance(ann, dict) else '?'}"
        if not isinstance(ann, dict) or not {"image_id", "category_id", "segmentation"} <= set(ann):
            report.error(where, "needs image_id, category_id and segmentation")
            continue
        if ann["image_id"] not in images:
            report.error(where, f"image_id {ann['image_id']!r} is not in images")
            continue
        if ann["category_id"] not in categories:
            report.error(where, f"category_id {ann['category_id']!r} is not in categories")
            continue
        info = images[ann["image_id"]]
        segmentation = ann["segmentation"]
        try:
            if isinstance(segmentation, list):
                polygons = [p for p in segmentation if len(p) >= 6]
                if len(polygons) != len(segmentation) or not polygons:
                    raise ValueError("polygons need at least 3 points (6 numbers)")
                rles = mask_utils.frPyObjects(polygons, info["height"], info["width"])
                area = float(mask_utils.area(mask_utils.merge(rles)))
            elif isinstance(segmentation, dict) and "counts" in segmentation:
                rle = segmentation
                if isinstance(rle["counts"], list):
                    rle = mask_utils.frPyObjects(rle, *rle["size"])
                if list(rle["size"]) != [info["height"], info["width"]]:
                    raise ValueError(f"RLE size {rle['size']} differs from the image's "
                                     f"[{info['height']}, {info['width']}]")
                area = float(mask_utils.area(rle))
            else:
                raise ValueError("segmentation must be polygons or an RLE dict")
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            report.error(where, f"bad segmentation ({exc})")
            continue
        if area == 0:
            report.warn(where, "empty mask (zero area): skipped in training")
            continue
        if not ann.get("iscrowd", 0):
            per_image[ann["image_id"]] += 1
    image_dir = Path(str(source.images))
    for key, info in images.items():
        file = image_dir / str(info["file_name"])
        try:
            image = read_image(file)
        except InputDataError as exc:
            report.error(file, exc.reason)
            continue
        if image.shape[:2] != (info["height"], info["width"]):
            report.error(file, f"size {image.shape[1::-1]} (w, h) differs from the JSON's "
                         f"({info['width']}, {info['height']})")
            continue
        if per_image[key] == 0:
            report.warn(file, "no usable annotation: trains as a background-only image")
        report.frames += 1
        report.instances += per_image[key]


def check_ytvis(source: SourceConfig, class_names: tuple[str, ...], report: SourceReport) -> None:
    """YouTube-VIS JSON: structure, one segmentation per frame, frames on disk, sizes."""
    path = Path(str(source.annotations))
    try:
        videos = YtvisSource(source, class_names)
    except InputDataError as exc:
        report.error(exc.path, exc.reason)
        return
    for category in _categories(path):
        if category["id"] not in videos.class_of_category:
            report.warn(path, f"category {category['name']!r} is not a model class: its "
                        "tracks are skipped (map it with categories: {ytvis: model})")
    for q, video in enumerate(videos.videos):
        length = len(video["file_names"])
        tracks = videos.tracks.get(video["id"], [])
        bad = [a.get("id", "?") for a in tracks if len(a["segmentations"]) != length]
        if bad:
            report.error(path, f"video {video['id']}: annotations {bad} do not have one "
                         f"segmentation per frame ({length})")
            continue
        for t, frame_name in enumerate(videos.frame_names(q)):
            try:
                frame = videos.read(q, t)
            except (InputDataError, ValueError, TypeError, KeyError) as exc:
                report.error(f"{videos.sequences[q]}/{frame_name}", str(exc))
                continue
            count = len(frame.classes)
            if count == 0:
                report.warn(f"{videos.sequences[q]}/{frame_name}", "no instance in this frame")
            report.frames += 1
            report.instances += count


def _categories(path: Path) -> list[dict[str, Any]]:
    """The ``categories`` list of a JSON file already read once."""
    return list(json.loads(path.read_text())["categories"])


CHECKS = {"davis": check_davis, "coco": check_coco, "salient": check_salient, "ytvis": check_ytvis}
"""Checker of each file-backed source kind (``synth`` is generated and always valid)."""


def validate_data(config: TrainConfig) -> list[SourceReport]:
    """Check every data source of ``config``; returns one report per source."""
    named = [(f"data[{k}]", s) for k, s in enumerate(config.data)]
    named += [(n, s) for n, s in (("validation", config.validation), ("test", config.test)) if s]
    reports = []
    for name, source in named:
        report = SourceReport(name, source.kind)
        check = CHECKS.get(source.kind)
        if check is None:
            report.frames = source.videos * source.frames
        else:
            check(source, config.model.class_names, report)
        reports.append(report)
    return reports
