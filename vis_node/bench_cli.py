"""``vsis bench model|track``: the benchmarks under one command.

The same sub-commands are also reachable as ``vsis bench-model`` and
``vsis bench-track``.
"""

from __future__ import annotations

import argparse

from vis_node.perception.export_cli import add_bench_model_parser
from vis_node.tracking.cli import add_bench_track_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` with its ``model`` and ``track`` sub-commands to the ``vsis`` parser."""
    bench = subparsers.add_parser(
        "bench",
        help="benchmarks: model latency vs Mask R-CNN, tracking quality",
        description="Benchmarks (speed and quality measurements, never part of the tests).",
    )
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    add_bench_model_parser(benches, "model")
    add_bench_track_parser(benches, "track")
