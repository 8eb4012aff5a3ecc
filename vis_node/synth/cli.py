"""``vsis synth``: write a synthetic salient-instance video dataset."""

from __future__ import annotations

import argparse
import sys


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``320x240``) into ``(width, height)`` pixels."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}")
    return int(parts[0]), int(parts[1])


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command to the ``vsis`` parser."""
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic salient-instance videos (DAVIS-style root + ytvis.json)",
        description=(
            "Generate synthetic videos of textured shapes with exact instance, class and "
            "saliency ground truth, written as a DAVIS-style root (JPEGImages, Annotations, "
            "Semantics), a YouTube-VIS annotation file (ytvis.json) and meta.json."
        ),
    )
    parser.add_argument("out", help="output folder (new or empty)")
    parser.add_argument("--videos", type=int, default=10, help="number of videos (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--frames", type=int, default=40, help="frames per video (default 40)")
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(320, 240),
        metavar="WxH",
        help="frame size (default 320x240)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``vsis synth``; returns the exit code."""
    from vis_node.synth.generator import SynthConfig
    from vis_node.synth.writer import write_synth_root

    width, height = args.size
    try:
        config = SynthConfig(width=width, height=height, frames=args.frames)
        root = write_synth_root(args.out, videos=args.videos, seed=args.seed, config=config)
    except (ValueError, FileExistsError) as exc:
        print(f"vsis synth: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.videos} videos to {root}")
    return 0
