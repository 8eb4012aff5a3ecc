"""Leave-sequences-out evaluation of a salient NanoDet training config.

``python -m vis_node.training.cross_validate CONFIG OUT [--skip-training]
[--run-args="--no-refiner-flip"]`` trains one
model per fold of the config (``vsis train CONFIG --fold K``), runs each held-out
sequence through the whole ``vsis run`` pipeline with the model that never saw it,
scores it with ``vsis eval --protocol davis2016``, and writes ``OUT/cv.json`` and
``OUT/cv.md``: per-sequence J, F and semantic accuracy next to RVOS and OSVOS, and the
same scores on the training frames of each fold (the fit, so underfitting shows).

The semantic accuracy of a sequence is the fraction of its frames whose main instance
(the predicted track overlapping the ground truth most) carries one of the sequence's
COCO categories (``../shared/data/davis2016/README.md``); a frame without any
overlapping instance counts as wrong.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from vis_node.io.labels import read_label_png, read_semantic_png
from vis_node.training.salient_train_config import load_config

CATEGORIES: dict[str, tuple[str, ...]] = {
    "blackswan": ("bird",),
    "bmx-trees": ("person", "bicycle"),
    "breakdance": ("person",),
    "car-roundabout": ("car",),
    "cows": ("cow",),
    "dance-twirl": ("person",),
    "dog": ("dog",),
    "drift-chicane": ("car",),
    "horsejump-high": ("person", "horse"),
    "kite-surf": ("person", "kite"),
    "motocross-jump": ("person", "motorcycle"),
    "paragliding-launch": ("person", "kite"),
}
"""COCO categories of the foreground of each shared DAVIS-2016 sequence."""

REFERENCE_JF: dict[str, dict[str, tuple[float, float]]] = {
    "RVOS": {
        "blackswan": (0.92, 0.94), "bmx-trees": (0.26, 0.48), "breakdance": (0.21, 0.25),
        "car-roundabout": (0.67, 0.53), "cows": (0.90, 0.91), "dance-twirl": (0.49, 0.48),
        "dog": (0.89, 0.86), "drift-chicane": (0.23, 0.30), "horsejump-high": (0.52, 0.67),
        "kite-surf": (0.62, 0.50), "motocross-jump": (0.76, 0.62),
        "paragliding-launch": (0.62, 0.22),
    },
    "OSVOS": {
        "blackswan": (0.94, 0.97), "bmx-trees": (0.54, 0.77), "breakdance": (0.73, 0.76),
        "car-roundabout": (0.89, 0.83), "cows": (0.95, 0.96), "dance-twirl": (0.65, 0.72),
        "dog": (0.72, 0.70), "drift-chicane": (0.78, 0.83), "horsejump-high": (0.77, 0.87),
        "kite-surf": (0.60, 0.67), "motocross-jump": (0.82, 0.63),
        "paragliding-launch": (0.56, 0.44),
    },
}
"""Per-sequence (J, F) of two published methods on the same frames (issue 9)."""


def subset_root(root: Path, sequences: tuple[str, ...], folder: Path) -> Path:
    """A DAVIS-style root at ``folder`` linking only ``sequences`` of ``root``."""
    for part in ("JPEGImages", "Annotations"):
        target = folder / part / "480p"
        target.mkdir(parents=True, exist_ok=True)
        for sequence in sequences:
            link = target / sequence
            if not link.exists():
                link.symlink_to((root / part / "480p" / sequence).resolve())
    return folder


def semantic_accuracy(run: Path, gt: Path, sequence: str) -> float:
    """Fraction of frames whose main instance has one of the sequence's categories."""
    names = json.loads((run / "label_map.json").read_text())
    wanted = set(CATEGORIES[sequence])
    frames = sorted((gt / sequence).glob("*.png"))
    correct = 0
    for path in frames:
        truth = read_label_png(path)[0] > 0
        ids = read_label_png(run / "instances" / sequence / path.name)[0]
        classes = read_semantic_png(run / "semantics" / sequence / path.name)
        overlap = ids[truth]
        overlap = overlap[overlap > 0]
        if overlap.size == 0:
            continue
        main = np.bincount(overlap).argmax()
        label = np.bincount(classes[ids == main]).argmax()
        correct += names.get(str(int(label))) in wanted
    return correct / max(len(frames), 1)


