"""Training and validation data: :func:`build_source` picks the frame source of a
:class:`~vis_node.training.config.SourceConfig` kind.

Synthetic videos, DAVIS-style roots and YouTube-VIS are in
:mod:`vis_node.training.video_sources`; COCO instance JSON and salient-object image +
mask folders in :mod:`vis_node.training.image_sources` (formats: ``docs/DATASETS.md``);
the frame and sample types they produce in :mod:`vis_node.training.samples`.
"""

from __future__ import annotations

from vis_node.training.config import SourceConfig
from vis_node.training.image_sources import CocoSource, SalientFolderSource
from vis_node.training.samples import FrameSource
from vis_node.training.video_sources import DavisSource, SynthSource, YtvisSource


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
