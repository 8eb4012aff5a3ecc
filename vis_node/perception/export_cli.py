"""``vsis export`` (ONNX / TensorRT) and ``vsis bench-model`` (latency, params, FLOPs).

``vsis export MODEL --format onnx --out DIR [--dynamic-batch | --batch-size N]``
writes ``DIR/dense.onnx``, ``DIR/instance.onnx`` and ``DIR/export.json``.

``vsis export MODEL --format tensorrt --precision fp16|int8 [--calib DIR|BAG]
--out DIR`` also builds the TensorRT engines with ONNX Runtime's TensorRT provider
(cached in ``DIR/engines`` or ``--cache``), calibrating INT8 on frames of
``--calib``, and writes
``DIR/accuracy.json`` comparing the engines with eager FP32 on held-out frames
(``--holdout``, default the ``--calib`` frames after those used for calibration).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vis_node.registry import BACKBONES

if TYPE_CHECKING:
    import numpy as np

    from vis_node.perception.export_onnx import OnnxExport
    from vis_node.perception.model import S4Net


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` and ``bench-model`` sub-commands to the ``vsis`` parser."""
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX or build TensorRT engines",
        description=(
            "Export MODEL (shipped name or model.pt) as two ONNX graphs (dense + instance); "
            "with --format tensorrt also build TensorRT engines (optional extra 'tensorrt')."
        ),
    )
    parser.add_argument("model", help="shipped model name, model.pt file or model folder")
    parser.add_argument("--format", choices=("onnx", "tensorrt"), default="onnx")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=int, default=1, help="fixed batch size (default 1)")
    batch.add_argument(
        "--dynamic-batch", action="store_true", help="dynamic batch axis (ONNX only)"
    )
    parser.add_argument(
        "--precision", choices=("fp32", "fp16", "int8"), default="fp16", help="TensorRT precision"
    )
    parser.add_argument("--calib", type=Path, help="INT8 calibration image folder, video or bag")
    parser.add_argument("--topic", help="image topic of rosbag2 --calib / --holdout inputs")
    parser.add_argument(
        "--calib-frames", type=int, default=64, help="calibration frames (default 64)"
    )
    parser.add_argument("--holdout", type=Path, help="frames for the accuracy report")
    parser.add_argument(
        "--holdout-frames", type=int, default=16, help="frames in the accuracy report (16)"
    )
    parser.add_argument("--cache", type=Path, help="engine cache folder (default OUT/engines)")
    parser.add_argument("--rebuild", action="store_true", help="ignore cached engines")
    parser.set_defaults(func=run_export)

    add_bench_model_parser(subparsers, "bench-model")


