"""Training the full-resolution mask refiner (:mod:`vis_node.perception.mask_refiner`).

Each step draws ``batch`` annotated frames of the training sequences (mirrored at
random), crops each around its ground-truth object like the predictor crops a kept
instance (tight box grown by 5-45 % per side, centre shifted by about 8 % of the
size) and degrades the ground-truth mask the way the mask head does: the crop's mask
is averaged down to a coarse grid (14-40 cells), blown up again and thresholded at
0.35-0.65, then dilated or eroded by up to ``size / 24`` px; with probability
``coarse_holes`` one to three ellipses (half-axes 5-15 % of the crop) centred inside the
object are cut out of it, like the holes the head leaves in dark or plain parts of an
object. The refiner learns to give the object's real outline back from the image
(loss: BCE + Dice).

Eight training sequences show few backgrounds and lightings, so two augmentations make
the crops less like the training videos: with probability ``background_swap`` the
object is blended (edge softened by a 0.6-1.5 px Gaussian) onto a same-sized region of
another training frame, whose own object, if any, stays as an unmarked distractor; with
probability ``photometric`` hue (+-``hue``, 9 of 180 by default), saturation
(x0.7-1.3), contrast (x0.7-1.3) and brightness (+-25 of 255) are jittered, and one crop
in five is blurred (sigma 0.5-1.2 px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vis_node.io.readers import DavisRoot, read_image
from vis_node.perception.losses import mask_bce_dice
from vis_node.perception.mask_refiner import MaskRefiner, crop_to_square


@dataclass
class RefinerTrainConfig:
    """Settings of a refiner training run.

    Attributes
    ----------
    steps:
        Optimiser steps.
    batch:
        Crops per step.
    learning_rate:
        Peak AdamW learning rate (one-cycle schedule, 10 % warm-up).
    weight_decay:
        AdamW weight decay.
    background_swap:
        Probability that a crop's object is pasted onto another frame's background.
    photometric:
        Probability of a colour jitter of a crop (0 also turns the blur off).
    coarse_holes:
        Probability that holes are cut into a crop's degraded mask.
    hue:
        Largest hue shift of the colour jitter, in OpenCV's hue units (0-180 for a full
        turn); the whole crop turns together, so the object's contrast with its
        surroundings stays.
    """

    steps: int = 1200
    batch: int = 12
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    background_swap: float = 0.5
    photometric: float = 0.8
    coarse_holes: float = 0.5
    hue: float = 9.0

    def __post_init__(self) -> None:
        for name in ("background_swap", "photometric", "coarse_holes"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"refiner: {name}={getattr(self, name)} must lie in [0, 1]")
        if not 0.0 <= self.hue <= 90.0:
            raise ValueError(f"refiner: hue={self.hue} must lie in [0, 90] (OpenCV hue units)")


NO_AUGMENTATION = RefinerTrainConfig(background_swap=0.0, photometric=0.0, coarse_holes=0.0)
"""Settings under which :func:`training_crops` leaves crops and coarse masks unaugmented."""


def annotated_frames(root: DavisRoot, sequences: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(uint8[H, W, 3] RGB, uint8[H, W] foreground)`` of every annotated frame whose
    object covers at least 50 px."""
    frames = []
    for sequence in sequences:
        for name, ids, _ in root.annotations(sequence):
            foreground = (ids > 0).astype(np.uint8)
            if foreground.sum() < 50:
                continue
            frames.append((read_image(root.image_root / sequence / f"{name}.jpg"), foreground))
    return frames


