"""Training frames of the salient NanoDet heads: frozen-detector features and targets.

The detector stays frozen, so its outputs are computed once per frame (and once per
horizontally flipped copy) and cached on disk (:func:`sequence_features`); training
the heads then costs only the heads. Each cached frame holds

* the network input and the detector's P3 / P4 (float16),
* the candidate boxes the predictor would pass to the heads
  (:func:`~vis_node.perception.salient_predictor.select_candidates`); their saliency
  labels (:func:`saliency_labels`) are set on loading, by the training config's rule,
* the ground-truth foreground at input resolution and its object boxes
  (:func:`object_boxes`), which train the mask head next to the salient candidates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou
from tqdm import tqdm

from vis_node.io.readers import DavisRoot, read_image
from vis_node.perception.nanodet import NanoDetG, letterbox
from vis_node.perception.salient_config import SalientConfig
from vis_node.perception.salient_predictor import DenseRunner, select_candidates

CACHE_FORMAT = "vsis-salient-features/2"


@dataclass
class FrameFeatures:
    """One training frame as the heads see it.

    Attributes
    ----------
    images:
        ``float16[1, 3, H, W]`` normalised letterboxed input.
    p3, p4:
        ``float16[1, C, H/8, W/8]`` and ``float16[1, C, H/16, W/16]`` detector features.
    boxes:
        ``float32[K, 4]`` candidate boxes (input px).
    scores:
        ``float32[K]`` their detector scores.
    labels:
        ``float32[K]`` 1 salient, 0 not (:func:`saliency_labels`).
    foreground:
        ``uint8[H, W]`` ground truth at input resolution, 1 = salient object.
    objects:
        ``float32[M, 4]`` ground-truth object boxes (input px).
    valid_hw:
        ``(h, w)`` of the image inside the input.
    """

    images: torch.Tensor
    p3: torch.Tensor
    p4: torch.Tensor
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    foreground: np.ndarray
    objects: np.ndarray
    valid_hw: tuple[float, float]


def saliency_labels(
    boxes: np.ndarray,
    foreground: np.ndarray,
    objects: np.ndarray,
    *,
    box_cover: float,
    object_cover: float,
    object_iou: float = 0.5,
) -> np.ndarray:
    """Which candidate boxes frame a salient object.

    A box is salient when it frames a ground-truth object (box IoU at least
    ``object_iou`` with one of ``objects``: a swan with its long neck fills less than
    half of its box), or when the foreground fills at least ``box_cover`` of it and it
    holds at least ``object_cover`` of the whole foreground (the rider of a horse). A box
    of a part (a bag on a person) or of a background object that the foreground merely
    overlaps is not.

    Parameters
    ----------
    boxes:
        ``float32[K, 4]`` x1y1x2y2 in pixels of ``foreground``.
    foreground:
        ``uint8[H, W]`` 1 = salient.
    objects:
        ``float32[M, 4]`` boxes of the foreground's objects (:func:`object_boxes`).

    Returns
    -------
    numpy.ndarray
        ``float32[K]`` 1 or 0.
    """
    total = float(foreground.sum())
    labels = np.zeros(len(boxes), np.float32)
    if total == 0 or len(boxes) == 0:
        return labels
    if len(objects):
        ious = box_iou(torch.from_numpy(boxes), torch.from_numpy(objects)).amax(dim=1).numpy()
        labels[ious >= object_iou] = 1.0
    integral = cv2.integral(foreground.astype(np.uint8))
    height, width = foreground.shape
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        c1, r1 = int(np.clip(np.floor(x1), 0, width)), int(np.clip(np.floor(y1), 0, height))
        c2, r2 = int(np.clip(np.ceil(x2), 0, width)), int(np.clip(np.ceil(y2), 0, height))
        area = max((c2 - c1) * (r2 - r1), 1)
        inside = float(integral[r2, c2] - integral[r1, c2] - integral[r2, c1] + integral[r1, c1])
        if inside >= box_cover * area and inside >= object_cover * total:
            labels[k] = 1.0
    return labels


def object_boxes(foreground: np.ndarray, *, merge_px: int = 9, min_fraction: float = 0.02) -> np.ndarray:
    """Boxes of the separate objects of a foreground mask.

    Parameters
    ----------
    foreground:
        ``uint8[H, W]`` 1 = salient.
    merge_px:
        Parts closer than about this many pixels count as one object.
    min_fraction:
        Objects with less than this fraction of the foreground area are ignored.

    Returns
    -------
    numpy.ndarray
        ``float32[M, 4]`` x1y1x2y2 (pixel edges) of each object's own pixels.
    """
    kernel = np.ones((merge_px, merge_px), np.uint8)
    count, components = cv2.connectedComponents(cv2.dilate(foreground, kernel))
    total = max(int(foreground.sum()), 1)
    boxes = []
    for label in range(1, count):
        rows, cols = np.nonzero((components == label) & (foreground > 0))
        if rows.size < min_fraction * total:
            continue
        boxes.append((cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def letterbox_mask(mask: np.ndarray, scale: float, input_hw: tuple[int, int]) -> np.ndarray:
    """``bool[H, W]`` frame mask -> ``uint8[h, w]`` at input resolution (top-left, padded)."""
    height, width = mask.shape
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    resized = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    out = np.zeros(input_hw, np.uint8)
    out[: resized.shape[0], : resized.shape[1]] = resized[: input_hw[0], : input_hw[1]]
    return out


def frame_features(
    dense: DenseRunner,
    image: np.ndarray,
    mask: np.ndarray,
    config: SalientConfig,
) -> FrameFeatures:
    """Detector features, candidates and targets of one RGB frame and its mask.

    The candidates' saliency labels are left at 0: :func:`sequence_features` sets them
    by the current rule, so a cached frame never holds a stale rule's labels.

    Parameters
    ----------
    dense:
        Runs the frozen detector (:func:`~vis_node.perception.salient_export.onnx_dense_runner`).
    image:
        ``uint8[H, W, 3]`` RGB.
    mask:
        ``bool[H, W]`` salient foreground.
    config:
        Model settings (input size, candidate thresholds).
    """
    inputs, scale = letterbox(image, config.input_size)
    height, width = image.shape[:2]
    valid_hw = (height * scale, width * scale)
    p3, p4, class_probs, box_dists = dense(inputs)
    candidates = select_candidates(class_probs[0], box_dists[0], inputs.shape[2:], valid_hw,
                                   config)
    foreground = letterbox_mask(mask, scale, inputs.shape[2:])
    return FrameFeatures(
        images=torch.from_numpy(inputs).half(),
        p3=torch.from_numpy(p3).half(),
        p4=torch.from_numpy(p4).half(),
        boxes=candidates.boxes,
        scores=candidates.scores,
        labels=np.zeros(len(candidates.boxes), np.float32),
        foreground=foreground,
        objects=object_boxes(foreground),
        valid_hw=valid_hw,
    )


def sequence_features(
    detector: NanoDetG,
    dense: DenseRunner,
    root: DavisRoot,
    sequence: str,
    config: SalientConfig,
    cache: Path,
    *,
    flip: bool,
    box_cover: float,
    object_cover: float,
) -> list[FrameFeatures]:
    """Every annotated frame of a DAVIS sequence (optionally mirrored), cached on disk,
    with saliency labels by the rule ``box_cover`` / ``object_cover``.

    ``detector`` keys the cache; ``dense`` runs it. The cache file name hashes the
    detector weights and the settings that shape the features, so a change of any of
    them recomputes it; labels are not cached.
    """
    key = hashlib.sha256(
        repr((config.input_size, config.candidate_threshold, config.candidate_nms_iou,
              config.max_candidates, flip)).encode()
    )
    for name, value in sorted(detector.state_dict().items()):
        key.update(name.encode())
        key.update(value.numpy().tobytes())
    path = cache / f"{sequence}{'-flip' if flip else ''}-{key.hexdigest()[:12]}.pt"
    frames = _read_cache(path)
    if frames is None:
        frames = [
            frame_features(dense, image, mask, config)
            for image, mask in _annotated_frames(root, sequence, flip)
        ]
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"format": CACHE_FORMAT, "frames": [_to_tensors(f) for f in frames]}, tmp)
        tmp.replace(path)
    for frame in frames:
        frame.labels = saliency_labels(
            frame.boxes, frame.foreground, frame.objects, box_cover=box_cover,
            object_cover=object_cover,
        )
    return frames


def _annotated_frames(
    root: DavisRoot, sequence: str, flip: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(uint8[H, W, 3] RGB, bool[H, W] mask)`` of every annotated frame, mirrored if asked."""
    annotations = {name: ids > 0 for name, ids, _ in root.annotations(sequence)}
    images = sorted((root.image_root / sequence).glob("*.jpg"))
    for image_path in tqdm(images, desc=f"features {sequence}{' (flipped)' if flip else ''}",
                           leave=False):
        if image_path.stem not in annotations:
            continue
        image, mask = read_image(image_path), annotations[image_path.stem]
        if flip:
            image, mask = np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(mask[:, ::-1])
        yield image, mask


def _read_cache(path: Path) -> list[FrameFeatures] | None:
    """The frames of a cache file, or ``None`` when it is missing or not a feature cache."""
    if not path.is_file():
        return None
    payload = torch.load(path, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
        return None
    return [_from_tensors(frame) for frame in payload["frames"]]


_ARRAYS = ("boxes", "scores", "foreground", "objects")


def _to_tensors(frame: FrameFeatures) -> dict[str, object]:
    """A frame as plain tensors (loadable with ``torch.load(weights_only=True)``)."""
    values: dict[str, object] = {name: torch.from_numpy(getattr(frame, name)) for name in _ARRAYS}
    values.update(images=frame.images, p3=frame.p3, p4=frame.p4, valid_hw=list(frame.valid_hw))
    return values


def _from_tensors(values: dict[str, object]) -> FrameFeatures:
    """Inverse of :func:`_to_tensors`."""
    arrays = {name: values[name].numpy() for name in _ARRAYS}
    return FrameFeatures(
        images=values["images"], p3=values["p3"], p4=values["p4"],
        labels=np.zeros(len(arrays["boxes"]), np.float32),
        valid_hw=tuple(values["valid_hw"]), **arrays,
    )
