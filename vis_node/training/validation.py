"""Validation of a model during and after ``vsis train``, and the run's curves.

:func:`validate` writes a source's ground truth and the model's predictions as PNG
folders and scores them with :func:`vis_node.evaluation.evaluate`; :func:`plot_curves`
draws the loss and metric history of a :class:`~vis_node.training.state.TrainState`;
:func:`evaluate_model` (``vsis train --evaluate``) scores a shipped model on held-out
data.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vis_node.io.labels import write_instance_png, write_semantic_png
from vis_node.perception.model import S4Net
from vis_node.perception.predictor import TorchPredictor
from vis_node.structures.instances import Instances
from vis_node.training.config import TrainConfig
from vis_node.training.datasets import build_source
from vis_node.training.samples import FrameSource
from vis_node.training.state import LOSS_NAMES, TrainState


def instance_maps(instances: Instances) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
    """Instance-id and class-id maps of a frame's detections.

    Detections come ranked by score (all returned ones passed the model's score
    threshold); detection of rank ``r`` (0 = best) gets id ``r + 1`` and is drawn over
    lower-ranked ones where masks overlap.

    Returns
    -------
    ids:
        ``uint16[H, W]`` instance ids, 0 = background.
    classes:
        ``uint8[H, W]`` class ids (most probable non-background class of each instance).
    scores:
        Instance id -> score.
    """
    height, width = instances.masks.shape[1:]
    ids = np.zeros((height, width), dtype=np.uint16)
    classes = np.zeros((height, width), dtype=np.uint8)
    order = np.argsort(-instances.scores, kind="stable")
    scores: dict[int, float] = {}
    for rank in reversed(range(len(order))):
        k = order[rank]
        mask = instances.masks[k]
        ids[mask] = rank + 1
        classes[mask] = int(np.argmax(instances.class_probs[k, 1:])) + 1
        scores[rank + 1] = float(instances.scores[k])
    return ids, classes, scores


def write_ground_truth(source: FrameSource, root: Path) -> tuple[Path, Path]:
    """Write a source's labels as ``<root>/ids/<seq>/<frame>.png`` and ``<root>/semantics/...``."""
    for q, name in enumerate(source.sequences):
        for t, frame_name in enumerate(source.frame_names(q)):
            frame = source.read(q, t)
            write_instance_png(root / "ids" / name / f"{frame_name}.png", frame.ids)
            write_semantic_png(root / "semantics" / name / f"{frame_name}.png", frame.semantic())
    return root / "ids", root / "semantics"


def write_predictions(
    predictor: TorchPredictor, source: FrameSource, root: Path
) -> tuple[Path, Path]:
    """Predict every frame of ``source``; write ``<root>/ids``, ``<root>/semantics`` PNG
    folders and per-sequence ``scores.json`` (id -> mean score over the frames)."""
    for q, name in enumerate(source.sequences):
        sums: dict[int, list[float]] = {}
        for t, frame_name in enumerate(source.frame_names(q)):
            ids, classes, scores = instance_maps(predictor(source.read(q, t).image))
            write_instance_png(root / "ids" / name / f"{frame_name}.png", ids)
            write_semantic_png(root / "semantics" / name / f"{frame_name}.png", classes)
            for instance_id, score in scores.items():
                sums.setdefault(instance_id, []).append(score)
        (root / "ids" / name).mkdir(parents=True, exist_ok=True)
        (root / "ids" / name / "scores.json").write_text(
            json.dumps({str(k): float(np.mean(v)) for k, v in sums.items()})
        )
    return root / "ids", root / "semantics"