def score_sequences(
    model: Path,
    root: Path,
    sequences: tuple[str, ...],
    out: Path,
    run_args: tuple[str, ...] = (),
) -> dict[str, dict[str, float]]:
    """``vsis run`` + ``vsis eval --protocol davis2016`` of ``model`` on ``sequences``.

    ``run_args`` are further ``vsis run`` flags (a runtime setting scored held out).
    """
    data = subset_root(root, sequences, out / "data")
    run = out / "run"
    vsis = [sys.executable, "-m", "vis_node.cli"]
    subprocess.run([*vsis, "run", str(data), "--out", str(run), "--model", str(model),
                    *run_args], check=True)
    report = out / "report.json"
    subprocess.run([*vsis, "eval", "--pred", str(run / "instances"), "--gt",
                    str(data / "Annotations" / "480p"), "--protocol", "davis2016",
                    "--out", str(report)], check=True)
    per_sequence = json.loads(report.read_text())["per_sequence"]
    return {
        sequence: {
            "J": float(per_sequence[sequence]["J"]),
            "F": float(per_sequence[sequence]["F"]),
            "label_accuracy": semantic_accuracy(run, data / "Annotations" / "480p", sequence),
        }
        for sequence in sequences
    }


def table(held_out: dict[str, dict[str, float]], fit: dict[str, dict[str, float]]) -> str:
    """Markdown table: held-out J / F / J&F / label accuracy, fit J&F, RVOS, OSVOS."""
    lines = [
        "| sequence | J | F | J&F | label acc. | train-frame J&F | RVOS J/F | OSVOS J/F |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sequence, s in held_out.items():
        fits = [(f[sequence]["J"] + f[sequence]["F"]) / 2 for f in fit.values() if sequence in f]
        fit_jf = f"{np.mean(fits):.3f}" if fits else "-"
        rvos, osvos = REFERENCE_JF["RVOS"][sequence], REFERENCE_JF["OSVOS"][sequence]
        lines.append(
            f"| {sequence} | {s['J']:.3f} | {s['F']:.3f} | {(s['J'] + s['F']) / 2:.3f} | "
            f"{s['label_accuracy']:.2f} | {fit_jf} | {rvos[0]:.2f}/{rvos[1]:.2f} | "
            f"{osvos[0]:.2f}/{osvos[1]:.2f} |"
        )
    mean = {k: float(np.mean([s[k] for s in held_out.values()])) for k in ("J", "F")}
    lines.append(
        f"| **mean** | {mean['J']:.3f} | {mean['F']:.3f} | **{(mean['J'] + mean['F']) / 2:.3f}** "
        f"| {np.mean([s['label_accuracy'] for s in held_out.values()]):.2f} | | 0.577 (J&F) "
        "| 0.754 (J&F) |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("out", type=Path)
    parser.add_argument("--skip-training", action="store_true",
                        help="reuse the fold models already in the config's output_dir")
    parser.add_argument("--folds", type=int, nargs="+", default=None,
                        help="score only these folds (default all); cv.json then holds them only")
    parser.add_argument("--fit", action="store_true",
                        help="also score each fold model on its own training sequences")
    parser.add_argument("--run-args", default="",
                        help="further vsis run flags, one shell-quoted string joined by '=' "
                             "(e.g. --run-args=\"--no-refiner-flip\")")
    args = parser.parse_args(argv)
    run_args = tuple(shlex.split(args.run_args))
    config = load_config(args.config)
    root = Path(config.data.root)
    held_out: dict[str, dict[str, float]] = {}
    fit: dict[int, dict[str, dict[str, float]]] = {}
    for fold, sequences in enumerate(config.data.folds):
        if args.folds is not None and fold not in args.folds:
            continue
        model = Path(config.output_dir) / f"fold-{fold}" / "model.pt"
        if not args.skip_training or not model.is_file():
            subprocess.run([sys.executable, "-m", "vis_node.cli", "train", args.config,
                            "--fold", str(fold)], check=True)
        held_out.update(
            score_sequences(model, root, sequences, args.out / f"fold-{fold}", run_args)
        )
        if args.fit:
            fit[fold] = score_sequences(model, root, config.data.training_sequences(fold),
                                        args.out / f"fold-{fold}-fit", run_args)
    held_out = {s: held_out[s] for s in config.data.sequences if s in held_out}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cv.json").write_text(json.dumps({"held_out": held_out, "fit": fit}, indent=1))
    markdown = table(held_out, fit)
    (args.out / "cv.md").write_text(markdown + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
