"""How well the colour embedding and a model's embedding tell real objects apart.

Run from the repository root (needs ``../shared/data/davis2016``)::

    . scripts/env.sh && python scripts/tracking_separation.py --out separation.png

On the realistic tracking-bench scenes (:mod:`vis_node.tracking.bench_scenes`) it
prints the cosine-similarity percentiles of same-object pairs (1, 5 and 20 frames
apart), look-alike pairs and different-object pairs
(:func:`vis_node.tracking.bench_separation.measure_separation`) for: the colour
embedding of the ground-truth masks, the colour embedding of the model's detections
matched to the ground truth, and the model's own embedding of the same detections;
and writes the three histograms to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vis_node.perception.runtime import make_predictor
from vis_node.tracking.bench_scenes import SceneConfig
from vis_node.tracking.bench_separation import (
    format_separation,
    measure_separation,
    plot_separation,
)
from vis_node.tracking.cli import DEFAULT_DAVIS_ROOT
from vis_node.tracking.embedding import ColourHistogramEmbedder


def main() -> None:
    """Parse the arguments, measure, print the tables and write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="histogram PNG to write")
    parser.add_argument("--model", default="real", help="shipped model name or path (real)")
    parser.add_argument("--videos", type=int, default=8, help="bench scenes (8)")
    parser.add_argument("--davis-root", type=Path, default=DEFAULT_DAVIS_ROOT)
    args = parser.parse_args()
    model = make_predictor(args.model, "onnx")
    scenes = (args.davis_root, args.videos, 0, SceneConfig())
    separations = {
        "colour, ground-truth masks": measure_separation(*scenes),
        f"colour, {args.model}-model detections": measure_separation(
            *scenes, embedder=ColourHistogramEmbedder(), detector=model
        ),
        f"{args.model} model embedding": measure_separation(*scenes, detector=model),
    }
    for title, separation in separations.items():
        print(format_separation(separation, title), end="\n\n")
    plot_separation(separations, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
