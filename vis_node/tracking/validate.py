"""Checks of the tracker's inputs at its boundary.

Instances reach the tracker from a segmenter in this process or from a message of
another process; either way a bad value must end as one clear
:class:`~vis_node.structures.errors.InvalidDataError`, never as a NumPy shape error deep in the
association. Rules (``N`` instances of an ``H x W`` frame):

* every per-instance array has ``N`` rows; masks are ``H x W`` like the image;
* boxes, class probabilities, saliency, detection scores and embeddings are finite;
* class probabilities, saliency and detection scores lie in ``[0, 1]`` (a small
  float tolerance :data:`SCORE_TOLERANCE` is accepted and clipped); a negative value
  is rejected;
* embeddings are ``float[N, D]`` with ``D >= 1``.

A detection score of exactly 0 is legal: the association takes its logarithm, so the
checked instances carry scores floored at :data:`MIN_DETECTION_SCORE`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vis_node.structures.errors import InvalidDataError
from vis_node.structures.instances import Instances

SCORE_TOLERANCE = 1e-4
"""How far outside ``[0, 1]`` a probability or score may stray by float rounding."""

MIN_DETECTION_SCORE = 1e-6
"""Floor of detection scores handed on, so ``log(score)`` stays finite for a score of 0."""


def _check_finite(name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise InvalidDataError(f"{name} holds {bad} NaN or infinite values; send finite numbers")


def _unit_interval(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` (finite) clipped to ``[0, 1]``, or an error if one is clearly outside."""
    _check_finite(name, values)
    if values.size and (
        values.min() < -SCORE_TOLERANCE or values.max() > 1.0 + SCORE_TOLERANCE
    ):
        raise InvalidDataError(
            f"{name} must lie in [0, 1], got values from {float(values.min()):g} to "
            f"{float(values.max()):g}"
        )
    return np.clip(values, 0.0, 1.0)


def _check_rows(name: str, values: np.ndarray, count: int, ndim: int) -> None:
    if values.ndim != ndim or values.shape[0] != count:
        raise InvalidDataError(
            f"{name} must have {count} rows (one per instance, {ndim}-D), got shape "
            f"{tuple(values.shape)}"
        )


def validate_instances(instances: Instances, image: np.ndarray) -> Instances:
    """Check one frame's detections against the rules above.

    Parameters
    ----------
    instances:
        ``N`` detections of the frame.
    image:
        ``[H, W, ...]`` frame the detections belong to (only its size is read).

    Returns
    -------
    Instances
        The same instances (arrays shared) with class probabilities, saliency and
        scores clipped to ``[0, 1]`` and scores floored at :data:`MIN_DETECTION_SCORE`.

    Raises
    ------
    InvalidDataError
        A rule is broken; the message names the field and the valid range.
    """
    masks = np.asarray(instances.masks)
    if masks.ndim != 3:
        raise InvalidDataError(f"masks must be bool[N, H, W], got shape {tuple(masks.shape)}")
    count = masks.shape[0]
    size = tuple(np.shape(image)[:2])
    if count and masks.shape[1:] != size:
        raise InvalidDataError(
            f"masks are {tuple(masks.shape[1:])} but the image is {size}; send instances "
            "computed on this frame"
        )
    _check_rows("boxes", instances.boxes, count, 2)
    _check_finite("boxes", instances.boxes)
    _check_rows("class_probs", instances.class_probs, count, 2)
    _check_rows("saliency", instances.saliency, count, 1)
    _check_rows("scores", instances.scores, count, 1)
    _check_rows("track_ids", instances.track_ids, count, 1)
    embeddings = instances.embeddings
    if embeddings is not None:
        _check_rows("embeddings", embeddings, count, 2)
        if embeddings.shape[1] < 1:
            raise InvalidDataError("embeddings have length 0; send none or at least one value")
        _check_finite("embeddings", embeddings)
    scores = _unit_interval("scores", instances.scores)
    return dataclasses.replace(
        instances,
        class_probs=_unit_interval("class_probs", instances.class_probs).astype(np.float32),
        saliency=_unit_interval("saliency", instances.saliency).astype(np.float32),
        scores=np.maximum(scores, MIN_DETECTION_SCORE).astype(np.float32),
    )
