"""Training the full-resolution mask refiner (:mod:`vis_node.perception.mask_refiner`).

Each step draws ``batch`` annotated frames of the training sequences (mirrored at
random), crops each around its ground-truth object like the predictor crops a kept
instance (tight box grown by 5-45 % per side, centre shifted by about 8 % of the
size) and degrades the ground-truth mask the way the mask head does: the crop's mask
is averaged down to a coarse grid (14-40 cells), blown up again and thresholded at
0.35-0.65, then dilated or eroded by up to ``size / 24`` px. The refiner learns to
give the object's real outline back from the image (loss: BCE + Dice).
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
    """

    steps: int = 1200
    batch: int = 12
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4


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


def degrade(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``uint8[S, S]`` ground-truth crop -> ``float32[S, S]`` coarse 0/1 mask like the head's."""
    size = mask.shape[0]
    grid = int(rng.choice([14, 20, 28, 40]))
    coarse = cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
    out = (coarse > rng.uniform(0.35, 0.65)).astype(np.uint8)
    radius = int(rng.integers(0, size // 24 + 1))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.dilate(out, kernel) if rng.random() < 0.5 else cv2.erode(out, kernel)
    return out.astype(np.float32)


def training_crops(
    frames: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, count: int, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch: ``crops float[N, 3, S, S]`` in [0, 1], ``coarse float[N, 1, S, S]``,
    ``targets float[N, S, S]``."""
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
        crops.append(crop_to_square(np.ascontiguousarray(image), box, size, cv2.INTER_LINEAR))
        target = crop_to_square(np.ascontiguousarray(foreground), box, size, cv2.INTER_NEAREST)
        targets.append(target)
        coarse.append(degrade(target, rng))
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
        crops, coarse, targets = training_crops(frames, rng, config.batch, size)
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
