"""Getting a model ready to train: frozen stages, warm start, optimiser and schedule.

:func:`freeze_backbone` stops gradients into early backbone stages,
:func:`initialise_from` copies a shipped model's weights where names and shapes agree,
and :func:`build_optimizer` returns the optimiser (AdamW or SGD) with its warm-up + cosine
learning-rate schedule.
"""

from __future__ import annotations

import logging
import math

import torch

from vis_node.perception.model import S4Net
from vis_node.training.config import OptimizerConfig

LOGGER = logging.getLogger(__name__)

CLASS_HEAD = "instance_head.classifier."
"""Prefix of the only tensors whose shape depends on ``model.class_names``."""


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