def degrade(mask: np.ndarray, rng: np.random.Generator, holes: float = 0.0) -> np.ndarray:
    """``uint8[S, S]`` ground-truth crop -> ``float32[S, S]`` coarse 0/1 mask like the
    head's; with probability ``holes`` also holed (:func:`cut_holes`)."""
    size = mask.shape[0]
    grid = int(rng.choice([14, 20, 28, 40]))
    coarse = cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
    out = (coarse > rng.uniform(0.35, 0.65)).astype(np.uint8)
    radius = int(rng.integers(0, size // 24 + 1))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.dilate(out, kernel) if rng.random() < 0.5 else cv2.erode(out, kernel)
    if holes and rng.random() < holes:
        out = cut_holes(out, rng)
    return out.astype(np.float32)


def cut_holes(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``uint8[S, S]`` 0/1 mask with one to three filled ellipses (half-axes 5-15 % of
    ``S``, centres at least ``S / 16`` px inside the mask) set to 0; unchanged when the
    mask has no such interior."""
    size = mask.shape[0]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size // 8 + 1, size // 8 + 1))
    inner = np.argwhere(cv2.erode(mask, kernel) > 0)
    if not len(inner):
        return mask
    holed = mask.copy()
    for _ in range(int(rng.integers(1, 4))):
        y, x = inner[int(rng.integers(len(inner)))]
        axes = (int(rng.uniform(0.05, 0.15) * size), int(rng.uniform(0.05, 0.15) * size))
        cv2.ellipse(holed, (int(x), int(y)), axes, float(rng.uniform(0, 180)), 0, 360, 0, -1)
    return holed


def swap_background(
    crop: np.ndarray,
    target: np.ndarray,
    frames: list[tuple[np.ndarray, np.ndarray]],
    box_size: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """``uint8[S, S, 3]`` crop with everything but the ``target`` object (``uint8[S, S]``)
    replaced by a region of ``box_size`` (px, width and height) of a random frame."""
    other = frames[int(rng.integers(len(frames)))][0]
    height, width = other.shape[:2]
    box_w, box_h = min(box_size[0], width), min(box_size[1], height)
    x, y = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
    back = crop_to_square(np.ascontiguousarray(other), (x, y, x + box_w, y + box_h),
                          crop.shape[0], cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(target.astype(np.float32), (0, 0), rng.uniform(0.6, 1.5))[..., None]
    return (alpha * crop + (1 - alpha) * back).astype(np.uint8)


def jitter_colours(
    crop: np.ndarray, rng: np.random.Generator, probability: float,
    hue: float = RefinerTrainConfig.hue,
) -> np.ndarray:
    """``uint8[S, S, 3]`` RGB crop, colour-jittered with ``probability`` (hue shifted by
    up to ``hue`` of 180) and blurred with probability 0.2 (see the module docstring for
    the other ranges).

    Not :func:`vis_node.training.copy_paste.jitter_colors`: that one has no hue shift
    and no blur, and the shipped refiners were trained with this one's draws."""
    x = crop.astype(np.float32)
    if rng.random() < probability:
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue)) % 180
        hsv[..., 1] *= rng.uniform(0.7, 1.3)
        hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
        x = (x - x.mean()) * rng.uniform(0.7, 1.3) + x.mean() + rng.uniform(-25, 25)
    if rng.random() < 0.2:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
    return np.clip(x, 0, 255).astype(np.uint8)


def training_crops(
    frames: list[tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    count: int,
    size: int,
    config: RefinerTrainConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch: ``crops float[N, 3, S, S]`` in [0, 1], ``coarse float[N, 1, S, S]``,
    ``targets float[N, S, S]``; augmented as ``config`` says (``None``: no augmentation)."""
    config = config or NO_AUGMENTATION
    swap, photometric = config.background_swap, config.photometric
    crops, coarse, targets = [], [], []
    for _ in range(count):
        image, foreground = frames[int(rng.integers(len(frames)))]
        if rng.random() < 0.5:
            image, foreground = image[:, ::-1], foreground[:, ::-1]
        rows, cols = np.flatnonzero(foreground.any(1)), np.flatnonzero(foreground.any(0))
        x1, x2, y1, y2 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
        width, height = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2 + rng.normal(0, 0.08) * width
        cy = (y1 + y2) / 2 + rng.normal(0, 0.08) * height
        half_w = width * rng.uniform(1.05, 1.45) / 2
        half_h = height * rng.uniform(1.05, 1.45) / 2
        box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
        crop = crop_to_square(np.ascontiguousarray(image), box, size, cv2.INTER_LINEAR)
        target = crop_to_square(np.ascontiguousarray(foreground), box, size, cv2.INTER_NEAREST)
        if swap and rng.random() < swap:
            crop = swap_background(crop, target, frames, (2 * half_w, 2 * half_h), rng)
        crops.append(jitter_colours(crop, rng, photometric, config.hue) if photometric else crop)
        targets.append(target)
        coarse.append(degrade(target, rng, config.coarse_holes))
    return (
        torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0,
        torch.from_numpy(np.stack(coarse))[:, None],
        torch.from_numpy(np.stack(targets)).float(),
    )


def train_refiner(
    refiner: MaskRefiner,
    frames: list[tuple[np.ndarray, np.ndarray]],
    config: RefinerTrainConfig,
    *,
    size: int,
    seed: int,
) -> list[dict[str, float]]:
    """Train ``refiner``'s decoder in place on crops of ``frames``; returns the loss history."""
    if not frames:
        raise ValueError("no annotated frame to train the mask refiner on")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    parameters = [p for p in refiner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.learning_rate, total_steps=config.steps, pct_start=0.1
    )
    refiner.train()
    history = []
    progress = tqdm(range(config.steps), desc="train refiner")
    for step in progress:
        crops, coarse, targets = training_crops(frames, rng, config.batch, size, config)
        loss = mask_bce_dice(refiner(crops, coarse), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"refiner loss became {value} at step {step + 1}")
        history.append({"step": step + 1, "refiner": value})
        progress.set_postfix(refiner=f"{value:.3f}")
    refiner.eval()
    return history
