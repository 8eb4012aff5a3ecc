"""Frame-in, instances-out inference around the perception network.

Pre- and post-processing are free functions shared by every runtime (eager PyTorch
here; ONNX Runtime and TensorRT wrap the same two steps around their engines).
"""

from __future__ import annotations

import copy
from typing import Protocol

import cv2
import numpy as np
import torch

from vis_node.perception.backbone import fold_frozen_batchnorm
from vis_node.perception.model import S4Net
from vis_node.tracking.types import Instances


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


def postprocess(
    detections: dict[str, np.ndarray], image_size: tuple[int, int], input_size: int
) -> Instances:
    """Map network outputs at input resolution back to the frame.

    Parameters
    ----------
    detections:
        ``masks`` ``bool[N, S, S]``, ``boxes`` ``float[N, 4]`` x1y1x2y2 in input pixels,
        ``scores`` ``float[N]``, ``class_probs`` ``float[N, C]``, ``embeddings``
        ``float[N, D]`` (``S`` = ``input_size``).
    image_size:
        ``(H, W)`` of the original frame.
    input_size:
        ``S``.

    Returns
    -------
    Instances
        Masks ``bool[N, H, W]``, boxes in frame pixels, saliency = scores.
    """
    height, width = image_size
    masks_in = np.asarray(detections["masks"], dtype=np.float32)
    masks = np.zeros((masks_in.shape[0], height, width), dtype=bool)
    for k, mask in enumerate(masks_in):
        masks[k] = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    scale = np.array([width, height, width, height], dtype=np.float32) / float(input_size)
    scores = np.asarray(detections["scores"], dtype=np.float32)
    return Instances(
        masks=masks,
        boxes=np.asarray(detections["boxes"], dtype=np.float32).reshape(-1, 4) * scale,
        class_probs=np.asarray(detections["class_probs"], dtype=np.float32),
        saliency=scores,
        embeddings=np.asarray(detections["embeddings"], dtype=np.float32),
        scores=scores,
    )


class TorchPredictor:
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
        self.class_names: tuple[str, ...] = tuple(model.config.class_names)
        self.input_size = int(model.config.input_size)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> Instances:
        """Detect instances in ``uint8[H, W, 3]`` RGB."""
        batch = torch.from_numpy(preprocess(image, self.input_size)).to(self.device)
        output = self.model(batch)[0]
        detections = {key: value.detach().cpu().numpy() for key, value in output.items()}
        return postprocess(detections, image.shape[:2], self.input_size)
