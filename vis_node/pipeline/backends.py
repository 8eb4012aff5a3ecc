"""Predictor backends named by a model spec (``vsis run --model``, perception ``model``).

* A shipped model name, ``model.pt`` file or model folder: the S4Net network run by
  the chosen runtime (:func:`vis_node.perception.runtime.make_predictor`).
* ``gt:<DAVIS root>``: :class:`~vis_node.evaluation.oracle.GroundTruthOracle`, the
  evaluation-only oracle.

Every backend is called as ``backend.predict(image, stamp_ns) -> Instances``. Loading
imports torch / ONNX Runtime only when a network is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vis_node.evaluation.oracle import GT_PREFIX, GroundTruthOracle
from vis_node.io.readers import DEFAULT_FPS
from vis_node.registry import RUNTIMES
from vis_node.structures.errors import InputDataError
from vis_node.structures.instances import Instances

if TYPE_CHECKING:
    from vis_node.perception.salient_config import SalientOverrides


@dataclass
class Backend:
    """A loaded predictor.

    Attributes
    ----------
    name:
        Model name for the label map (checkpoint stem / folder, or ``gt``).
    class_names:
        Label map, index = class id.
    predict:
        ``(uint8[H, W, 3] RGB, stamp_ns) -> Instances``.
    predictor:
        The network as a stamp-free ``image -> Instances`` predictor with
        ``class_names`` (what whole-sequence methods call); ``None`` for the oracle,
        which needs the stamp.
    """

    name: str
    class_names: tuple[str, ...]
    predict: Callable[[np.ndarray, int], Instances]
    predictor: Any = None


def check_model_spec(spec: str) -> None:
    """Fail early (at configure) when ``spec`` names nothing loadable.

    Raises
    ------
    InputDataError
        Missing checkpoint or oracle root; the message says what is expected.
    """
    from vis_node.perception.checkpoint import resolve_model

    if spec.startswith(GT_PREFIX):
        root = Path(spec[len(GT_PREFIX) :])
        if not (root / "Annotations").is_dir():
            raise InputDataError(root, "oracle root needs an Annotations/ folder")
        return
    resolve_model(spec)


def backend_of(predictor: Callable[[np.ndarray], Instances], name: str = "") -> Backend:
    """A plain predictor (``image -> Instances`` with ``class_names``) as a backend.

    Parameters
    ----------
    predictor:
        Any :class:`~vis_node.perception.predictor.Predictor`-like callable.
    name:
        Model name for the label map (default the predictor's class name).
    """
    return Backend(
        name or type(predictor).__name__,
        tuple(predictor.class_names),
        lambda image, stamp_ns: predictor(image),
        predictor,
    )


def load_backend(
    spec: str, *, runtime: str = RUNTIMES.default, device: str = "cpu", threads: int = 0,
    precision: str = "fp16", overrides: SalientOverrides | None = None, gt_sequence: str = "",
    gt_fps: float = DEFAULT_FPS, gt_seed: int = 0,
) -> Backend:
    """Load the backend named by ``spec`` (see the module docstring).

    ``runtime``, ``device``, ``threads``, ``precision`` and ``overrides`` (``None``: the
    model's own settings) apply to networks (as in
    :func:`~vis_node.perception.runtime.make_predictor`), the ``gt_*`` settings to the
    oracle.

    Raises
    ------
    InputDataError
        Missing or corrupt checkpoint, or oracle root without annotations.
    vis_node.perception.tensorrt.TensorRTUnavailableError
        ``runtime="tensorrt"`` without TensorRT or a CUDA GPU.
    """
    if spec.startswith(GT_PREFIX):
        oracle = GroundTruthOracle(
            spec[len(GT_PREFIX) :], sequence=gt_sequence, fps=gt_fps, seed=gt_seed
        )
        return Backend("gt", oracle.class_names, oracle)
    from vis_node.perception.checkpoint import model_name
    from vis_node.perception.runtime import make_predictor

    predictor = make_predictor(
        spec, runtime, device=device, threads=threads, precision=precision,
        overrides=overrides,
    )
    return backend_of(predictor, model_name(spec))
