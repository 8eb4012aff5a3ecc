"""``vsis bag make`` (inputs -> rosbag2) and ``vsis replay`` (rosbag2 -> live graph -> outputs)."""

from __future__ import annotations

import argparse
import sys

from vis_node import DEFAULT_MODEL
from vis_node.replay.latency import PACES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bag`` sub-command group to the ``vsis`` parser."""
    bag = subparsers.add_parser("bag", help="rosbag2 tools (make)")
    actions = bag.add_subparsers(dest="bag_command", required=True, metavar="ACTION")
    make = actions.add_parser(
        "make",
        help="turn a video / image folder / DAVIS root into rosbag2 (images + ground truth)",
        description=(
            "Write the frames of INPUT as sensor_msgs/Image (or CompressedImage) messages "
            "into a new rosbag2 at OUT. DAVIS-style roots also get their ground truth as "
            "mono16 instance ids on /camera/gt/instance_ids and mono8 class ids on "
            "/camera/gt/semantics (when a Semantics folder exists), with the image stamps. "
            "A root with several sequences gives one bag per sequence under OUT/<seq>."
        ),
    )
    make.add_argument("input", help="video file, image folder or DAVIS-style root")
    make.add_argument("out", help="bag folder to create (must not exist)")
    make.add_argument("--format", choices=("mcap", "sqlite3"), default="mcap", dest="fmt",
                      help="storage plugin (default mcap)")
    make.add_argument("--topic", default="/camera/image_raw", help="image topic")
    make.add_argument("--encoding", default="rgb8",
                      choices=("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "jpeg", "png"),
                      help="raw encoding, or jpeg/png for CompressedImage (default rgb8)")
    make.add_argument("--fps", type=float, default=30.0,
                      help="frame rate for stamps of image folders / DAVIS roots (default 30)")
    make.add_argument("--sequence", help="only this sequence of a DAVIS root")
    make.add_argument("--frame-id", default="camera", help="header.frame_id (default camera)")
    make.set_defaults(func=run_make)

    replay = subparsers.add_parser(
        "replay",
        help="publish a bag into the live ROS 2 graph, record its outputs, write vsis run's layout",
        description=(
            "Start the VSIS graph (composed, three processes, or use one already running), "
            "publish BAG's images into it, record every output topic to OUT/record (mcap) and "
            "write OUT/instances, OUT/semantics, OUT/results.json, OUT/overlay/<seq>.mp4, "
            "OUT/gt (ground truth from the bag, if any) and OUT/latency.json (per-stage and "
            "end-to-end latency from header stamps). BAG may be a folder of bags (one per "
            "sequence, as vsis bag make writes for a DAVIS root)."
        ),
    )
    replay.add_argument("bag", help="rosbag2 folder or a folder of rosbag2 folders")
    replay.add_argument("--out", required=True, help="output folder (new or empty)")
    replay.add_argument("--overwrite", action="store_true",
                        help="replace the results in a non-empty --out")
    replay.add_argument("--model", default=DEFAULT_MODEL,
                        help="perception model: shipped name, model.pt path or gt:<DAVIS root>")
    replay.add_argument("--graph", choices=("composed", "processes", "external"),
                        default="composed", help="how the graph runs (default composed)")
    replay.add_argument("--pace", choices=PACES, default="max",
                        help="max: next frame once the previous is delivered (latency); "
                        "stream: one frame always waiting for the model, stages overlap "
                        "(throughput); recorded: the bag's clock")
    replay.add_argument("--topic", help="image topic of the bag (when it has several)")
    replay.add_argument("--params", action="append", default=[], metavar="YAML",
                        help="params files for the graph (default launch/config/*.yaml)")
    replay.add_argument("--frame-timeout", type=float, default=30.0,
                        help="seconds to wait for one frame's outputs (default 30)")
    replay.set_defaults(func=run_replay)


def run_make(args: argparse.Namespace) -> int:
    """Execute ``vsis bag make``; returns the exit code."""
    from vis_node.replay.bag_make import BagSpec, make_bags

    spec = BagSpec(fmt=args.fmt, topic=args.topic, encoding=args.encoding, fps=args.fps,
                   frame_id=args.frame_id)
    try:
        written = make_bags(args.input, args.out, spec=spec, sequence=args.sequence)
    except FileExistsError as exc:
        print(f"vsis bag make: error: {exc}", file=sys.stderr)
        return 2
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """Execute ``vsis replay``; returns the exit code (2 for unusable bags or ``--out``,
    1 when the graph fails)."""
    from pathlib import Path

    from vis_node.structures.errors import InputDataError
    from vis_node.io.out_dir import prepare_out_dir
    from vis_node.replay.report import print_latency
    from vis_node.ros.replay import REPLAY_OUTPUTS, ReplaySettings, run_replay as replay

    prepare_out_dir(Path(args.out), overwrite=args.overwrite, outputs=REPLAY_OUTPUTS)
    settings = ReplaySettings(
        model=args.model, graph=args.graph, pace=args.pace, topic=args.topic,
        params=tuple(Path(p) for p in args.params), frame_timeout_s=args.frame_timeout,
    )
    try:
        report = replay(Path(args.bag), Path(args.out), settings)
    except InputDataError:
        raise
    except RuntimeError as exc:
        print(f"vsis replay: error: {exc}", file=sys.stderr)
        return 1
    print_latency(report, title=f"vsis replay: {args.bag} ({args.graph}, pace {args.pace})")
    print(f"outputs written to {args.out}")
    if report["dropped"] and (Path(args.out) / "gt").is_dir():
        print(
            f"{report['dropped']} frames have no outputs (skipped by the graph); score them as a "
            f"subscriber saw them with: vsis eval --pred {args.out}/instances --gt {args.out}/gt "
            "--protocol davis2016 --missing hold --out REPORT.json"
        )
    return 0
