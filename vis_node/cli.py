"""``vsis``: the one command-line front for every VSIS job.

Each job lives in its own module exposing ``register(subparsers)``, which adds a
sub-command whose ``func(args) -> int`` does the work. Heavy imports (torch, cv2,
rclpy) happen inside ``func`` so ``vsis --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vis_node import __version__
from vis_node.io.errors import InputDataError

COMMAND_MODULES: tuple[str, ...] = (
    "vis_node.synth.cli",
    "vis_node.evaluation.cli",
    "vis_node.tracking.cli",
    "vis_node.replay.cli",
    "vis_node.training.cli",
    "vis_node.pipeline.cli",
    "vis_node.perception.export_cli",
    "vis_node.perception.convert_cli",
    "vis_node.ros.cli",
    "vis_node.bench_cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``vsis`` parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="vsis",
        description="Video semantic salient instance segmentation (VSIS) tools.",
    )
    parser.add_argument("--version", action="version", version=f"vsis {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vsis`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except InputDataError as exc:
        print(f"vsis {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
