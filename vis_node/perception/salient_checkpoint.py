"""Shipped checkpoints of the salient NanoDet model (found like every shipped model).

``model.pt`` is ``torch.save`` of ``{"format", "type", "config", "state_dict"
(float16, detector included), "meta"}``, loadable with ``weights_only=True``; the
checkpoint is self-contained (the detector weights travel inside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vis_node.structures.errors import InputDataError
from vis_node.perception.checkpoint import FORMAT, read_checkpoint
from vis_node.perception.nanodet import NanoDetG
from vis_node.perception.salient_config import MODEL_TYPE, SalientConfig
from vis_node.perception.salient_model import SalientNanoDet


def is_salient_payload(payload: dict[str, Any]) -> bool:
    """Whether a checkpoint read by :func:`read_checkpoint` holds this model type."""
    return payload.get("type") == MODEL_TYPE


def save_salient_model(
    model: SalientNanoDet, path: str | Path, *, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (config and float16 weights) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "type": MODEL_TYPE,
        "config": model.config.to_dict(),
        "state_dict": {
            key: value.half() if value.is_floating_point() else value
            for key, value in model.state_dict().items()
        },
        "meta": dict(meta or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def salient_model_from_payload(
    path: Path, payload: dict[str, Any]
) -> tuple[SalientNanoDet, dict[str, Any]]:
    """The eval-mode float32 network of a checkpoint payload, and its provenance dict."""
    try:
        config = SalientConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(path, f"bad model config ({exc})") from None
    model = SalientNanoDet(config, NanoDetG())
    try:
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        )
    except (KeyError, RuntimeError) as exc:
        raise InputDataError(path, f"weights do not fit the stored config ({exc})") from None
    return model.eval(), dict(payload.get("meta", {}))


def load_salient_model(name_or_path: str | Path) -> tuple[SalientNanoDet, dict[str, Any]]:
    """Load a salient NanoDet checkpoint by shipped name, folder or file."""
    path, payload = read_checkpoint(name_or_path)
    if not is_salient_payload(payload):
        raise InputDataError(path, f"not a {MODEL_TYPE} checkpoint")
    return salient_model_from_payload(path, payload)
