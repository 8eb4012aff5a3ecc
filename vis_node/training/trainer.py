"""The training loop of ``vsis train``: optimisation, validation, checkpoints, export.

Run folder (``config.output_dir``)::

    config.yaml       the configuration the run was started with
    checkpoint.pt     latest training state (model, optimiser, scheduler, step, RNG)
    history.json      per-step losses and learning rate, per-validation metrics
    curves.png        loss and metric curves
    best.pt, final.pt shipped-format models (float16, vis_node.perception.checkpoint)
    validation/       ground truth and predictions (PNG folders) of the validation set

Under ``torchrun`` (see :mod:`vis_node.training.distributed`) every process trains a
:class:`~torch.nn.parallel.DistributedDataParallel` replica on its shard of each global
batch; only rank 0 writes the run folder and validates, the others wait for it.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from vis_node.structures.errors import InputDataError
from vis_node.io.labels import write_instance_png, write_semantic_png
from vis_node.perception.checkpoint import save_model
from vis_node.perception.device import resolve_device
from vis_node.perception.model import S4Net, build_model
from vis_node.perception.predictor import TorchPredictor
from vis_node.structures.instances import Instances
from vis_node.training.augment import BatchSampler
from vis_node.training.config import OptimizerConfig, TrainConfig
from vis_node.training.datasets import FrameSource, Sample, build_source
from vis_node.training.distributed import DistContext, StepUnits, check_partition, step_batches

LOGGER = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "vsis-train/1"
"""Version tag of training checkpoints."""

CLASS_HEAD = "instance_head.classifier."
"""Prefix of the only tensors whose shape depends on ``model.class_names``."""

LOSS_NAMES: tuple[str, ...] = ("objectness", "box", "mask", "class", "embedding")
"""Loss terms of :meth:`vis_node.perception.model.S4Net.forward`, in log order."""


@dataclass
class TrainState:
    """Mutable progress of a run, saved inside every checkpoint.

    Attributes
    ----------
    step:
        Optimisation steps done.
    history:
        One record per step: ``step``, ``lr``, ``loss`` and ``loss_<name>`` values.
    validations:
        One record per validation: ``step`` and the metrics of :func:`validate`.
    best_score:
        Highest validation J&F so far (``-inf`` before the first validation).
    wall_seconds:
        Training wall time accumulated over all sessions of the run, in seconds.
    """

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -math.inf
    wall_seconds: float = 0.0


def freeze_backbone(model: S4Net, stages: int) -> None:
    """Stop gradients into the first ``stages`` backbone stages (0..3)."""
    for stage in model.backbone.stages[:stages]:
        for parameter in stage.parameters():
            parameter.requires_grad_(False)


def initialise_from(model: S4Net, source: str) -> list[str]:
    """Copy a shipped model's weights into ``model`` where names and shapes agree.

    Parameters
    ----------
    model:
        The freshly built network.
    source:
        Shipped model name or ``model.pt`` path.

    Returns
    -------
    list of str
        Names of the tensors left at their fresh initialisation (the class head
        under another class list), also logged.

    Raises
    ------
    ValueError
        If ``source`` has another architecture: a tensor outside the class head is
        missing or has another shape.
    """
    from vis_node.perception.checkpoint import load_model

    donor = load_model(source)[0].state_dict()
    own = model.state_dict()
    fits = {k: v for k, v in donor.items() if k in own and own[k].shape == v.shape}
    foreign = sorted(
        k for k in set(own) | set(donor) if k not in fits and not k.startswith(CLASS_HEAD)
    )
    if foreign:
        raise ValueError(
            f"init_from={source!r} has another architecture ({len(foreign)} tensors differ, "
            f"e.g. {foreign[:3]}): copy the model section of its train.yaml (only "
            "class_names may differ)"
        )
    model.load_state_dict(fits, strict=False)
    fresh = sorted(set(own) - set(fits))
    LOGGER.info(
        "initialised from %s: %d tensors copied, %d fresh%s",
        source, len(fits), len(fresh), f" ({', '.join(fresh)})" if fresh else "",
    )
    return fresh


def build_optimizer(
    parameters: list[torch.nn.Parameter], config: OptimizerConfig, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Optimiser and its schedule: linear warm-up from 0.1 x lr, then cosine decay.

    Parameters
    ----------
    parameters:
        Trainable parameters.
    config:
        Optimiser settings.
    steps:
        Total steps of the run (the cosine reaches ``min_lr_ratio`` there).
    """
    if config.name == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def plain_state(state: TrainState) -> dict[str, Any]:
    """``state`` as built-in types only (NumPy scalars become floats), so that a
    checkpoint loads with ``torch.load(..., weights_only=True)``."""
    return json.loads(json.dumps(vars(state), default=float))


