"""Realistic tracking scenes from DAVIS-2016: real cut-outs moving over real backgrounds.

A scene is a background sequence of DAVIS-2016 with its own object inpainted away
(``cv2.inpaint``), over which three real objects move: two *look-alikes* (cut-outs of
one sequence, taken at different frames, so same class and near-identical colours)
that cross each other, and one object of another sequence. Each object deforms with
its source sequence (cut-out ``t`` comes from source frame ``t``) at one scale, set so
that its tallest cut-out in the scene is :attr:`SceneConfig.object_height` of the scene
height. One object vanishes for :attr:`SceneConfig.vanish_frames` frames mid-view and
reappears elsewhere.

Detections (:func:`make_detections`) are the visible ground-truth masks with the
errors of a real segmenter: single detections dropped, boundaries jittered by random
morphology, occasional merged detections (two touching objects as one) and false
detections, ids shuffled, no class cues (one class) and random scores.

Everything is drawn from one seeded generator, so a scene and its detections are
deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vis_node.structures.instances import Instances

OBJECT_SEQUENCES: tuple[str, ...] = (
    "blackswan",
    "breakdance",
    "car-roundabout",
    "cows",
    "dance-twirl",
    "dog",
    "drift-chicane",
    "horsejump-high",
)
"""DAVIS-2016 sequences whose foreground is one compact object (cut-out sources)."""

BACKGROUND_SEQUENCES: tuple[str, ...] = (
    "bmx-trees",
    "car-roundabout",
    "cows",
    "dog",
    "kite-surf",
    "motocross-jump",
    "paragliding-launch",
    "blackswan",
)
"""DAVIS-2016 sequences used as backgrounds (their object inpainted away)."""


@dataclass(frozen=True)
class SceneConfig:
    """Size and difficulty of the realistic scenes.

    Attributes
    ----------
    frames:
        Frames per scene.
    width:
        Scene width in pixels (DAVIS 854 x 480 scaled; height keeps the aspect ratio).
    object_height:
        Height of an object's tallest cut-out as a fraction of the scene height.
    drop_rate:
        Chance that one object's detection is missing in a frame.
    vanish_frames:
        Frames the vanishing object is out of the scene.
    merge_rate:
        Chance per frame that two touching objects are detected as one.
    false_rate:
        Chance per frame of one false detection (an inpainted-background blob).
    jitter:
        Largest morphology kernel (pixels) of the boundary jitter.
    """

    frames: int = 60
    width: int = 427
    object_height: float = 0.3
    drop_rate: float = 0.1
    vanish_frames: int = 18
    merge_rate: float = 0.03
    false_rate: float = 0.05
    jitter: int = 3

    def __post_init__(self) -> None:
        if self.frames < self.vanish_frames + 10:
            raise ValueError(
                f"frames must be >= vanish_frames + 10 = {self.vanish_frames + 10}, "
                f"got {self.frames}"
            )
        if not 64 <= self.width <= 854:
            raise ValueError(f"width must lie in [64, 854], got {self.width}")
        for name in ("drop_rate", "merge_rate", "false_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {value}")


@dataclass(frozen=True)
class Scene:
    """One realistic scene.

    Attributes
    ----------
    name:
        ``"<index>-<background>-<look-alike source>-<other source>"``.
    frames:
        ``uint8[T, H, W, 3]`` RGB frames.
    ids:
        ``int64[T, H, W]`` ground-truth ids of the visible object parts (0 = none).
    lookalikes:
        The two look-alike object ids.
    """

    name: str
    frames: np.ndarray
    ids: np.ndarray
    lookalikes: tuple[int, int]


def davis_root_or_none(root: Path) -> Path | None:
    """``root`` if it holds the DAVIS-2016 ``JPEGImages/480p`` and ``Annotations/480p``."""
    ok = (root / "JPEGImages" / "480p").is_dir() and (root / "Annotations" / "480p").is_dir()
    return root if ok else None


class _Source:
    """Frames and masks of one DAVIS sequence, resized to the scene size."""

    def __init__(self, root: Path, sequence: str, size: tuple[int, int]) -> None:
        images = sorted((root / "JPEGImages" / "480p" / sequence).glob("*.jpg"))
        if not images:
            raise FileNotFoundError(
                f"no frames of DAVIS sequence {sequence!r} under {root}/JPEGImages/480p"
            )
        self.images = images
        self.masks = [root / "Annotations" / "480p" / sequence / f"{p.stem}.png" for p in images]
        self.size = size

    def __len__(self) -> int:
        return len(self.images)

    def _index(self, t: int) -> int:
        period = 2 * (len(self) - 1)
        t %= period
        return t if t < len(self) else period - t

    def object_height(self, t: int) -> int:
        """Height in pixels (at least 1) of the object's box in frame ``t`` (ping-pong)."""
        mask = cv2.imread(str(self.masks[self._index(t)]), cv2.IMREAD_GRAYSCALE)
        mask = cv2.resize(mask, self.size, interpolation=cv2.INTER_NEAREST) > 127
        rows = np.flatnonzero(mask.any(axis=1))
        return int(rows[-1] - rows[0] + 1) if rows.size else 1

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB ``uint8[H, W, 3]`` and mask ``bool[H, W]`` of frame ``t`` (ping-pong)."""
        k = self._index(t)
        image = cv2.cvtColor(cv2.imread(str(self.images[k])), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(self.masks[k]), cv2.IMREAD_GRAYSCALE)
        image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, self.size, interpolation=cv2.INTER_NEAREST) > 127
        return image, mask


def _background(source: _Source, t: int) -> np.ndarray:
    """Frame ``t`` of ``source`` with its object inpainted away."""
    image, mask = source.frame(t)
    hole = cv2.dilate(mask.view(np.uint8), np.ones((9, 9), np.uint8))
    return cv2.inpaint(image, hole, 5, cv2.INPAINT_TELEA)


def _cutout(source: _Source, t: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The object of frame ``t`` cropped to its box and scaled by ``scale``."""
    image, mask = source.frame(t)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1), bool)
    image = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    size = (max(4, round(image.shape[1] * scale)), max(4, round(image.shape[0] * scale)))
    return (
        cv2.resize(image, size, interpolation=cv2.INTER_AREA),
        cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0,
    )


