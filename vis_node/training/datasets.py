"""Training and validation data: synthetic videos, DAVIS-style roots, COCO instance JSON,
salient-object image + mask folders (formats: ``docs/DATASETS.md``).

Every source is a list of sequences of frames (a COCO image is a one-frame sequence)
and reads a frame as a :class:`LabelledFrame` at its own resolution.
:func:`training_sample` turns one into a :class:`Sample` at the network input size
(aspect not kept, as S4Net), the unit the copy-paste and batching code works on.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import read_label_png
from vis_node.io.readers import read_image
from vis_node.io.ytvis_json import decode_rle
from vis_node.synth.generator import CATEGORIES, SynthConfig, SynthVideo, generate_video
from vis_node.synth.writer import frame_name, sequence_name, video_seed
from vis_node.structures.instances import boxes_from_masks
from vis_node.training.config import SourceConfig

LOGGER = logging.getLogger(__name__)

IDENTITY_STRIDE = 1000
"""Identity of instance ``k`` of sequence ``s``: ``s * IDENTITY_STRIDE + k`` (plus the
source offset), unique across the sequences of a training mixture."""


@dataclass
class LabelledFrame:
    """One annotated frame at its native resolution.

    Attributes
    ----------
    image:
        ``uint8[H, W, 3]`` RGB.
    ids:
        ``uint16[H, W]`` instance ids, 0 = background.
    classes:
        Instance id -> class id (index into ``model.class_names``), for every id in
        ``ids``.
    """

    image: np.ndarray
    ids: np.ndarray
    classes: dict[int, int]

    def semantic(self) -> np.ndarray:
        """``uint8[H, W]`` class-id map of the instances (0 = background)."""
        out = np.zeros(self.ids.shape, dtype=np.uint8)
        for instance_id, class_id in self.classes.items():
            out[self.ids == instance_id] = class_id
        return out


@dataclass
class Sample:
    """A training image with its instances at the network input size.

    Attributes
    ----------
    image:
        ``uint8[S, S, 3]`` RGB.
    masks:
        ``bool[K, S, S]`` visible instance masks (disjoint).
    labels:
        ``int64[K]`` class ids in ``1..C-1``.
    identities:
        ``int64[K]`` object identities, equal for the same object in two frames.
    """

    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    identities: np.ndarray

    def flipped(self) -> Sample:
        """The horizontally mirrored sample."""
        return replace(
            self,
            image=np.ascontiguousarray(self.image[:, ::-1]),
            masks=np.ascontiguousarray(self.masks[:, :, ::-1]),
        )

    def zoomed(self, scale: float, anchor: tuple[float, float], min_area: int = 1) -> Sample:
        """The sample scaled by ``scale`` about a shifted origin, cropped or padded back.

        The output pixel ``p`` shows the input at ``(p - t) / scale`` with
        ``t = anchor * S * (1 - scale)``: zooming in (``scale > 1``) crops a window of
        side ``S / scale`` whose position along x and y is ``anchor`` (0 = left/top,
        1 = right/bottom); zooming out places the shrunken image there on black.
        Instances left with fewer than ``min_area`` pixels are dropped.

        Parameters
        ----------
        scale:
            Magnification (> 0).
        anchor:
            ``(u, v)`` in ``[0, 1]``.
        min_area:
            Smallest kept instance area in pixels.
        """
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        size = self.image.shape[0]
        shift = (1.0 - scale) * size
        # OpenCV puts pixel centres at integers: p -> scale * p + t in corner coordinates
        # is x -> scale * x + t + (scale - 1) / 2 in OpenCV's.
        centre = 0.5 * (scale - 1.0)
        matrix = np.array(
            [[scale, 0.0, anchor[0] * shift + centre], [0.0, scale, anchor[1] * shift + centre]],
            dtype=np.float64,
        )
        image = cv2.warpAffine(
            self.image, matrix, (size, size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        inside = cv2.warpAffine(
            np.ones((size, size), np.uint8), matrix, (size, size), flags=cv2.INTER_NEAREST
        )
        image[inside == 0] = 0
        if len(self.masks):
            warped = cv2.warpAffine(
                np.ascontiguousarray(self.masks.transpose(1, 2, 0).astype(np.uint8)),
                matrix,
                (size, size),
                flags=cv2.INTER_NEAREST,
            )
            masks = warped.reshape(size, size, -1).transpose(2, 0, 1).astype(bool)
        else:
            masks = self.masks
        keep = masks.reshape(len(masks), -1).sum(axis=1) >= min_area
        return Sample(
            image=image,
            masks=np.ascontiguousarray(masks[keep]),
            labels=self.labels[keep],
            identities=self.identities[keep],
        )

    def target(self) -> dict[str, torch.Tensor]:
        """The ``S4Net.forward`` target: ``boxes`` ``float32[K, 4]`` x1y1x2y2 (input
        pixels, exclusive end), ``masks`` ``bool[K, S, S]``, ``labels`` ``int64[K]``,
        ``track_ids`` ``int64[K]``."""
        return {
            "boxes": torch.from_numpy(boxes_from_masks(self.masks)),
            "masks": torch.from_numpy(np.ascontiguousarray(self.masks)),
            "labels": torch.from_numpy(self.labels.astype(np.int64)),
            "track_ids": torch.from_numpy(self.identities.astype(np.int64)),
        }


def training_sample(
    frame: LabelledFrame, input_size: int, identity_offset: int, *, min_area: int = 1
) -> Sample:
    """Resize a labelled frame to ``input_size`` squared and split it into instances.

    Parameters
    ----------
    frame:
        The frame at native resolution.
    input_size:
        Network input side in pixels.
    identity_offset:
        Added to the instance ids to form identities.
    min_area:
        Instances with fewer pixels after resizing are dropped.
    """
    size = (input_size, input_size)
    image = cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
    ids = cv2.resize(frame.ids, size, interpolation=cv2.INTER_NEAREST)
    present = [int(i) for i in np.unique(ids) if i != 0]
    masks = np.stack([ids == i for i in present]) if present else np.zeros((0, *size), bool)
    keep = masks.reshape(len(present), -1).sum(axis=1) >= min_area
    return Sample(
        image=image,
        masks=masks[keep],
        labels=np.array([frame.classes[i] for i in present], dtype=np.int64)[keep],
        identities=np.array([identity_offset + i for i in present], dtype=np.int64)[keep],
    )


class FrameSource(ABC):
    """Sequences of annotated frames."""

    sequences: list[str]
    """Sequence names, in index order."""

    @abstractmethod
    def frame_names(self, sequence: int) -> list[str]:
        """Frame names (file stems) of sequence number ``sequence``."""

    @abstractmethod
    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """Frame number ``frame`` of sequence number ``sequence`` at native resolution."""


def _class_index(class_names: tuple[str, ...], name: str, where: str) -> int:
    """Index of ``name`` in ``class_names`` (never 0, the background)."""
    if name not in class_names[1:]:
        raise ValueError(f"{where}: class {name!r} is not in model.class_names {class_names}")
    return class_names.index(name)


class SynthSource(FrameSource):
    """Videos of :func:`vis_node.synth.generator.generate_video`, generated on demand.

    Sequence ``i`` is the video of seed ``video_seed(config.seed, i)`` with
    ``config.frames`` frames of ``config.width x config.height`` pixels, named like
    ``vsis synth`` names them (``synth_000``, ...).
    """

    def __init__(self, config: SourceConfig, class_names: tuple[str, ...]) -> None:
        self.config = config
        self.synth_config = SynthConfig(
            width=config.width, height=config.height, frames=config.frames
        )
        self.class_of_category = {
            k + 1: _class_index(class_names, name, "synth data")
            for k, name in enumerate(CATEGORIES)
        }
        self.sequences = [sequence_name(i) for i in range(config.videos)]
        self.frame_indices = list(range(0, config.frames, config.frame_step))
        self.video = functools.lru_cache(maxsize=16)(self._generate)

    def _generate(self, sequence: int) -> SynthVideo:
        """The generated video of sequence number ``sequence``."""
        return generate_video(video_seed(self.config.seed, sequence), self.synth_config)

    def frame_names(self, sequence: int) -> list[str]:
        """``00000`` ... (every ``frame_step``-th of the configured frames)."""
        return [frame_name(t) for t in self.frame_indices]

    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """Frame ``frame`` of the video with its visible salient instances."""
        video = self.video(sequence)
        t = self.frame_indices[frame]
        present = set(np.unique(video.ids[t]).tolist())
        classes = {
            o.id: self.class_of_category[o.category_id]
            for o in video.salient_objects
            if o.id in present
        }
        return LabelledFrame(video.frames[t], video.ids[t], classes)


class DavisSource(FrameSource):
    """A DAVIS-style root: ``JPEGImages/<res>/<seq>/*.jpg`` + ``Annotations/<res>/<seq>/*.png``.

    Binary 0/255 masks read as one instance per frame; palette PNGs as several (void
    pixels count as background). Every instance of a sequence gets the class named by
    ``config.categories[sequence]``.
    """

    def __init__(self, config: SourceConfig, class_names: tuple[str, ...]) -> None:
        root = Path(str(config.root))
        self.image_root = root / "JPEGImages" / config.resolution
        self.label_root = root / "Annotations" / config.resolution
        if not self.image_root.is_dir():
            raise InputDataError(
                root, f"not a DAVIS-style root: JPEGImages/{config.resolution} missing"
            )
        available = sorted(p.name for p in self.image_root.iterdir() if p.is_dir())
        self.sequences = list(config.sequences) or available
        missing = sorted(set(self.sequences) - set(available))
        if missing:
            raise InputDataError(
                self.image_root, f"sequences {missing} not found; it has {available}"
            )
        self.class_ids: list[int] = []
        for name in self.sequences:
            if name not in config.categories:
                raise ValueError(f"davis data: sequence {name!r} has no entry in categories")
            self.class_ids.append(_class_index(class_names, config.categories[name], name))
        self._frames: list[list[Path]] = []
        for name in self.sequences:
            labels = sorted((self.label_root / name).glob("*.png"))
            if not labels:
                raise InputDataError(self.label_root / name, "no annotation PNGs for this sequence")
            self._frames.append(labels[:: config.frame_step])

    def frame_names(self, sequence: int) -> list[str]:
        """Stems of the annotated frames (every ``frame_step``-th)."""
        return [p.stem for p in self._frames[sequence]]

    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """JPEG frame and its annotation."""
        label_path = self._frames[sequence][frame]
        image_path = self.image_root / self.sequences[sequence] / f"{label_path.stem}.jpg"
        image = read_image(image_path)
        ids, _ = read_label_png(label_path)
        if ids.shape != image.shape[:2]:
            raise InputDataError(
                label_path, f"size {ids.shape} differs from the frame's {image.shape[:2]}"
            )
        classes = {int(i): self.class_ids[sequence] for i in np.unique(ids) if i != 0}
        return LabelledFrame(image, ids, classes)


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
        self.class_id = _class_index(class_names, str(config.category), "salient data")
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


class YtvisSource(FrameSource):
    """YouTube-VIS video instance annotations: one sequence per video.

    JSON: ``videos`` (``id``, ``width``, ``height``, ``file_names`` relative to
    ``config.images``), ``annotations`` (``video_id``, ``category_id``, ``iscrowd``,
    ``segmentations``: one RLE or ``null`` per frame), ``categories`` (``id``,
    ``name``). Instance ``k`` of a video keeps id ``k`` in every frame (an identity for
    the embedding loss). Categories map through ``config.categories`` as for COCO;
    crowd annotations and categories outside ``model.class_names`` are skipped.
    """

    def __init__(self, config: SourceConfig, class_names: tuple[str, ...]) -> None:
        import json

        path = Path(str(config.annotations))
        try:
            data = json.loads(path.read_text())
            self.videos = sorted(data["videos"], key=lambda v: v["id"])
            categories = {c["id"]: str(c["name"]) for c in data["categories"]}
            annotations = data["annotations"]
        except FileNotFoundError:
            raise InputDataError(path, "YouTube-VIS annotation JSON not found") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise InputDataError(path, f"not a YouTube-VIS annotation file ({exc})") from None
        self.image_dir = Path(str(config.images))
        self.class_of_category: dict[int, int] = {}
        for cat_id, name in categories.items():
            mapped = config.categories.get(name, name)
            if mapped in class_names[1:]:
                self.class_of_category[cat_id] = class_names.index(mapped)
            else:
                LOGGER.warning("YouTube-VIS category %r is not a model class: skipped", name)
        self.tracks: dict[int, list[dict]] = {v["id"]: [] for v in self.videos}
        for ann in annotations:
            if not ann.get("iscrowd", 0) and ann["category_id"] in self.class_of_category:
                self.tracks.setdefault(ann["video_id"], []).append(ann)
        self.sequences = [Path(v["file_names"][0]).parent.name or str(v["id"]) for v in self.videos]
        self.frame_indices = [
            list(range(0, len(v["file_names"]), config.frame_step)) for v in self.videos
        ]

    def frame_names(self, sequence: int) -> list[str]:
        """Stems of the video's frames (every ``frame_step``-th)."""
        names = self.videos[sequence]["file_names"]
        return [Path(names[t]).stem for t in self.frame_indices[sequence]]

    def read(self, sequence: int, frame: int) -> LabelledFrame:
        """The frame and the instances annotated in it (largest drawn first)."""
        from pycocotools import mask as mask_utils

        video = self.videos[sequence]
        t = self.frame_indices[sequence][frame]
        image = read_image(self.image_dir / video["file_names"][t])
        masks: list[tuple[int, np.ndarray, int]] = []
        for k, ann in enumerate(self.tracks[video["id"]], start=1):
            rle = ann["segmentations"][t]
            if not rle:
                continue
            if isinstance(rle["counts"], list):  # uncompressed RLE
                mask = mask_utils.decode(mask_utils.frPyObjects(rle, *rle["size"])).astype(bool)
            else:
                mask = decode_rle(rle)
            masks.append((k, mask, ann["category_id"]))
        ids = np.zeros(image.shape[:2], dtype=np.uint16)
        classes: dict[int, int] = {}
        for k, mask, category in sorted(masks, key=lambda m: -int(m[1].sum())):
            if mask.shape != ids.shape:
                raise InputDataError(
                    self.image_dir / video["file_names"][t],
                    f"segmentation size {mask.shape} differs from the frame's {ids.shape}",
                )
            ids[mask] = k
            classes[k] = self.class_of_category[category]
        present = set(np.unique(ids).tolist())
        return LabelledFrame(image, ids, {k: c for k, c in classes.items() if k in present})


def build_source(config: SourceConfig, class_names: tuple[str, ...]) -> FrameSource:
    """The :class:`FrameSource` of ``config.kind``."""
    if config.kind == "synth":
        return SynthSource(config, class_names)
    if config.kind == "davis":
        return DavisSource(config, class_names)
    if config.kind == "salient":
        return SalientFolderSource(config, class_names)
    if config.kind == "ytvis":
        return YtvisSource(config, class_names)
    return CocoSource(config, class_names)