def load_training_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`Trainer.save_checkpoint` without running code.

    ``torch.load`` runs with ``weights_only=True``: only tensors and built-in containers
    and scalars are unpickled, so a planted pickle payload is refused, not executed.

    Raises
    ------
    InputDataError
        If the file cannot be read that way or is not a VSIS training checkpoint.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise InputDataError(
            path,
            "not a loadable VSIS training checkpoint (it is damaged or holds objects other "
            f"than tensors and plain values, which are never unpickled: {exc}); delete it "
            "and start without --resume",
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputDataError(
            path, f"not a VSIS training checkpoint (expected format {CHECKPOINT_FORMAT})"
        )
    return payload


class Trainer:
    """One training run of a :class:`TrainConfig` in ``config.output_dir``.

    Parameters
    ----------
    config:
        The run's configuration.
    resume:
        Continue from ``<output_dir>/checkpoint.pt`` (model, optimiser, scheduler,
        step, torch RNG and logs); without it the folder must not hold a checkpoint.

    context:
        The process's rank, world size and device (single process on
        ``config.device`` when ``None``).

    Raises
    ------
    FileExistsError
        Starting afresh in a folder that already holds a checkpoint.
    FileNotFoundError
        Resuming without a checkpoint.
    InputDataError
        Resuming from a file that is not a training checkpoint of plain values
        (:func:`load_training_checkpoint`).
    ValueError
        A global batch that does not split into the processes' micro-batches.
    """

    def __init__(
        self, config: TrainConfig, *, resume: bool = False, context: DistContext | None = None
    ) -> None:
        self.config = config
        self.context = context or DistContext(0, 1, resolve_device(config.device))
        check_partition(config.batch_size, self.context.world_size, config.grad_accumulation)
        self.run_dir = Path(config.output_dir)
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        torch.set_num_threads(config.num_threads)
        torch.manual_seed(config.seed)
        self.model = build_model(config.model)
        if config.init_from is not None:
            initialise_from(self.model, config.init_from)
        self.model.to(self.context.device)
        freeze_backbone(self.model, config.freeze_backbone_stages)
        self.model.train()
        torch.manual_seed(config.seed + self.context.rank)
        self.replica = self._replica()
        self.autocast_dtype, self.scaler = self._mixed_precision()
        self.optimizer, self.scheduler = build_optimizer(
            [p for p in self.model.parameters() if p.requires_grad], config.optimizer, config.steps
        )
        names = config.model.class_names
        self.sampler = BatchSampler(
            [build_source(source, names) for source in config.data],
            [source.weight for source in config.data],
            input_size=config.model.input_size,
            copy_paste=config.copy_paste,
            flip_probability=config.flip_probability,
            zoom_range=config.zoom_range,
        )
        self.validation = (
            build_source(config.validation, names) if config.validation is not None else None
        )
        self.state = TrainState()
        if resume:
            self._load_checkpoint()
        elif self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.checkpoint_path} exists: pass --resume to continue that run, or set "
                "another output_dir"
            )
        self._batches: Iterator[list[list[Sample]]] | None = None
        if self.context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(
                yaml.safe_dump(config.to_dict(), sort_keys=False)
            )

    def _replica(self) -> torch.nn.Module:
        """The module the forward passes run through: DDP-wrapped with several processes."""
        if not self.context.distributed:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = self.context.device.startswith("cuda")
        return DistributedDataParallel(
            self.model,
            device_ids=[torch.device(self.context.device)] if on_gpu else None,
            # a micro-batch without instances leaves the instance head out of the graph
            find_unused_parameters=True,
        )

    def _mixed_precision(self) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
        """Autocast dtype (``None``: full precision) and the gradient scaler (enabled
        for float16 only)."""
        if not (self.config.mixed_precision and self.context.device.startswith("cuda")):
            return None, torch.amp.GradScaler("cuda", enabled=False)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        LOGGER.info("mixed precision: autocast to %s", dtype)
        return dtype, torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def _autocast(self) -> AbstractContextManager[Any]:
        """Autocast context of a forward pass (a no-op in full precision)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=self.autocast_dtype)

    def _load_checkpoint(self) -> None:
        """Restore the training state from :attr:`checkpoint_path`."""
        if not self.checkpoint_path.is_file():
            raise FileNotFoundError(
                f"{self.checkpoint_path} not found: nothing to resume; start without --resume"
            )
        payload = load_training_checkpoint(self.checkpoint_path)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["torch_rng"])
        self.state = TrainState(**payload["state"])

    def save_checkpoint(self) -> Path:
        """Write the full training state atomically; also ``history.json``."""
        _atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "state": plain_state(self.state),
            },
            self.checkpoint_path,
        )
        (self.run_dir / "history.json").write_text(
            json.dumps({"steps": self.state.history, "validations": self.state.validations})
        )
        return self.checkpoint_path

    def _meta(self, metrics: dict[str, Any] | None) -> dict[str, Any]:
        """Provenance stored in exported models."""
        return {
            "step": self.state.step,
            "train_config": self.config.to_dict(),
            "wall_seconds": round(self.state.wall_seconds, 1),
            "validation": metrics,
        }

    def _next_batches(self) -> list[list[Sample]]:
        """This process's micro-batches of step :attr:`TrainState.step`."""
        if self._batches is None:
            dataset = StepUnits(
                self.sampler, self.config.seed, self.config.batch_size, self.config.steps
            )
            self._batches = step_batches(
                dataset,
                self.context,
                start_step=self.state.step,
                grad_accumulation=self.config.grad_accumulation,
                num_workers=self.config.num_workers,
            )
        return next(self._batches)

    def _backward(self, samples: list[Sample], scale: float, sync: bool) -> torch.Tensor:
        """Forward and backward one micro-batch; returns its ``float[6]`` losses
        (total, then :data:`LOSS_NAMES` order), unscaled."""
        device = self.context.device
        images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
        targets = [
            {key: value.to(device) for key, value in s.target().items()} for s in samples
        ]
        no_sync = self.replica.no_sync() if self.context.distributed and not sync else nullcontext()
        with no_sync:
            with self._autocast():
                losses = self.replica(images.to(device).float() / 255.0, targets)
            total = sum(loss.float() for loss in losses.values())
            self.scaler.scale(total * scale).backward()
        values = [total, *(losses[f"loss_{name}"] for name in LOSS_NAMES)]
        return torch.stack([v.detach().float().cpu() for v in values])

    def train_step(self) -> dict[str, float]:
        """One optimisation step on this process's share of the global batch of step
        :attr:`TrainState.step`; the logged losses are means over all micro-batches."""
        micro_batches = self._next_batches()
        self.optimizer.zero_grad(set_to_none=True)
        scale = 1.0 / len(micro_batches)
        losses = sum(
            self._backward(samples, scale, sync=k == len(micro_batches) - 1)
            for k, samples in enumerate(micro_batches)
        ) * scale
        losses = self.context.mean(losses)
        if self.config.optimizer.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad],
                self.config.optimizer.grad_clip,
            )
        lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.state.step += 1
        record = {"step": self.state.step, "lr": lr, "loss": float(losses[0])}
        record.update({f"loss_{name}": float(v) for name, v in zip(LOSS_NAMES, losses[1:])})
        self.state.history.append(record)
        return record

    def run_validation(self) -> dict[str, Any]:
        """Validate, log, and export ``best.pt`` when J&F improved."""
        if self.validation is None or self.config.validation is None:
            raise ValueError("this run has no validation source: add a validation section")
        folder = self.run_dir / "validation" / f"step_{self.state.step:06d}"
        metrics = validate(
            self.model,
            self.validation,
            self.config.validation.kind,
            folder,
            device=self.context.device,
        )
        self.state.validations.append({"step": self.state.step, **metrics})
        LOGGER.info(
            "step %d: J %.3f F %.3f J&F %.3f AP50 %.3f",
            self.state.step, metrics["J"], metrics["F"], metrics["JF"], metrics["AP50"],
        )
        if metrics["JF"] > self.state.best_score:
            self.state.best_score = metrics["JF"]
            save_model(self.model, self.run_dir / "best.pt", meta=self._meta(metrics))
        return metrics

    def run(self, *, max_steps: int | None = None) -> TrainState:
        """Train up to ``config.steps`` (or stop after step ``max_steps``), then checkpoint.

        At the last step the model is validated (when a validation source is set) and
        exported as ``final.pt`` (and ``best.pt`` without validation).
        """
        cfg = self.config
        stop = cfg.steps if max_steps is None else min(cfg.steps, max_steps)
        main = self.context.is_main
        progress = tqdm(
            total=cfg.steps, initial=self.state.step, desc="train", unit="step", disable=not main
        )
        while self.state.step < stop:
            started = time.monotonic()
            record = self.train_step()
            self.state.wall_seconds += time.monotonic() - started
            progress.update(1)
            progress.set_postfix(
                loss=f"{record['loss']:.3f}",
                obj=f"{record['loss_objectness']:.3f}",
                box=f"{record['loss_box']:.3f}",
                mask=f"{record['loss_mask']:.3f}",
                cls=f"{record['loss_class']:.3f}",
            )
            step = self.state.step
            last = step == cfg.steps
            validating = self.validation is not None and (
                last or (cfg.val_interval and step % cfg.val_interval == 0)
            )
            if validating and main:
                self.run_validation()
            if main and (last or step % cfg.checkpoint_interval == 0 or step == stop):
                self.save_checkpoint()
                plot_curves(self.state, self.run_dir / "curves.png")
            if validating:
                self.context.barrier()
        progress.close()
        if self.state.step == cfg.steps and main:
            metrics = self.state.validations[-1] if self.state.validations else None
            save_model(self.model, self.run_dir / "final.pt", meta=self._meta(metrics))
            if self.validation is None:
                save_model(self.model, self.run_dir / "best.pt", meta=self._meta(None))
        return self.state


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


def train(config: TrainConfig, *, resume: bool = False, max_steps: int | None = None) -> Path:
    """Run (or resume) training; returns the run folder (see the module docstring).

    Under ``torchrun`` (``WORLD_SIZE > 1``) this process joins the process group
    first and leaves it at the end.
    """
    context = DistContext.from_env(config.device)
    try:
        trainer = Trainer(config, resume=resume, context=context)
        trainer.run(max_steps=max_steps)
        context.barrier()
    finally:
        context.close()
    return trainer.run_dir
