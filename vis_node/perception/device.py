"""Resolve a ``--device`` choice (``cpu``, ``cuda``, ``cuda:N``) to a usable torch device.

A CUDA request that this machine cannot serve (no CUDA build, no visible GPU, an index
past the visible GPUs) falls back to the CPU with one warning that says why, so the
same command line works on a laptop and on a GPU server.
"""

from __future__ import annotations

import logging
import re

import torch

LOG = logging.getLogger(__name__)

DEVICE_PATTERN = re.compile(r"^(cpu|cuda)(?::(\d+))?$")
"""Accepted device strings: ``cpu``, ``cuda`` or ``cuda:N``."""

DEFAULT_DEVICE = "cpu"
"""Device used when none is given."""


def parse_device(name: str) -> tuple[str, int | None]:
    """Split a device string into its kind and optional index.

    Raises
    ------
    ValueError
        If ``name`` is not ``cpu``, ``cuda`` or ``cuda:N``.
    """
    match = DEVICE_PATTERN.match(name.strip().lower())
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise ValueError(f"device={name!r}: use cpu, cuda or cuda:N (N = GPU index)")
    index = match.group(2)
    return match.group(1), None if index is None else int(index)


def cuda_unavailable_reason(index: int) -> str | None:
    """Why CUDA device ``index`` cannot be used here, or ``None`` when it can."""
    if torch.version.cuda is None:
        return "this PyTorch build has no CUDA support"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (driver missing or CUDA_VISIBLE_DEVICES empty)"
    count = torch.cuda.device_count()
    if index >= count:
        return (
            f"cuda:{index} does not exist: {count} CUDA GPU(s) visible "
            f"(cuda:0..cuda:{count - 1})"
        )
    return None


def resolve_device(name: str = DEFAULT_DEVICE) -> str:
    """The device string to use for a requested ``name``, falling back to ``cpu``.

    Parameters
    ----------
    name:
        ``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:N``.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda:N"``; a CUDA request that cannot be served returns
        ``"cpu"`` and logs a warning naming the reason.

    Raises
    ------
    ValueError
        If ``name`` is not a device string (see :func:`parse_device`).
    """
    kind, index = parse_device(name)
    if kind == "cpu":
        return "cpu"
    index = 0 if index is None else index
    reason = cuda_unavailable_reason(index)
    if reason is not None:
        LOG.warning("device %s requested but %s: falling back to the CPU", name, reason)
        return "cpu"
    return f"cuda:{index}"
