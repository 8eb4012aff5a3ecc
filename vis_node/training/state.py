"""Progress and checkpoint files of a ``vsis train`` run.

:class:`TrainState` is the mutable progress of a run; :func:`plain_state`,
:func:`atomic_save` and :func:`load_training_checkpoint` write and read it (with the
model, optimiser and scheduler states) in ``checkpoint.pt`` without ever unpickling
code.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vis_node.structures.errors import InputDataError

CHECKPOINT_FORMAT = "vsis-train/1"
"""Version tag of training checkpoints."""

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
        One record per validation: ``step`` and the metrics of
        :func:`vis_node.training.validation.validate`.
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


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def plain_state(state: TrainState) -> dict[str, Any]:
    """``state`` as built-in types only (NumPy scalars become floats), so that a
    checkpoint loads with ``torch.load(..., weights_only=True)``."""
    return json.loads(json.dumps(vars(state), default=float))


def load_training_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by
    :meth:`vis_node.training.trainer.Trainer.save_checkpoint` without running code.

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
