"""The training config of the salient NanoDet model (``type: salient-nanodet``).

Config (YAML, every key checked; run from the repository root)::

    type: salient-nanodet
    model: {...}                 # SalientConfig keys (vis_node.perception.salient_config)
    data:
      root: ../shared/data/davis2016
      sequences: [blackswan, ...]          # every sequence of the experiment
      folds: [[blackswan, ...], ...]       # leave-sequences-out folds (disjoint)
      flip: true                           # mirrored copies of every frame too
    labels: {box_cover: 0.5, object_cover: 0.15}
    steps: 1200
    frames_per_step: 6
    mask_rois: 2                           # salient candidates per frame in the mask loss
    learning_rate: 0.001
    weight_decay: 0.0001
    seed: 0
    feature_cache: runs/salient-features
    output_dir: runs/real
    refiner: {steps: 2400, batch: 12, learning_rate: 0.002, weight_decay: 0.0001,
              background_swap: 0.5, photometric: 0.8, coarse_holes: 0.5}
                                           # trained after the heads when model.refiner_size > 0
    composites: {count: 0, scale: [0.5, 1.0], color_jitter: 0.2}
                                           # copy-paste frames for the mask head
                                           # (vis_node.training.salient_composites)

Read by :func:`load_config`; trained by :mod:`vis_node.training.salient_trainer`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vis_node.perception.salient_config import MODEL_TYPE, SalientConfig
from vis_node.training.config import strict_mapping
from vis_node.training.refiner_trainer import RefinerTrainConfig
from vis_node.training.salient_composites import CompositeConfig


@dataclass
class SalientDataConfig:
    """Where the training frames come from (see the module docstring)."""

    root: str
    sequences: tuple[str, ...]
    folds: tuple[tuple[str, ...], ...] = ()
    flip: bool = True

    def __post_init__(self) -> None:
        self.sequences = tuple(self.sequences)
        self.folds = tuple(tuple(fold) for fold in self.folds)
        seen: set[str] = set()
        for k, fold in enumerate(self.folds):
            unknown = set(fold) - set(self.sequences)
            if unknown:
                raise ValueError(f"data.folds[{k}] names unknown sequences {sorted(unknown)}")
            overlap = seen & set(fold)
            if overlap:
                raise ValueError(f"data.folds[{k}] repeats {sorted(overlap)} of an earlier fold")
            seen |= set(fold)

    def training_sequences(self, fold: int | None) -> tuple[str, ...]:
        """Sequences trained on: all, or all outside fold ``fold``."""
        if fold is None:
            return self.sequences
        if not 0 <= fold < len(self.folds):
            raise ValueError(f"fold {fold}: the config has {len(self.folds)} folds")
        return tuple(s for s in self.sequences if s not in self.folds[fold])


@dataclass
class SalientTrainConfig:
    """Every setting of a salient-heads training run (see the module docstring)."""

    data: SalientDataConfig
    model: SalientConfig = field(default_factory=SalientConfig)
    labels: dict[str, float] = field(
        default_factory=lambda: {"box_cover": 0.5, "object_cover": 0.15}
    )
    steps: int = 1200
    frames_per_step: int = 6
    mask_rois: int = 2
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    feature_cache: str = "runs/salient-features"
    output_dir: str = "runs/real"
    refiner: RefinerTrainConfig = field(default_factory=RefinerTrainConfig)
    composites: CompositeConfig = field(default_factory=CompositeConfig)


def is_salient_config(values: dict[str, Any]) -> bool:
    """Whether a loaded training YAML is for this model (``type: salient-nanodet``)."""
    return isinstance(values, dict) and values.get("type") == MODEL_TYPE


def parse_config(values: dict[str, Any]) -> SalientTrainConfig:
    """Build the config from a loaded YAML mapping; unknown keys are an error."""
    values = dict(values)
    values.pop("type", None)
    known = {f.name for f in dataclasses.fields(SalientTrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; known: {sorted(known)}")
    data_known = {f.name for f in dataclasses.fields(SalientDataConfig)}
    data = values.pop("data")
    if set(data) - data_known:
        raise ValueError(f"data: unknown keys {sorted(set(data) - data_known)}")
    labels = dict(values.pop("labels", {}))
    if set(labels) - {"box_cover", "object_cover"}:
        raise ValueError(f"labels: unknown keys {sorted(set(labels))}")
    refiner = strict_mapping(RefinerTrainConfig, values.pop("refiner", {}) or {}, "refiner")
    composites = strict_mapping(CompositeConfig, values.pop("composites", {}) or {}, "composites")
    return SalientTrainConfig(
        data=SalientDataConfig(**data),
        refiner=RefinerTrainConfig(**refiner),
        composites=CompositeConfig(**composites),
        model=SalientConfig.from_dict(values.pop("model", {}) or {}),
        labels={"box_cover": 0.5, "object_cover": 0.15, **labels},
        **values,
    )


def load_config(path: str | Path) -> SalientTrainConfig:
    """Read a training YAML of this model."""
    return parse_config(yaml.safe_load(Path(path).read_text()))
