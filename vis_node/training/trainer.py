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

The pieces the loop calls live beside it: :mod:`vis_node.training.model_setup` (frozen
stages, warm start, optimiser), :mod:`vis_node.training.state` (progress and checkpoint
files) and :mod:`vis_node.training.validation` (validation, curves, ``evaluate_model``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from vis_node.perception.checkpoint import save_model
from vis_node.perception.device import resolve_device
from vis_node.perception.model import build_model
from vis_node.training.augment import BatchSampler
from vis_node.training.config import TrainConfig
from vis_node.training.datasets import build_source
from vis_node.training.distributed import DistContext, StepUnits, check_partition, step_batches
from vis_node.training.model_setup import build_optimizer, freeze_backbone, initialise_from
from vis_node.training.samples import Sample
from vis_node.training.state import (
    CHECKPOINT_FORMAT,
    LOSS_NAMES,
    TrainState,
    atomic_save,
    load_training_checkpoint,
    plain_state,
)
from vis_node.training.validation import plot_curves, validate

LOGGER = logging.getLogger(__name__)

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
        atomic_save(
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
