"""Frame sources of video datasets: synthetic videos, DAVIS-style roots, YouTube-VIS.

Formats: ``docs/DATASETS.md``.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import read_label_png
from vis_node.io.readers import read_image
from vis_node.io.ytvis_json import decode_rle
from vis_node.synth.generator import CATEGORIES, SynthConfig, SynthVideo, generate_video
from vis_node.synth.writer import frame_name, sequence_name, video_seed
from vis_node.training.config import SourceConfig
from vis_node.training.samples import FrameSource, LabelledFrame, class_index

LOGGER = logging.getLogger(__name__)


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
            k + 1: class_index(class_names, name, "synth data")
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
            self.class_ids.append(class_index(class_names, config.categories[name], name))
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
