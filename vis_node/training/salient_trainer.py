"""``vsis train`` for the salient NanoDet model: the heads on frozen-detector features.

Config: :mod:`vis_node.training.salient_train_config` (YAML, every key checked; run
from the repository root).

``vsis train CONFIG --fold K`` trains on every sequence outside fold ``K`` and writes
``<output_dir>/fold-K/model.pt``; without ``--fold`` it trains on all sequences (the
shipped model) into ``<output_dir>/all/model.pt``. Each run folder also gets
``history.json`` and ``curves.png``. ``--heads-from MODEL`` takes the heads from a
checkpoint already trained on the same sequences and trains only the refiner;
``--refiner-from MODEL`` takes the refiner and trains only the heads.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align
from tqdm import tqdm

from vis_node.io.readers import DavisRoot
from vis_node.perception.losses import mask_bce_dice
from vis_node.perception.nanodet import load_nanodet
from vis_node.perception.roi_masking import expand_boxes
from vis_node.perception.salient_checkpoint import load_salient_model, save_salient_model
from vis_node.perception.salient_export import onnx_dense_runner
from vis_node.perception.salient_model import (
    SAMPLING,
    MaskHead,
    SaliencyHead,
    SalientNanoDet,
    candidate_geometry,
)
from vis_node.perception.salient_predictor import DenseRunner
from vis_node.training.refiner_trainer import annotated_frames, train_refiner
from vis_node.training.salient_composites import composite_features
from vis_node.training.salient_data import FrameFeatures, sequence_features
from vis_node.training.salient_train_config import SalientTrainConfig

LOG = logging.getLogger(__name__)


def _mask_targets(frame: FrameFeatures, rois: torch.Tensor, head: MaskHead) -> torch.Tensor:
    """``float[K, S, S]`` ground-truth foreground sampled on each box's mask window."""
    windows = torch.cat([rois[:, :1], expand_boxes(rois[:, 1:], head.context_ratio)], dim=1)
    foreground = torch.from_numpy(frame.foreground).float()[None, None]
    sampled = roi_align(foreground, windows, head.mask_size, 1.0, SAMPLING, True)[:, 0]
    return (sampled >= 0.5).float()


def _jitter(boxes: np.ndarray, rng: np.random.Generator, amount: float = 0.1) -> np.ndarray:
    """Boxes with each side moved by up to ``amount`` of the box size."""
    sizes = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    return boxes + rng.uniform(-amount, amount, boxes.shape).astype(np.float32) * sizes


def frame_losses(
    heads: tuple[SaliencyHead, MaskHead],
    frame: FrameFeatures,
    rng: np.random.Generator,
    pos_weight: float,
    mask_rois: int,
    *,
    saliency: bool = True,
) -> dict[str, torch.Tensor]:
    """Saliency and mask losses of one set of heads (``SalientNanoDet.head_sets()``) on
    one cached frame.

    The saliency head sees every candidate (unless ``saliency`` is false, as for
    composites); the mask head sees ``mask_rois`` random salient candidates and one
    ground-truth object box, jittered.
    """
    saliency_head, mask_head = heads
    p3, p4, images = frame.p3.float(), frame.p4.float(), frame.images.float()
    losses: dict[str, torch.Tensor] = {}
    if saliency and len(frame.boxes):
        boxes = torch.from_numpy(frame.boxes)
        rois = torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1)
        geometry = candidate_geometry(boxes, torch.from_numpy(frame.scores), frame.valid_hw)
        logits = saliency_head(p3, p4, rois, geometry)
        losses["saliency"] = F.binary_cross_entropy_with_logits(
            logits, torch.from_numpy(frame.labels), pos_weight=torch.tensor(pos_weight)
        )
    salient = frame.boxes[frame.labels > 0]
    mask_boxes = [salient[rng.choice(len(salient), min(len(salient), mask_rois), replace=False)]]
    if len(frame.objects):
        mask_boxes.append(_jitter(frame.objects[rng.choice(len(frame.objects), 1)], rng))
    boxes = np.concatenate(mask_boxes).astype(np.float32)
    if len(boxes):
        rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(boxes)], dim=1)
        mask_logits, _ = mask_head(p3, p4, images, rois)
        targets = _mask_targets(frame, rois, mask_head)
        losses["mask"] = mask_bce_dice(mask_logits, targets)
    return losses


