"""Shipped model checkpoints: one ``model.pt`` per model, found by name or path.

Layout of a shipped model (``models/<name>/``, package data)::

    model.pt        torch.save of {"format", "config", "state_dict" (float16), "meta"}
    MODEL_CARD.md   data, recipe, metrics, licence

``--model NAME`` resolves to ``<models dir>/NAME/model.pt``; the models dir is
``$VSIS_MODELS_DIR`` or the installed package's ``models`` folder
(:func:`vis_node.resources.shipped_models_dir`). A path to a ``.pt``
file or to a folder holding ``model.pt`` works too. Training checkpoints (with
optimiser state, for resuming) are a different, larger format written by the trainer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vis_node.resources import shipped_models_dir
from vis_node.structures.errors import InputDataError
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import S4Net, build_model

FORMAT = "vsis-model/1"
"""Version tag stored in every shipped checkpoint."""

CHECKPOINT_NAME = "model.pt"


def models_dir() -> Path:
    """Folder holding the shipped models (``$VSIS_MODELS_DIR`` or ``models``)."""
    env = os.environ.get("VSIS_MODELS_DIR")
    return Path(env) if env else shipped_models_dir()


def available_models() -> list[str]:
    """Names of the shipped models found in :func:`models_dir`."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{CHECKPOINT_NAME}"))


def resolve_model(name_or_path: str | Path) -> Path:
    """The checkpoint file for a model name, a ``.pt`` path or a model folder.

    Raises
    ------
    InputDataError
        When nothing matches; the message lists the shipped models.
    """
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if (candidate / CHECKPOINT_NAME).is_file():
        return candidate / CHECKPOINT_NAME
    named = models_dir() / str(name_or_path) / CHECKPOINT_NAME
    if named.is_file():
        return named
    shipped = ", ".join(available_models()) or "none found"
    raise InputDataError(
        candidate,
        f"no such model; pass a shipped model name ({shipped}), a model.pt file, or a "
        f"folder holding one (models are looked up in {models_dir()})",
    )


def model_name(checkpoint: str | Path) -> str:
    """Short name of a checkpoint: its folder for ``<name>/model.pt``, else the file stem."""
    path = Path(checkpoint)
    return path.parent.name if path.name == CHECKPOINT_NAME else path.stem


def save_model(model: S4Net, path: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write a shipped checkpoint: config plus float16 weights (about half the float32 size).

    Parameters
    ----------
    model:
        The trained network.
    path:
        Output ``.pt`` file; written to a temporary name first, then renamed.
    meta:
        JSON-like provenance (training data, steps, metrics) stored beside the weights.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        key: value.half() if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "state_dict": state,
        "meta": dict(meta or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Resolve and safely read a shipped checkpoint of any model type.

    Returns
    -------
    path, payload:
        The checkpoint file and its ``torch.load(weights_only=True)`` content.

    Raises
    ------
    InputDataError
        Missing, unreadable or foreign file.
    """
    path = resolve_model(name_or_path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise InputDataError(path, f"not a readable VSIS checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputDataError(path, f"not a VSIS model checkpoint (expected format {FORMAT})")
    return path, payload


def model_from_payload(
    path: Path, payload: dict[str, Any], *, device: str = "cpu"
) -> tuple[S4Net, dict[str, Any]]:
    """The eval-mode S4Net of a payload read by :func:`read_checkpoint`, and its meta.

    Raises
    ------
    InputDataError
        An invalid config, or weights that do not fit it.
    """
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputDataError(path, f"holds an invalid model config ({exc})") from None
    # The stored weights replace any backbone initialisation, so no file named inside a
    # model file (which may point anywhere) is ever opened.
    config.pretrained_backbone = False
    config.backbone_weights_path = None
    model = build_model(config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in payload["state_dict"].items()})
    except RuntimeError as exc:
        raise InputDataError(path, f"weights do not fit the stored config ({exc})") from None
    model.to(device).eval()
    return model, dict(payload.get("meta", {}))


def load_model(name_or_path: str | Path, *, device: str = "cpu") -> tuple[S4Net, dict[str, Any]]:
    """Load a shipped model in eval mode.

    Parameters
    ----------
    name_or_path:
        Shipped model name (``"synth"``, ``"davis"``), ``.pt`` file or model folder.
    device:
        Torch device for the weights.

    Returns
    -------
    model, meta:
        The float32 network in eval mode and the checkpoint's provenance dict.

    Raises
    ------
    InputDataError
        Missing, corrupt or foreign checkpoint files.
    """
    return model_from_payload(*read_checkpoint(name_or_path), device=device)
