"""Synthetic salient-instance videos with exact ground truth (``vsis synth``)."""

from vis_node.synth.generator import (
    CATEGORIES,
    SynthConfig,
    SynthObject,
    SynthVideo,
    generate_video,
)

__all__ = ["CATEGORIES", "SynthConfig", "SynthObject", "SynthVideo", "generate_video"]