def validate(
    model: S4Net, source: FrameSource, kind: str, folder: Path, *, device: str = "cpu"
) -> dict[str, Any]:
    """Score ``model`` on a validation source with :func:`vis_node.evaluation.evaluate`.

    DAVIS sources (binary salient-object masks) use the ``davis2016`` protocol, others
    ``davis2017-unsupervised``; both also get ``ytvis`` AP with class semantics.
    Predictions run on ``device`` (``cpu`` or ``cuda:N``).

    Returns
    -------
    dict
        ``J``, ``F``, ``JF`` (means), ``AP``, ``AP50``, ``protocol`` and
        ``per_sequence`` (sequence -> ``{J, F}`` means).
    """
    from vis_node.evaluation import evaluate

    gt_ids, gt_semantics = folder.parent / "gt" / "ids", folder.parent / "gt" / "semantics"
    if not gt_ids.is_dir():
        write_ground_truth(source, folder.parent / "gt")
    was_training = model.training
    model.eval()
    try:
        pred_ids, pred_semantics = write_predictions(
            TorchPredictor(model, device=device), source, folder
        )
    finally:
        model.train(was_training)
    protocol = "davis2016" if kind == "davis" else "davis2017-unsupervised"
    davis = evaluate(protocol, pred_ids, gt_ids)
    ytvis = evaluate(
        "ytvis", pred_ids, gt_ids, pred_semantics=pred_semantics, gt_semantics=gt_semantics
    )
    return {
        "protocol": protocol,
        "J": davis["J"]["mean"],
        "F": davis["F"]["mean"],
        "JF": davis["JF"],
        "AP": ytvis["AP"],
        "AP50": ytvis["AP50"],
        "per_sequence": {
            name: {"J": scores["J"], "F": scores["F"]}
            for name, scores in davis["per_sequence"].items()
        },
    }


def plot_curves(state: TrainState, path: Path) -> None:
    """Write the loss curves (moving average over 20 steps) and validation metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.array([h["step"] for h in state.history])
    for name in ("loss", *(f"loss_{n}" for n in LOSS_NAMES)):
        values = np.array([h[name] for h in state.history])
        if values.size:
            window = min(20, values.size)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax_loss.plot(steps[window - 1 :], smooth, label=name)
    ax_loss.set(xlabel="step", ylabel="loss (moving average)", yscale="log", title="training")
    ax_loss.legend(fontsize=7)
    val_steps = [v["step"] for v in state.validations]
    for key in ("J", "F", "JF", "AP50"):
        ax_metric.plot(val_steps, [v[key] for v in state.validations], marker="o", label=key)
    ax_metric.set(xlabel="step", ylabel="score", ylim=(0, 1), title="validation")
    ax_metric.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def evaluate_model(
    config: TrainConfig,
    model_path: str | Path,
    out: Path,
    *,
    frame_step: int | None = None,
    score_threshold: float | None = None,
) -> dict[str, Any]:
    """Score a shipped model on held-out data; write ``<out>/report.json``.

    Parameters
    ----------
    config:
        Training config whose ``test`` section (or, without one, ``validation``
        section) names the held-out data.
    model_path:
        Shipped model name or file (see :func:`vis_node.perception.checkpoint.load_model`).
    out:
        Folder receiving ``gt/`` and ``pred/`` PNG trees (``ids``, ``semantics``) and
        ``report.json`` (the metrics of :func:`validate`).
    frame_step:
        Overrides the source's ``frame_step`` (1 scores every annotated frame).
    score_threshold:
        Overrides the model's detection score threshold.

    Raises
    ------
    ValueError
        If the config has neither a test nor a validation section.
    """
    from vis_node.perception.checkpoint import load_model

    source_config = config.test if config.test is not None else config.validation
    if source_config is None:
        raise ValueError("the config has no test or validation section: nothing to evaluate on")
    torch.set_num_threads(config.num_threads)
    if frame_step is not None:
        source_config = replace(source_config, frame_step=frame_step)
    model, _ = load_model(model_path)
    if score_threshold is not None:
        model.config.score_threshold = score_threshold
    source = build_source(source_config, model.config.class_names)
    metrics = validate(model, source, source_config.kind, out / "pred")
    (out / "report.json").write_text(json.dumps(metrics, indent=2))
    return metrics
