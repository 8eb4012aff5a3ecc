"""``vsis``: the one command-line front for every VSIS job.

Each job lives in its own module exposing ``register(subparsers)``, which adds a
sub-command whose ``func(args) -> int`` does the work. :data:`COMMANDS` maps every
command to that module and a one-line summary, so ``vsis --help`` and ``vsis
--version`` import no job module (and no torch, cv2 or rclpy); only the module of the
command being run is imported to build its full parser.

Exit codes: 0 success, 1 failure of the job itself, 2 unusable input or arguments
(``vis_node.io.InputDataError``, argparse errors), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vis_node import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("vis_node.synth.cli", "generate synthetic salient-instance videos"),
    "eval": ("vis_node.evaluation.cli", "score predictions against ground truth"),
    "track": ("vis_node.tracking.cli", "give per-frame instance PNGs consistent track ids"),
    "bench-track": ("vis_node.tracking.cli", "same as `vsis bench track`"),
    "bag": ("vis_node.replay.cli", "rosbag2 tools (make)"),
    "replay": ("vis_node.replay.cli", "replay a bag through the live ROS 2 graph"),
    "train": ("vis_node.training.cli", "train the perception model from a YAML config"),
    "run": ("vis_node.pipeline.cli", "segment, track and label the salient instances of a video"),
    "export": ("vis_node.perception.export_cli", "export a model to ONNX or TensorRT"),
    "bench-model": ("vis_node.perception.export_cli", "same as `vsis bench model`"),
    "convert": ("vis_node.perception.convert_cli", "convert pretrained weights from their package"),
    "ros": ("vis_node.ros.cli", "run the ROS 2 nodes"),
    "bench": ("vis_node.bench_cli", "benchmarks: model latency, tracking quality"),
}
"""Command name -> (module whose ``register`` adds it, summary for ``vsis --help``)."""

INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


def selected_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first non-option word), if it is known."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the ``vsis`` parser.

    Parameters
    ----------
    command:
        The command to build in full (its module is imported); every other command
        gets a placeholder that only lists it in ``vsis --help``. ``None`` imports no
        job module.
    """
    parser = argparse.ArgumentParser(
        prog="vsis",
        description="Video semantic salient instance segmentation (VSIS) tools.",
    )
    parser.add_argument("--version", action="version", version=f"vsis {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command is not None:
        importlib.import_module(COMMANDS[command][0]).register(subparsers)
    for name, (_, summary) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vsis`` console script; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("vsis: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT


def _run(argv: list[str]) -> int:
    """Parse ``argv`` and run its command; input errors become exit code 2."""
    args = build_parser(selected_command(argv)).parse_args(argv)
    from vis_node.structures.errors import InputDataError

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
