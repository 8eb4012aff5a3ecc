"""Training configuration: one YAML file, loaded into nested dataclasses.

Every section rejects unknown keys with a message listing the valid ones, so a typo
never silently falls back to a default. Layout (all sections but ``model`` and
``data`` optional)::

    model: {...}              # ModelConfig keys (vis_node.perception.config)
    data:                     # training sources, sampled in proportion to ``weight``
      - {kind: synth, videos: 500, seed: 1, frames: 8}
      - {kind: davis, root: /path, sequences: [dog], categories: {dog: dog}}
      - {kind: coco, annotations: /path/instances.json, images: /path/images}
      - {kind: salient, images: /path/images, masks: /path/masks, category: dog}
      - {kind: ytvis, annotations: /path/train.json, images: /path/JPEGImages}
    validation: {kind: synth, videos: 4, seed: 99, frames: 12, frame_step: 3}
    test: {kind: synth, videos: 8, seed: 7, frames: 40}
    copy_paste: {probability: 0.8, max_objects: 2, scale: [0.4, 1.0]}
    optimizer: {name: adamw, lr: 0.0004, weight_decay: 0.0001, warmup_steps: 50}
    steps: 1000
    batch_size: 8             # global: images per step over all processes
    grad_accumulation: 1      # micro-batches per process and step
    num_workers: 2            # DataLoader worker processes per training process
    device: cuda              # cpu, cuda or cuda:N (torchrun: each process its LOCAL_RANK GPU)
    mixed_precision: true     # torch.autocast on CUDA (bfloat16, else float16 + GradScaler)
    init_from: davis          # fine-tune: start from a shipped model's weights
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vis_node.structures.errors import InputDataError
from vis_node.perception.config import ModelConfig
from vis_node.perception.device import DEFAULT_DEVICE, parse_device

SOURCE_KINDS: tuple[str, ...] = ("synth", "davis", "coco", "salient", "ytvis")
"""Data source kinds understood by :func:`vis_node.training.datasets.build_source`."""

OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
"""Optimiser names accepted by :class:`OptimizerConfig`."""


def strict_mapping(cls: type, values: dict[str, Any], section: str) -> dict[str, Any]:
    """Return ``values`` after checking every key is a field of dataclass ``cls``."""
    if not isinstance(values, dict):
        raise ValueError(f"{section}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(
            f"{section}: unknown keys {sorted(unknown)}; valid keys: {sorted(known)}"
        )
    return values


@dataclass
class SourceConfig:
    """One data source (training or validation).

    Attributes
    ----------
    kind:
        ``"synth"`` (generated on the fly), ``"davis"`` (DAVIS-style root with binary
        or instance masks), ``"coco"`` (COCO-format instance JSON) or ``"salient"``
        (salient-object folders: images and same-named mask PNGs, as DUTS or MSRA10K)
        or ``"ytvis"`` (YouTube-VIS video instance JSON); see ``docs/DATASETS.md``.
    weight:
        Relative sampling frequency among the training sources.
    videos, seed, frames, width, height:
        ``synth``: number of videos, dataset seed (video ``i`` uses
        ``vis_node.synth.writer.video_seed(seed, i)``), frames per video and frame size
        in pixels.
    root, resolution, sequences, categories:
        ``davis``: dataset root, resolution folder, sequences to use (all when empty)
        and the class name of each sequence's foreground (a name of
        ``model.class_names``; every used sequence needs one).
    annotations, images:
        ``coco``: instance JSON file and image folder (``file_name`` is relative to it);
        ``ytvis``: the same with YouTube-VIS JSON (``file_names`` relative to it).
    images, masks, category:
        ``salient``: image folder, mask folder (``<stem>.png`` per image ``<stem>.*``;
        binary 0/255 = one instance, palette or grey ids = several) and the class name
        of every instance (a name of ``model.class_names``).
    frame_step:
        Use every ``frame_step``-th frame (validation subsampling; 1 = all frames).
    """

    kind: str
    weight: float = 1.0
    videos: int = 100
    seed: int = 0
    frames: int = 8
    width: int = 320
    height: int = 240
    root: str | None = None
    resolution: str = "480p"
    sequences: list[str] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)
    annotations: str | None = None
    images: str | None = None
    masks: str | None = None
    category: str | None = None
    frame_step: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"data kind={self.kind!r}: choose one of {SOURCE_KINDS}")
        if self.kind == "davis" and not self.root:
            raise ValueError("a davis data source needs root: <DAVIS-style dataset folder>")
        if self.kind in ("coco", "ytvis") and not (self.annotations and self.images):
            raise ValueError(
                f"a {self.kind} data source needs annotations: <json> and images: <folder>"
            )
        if self.kind == "salient" and not (self.images and self.masks and self.category):
            raise ValueError(
                "a salient data source needs images: <folder>, masks: <folder> and "
                "category: <class name>"
            )
        if self.weight <= 0 or self.videos <= 0 or self.frames <= 0 or self.frame_step <= 0:
            raise ValueError("weight, videos, frames and frame_step must be positive")
        self.sequences = [str(s) for s in self.sequences]
        self.categories = {str(k): str(v) for k, v in self.categories.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any], section: str = "data") -> SourceConfig:
        """Build from a YAML mapping; unknown keys raise ``ValueError``."""
        return cls(**strict_mapping(cls, values, section))


@dataclass
class CopyPasteConfig:
    """Copy-paste composition (see :mod:`vis_node.training.copy_paste`).

    Attributes
    ----------
    probability:
        Chance that a training image receives pasted objects.
    max_objects:
        Pasted objects per image, drawn uniformly from ``1..max_objects``.
    scale:
        Range of the pasted object's size relative to its size in the donor image.
    color_jitter:
        Largest relative change of brightness, contrast and saturation of a pasted
        object.
    min_area:
        Instances with fewer visible pixels (at input size) after pasting are dropped.
    """

    probability: float = 0.5
    max_objects: int = 2
    scale: tuple[float, float] = (0.5, 1.0)
    color_jitter: float = 0.2
    min_area: int = 64

    def __post_init__(self) -> None:
        self.scale = (float(self.scale[0]), float(self.scale[1]))
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"copy_paste.probability={self.probability}: must lie in [0, 1]")
        if self.max_objects < 1:
            raise ValueError(f"copy_paste.max_objects={self.max_objects}: must be >= 1")
        if not 0.0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"copy_paste.scale={self.scale}: need 0 < low <= high")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ValueError(f"copy_paste.color_jitter={self.color_jitter}: must lie in [0, 1)")


@dataclass
class OptimizerConfig:
    """Optimiser and learning-rate schedule (linear warm-up, then cosine to ``min_lr_ratio``).

    Attributes
    ----------
    name:
        ``"sgd"`` (momentum) or ``"adamw"``.
    lr:
        Peak learning rate.
    momentum:
        SGD momentum.
    weight_decay:
        L2 / decoupled weight decay.
    warmup_steps:
        Steps of linear warm-up from 0.1 x ``lr``.
    min_lr_ratio:
        Final learning rate as a fraction of ``lr``.
    grad_clip:
        Largest gradient norm (0 disables clipping).
    """

    name: str = "adamw"
    lr: float = 4e-4
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    grad_clip: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer.name={self.name!r}: choose one of {OPTIMIZERS}")
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("optimizer: need lr > 0, warmup_steps >= 0, 0 <= min_lr_ratio <= 1")


@dataclass
class TrainConfig:
    """Everything ``vsis train`` needs.

    Attributes
    ----------
    model:
        Network settings.
    data:
        Training sources.
    validation:
        Held-out source scored every ``val_interval`` steps, or ``None``.
    test:
        Held-out source never looked at during training, scored by
        ``vsis train --eval-only`` (falls back to ``validation`` when ``None``).
    copy_paste:
        Copy-paste composition settings.
    optimizer:
        Optimiser and schedule.
    steps:
        Total optimisation steps.
    batch_size:
        Images per step over all processes (the global batch); even sizes pair two
        frames of one sequence (shared track ids for the embedding loss).
    grad_accumulation:
        Micro-batches (forward/backward passes) per process and step; the losses are
        normalised per micro-batch and the step's gradient is their mean over all
        processes (see :mod:`vis_node.training.distributed`).
    num_workers:
        DataLoader worker processes loading and augmenting batches (0: in the
        training process).
    device:
        ``cpu``, ``cuda`` or ``cuda:N``; an unusable CUDA device falls back to the CPU
        with a warning. Under ``torchrun`` ``cuda`` means GPU ``LOCAL_RANK``.
    mixed_precision:
        Run forward passes under :func:`torch.autocast` on CUDA (bfloat16 where the
        GPU supports it, else float16 with gradient scaling); ignored on the CPU.
    init_from:
        Shipped model name or ``model.pt`` whose weights start the run (fine-tuning;
        ``model`` must have the same architecture). Tensors whose shape differs, e.g.
        the class head under another ``class_names`` list, keep their fresh
        initialisation (logged). ``None``: train from the backbone initialisation.
    flip_probability:
        Chance of a horizontal flip of each training image.
    zoom_range:
        ``[low, high]`` magnification range of the random zoom (scale augmentation)
        applied to every training image; ``[1, 1]`` disables it.
    freeze_backbone_stages:
        Backbone stages (0..3, from the input side) whose weights are not trained.
    val_interval:
        Steps between validations (0: only at the end).
    checkpoint_interval:
        Steps between training checkpoints.
    seed:
        Seed of the model initialisation and of every random draw of the data pipeline.
    num_threads:
        Torch CPU threads.
    output_dir:
        Run folder (checkpoints, logs, curves, exported models).
    """

    model: ModelConfig
    data: list[SourceConfig]
    validation: SourceConfig | None = None
    test: SourceConfig | None = None
    copy_paste: CopyPasteConfig = field(default_factory=CopyPasteConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    steps: int = 1000
    batch_size: int = 8
    flip_probability: float = 0.5
    zoom_range: tuple[float, float] = (1.0, 1.0)
    freeze_backbone_stages: int = 0
    val_interval: int = 0
    checkpoint_interval: int = 50
    seed: int = 0
    num_threads: int = 2
    output_dir: str = "runs/train"
    grad_accumulation: int = 1
    num_workers: int = 0
    device: str = DEFAULT_DEVICE
    mixed_precision: bool = True
    init_from: str | None = None

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("data: give at least one training source")
        if self.grad_accumulation < 1 or self.num_workers < 0:
            raise ValueError("grad_accumulation must be >= 1 and num_workers >= 0")
        parse_device(self.device)
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_interval < 1:
            raise ValueError("steps, batch_size and checkpoint_interval must be >= 1")
        if not 0 <= self.freeze_backbone_stages <= 3:
            raise ValueError(
                f"freeze_backbone_stages={self.freeze_backbone_stages}: must lie in 0..3"
            )
        if self.val_interval < 0 or self.num_threads < 1:
            raise ValueError("val_interval must be >= 0 and num_threads >= 1")
        if not 0.0 <= self.flip_probability <= 1.0:
            raise ValueError(f"flip_probability={self.flip_probability}: must lie in [0, 1]")
        self.zoom_range = (float(self.zoom_range[0]), float(self.zoom_range[1]))
        if not 0.0 < self.zoom_range[0] <= self.zoom_range[1]:
            raise ValueError(f"zoom_range={list(self.zoom_range)}: need 0 < low <= high")
        names = set(self.model.class_names[1:])
        held_out = [s for s in (self.validation, self.test) if s is not None]
        for source in [*self.data, *held_out]:
            used = set(source.categories.values()) | ({source.category} - {None})
            bad = sorted(used - names)
            if bad:
                raise ValueError(
                    f"categories {bad} are not in model.class_names {self.model.class_names}"
                )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a YAML mapping; unknown keys in any section raise ``ValueError``."""
        values = dict(strict_mapping(cls, values, "train config"))
        if "model" not in values or "data" not in values:
            raise ValueError("train config: the sections model and data are required")
        values["model"] = ModelConfig.from_dict(values["model"])
        values["data"] = [SourceConfig.from_dict(v, "data") for v in values["data"]]
        for section in ("validation", "test"):
            if values.get(section) is not None:
                values[section] = SourceConfig.from_dict(values[section], section)
        if "copy_paste" in values:
            values["copy_paste"] = CopyPasteConfig(
                **strict_mapping(CopyPasteConfig, values["copy_paste"], "copy_paste")
            )
        if "optimizer" in values:
            values["optimizer"] = OptimizerConfig(
                **strict_mapping(OptimizerConfig, values["optimizer"], "optimizer")
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (for ``yaml.safe_dump``) that :meth:`from_dict` reads back."""
        out = dataclasses.asdict(self)
        out["model"] = self.model.to_dict()
        out["copy_paste"]["scale"] = list(self.copy_paste.scale)
        out["zoom_range"] = list(self.zoom_range)
        return out


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training YAML file.

    Raises
    ------
    InputDataError
        If the file is missing or not YAML.
    ValueError
        If a key is unknown or a value invalid (the message names it).
    """
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputDataError(path, "training config not found") from None
    except yaml.YAMLError as exc:
        raise InputDataError(path, f"not valid YAML ({exc})") from None
    if not isinstance(values, dict):
        raise InputDataError(path, "a training config must be a YAML mapping")
    return TrainConfig.from_dict(values)
