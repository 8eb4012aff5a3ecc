"""``vsis eval``: score predicted label folders against ground truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` sub-command to the ``vsis`` parser."""
    from vis_node.evaluation import MISSING_RULES, PROTOCOLS

    parser = subparsers.add_parser(
        "eval",
        help="score predictions (DAVIS J/F, SESIV, YouTube-VIS AP, HOTA/IDF1)",
        description=(
            "Score <PRED>/<seq>/<frame>.png instance-id maps against <GT>/<seq>/<frame>.png. "
            "GT frames missing from PRED count as empty predictions (or, --missing hold, as "
            "the latest earlier prediction). For ytvis, PRED and GT may also be a "
            "YouTube-VIS results JSON and annotation JSON."
        ),
    )
    parser.add_argument("--pred", type=Path, required=True, help="prediction folder (or JSON)")
    parser.add_argument("--gt", type=Path, required=True, help="ground-truth folder (or JSON)")
    parser.add_argument("--protocol", choices=PROTOCOLS, required=True, help="metric protocol")
    parser.add_argument("--out", type=Path, required=True, help="report JSON to write")
    parser.add_argument(
        "--pred-semantics", type=Path, help="predicted class-id PNG folder (sesiv, ytvis)"
    )
    parser.add_argument(
        "--gt-semantics", type=Path, help="ground-truth class-id PNG folder (sesiv, ytvis)"
    )
    parser.add_argument(
        "--missing",
        choices=MISSING_RULES,
        default=MISSING_RULES[0],
        help="a GT frame without prediction: empty (default) or hold (the latest earlier "
        "prediction, what a subscriber had: for a replay at --pace recorded, where the "
        "graph skips frames)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write ``args.out`` and print the table; returns the exit code (2 for
    unusable predictions, ground truth or ``--out``)."""
    from vis_node.evaluation import evaluate
    from vis_node.evaluation.report import print_report, write_report
    from vis_node.io.out_dir import check_out_file

    check_out_file(args.out)
    try:
        report = evaluate(
            args.protocol,
            args.pred,
            args.gt,
            pred_semantics=args.pred_semantics,
            gt_semantics=args.gt_semantics,
            missing=args.missing,
        )
    except ValueError as exc:
        print(f"vsis eval: error: {exc}", file=sys.stderr)
        return 2
    write_report(report, args.out)
    print_report(report)
    print(f"report written to {args.out}")
    return 0