def _paste(
    canvas: np.ndarray,
    ids: np.ndarray,
    patch: np.ndarray,
    mask: np.ndarray,
    centre: np.ndarray,
    object_id: int,
) -> None:
    """Paste ``patch`` where ``mask`` is set, centred at ``centre`` (x, y), clipped."""
    height, width = ids.shape
    ph, pw = mask.shape
    x0, y0 = round(centre[0] - pw / 2), round(centre[1] - ph / 2)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(width, x0 + pw), min(height, y0 + ph)
    if dx1 <= dx0 or dy1 <= dy0:
        return
    sub = mask[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]
    canvas[dy0:dy1, dx0:dx1][sub] = patch[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0][sub]
    ids[dy0:dy1, dx0:dx1][sub] = object_id


def make_scene(root: Path, index: int, seed: int, config: SceneConfig) -> Scene:
    """Scene ``index`` (deterministic in ``seed + index``).

    Parameters
    ----------
    root:
        DAVIS-2016 root (``JPEGImages/480p``, ``Annotations/480p``).
    index:
        Scene number; picks the background and the object sources.
    seed:
        Base seed.
    config:
        Scene size and difficulty.

    Returns
    -------
    Scene
        Frames, ground-truth ids (objects 1 and 2 are the look-alikes) and name.
    """
    rng = np.random.default_rng(seed + index)
    height = round(config.width * 480 / 854)
    size = (config.width, height)
    background = BACKGROUND_SEQUENCES[index % len(BACKGROUND_SEQUENCES)]
    candidates = [s for s in OBJECT_SEQUENCES if s != background]
    twin, other = (candidates[i] for i in rng.choice(len(candidates), 2, replace=False))
    bg = _Source(root, background, size)
    sources = {
        1: _Source(root, twin, size),
        2: _Source(root, twin, size),
        3: _Source(root, other, size),
    }
    offsets = {1: 0, 2: int(rng.integers(len(sources[2]) // 3, len(sources[2]))), 3: 0}
    # One scale per object, so it deforms as in its source; taken from its tallest
    # cut-out in the scene, so no object grows past object_height (a source whose
    # object comes towards its camera, as drift-chicane's car, would otherwise grow
    # over the whole scene).
    scale = {
        k: config.object_height
        * height
        / max(sources[k].object_height(offsets[k] + t) for t in range(config.frames))
        for k in sources
    }
    # Look-alikes start on opposite sides at similar heights and cross mid-scene.
    y = rng.uniform(0.35, 0.65) * height
    speed = (config.width * 0.6) / config.frames
    position = {
        1: np.array([0.15 * config.width, y]),
        2: np.array([0.85 * config.width, y + rng.uniform(-0.1, 0.1) * height]),
        3: rng.uniform([0.2 * config.width, 0.25 * height], [0.8 * config.width, 0.75 * height]),
    }
    angle = rng.uniform(0, 2 * np.pi)
    velocity = {
        1: np.array([speed, rng.uniform(-0.3, 0.3)]),
        2: np.array([-speed, rng.uniform(-0.3, 0.3)]),
        3: speed * np.array([np.cos(angle), np.sin(angle)]),
    }
    vanishing = int(rng.integers(1, 4))
    vanish_start = (config.frames - config.vanish_frames) // 2
    vanish_end = vanish_start + config.vanish_frames
    depth = [int(k) for k in rng.permutation([1, 2, 3])]
    frames = np.zeros((config.frames, height, config.width, 3), np.uint8)
    ids = np.zeros((config.frames, height, config.width), np.int64)
    low = np.array([0.1 * config.width, 0.2 * height])
    high = np.array([0.9 * config.width, 0.8 * height])
    for t in range(config.frames):
        canvas = _background(bg, t)
        for k in depth:
            if t == vanish_end and k == vanishing:
                # Reappear on the other side of the scene.
                position[k] = low + high - position[k]
            if not vanish_start <= t < vanish_end or k != vanishing:
                patch, mask = _cutout(sources[k], offsets[k] + t, scale[k])
                _paste(canvas, ids[t], patch, mask, position[k], k)
            position[k] = position[k] + velocity[k]
            bounce = (position[k] < low) | (position[k] > high)
            velocity[k] = np.where(bounce, -velocity[k], velocity[k])
            position[k] = np.clip(position[k], low, high)
        frames[t] = canvas
    name = f"{index:02d}-{background}-{twin}x2-{other}"
    return Scene(name=name, frames=frames, ids=ids, lookalikes=(1, 2))


def _jitter(mask: np.ndarray, largest: int, rng: np.random.Generator) -> np.ndarray:
    """``mask`` with its boundary moved by a random erosion, dilation, opening or closing."""
    size = int(rng.integers(1, largest // 2 + 1)) * 2 + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    op = (cv2.MORPH_ERODE, cv2.MORPH_DILATE, cv2.MORPH_OPEN, cv2.MORPH_CLOSE)[rng.integers(4)]
    out = cv2.morphologyEx(mask.view(np.uint8), op, kernel).astype(bool)
    return out if out.sum() >= 0.3 * mask.sum() else mask


def make_detections(
    ids: np.ndarray, config: SceneConfig, rng: np.random.Generator, min_area: int = 40
) -> tuple[Instances, np.ndarray]:
    """Noisy detections of one frame.

    Parameters
    ----------
    ids:
        ``int64[H, W]`` ground-truth ids of the frame.
    config:
        Error rates.
    rng:
        Random generator (advance it frame by frame for a deterministic video).
    min_area:
        Visible parts smaller than this many pixels are not detected.

    Returns
    -------
    instances, frame_ids:
        Detections in random order with one class and scores in ``[0.5, 1]``, and
        ``int64[N]`` shuffled per-frame ids ``1..N`` (no identity).
    """
    height, width = ids.shape
    present = [int(k) for k in np.unique(ids) if k != 0 and (ids == k).sum() >= min_area]
    kept = [k for k in present if rng.random() >= config.drop_rate]
    masks = [_jitter(ids == k, config.jitter, rng) for k in kept]
    if len(masks) >= 2 and rng.random() < config.merge_rate:
        kernel = np.ones((7, 7), np.uint8)
        grown = [cv2.dilate(m.view(np.uint8), kernel).astype(bool) for m in masks]
        pairs = [
            (i, j)
            for i in range(len(masks))
            for j in range(i + 1, len(masks))
            if (grown[i] & grown[j]).any()
        ]
        if pairs:
            i, j = pairs[int(rng.integers(len(pairs)))]
            masks = [m for k, m in enumerate(masks) if k not in (i, j)] + [masks[i] | masks[j]]
    if rng.random() < config.false_rate:
        axes = (
            int(rng.integers(height // 20, height // 8)),
            int(rng.integers(height // 20, height // 8)),
        )
        centre = (
            int(rng.integers(axes[0], width - axes[0])),
            int(rng.integers(axes[1], height - axes[1])),
        )
        blob = np.zeros((height, width), np.uint8)
        cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        masks.append(blob.astype(bool) & (ids == 0))
    masks = [m for m in masks if m.sum() >= min_area]
    if not masks:
        return Instances.empty(height, width), np.zeros(0, np.int64)
    order = rng.permutation(len(masks))
    stacked = np.stack([masks[i] for i in order])
    scores = rng.uniform(0.5, 1.0, len(order)).astype(np.float32)
    instances = Instances.from_masks(stacked, scores=scores)
    return instances, rng.permutation(len(order)) + 1