def train_salient(
    config: SalientTrainConfig,
    *,
    fold: int | None = None,
    heads_from: str | Path | None = None,
    refiner_from: str | Path | None = None,
) -> Path:
    """Train the heads on the config's sequences (all, or all outside ``fold``), then the
    mask refiner when ``config.model.refiner_size`` is set.

    Parameters
    ----------
    heads_from:
        A checkpoint whose heads were trained on exactly these sequences: its heads are
        kept and only the refiner is trained (the refiner trains on the ground truth
        alone, so it does not depend on the heads).
    refiner_from:
        A checkpoint whose refiner was trained on exactly these sequences: it is kept and
        only the heads are trained.

    Returns
    -------
    Path
        The written ``model.pt``.

    Raises
    ------
    ValueError
        Both checkpoints given, or one that was trained on other sequences or does not
        fit the config.
    """
    if heads_from is not None and refiner_from is not None:
        raise ValueError("give --heads-from or --refiner-from, not both")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    run_dir = Path(config.output_dir) / ("all" if fold is None else f"fold-{fold}")
    run_dir.mkdir(parents=True, exist_ok=True)
    sequences = config.data.training_sequences(fold)
    model = SalientNanoDet(config.model, load_nanodet(), pretrained_refiner=True)
    if model.refiner is not None and refiner_from is not None:
        _take_parts(model, refiner_from, sequences, ("refiner",), "--refiner-from")
    meta: dict[str, Any] = {}
    if heads_from is None:
        history = _train_heads(model, config, sequences, run_dir, rng)
        meta.update(history.pop())
    else:
        history = []
        meta["frames"] = int(_take_parts(model, heads_from, sequences, HEADS, "--heads-from")
                             .get("frames", 0))
    if model.refiner is not None and refiner_from is None:
        root = DavisRoot(config.data.root)
        history += train_refiner(
            model.refiner, annotated_frames(root, sequences), config.refiner,
            size=config.model.refiner_size, seed=config.seed,
        )
    model.eval()
    (run_dir / "history.json").write_text(json.dumps(history))
    _plot_curves(history, run_dir / "curves.png")
    meta.update({
        "trained_on": list(sequences),
        "held_out": [] if fold is None else list(config.data.folds[fold]),
        "steps": config.steps,
        "seed": config.seed,
    })
    if model.refiner is not None:
        meta["refiner_steps"] = config.refiner.steps
    return save_salient_model(model, run_dir / "model.pt", meta=meta)


HEADS = ("saliency_head", "mask_head")
"""The parts :func:`_train_heads` trains."""


def _take_parts(
    model: SalientNanoDet, path: str | Path, sequences: tuple[str, ...],
    names: tuple[str, ...], flag: str,
) -> dict[str, Any]:
    """Copy the parts ``names`` of checkpoint ``path`` into ``model``; returns its meta.

    Raises
    ------
    ValueError
        The checkpoint was trained on other sequences, or a part does not fit; the
        message names ``flag``.
    """
    source, meta = load_salient_model(path)
    if sorted(meta.get("trained_on", [])) != sorted(sequences):
        raise ValueError(
            f"{flag} {path}: trained on {meta.get('trained_on')}, this run trains on "
            f"{list(sequences)}; give the checkpoint of the same fold"
        )
    for name in names:
        part = getattr(source, name)
        if part is None:
            raise ValueError(f"{flag} {path}: the checkpoint has no {name}")
        try:
            getattr(model, name).load_state_dict(part.state_dict())
        except RuntimeError as exc:
            raise ValueError(f"{flag} {path}: {name} does not fit this config ({exc})") from None
    return meta