def add_bench_model_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the model benchmark as sub-command ``name`` (``vsis bench model``,
    ``vsis bench-model``)."""
    bench = subparsers.add_parser(
        name,
        help="benchmark model latency, params and FLOPs against Mask R-CNN",
        description=(
            "Per-frame latency (median, p90), throughput, parameters and FLOPs of S4Net per "
            "backbone and runtime, and of torchvision Mask R-CNN R50-FPN (random weights)."
        ),
    )
    bench.add_argument("--size", type=int, default=320, help="input side in pixels (320)")
    bench.add_argument("--config", choices=("lean", "default"), default="lean")
    bench.add_argument(
        "--backbones", nargs="+", choices=BACKBONES.names(), default=list(BACKBONES.names()),
        help=f"backbones (default all: {', '.join(BACKBONES.names())})",
    )
    bench.add_argument("--runtimes", nargs="+", default=["torch", "onnx"], help="runtimes")
    bench.add_argument("--iterations", type=int, default=20, help="timed frames per row (20)")
    bench.add_argument("--warmup", type=int, default=3, help="untimed frames per row (3)")
    bench.add_argument("--no-maskrcnn", action="store_true", help="skip the Mask R-CNN row")
    bench.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    bench.add_argument(
        "--model",
        action="append",
        default=None,
        help=(
            "also time this shipped model end to end on a real 854x480 frame (the first "
            "frame of FRAME, or of the dog sequence in $VSIS_SHARED_DATA/davis2016, "
            "default ../shared/data/davis2016); repeatable"
        ),
    )
    bench.add_argument("--frame", type=Path, default=None, help="image for the --model rows")
    bench.add_argument(
        "--device",
        default="cpu",
        metavar="cpu|cuda[:N]",
        help="device of every row (falls back to the CPU with a warning without a usable GPU)",
    )
    bench.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Execute ``vsis bench-model``: print the table; returns the exit code."""
    import torch

    from vis_node.structures.errors import InputDataError
    from vis_node.perception.bench import format_table, run_benchmark, shipped_model_rows

    if args.threads < 0:
        print("vsis bench-model: error: --threads must be >= 0", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        rows = run_benchmark(
            backbones=args.backbones,
            runtimes=args.runtimes,
            config=args.config,
            input_size=args.size,
            warmup=args.warmup,
            iterations=args.iterations,
            maskrcnn=not args.no_maskrcnn,
            device=args.device,
        )
        for model in args.model or []:
            rows += shipped_model_rows(
                model, _bench_frame(args.frame), runtimes=args.runtimes,
                warmup=args.warmup, iterations=args.iterations, device=args.device,
            )
    except (ValueError, InputDataError) as exc:
        print(f"vsis bench-model: error: {exc}", file=sys.stderr)
        return 2
    print(f"input {args.size}x{args.size}, {args.config} config, {torch.get_num_threads()} threads")
    print(format_table(rows))
    return 0


def _bench_frame(path: Path | None) -> np.ndarray:
    """The ``--model`` rows' frame: ``path``, else dog/00000 of the shared DAVIS data.

    The shared data folder is ``$VSIS_SHARED_DATA``, else ``../shared/data`` from the
    working directory (the layout beside a checkout).
    """
    from vis_node.structures.errors import InputDataError
    from vis_node.io.readers import read_image

    if path is None:
        shared = Path(os.environ.get("VSIS_SHARED_DATA", "../shared/data"))
        path = shared / "davis2016" / "JPEGImages" / "480p" / "dog" / "00000.jpg"
        if not path.is_file():
            raise InputDataError(path, "no shared DAVIS data here: pass --frame IMAGE")
    return read_image(path)


def run_export(args: argparse.Namespace) -> int:
    """Execute ``vsis export``; returns the exit code."""
    from vis_node.perception.checkpoint import load_model, resolve_model
    from vis_node.perception.export_onnx import export_onnx

    if args.batch_size < 1:
        print("vsis export: error: --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.format == "tensorrt":
        if args.dynamic_batch:
            print("vsis export: error: TensorRT engines need a fixed --batch-size", file=sys.stderr)
            return 2
        if args.precision == "int8" and args.calib is None:
            print("vsis export: error: --precision int8 needs --calib DIR|BAG", file=sys.stderr)
            return 2
        import onnxruntime as ort

        from vis_node.perception.tensorrt import TensorRTUnavailableError, require_tensorrt

        try:
            require_tensorrt(ort.get_available_providers())
        except TensorRTUnavailableError as exc:
            print(f"vsis export: error: {exc}", file=sys.stderr)
            return 2
    path = resolve_model(args.model)
    model, _ = load_model(path)
    onnx_dir = args.out if args.format == "onnx" else args.out / "onnx"
    batch_size = None if args.dynamic_batch else args.batch_size
    export = export_onnx(model, onnx_dir, batch_size=batch_size)
    print(f"wrote {export.dense_path} and {export.instance_path}")
    if args.format == "onnx":
        return 0
    return _export_tensorrt(args, model, export, path)


def _export_tensorrt(
    args: argparse.Namespace,
    model: S4Net,
    export: OnnxExport,
    model_path: Path,
) -> int:
    """Build (or reuse) the engines, then write and print the accuracy report."""
    from vis_node.io.sources import open_source
    from vis_node.perception.compare import compare_predictions
    from vis_node.perception.checkpoint import model_name
    from vis_node.perception.predictor import TorchPredictor
    from vis_node.perception.tensorrt import (
        CalibrationBatches,
        EngineCacheError,
        TensorRTPredictor,
        engine_slot,
    )

    cache = args.cache or args.out / "engines"
    folder, key = engine_slot(export, cache, model_name(model_path), args.precision, 0)
    calibration = None
    if args.precision == "int8":
        frames = (f.image for f in open_source(args.calib, topic=args.topic))
        calibration = CalibrationBatches(
            frames, export.config.input_size, export.batch_size or 1, args.calib_frames
        )
    try:
        engine_predictor = TensorRTPredictor(
            export, folder, key, rebuild=args.rebuild, calibration=calibration
        )
    except EngineCacheError as exc:
        print(f"vsis export: error: {exc}", file=sys.stderr)
        return 2
    print(f"TensorRT engines: {folder}")
    holdout = args.holdout or args.calib
    if holdout is None:
        print("no --holdout or --calib frames: accuracy report skipped")
        return 0
    skip = args.calib_frames if args.holdout is None else 0
    images = [
        f.image
        for f in itertools.islice(
            open_source(holdout, topic=args.topic), skip, skip + args.holdout_frames
        )
    ]
    if not images:
        print(
            f"vsis export: error: {holdout} has no frames after the first {skip} used for "
            "calibration; pass a separate --holdout DIR|BAG",
            file=sys.stderr,
        )
        return 2
    report = {
        "precision": args.precision,
        "holdout": str(holdout),
        **compare_predictions(TorchPredictor(model), engine_predictor, images),
    }
    (args.out / "accuracy.json").write_text(json.dumps(report, indent=1))
    for key, value in report.items():
        print(f"{key:>22}: {value}")
    return 0
