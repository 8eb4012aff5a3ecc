"""``vsis run``: segment, track and label every frame of a video, folder, DAVIS root or bag.

``vsis run INPUT --out OUT [--model synth|davis|PATH] [--runtime RUNTIME]
[--mode online|offline] [--offline-method METHOD]`` writes the layout of
:mod:`vis_node.pipeline.outputs` (runtimes and offline methods: :mod:`vis_node.registry`).
ONNX Runtime (the default) and TensorRT use an export of the model kept in the user
cache (:mod:`vis_node.perception.runtime`), made on first use; ``--model`` may also
name an export folder (``vsis export --format onnx``).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from vis_node import DEFAULT_MODEL
from vis_node.io.readers import DEFAULT_FPS
from vis_node.registry import RUNTIMES
from vis_node.settings import add_flags, from_values
from vis_node.structures.label_map import LabelMap
from vis_node.tracking.fusion import FusionConfig
from vis_node.tracking.offline_config import OfflineConfig
from vis_node.tracking.tracker_config import TrackerConfig
from vis_node.tracking.unification import UnifierConfig

if TYPE_CHECKING:
    from vis_node.perception.salient_config import SalientOverrides

LOG = logging.getLogger(__name__)

SETTINGS: tuple[tuple[type, str, tuple[str, ...]], ...] = (
    (TrackerConfig, "tracker (online mode; offline: numbers the propagated instances)", ()),
    (UnifierConfig, "label unification (online mode; max_idle follows --max-lost-age)",
     ("max_idle",)),
    (FusionConfig, "SISO fusion (the motion gate; offline: also siso propagation)", ()),
    (OfflineConfig, "offline mode", ()),
)
"""Settings dataclasses whose fields are flags of ``vsis run``: (class, help group title,
fields left out)."""


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
    parser.add_argument("--out", type=Path, required=True, help="output folder (new or empty)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the results in a non-empty --out"
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"shipped model name, model.pt path or ONNX export folder (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES.names(),
        default=RUNTIMES.default,
        help=f"inference runtime (default {RUNTIMES.default}); {RUNTIMES.help()}",
    )
    parser.add_argument(
        "--mode",
        choices=("online", "offline"),
        default="online",
        help="online: frame by frame; offline: whole sequences (see --offline-method)",
    )
    parser.add_argument("--score-threshold", type=float, default=0.0,
                        help="drop instances whose saliency score is below this (default 0)")
    parser.add_argument("--classes", nargs="+", default=(), metavar="NAME",
                        help="keep only these classes of the model's label map (default all)")
    parser.add_argument("--max-instances", type=int, default=0,
                        help="keep the N most salient instances per frame (default 0: all)")
    parser.add_argument("--min-mask-area", type=int, default=0,
                        help="drop instances whose mask has fewer pixels (default 0)")
    parser.add_argument("--topic", help="image topic of a rosbag2 input")
    parser.add_argument(
        "--fps",
        type=float,
        default=DEFAULT_FPS,
        help=(
            f"frame rate of image folders and DAVIS roots (default {DEFAULT_FPS:g}); videos "
            "and bags keep their own clock; overlays are written at the source's rate"
        ),
    )
    parser.add_argument("--no-overlay", action="store_true", help="skip OUT/overlay/*.mp4")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for inference (0 = runtime default)"
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        default="fp16",
        help="tensorrt only: engine precision (int8 needs a table: see docs/GPU.md)",
    )
    parser.add_argument(
        "--refiner-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "models with a mask refiner: also refine each instance mirrored and average "
            "(default: the model's setting, on for real); --no-refiner-flip halves the "
            "refiner's cost per instance"
        ),
    )
    parser.add_argument(
        "--refiner-flip-max-instances",
        type=int,
        default=None,
        metavar="N",
        help=(
            "models with a mask refiner: the mirrored pass only on frames with at most N "
            "instances (0: every frame; default: the model's setting), so a crowded "
            "frame costs one refiner crop per instance instead of two"
        ),
    )
    parser.add_argument(
        "--saliency-threshold",
        type=float,
        default=None,
        metavar="P",
        help=(
            "salient models: report candidates whose saliency reaches P in [0, 1] "
            "(default: the model's, 0.5 for real); lower reports the objects the model "
            "ranks as less salient too (spectators, parked cars), higher only the clearest"
        ),
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda[:N]",
        help=(
            "inference device (default auto: a GPU for tensorrt, the CPU otherwise); an "
            "unusable GPU falls back to the CPU with a warning saying why"
        ),
    )
    for config, title, exclude in SETTINGS:
        add_flags(parser.add_argument_group(title), config, exclude=exclude)
    parser.set_defaults(func=run)


def salient_overrides(args: argparse.Namespace) -> SalientOverrides | None:
    """The salient-model settings given as ``vsis run`` flags; ``None`` when none is
    (the model's own settings, and no model code imported for the oracle)."""
    values = (args.refiner_flip, args.refiner_flip_max_instances, args.saliency_threshold)
    if all(value is None for value in values):
        return None
    from vis_node.perception.salient_config import SalientOverrides

    return SalientOverrides(*values)


def run(args: argparse.Namespace) -> int:
    """Execute ``vsis run``; returns the exit code (2 for unusable inputs or models)."""
    from tqdm import tqdm

    from vis_node.evaluation.oracle import GT_PREFIX
    from vis_node.io.out_dir import prepare_out_dir
    from vis_node.io.sources import open_source
    from vis_node.perception.tensorrt import TensorRTUnavailableError
    from vis_node.pipeline.backends import load_backend
    from vis_node.pipeline.filters import InstanceFilter, filter_predictor
    from vis_node.pipeline.offline import OfflinePipeline
    from vis_node.pipeline.online import OnlinePipeline
    from vis_node.pipeline.outputs import OUTPUT_ENTRIES, OutputWriter
    from vis_node.structures.errors import InputDataError

    if args.fps <= 0 or args.threads < 0:
        print("vsis run: error: --fps must be positive and --threads >= 0", file=sys.stderr)
        return 2
    if str(args.model).startswith(GT_PREFIX) and args.mode != "online":
        print(f"vsis run: error: the {GT_PREFIX}ROOT oracle works in --mode online only",
              file=sys.stderr)
        return 2
    try:
        tracker_config, unifier_config, fusion_config, offline_config = (
            from_values(config, args, exclude=exclude) for config, _, exclude in SETTINGS
        )
    except ValueError as exc:
        print(f"vsis run: error: {exc}", file=sys.stderr)
        return 2
    prepare_out_dir(args.out, overwrite=args.overwrite, outputs=OUTPUT_ENTRIES)
    frames = open_source(args.input, topic=args.topic, fps=args.fps)
    instance_filter = InstanceFilter(
        args.score_threshold, tuple(args.classes), args.max_instances, args.min_mask_area
    )
    try:
        backend = load_backend(
            str(args.model),
            runtime=args.runtime,
            threads=args.threads,
            device=args.device,
            precision=args.precision,
            overrides=salient_overrides(args),
            gt_fps=args.fps,
        )
        label_map = LabelMap(backend.class_names, backend.name)
        instance_filter.allowed_ids(label_map)
    except (TensorRTUnavailableError, ValueError) as exc:
        print(f"vsis run: error: {exc}", file=sys.stderr)
        return 2
    size_changes = 0
    with ExitStack() as stack:
        writer = stack.enter_context(
            OutputWriter(
                args.out,
                backend.class_names,
                overlay=not args.no_overlay,
                metadata={
                    "model": str(args.model),
                    "runtime": args.runtime,
                    "mode": args.mode,
                    "motion_gate": fusion_config.motion_gate,
                    **(
                        {"offline_method": offline_config.offline_method}
                        if args.mode == "offline" else {}
                    ),
                },
            )
        )
        bar = stack.enter_context(tqdm(desc="vsis run", unit="frame"))
        for sequence, group in itertools.groupby(frames, key=lambda f: f.sequence):
            bar.set_postfix_str(sequence)
            if args.mode == "online":
                if backend.predictor is None:  # the oracle replays this sequence's annotations
                    backend = load_backend(str(args.model), gt_sequence=sequence, gt_fps=args.fps)
                pipeline = OnlinePipeline.build(
                    backend, instance_filter=instance_filter, tracker_config=tracker_config,
                    unifier_config=unifier_config, fusion_config=fusion_config,
                )
            else:
                pipeline = OfflinePipeline(
                    filter_predictor(backend.predictor, instance_filter, str(args.model)),
                    tracker_config=tracker_config,
                    config=offline_config,
                    fusion=fusion_config,
                    fallback_class=label_map.fallback_class,
                )
            # Tracks cannot survive a change of frame size: like the tracking node, start
            # new tracks (with ids after the earlier ones) and say so.
            previous: tuple[int, ...] | None = None
            for shape, segment in itertools.groupby(group, key=lambda f: f.image.shape):
                if previous is not None:
                    size_changes += 1
                    LOG.warning(
                        "%s: frame size changed from %s to %s; starting new tracks",
                        sequence, previous[:2], shape[:2],
                    )
                    writer.restart_tracks()
                previous = shape
                if args.mode == "online":
                    pipeline.reset()
                    for frame in segment:
                        writer.write(pipeline.step(frame))
                        bar.update()
                else:
                    for result in pipeline.run(list(segment), progress=bar.update):
                        writer.write(result)
        writer.metadata["frame_size_changes"] = size_changes
        if writer.frames_written == 0:
            raise InputDataError(args.input, "no frames in this input")
    changes = f" ({size_changes} frame-size changes started new tracks)" if size_changes else ""
    print(f"wrote {writer.frames_written} frames to {args.out}{changes}")
    return 0