def _train_heads(
    model: SalientNanoDet,
    config: SalientTrainConfig,
    sequences: tuple[str, ...],
    run_dir: Path,
    rng: np.random.Generator,
) -> list[dict[str, float]]:
    """Train every set of saliency and mask heads of ``model`` in place, one after the
    other on the same frames; returns the loss history (records name their ``heads``
    set) followed by ``{"frames": number of training frames, "composites": number of
    composites}`` (composites train the mask head only, see
    :mod:`~vis_node.training.salient_composites`).

    The first set trains from the model's own initialisation with ``rng``, exactly as a
    model with one set; set ``i`` is initialised and drawn with seed ``config.seed + i``.
    """
    root = DavisRoot(config.data.root)
    dense = onnx_dense_runner(model, run_dir / "detector-onnx")
    frames: list[FrameFeatures] = []
    for sequence in sequences:
        for flip in (False, True) if config.data.flip else (False,):
            frames += sequence_features(
                model.detector, dense, root, sequence, config.model,
                Path(config.feature_cache), flip=flip, **config.labels,
            )
    positives = sum(float(f.labels.sum()) for f in frames)
    candidates = sum(len(f.labels) for f in frames)
    pos_weight = float(np.clip((candidates - positives) / max(positives, 1.0), 1.0, 10.0))
    LOG.info("%d frames of %s; %d of %d candidates salient", len(frames),
             ", ".join(sequences), int(positives), candidates)
    pool = frames + _composites(dense, root, sequences, config)
    model.train()
    history: list[dict[str, float]] = []
    for index, heads in enumerate(model.head_sets()):
        if index:
            torch.manual_seed(config.seed + index)
            channels = model.detector.feature_channels
            heads[0].load_state_dict(SaliencyHead(channels, config.model).state_dict())
            heads[1].load_state_dict(MaskHead(channels, config.model).state_dict())
            rng = np.random.default_rng(config.seed + index)
        history += [
            {"heads": index, **record}
            for record in _train_head_set(heads, pool, len(frames), pos_weight, config, rng,
                                          f"train {run_dir.name} heads {index}")
        ]
    return [*history, {"frames": len(frames), "composites": len(pool) - len(frames)}]


def _train_head_set(
    heads: tuple[SaliencyHead, MaskHead],
    pool: list[FrameFeatures],
    real_frames: int,
    pos_weight: float,
    config: SalientTrainConfig,
    rng: np.random.Generator,
    description: str,
) -> list[dict[str, float]]:
    """``config.steps`` AdamW steps (cosine schedule) of one set of heads on ``pool``,
    whose first ``real_frames`` frames also train the saliency head; the loss history."""
    parameters = [p for head in heads for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / config.steps))
    )
    history: list[dict[str, float]] = []
    progress = tqdm(range(config.steps), desc=description)
    for step in progress:
        batch = rng.choice(len(pool), size=min(config.frames_per_step, len(pool)),
                           replace=False)
        totals: dict[str, torch.Tensor] = {}
        for index in batch:
            losses = frame_losses(heads, pool[index], rng, pos_weight, config.mask_rois,
                                  saliency=index < real_frames)
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value / len(batch)
        loss = sum(totals.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        record = {"step": step + 1, **{k: float(v.detach()) for k, v in totals.items()}}
        history.append(record)
        progress.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "step"})
    return history


def _composites(
    dense: DenseRunner, root: DavisRoot, sequences: tuple[str, ...], config: SalientTrainConfig
) -> list[FrameFeatures]:
    """``config.composites.count`` composite frames of ``sequences`` (none when 0), drawn
    from their own generator so that they leave the training draws of the seed alone."""
    if not config.composites.count:
        return []
    frames, sequence_of = [], []
    for index, sequence in enumerate(sequences):
        own = annotated_frames(root, (sequence,))
        frames += own
        sequence_of += [index] * len(own)
    return composite_features(
        dense, frames, sequence_of, config.model, config.composites,
        np.random.default_rng([config.seed, 1]), **config.labels,
    )


def _plot_curves(history: list[dict[str, float]], path: Path) -> None:
    """Loss curves (moving average over 25 steps) as a PNG, one per loss and set of heads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    sets = sorted({int(h["heads"]) for h in history if "heads" in h})
    for name in ("saliency", "mask", "refiner"):
        for heads in sets if name != "refiner" else [None]:
            values = np.array([h[name] for h in history
                               if name in h and h.get("heads") == heads])
            if len(values) < 25:
                continue
            kernel = np.ones(25) / 25
            smooth = np.convolve(np.nan_to_num(values), kernel, mode="valid")
            label = name if heads is None or len(sets) == 1 else f"{name} (heads {heads})"
            axis.plot(np.arange(len(smooth)) + 25, smooth, label=label)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
