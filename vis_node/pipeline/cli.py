"""``vsis run``: segment, track and label every frame of a video, folder, DAVIS root or bag.

``vsis run INPUT --out OUT [--model synth|davis|PATH] [--runtime torch|onnx]
[--mode online|offline] [--offline-method siso|propose-reduce]`` writes the layout of
:mod:`vis_node.pipeline.outputs`.
With ``--runtime onnx`` the model is exported to ONNX in a temporary folder first,
unless ``--model`` already names an export folder (``vsis export --format onnx``).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vis_node.perception.predictor import Predictor

LOG = logging.getLogger(__name__)

DEFAULT_MODEL = "synth"
"""Shipped model used when ``--model`` is not given."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` sub-command to the ``vsis`` parser."""
    parser = subparsers.add_parser(
        "run",
        help="segment, track and label the salient instances of a video",
        description=(
            "Run the VSIS pipeline on INPUT (video, image folder, DAVIS root or rosbag2) and "
            "write OUT/instances, OUT/semantics, OUT/overlay, OUT/results.json and "
            "OUT/timings.json."
        ),
    )
    parser.add_argument("input", type=Path, help="video, image folder, DAVIS root or rosbag2")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"shipped model name, model.pt path or ONNX export folder (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--runtime", choices=("torch", "onnx"), default="torch", help="inference runtime"
    )
    parser.add_argument(
        "--mode",
        choices=("online", "offline"),
        default="online",
        help="online: frame by frame; offline: whole sequences (see --offline-method)",
    )
    parser.add_argument(
        "--offline-method",
        choices=("siso", "propose-reduce"),
        default="siso",
        help=(
            "offline mode only; siso: recurrent propagation + offline unification; "
            "propose-reduce: key-frame sequence proposals + category-aware sequence NMS"
        ),
    )
    parser.add_argument(
        "--min-sequence-score",
        type=float,
        default=0.3,
        help="propose-reduce only: smallest sequence score (Eq. 2) kept (default 0.3)",
    )
    parser.add_argument("--topic", help="image topic of a rosbag2 input")
    parser.add_argument("--fps", type=float, default=30.0, help="overlay video frame rate")
    parser.add_argument("--no-overlay", action="store_true", help="skip OUT/overlay/*.mp4")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for inference (0 = runtime default)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``vsis run``; returns the exit code (2 for unusable inputs or models)."""
    from tqdm import tqdm

    from vis_node.io.errors import InputDataError
    from vis_node.io.sources import open_source
    from vis_node.pipeline.offline import OfflinePipeline
    from vis_node.pipeline.online import OnlinePipeline
    from vis_node.pipeline.outputs import OutputWriter

    if args.fps <= 0 or args.threads < 0:
        print("vsis run: error: --fps must be positive and --threads >= 0", file=sys.stderr)
        return 2
    frames = open_source(args.input, topic=args.topic)
    with ExitStack() as stack:
        predictor = make_predictor(args.model, args.runtime, stack, threads=args.threads)
        writer = stack.enter_context(
            OutputWriter(
                args.out,
                predictor.class_names,
                fps=args.fps,
                overlay=not args.no_overlay,
                metadata={
                    "model": str(args.model),
                    "runtime": args.runtime,
                    "mode": args.mode,
                    **({"offline_method": args.offline_method} if args.mode == "offline" else {}),
                },
            )
        )
        bar = stack.enter_context(tqdm(desc="vsis run", unit="frame"))
        for sequence, group in itertools.groupby(frames, key=lambda f: f.sequence):
            bar.set_postfix_str(sequence)
            if args.mode == "online":
                pipeline = OnlinePipeline(predictor)
                for frame in group:
                    writer.write(pipeline.step(frame))
                    bar.update()
            else:
                pipeline = OfflinePipeline(
                    predictor,
                    method=args.offline_method,
                    sequence_score_threshold=args.min_sequence_score,
                )
                for result in pipeline.run(list(group), progress=bar.update):
                    writer.write(result)
        if writer.frames_written == 0:
            raise InputDataError(args.input, "no frames in this input")
    print(f"wrote {writer.frames_written} frames to {args.out}")
    return 0


def make_predictor(model: str, runtime: str, stack: ExitStack, *, threads: int = 0) -> Predictor:
    """Load a model for a runtime.

    Parameters
    ----------
    model:
        Shipped model name, ``model.pt`` path, model folder, or (ONNX runtime only) an
        export folder holding ``export.json``.
    runtime:
        ``"torch"`` or ``"onnx"``.
    stack:
        Owns the temporary export folder of the ONNX runtime.
    threads:
        CPU threads (0 = the runtime's default).

    Raises
    ------
    InputDataError
        For a missing or unreadable model (the message lists the shipped models).
    """
    import tempfile

    import torch

    from vis_node.perception.checkpoint import load_model
    from vis_node.perception.export_onnx import MANIFEST_FILE, export_onnx
    from vis_node.perception.onnx_runtime import OnnxPredictor
    from vis_node.perception.predictor import TorchPredictor

    if runtime == "onnx" and (Path(model) / MANIFEST_FILE).is_file():
        return OnnxPredictor(Path(model), threads=threads)
    network, _ = load_model(model)
    if runtime == "torch":
        if threads:
            torch.set_num_threads(threads)
        return TorchPredictor(network)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="vsis-onnx-"))
    LOG.info("exporting %s to ONNX in %s", model, folder)
    return OnnxPredictor(export_onnx(network, folder, batch_size=1), threads=threads)
