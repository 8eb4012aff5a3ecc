"""Frame-in, instances-out inference around the perception network, for every runtime.

Every runtime splits the network into the same two graphs (see
:mod:`vis_node.perception.export_onnx`): a *dense* graph (backbone, FPN, detection
head, P3 compression) and an *instance* graph (RoIMasking, segmentation branch,
class / embedding head on given boxes). :class:`StagedPredictor` holds all the logic
around them, so eager PyTorch (:class:`TorchPredictor`), ONNX Runtime and TensorRT
pre- and post-process identically, and as ``S4Net.forward`` does:

frame -> :func:`preprocess` -> dense graph ->
:func:`~vis_node.perception.detections.decode_detections` (proposals per image, instance
graph on them) -> :func:`~vis_node.perception.detections.to_instances`, which pastes
each crop grid straight into the frame (only inside its box).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np
import torch
from torchvision.models.detection._utils import BoxCoder

from vis_node.perception.anchors import pyramid_anchors
from vis_node.perception.backbone import fold_frozen_batchnorm
from vis_node.perception.config import FEATURE_STRIDES, ModelConfig
from vis_node.perception.detections import (
    InstanceOutputs,
    RawDetections,
    decode_detections,
    to_instances,
)
from vis_node.perception.export_onnx import DenseGraph, InstanceGraph
from vis_node.perception.model import S4Net
from vis_node.structures.instances import Instances

DenseRunner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``images float32[B, 3, S, S]`` -> ``(objectness [B, A], box_deltas [B, A, 4],
seg_features [B, Cs, S/8, S/8])``."""

InstanceRunner = Callable[
    [np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
]
"""``(seg_features, boxes float32[N, 4], image_index int64[N])`` -> ``(mask_logits
[N, 2, K, K], windows [N, 4] in P3 cells, class_logits [N, C], embeddings [N, D])``,
``N >= 1``."""


class Predictor(Protocol):
    """Anything that turns an RGB frame into salient instances."""

    class_names: tuple[str, ...]

    def __call__(self, image: np.ndarray) -> Instances:
        """Detect instances in ``uint8[H, W, 3]`` RGB; masks come back at ``H x W``."""
        ...


def preprocess(image: np.ndarray, input_size: int) -> np.ndarray:
    """Resize an RGB frame to the square network input (aspect not kept, as S4Net).

    Parameters
    ----------
    image:
        ``uint8[H, W, 3]`` RGB.
    input_size:
        Network input side in pixels.

    Returns
    -------
    numpy.ndarray
        ``float32[1, 3, input_size, input_size]`` RGB in [0, 1].
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected uint8[H, W, 3] RGB, got {image.dtype}{list(image.shape)}")
    resized = cv2.resize(image, (input_size, input_size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


class StagedPredictor:
    """Predictor around a dense and an instance graph runner (any backend).

    Parameters
    ----------
    config:
        Config of the network (thresholds, input size, class names).
    dense:
        Runs the dense graph.
    instance:
        Runs the instance graph.
    batch_size:
        Fixed batch size of the dense runner (inputs are zero-padded up to it), or
        ``None`` when it takes any batch.
    """

    def __init__(
        self,
        config: ModelConfig,
        dense: DenseRunner,
        instance: InstanceRunner,
        *,
        batch_size: int | None = None,
    ) -> None:
        self.config = config
        self.class_names: tuple[str, ...] = tuple(config.class_names)
        self.input_size = int(config.input_size)
        self.batch_size = batch_size
        self._dense = dense
        self._instance = instance
        self._box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        size = self.input_size
        self._anchors = torch.cat(
            pyramid_anchors(
                [(size // stride, size // stride) for stride in FEATURE_STRIDES],
                FEATURE_STRIDES,
                config.anchor_sizes,
                config.anchor_ratios,
            )
        )

    def __call__(self, image: np.ndarray) -> Instances:
        """Detect instances in ``uint8[H, W, 3]`` RGB; masks come back at ``H x W``."""
        raw = self.raw(preprocess(image, self.input_size))[0]
        return to_instances(raw, image.shape[:2], self.input_size, self.config.mask_threshold)

    def raw(self, images: np.ndarray) -> list[RawDetections]:
        """Proposals and their crop-grid outputs for a batch.

        Parameters
        ----------
        images:
            ``float32[B, 3, S, S]`` RGB in [0, 1].

        Returns
        -------
        list of RawDetections
            One per image.
        """
        count = images.shape[0]
        if self.batch_size is not None and count > self.batch_size:
            raise ValueError(
                f"batch of {count} images exceeds the exported batch {self.batch_size}"
            )
        padded = images
        if self.batch_size is not None and count < self.batch_size:
            padding = np.zeros((self.batch_size - count, *images.shape[1:]), np.float32)
            padded = np.concatenate([images, padding])
        logits, deltas, seg_features = self._dense(np.ascontiguousarray(padded, np.float32))
        if logits.shape[1] != self._anchors.shape[0]:
            raise ValueError(
                f"dense graph gives {logits.shape[1]} anchors, the config implies "
                f"{self._anchors.shape[0]}: the export and its config do not match"
            )

        def instance(boxes: torch.Tensor, image_index: torch.Tensor) -> InstanceOutputs:
            outputs = self._instance(seg_features, boxes.numpy(), image_index.numpy())
            return tuple(torch.from_numpy(np.asarray(out)) for out in outputs)

        return decode_detections(
            torch.from_numpy(np.asarray(logits[:count], np.float32)),
            torch.from_numpy(np.asarray(deltas[:count], np.float32)),
            self._anchors,
            (self.input_size, self.input_size),
            self.config,
            instance,
            box_coder=self._box_coder,
        )


class TorchPredictor(StagedPredictor):
    """Eager PyTorch runtime.

    Parameters
    ----------
    model:
        Network (see :func:`vis_node.perception.checkpoint.load_model`); the predictor
        runs an eval-mode copy with its frozen batch norms folded into the convolutions.
    device:
        Torch device to run on.
    """

    def __init__(self, model: S4Net, *, device: str = "cpu") -> None:
        self.model = fold_frozen_batchnorm(copy.deepcopy(model)).to(device).eval()
        self.device = device
        super().__init__(
            model.config,
            functools.partial(self._run, DenseGraph(self.model)),
            functools.partial(self._run, InstanceGraph(self.model)),
        )

    @torch.inference_mode()
    def _run(self, graph: torch.nn.Module, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Outputs of one exported graph (dense or instance) on NumPy inputs, as NumPy."""
        outputs = graph(*(torch.from_numpy(x).to(self.device) for x in inputs))
        return tuple(out.cpu().numpy() for out in outputs)
