"""Evaluation reports: write the report dict as JSON and print it as a table."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "davis2016": ("J", "F", "JF"),
    "davis2017-unsupervised": ("J", "F", "JF"),
    "sesiv": ("JS", "FS", "OS"),
    "ytvis": ("AP", "AP50", "AP75", "AR1", "AR10"),
    "hota": ("HOTA", "IDF1", "IDSW"),
}
"""Headline numbers of each protocol, in table order."""


def write_report(report: dict, path: str | Path) -> None:
    """Write a report dict as indented JSON (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def _cell(value: object) -> str:
    """Format a number: integers as is, fractions as percentages with 1 decimal."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{100 * value:.1f}"
    return str(value)


def summary_table(report: dict) -> Table:
    """Rich table of a report: the headline numbers, then one row per sequence.

    DAVIS ``J`` and ``F`` show mean / recall / decay; fractions print as percentages.
    """
    protocol = report["protocol"]
    keys = SUMMARY_KEYS[protocol]
    table = Table(title=f"vsis eval: {protocol} ({report['num_sequences']} sequences)")
    table.add_column("sequence")
    davis = protocol.startswith("davis")
    for key in keys:
        if davis and key in ("J", "F"):
            for stat in ("mean", "recall", "decay"):
                table.add_column(f"{key} {stat}", justify="right")
        else:
            table.add_column(key, justify="right")
    for seq, values in report.get("per_sequence", {}).items():
        row = [seq]
        for key in keys:
            if davis and key in ("J", "F"):
                row += [_cell(values[key]), "", ""]
            else:
                row.append(_cell(values[key]))
        table.add_row(*row)
    overall = ["all"]
    for key in keys:
        value = report[key]
        if isinstance(value, dict):
            overall += [_cell(value[s]) for s in ("mean", "recall", "decay")]
        else:
            overall.append(_cell(value))
    table.add_section()
    table.add_row(*overall, style="bold")
    return table


def print_report(report: dict, console: Console | None = None) -> None:
    """Print :func:`summary_table` to ``console`` (default: stdout)."""
    (console or Console()).print(summary_table(report))
