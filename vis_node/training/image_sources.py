"""Frame sources of still-image datasets: COCO instance JSON and salient-object
image + mask folders; every image is a one-frame sequence.

Formats: ``docs/DATASETS.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import read_label_png
from vis_node.io.readers import read_image
from vis_node.training.config import SourceConfig
from vis_node.training.samples import FrameSource, LabelledFrame, class_index

LOGGER = logging.getLogger(__name__)


class CocoSource(FrameSource):
    """COCO-format instance annotations; every image is a one-frame sequence.

    Annotations are drawn largest first, so smaller objects stay visible where they
    overlap larger ones. A category name maps through ``config.categories`` (COCO name
    -> model class name; unmapped names are used as they are); annotations of
    categories outside ``model.class_names`` and crowd annotations are skipped.
    """

    def __init__(self, config: SourceConfig, class_names: tuple[str, ...]) -> None:
        from pycocotools.coco import COCO

        path = Path(str(config.annotations))
        if not path.is_file():
            raise InputDataError(path, "COCO annotation JSON not found")
        try:
            self.coco = COCO(str(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputDataError(path, f"not a COCO instance annotation file ({exc})") from None
        self.image_dir = Path(str(config.images))
        self.class_of_category: dict[int, int] = {}
        for cat in self.coco.loadCats(self.coco.getCatIds()):
            name = config.categories.get(cat["name"], cat["name"])
            if name in class_names[1:]:
                self.class_of_category[cat["id"]] = class_names.index(name)
            else:
                LOGGER.warning("COCO category %r is not a model class: skipped", cat["name"])
        self.image_ids = sorted(self.coco.getImgIds())
        self.sequences = [Path(self.coco.imgs[i]["file_name"]).stem for i in self.image_ids]

    def frame_names(self, sequence: int) -> list[str]:
        """The image's file stem."""
        return [self.sequences[sequence]]

    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """The image and its non-crowd annotations of known categories."""
        info = self.coco.imgs[self.image_ids[sequence]]
        image = read_image(self.image_dir / info["file_name"])
        anns = [
            a
            for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"], iscrowd=False))
            if a["category_id"] in self.class_of_category
        ]
        ids = np.zeros(image.shape[:2], dtype=np.uint16)
        classes: dict[int, int] = {}
        for k, ann in enumerate(sorted(anns, key=lambda a: -a["area"]), start=1):
            ids[self.coco.annToMask(ann).astype(bool)] = k
            classes[k] = self.class_of_category[ann["category_id"]]
        present = set(np.unique(ids).tolist())
        return LabelledFrame(image, ids, {k: c for k, c in classes.items() if k in present})


IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")
"""Image file suffixes of salient-object folders."""


def salient_pairs(images: Path, masks: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Pair the images of a salient-object folder with their masks.

    Returns
    -------
    pairs, unmatched:
        ``(image, mask)`` pairs sorted by stem, and images without ``<stem>.png`` mask.

    Raises
    ------
    InputDataError
        A missing folder.
    """
    for folder in (images, masks):
        if not folder.is_dir():
            raise InputDataError(folder, "salient data folder not found")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    pairs = [(p, masks / f"{p.stem}.png") for p in files if (masks / f"{p.stem}.png").is_file()]
    unmatched = [p for p in files if not (masks / f"{p.stem}.png").is_file()]
    return pairs, unmatched


def read_salient_mask(path: Path) -> np.ndarray:
    """``uint16[H, W]`` instance ids of a salient-object mask PNG.

    Palette PNGs hold instance ids (as DAVIS 2017 / ILSO); greyscale or binary masks
    are saliency maps whose pixels ``>= 128`` form one instance (soft edges of
    DUTS-style masks included).

    Raises
    ------
    InputDataError
        A missing, corrupt or colour PNG.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as png:
            mode = png.mode
            grey = np.asarray(png.convert("L")) if mode != "P" else None
    except (OSError, UnidentifiedImageError) as exc:
        raise InputDataError(path, f"unreadable mask PNG ({exc})") from None
    if grey is None:
        return read_label_png(path)[0]
    if mode not in ("1", "L"):
        raise InputDataError(path, f"masks must be greyscale or palette PNGs, got mode {mode}")
    return (grey >= 128).astype(np.uint16)


class SalientFolderSource(FrameSource):
    """Salient-object folders: ``images/<stem>.jpg`` + ``masks/<stem>.png``, one-frame
    sequences; every instance gets the class ``config.category``. Images without a
    mask are skipped with a warning."""

    def __init__(self, config: SourceConfig, class_names: tuple[str, ...]) -> None:
        self.pairs, unmatched = salient_pairs(Path(str(config.images)), Path(str(config.masks)))
        if unmatched:
            LOGGER.warning("%d images have no mask in %s: skipped", len(unmatched), config.masks)
        if not self.pairs:
            raise InputDataError(Path(str(config.masks)), "no image has a <stem>.png mask here")
        self.class_id = class_index(class_names, str(config.category), "salient data")
        self.sequences = [image.stem for image, _ in self.pairs]

    def frame_names(self, sequence: int) -> list[str]:
        """The image's file stem."""
        return [self.sequences[sequence]]

    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """The image and its mask's instances."""
        image_path, mask_path = self.pairs[sequence]
        image = read_image(image_path)
        ids = read_salient_mask(mask_path)
        if ids.shape != image.shape[:2]:
            raise InputDataError(
                mask_path, f"size {ids.shape} differs from the image's {image.shape[:2]}"
            )
        return LabelledFrame(image, ids, {int(i): self.class_id for i in np.unique(ids) if i})
