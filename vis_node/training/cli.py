"""``vsis train CONFIG [--resume] [--max-steps N] [--device cpu|cuda[:N]]``: train the
perception model (also under ``torchrun``, see :mod:`vis_node.training.distributed`).

``vsis train CONFIG --eval-only MODEL`` scores a trained model on the config's test
(or validation) data instead: the held-out evaluation of the model cards.
``vsis train CONFIG --validate-data`` checks the config's data sources and reports
every problem found (:mod:`vis_node.training.validate_data`) without training.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train the S4Net perception model from a YAML config",
        description=(
            "Train the perception model. The run folder (output_dir of the config) gets "
            "checkpoint.pt, history.json, curves.png, validation PNGs and the exported "
            "best.pt / final.pt models."
        ),
    )
    parser.add_argument("config", help="training YAML file (see vis_node.training.config)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from <output_dir>/checkpoint.pt"
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="stop after step N (checkpointed; continue later with --resume)",
    )
    parser.add_argument(
        "--output-dir", default=None, help="run folder, overriding output_dir of the config"
    )
    parser.add_argument(
        "--eval-only",
        metavar="MODEL",
        default=None,
        help=(
            "do not train: score this shipped model (name or .pt) on the config's "
            "test data (validation data without a test section), writing gt/ and pred/ PNG trees and report.json under "
            "--output-dir (or <output_dir>/eval)"
        ),
    )
    parser.add_argument(
        "--frame-step",
        type=int,
        default=None,
        metavar="K",
        help="with --eval-only: score every K-th frame (1 = all; default: the config's)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        metavar="T",
        help="with --eval-only: override the model's detection score threshold",
    )
    parser.add_argument(
        "--fold",
        type=int,
        default=None,
        metavar="K",
        help=(
            "salient NanoDet configs (type: salient-nanodet): train without the "
            "sequences of fold K of the config (leave-sequences-out evaluation)"
        ),
    )
    parser.add_argument(
        "--heads-from",
        default=None,
        metavar="MODEL",
        help=(
            "salient NanoDet configs: keep the heads of MODEL (trained on the same "
            "sequences) and train only the mask refiner of the config"
        ),
    )
    parser.add_argument(
        "--refiner-from",
        default=None,
        metavar="MODEL",
        help=(
            "salient NanoDet configs: keep the mask refiner of MODEL (trained on the same "
            "sequences) and train only the heads"
        ),
    )
    parser.add_argument(
        "--device",
        default=None,
        metavar="cpu|cuda[:N]",
        help=(
            "train on this device, overriding device of the config (falls back to the CPU "
            "with a warning when CUDA is not usable); under torchrun pass cuda: each "
            "process takes GPU LOCAL_RANK"
        ),
    )
    parser.add_argument(
        "--validate-data",
        action="store_true",
        help=(
            "do not train: check every data source of the config (missing files, size "
            "mismatches, empty masks, unknown classes, bad JSON) and report; exit 2 on errors"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the config and train; returns the exit code."""
    from pathlib import Path

    import yaml

    from vis_node.training.config import load_train_config
    from vis_node.training.salient_train_config import is_salient_config
    from vis_node.training.trainer import train

    try:
        salient = is_salient_config(yaml.safe_load(Path(args.config).read_text()))
    except (OSError, yaml.YAMLError) as exc:
        print(f"vsis train: error: {args.config}: cannot read it ({exc})", file=sys.stderr)
        return 2
    if salient:
        return run_salient(args)
    try:
        config = load_train_config(args.config)
    except ValueError as exc:
        print(f"vsis train: error: {args.config}: {exc}", file=sys.stderr)
        return 2
    if args.device is not None:
        config.device = args.device
    if args.validate_data:
        from vis_node.training.validate_data import validate_data

        reports = validate_data(config)
        for report in reports:
            print(report.format())
        errors = sum(len(r.errors) for r in reports)
        print(f"{errors} errors: {'fix them before training' if errors else 'ready to train'}")
        return 2 if errors else 0
    if args.eval_only is not None:
        from vis_node.training.validation import evaluate_model

        out = Path(args.output_dir or Path(config.output_dir) / "eval")
        metrics = evaluate_model(
            config,
            args.eval_only,
            out,
            frame_step=args.frame_step,
            score_threshold=args.score_threshold,
        )
        print(
            f"{metrics['protocol']}: J {metrics['J']:.3f} F {metrics['F']:.3f} "
            f"J&F {metrics['JF']:.3f}; ytvis AP50 {metrics['AP50']:.3f} ({out / 'report.json'})"
        )
        return 0
    if args.output_dir is not None:
        config.output_dir = args.output_dir
    try:
        run_dir = train(config, resume=args.resume, max_steps=args.max_steps)
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"vsis train: error: {exc}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}")
    return 0


def run_salient(args: argparse.Namespace) -> int:
    """``vsis train`` for a ``type: salient-nanodet`` config; returns the exit code."""
    from vis_node.structures.errors import InputDataError
    from vis_node.training.salient_train_config import load_config
    from vis_node.training.salient_trainer import train_salient

    try:
        config = load_config(args.config)
        if args.output_dir is not None:
            config.output_dir = args.output_dir
        path = train_salient(config, fold=args.fold, heads_from=args.heads_from,
                             refiner_from=args.refiner_from)
    except (ValueError, InputDataError) as exc:
        print(f"vsis train: error: {exc}", file=sys.stderr)
        return 2
    print(f"model: {path}")
    return 0
