"""Readable latency tables (rich) for replay reports."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def latency_table(report: dict[str, Any], title: str) -> Table:
    """A table of per-stage and end-to-end latency (ms) with frame counts in the caption."""
    table = Table(title=title)
    for column in ("stage", "median ms", "p90 ms", "max ms"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    rows = [*report["stages"].items(), ("end to end", report["end_to_end"])]
    for name, stats in rows:
        table.add_row(name, *(f"{stats[k]:.1f}" for k in ("median", "p90", "max")))
    table.caption = (
        f"published {report['published']}, delivered {report['delivered']}, "
        f"dropped {report['dropped']}, {report['throughput_fps']:.1f} frames/s delivered"
    )
    return table


def print_latency(report: dict[str, Any], title: str) -> None:
    """Print :func:`latency_table` to the terminal."""
    Console().print(latency_table(report, title))
