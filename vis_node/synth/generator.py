"""Synthetic salient-instance videos with exact, occlusion-aware ground truth.

A video shows a textured background canvas seen through a moving, zooming camera,
a few salient foreground objects of distinct categories (each category has its own
shape and texture/colour pattern), and small low-contrast distractors that sit on
the background and are *not* salient. Objects move smoothly, occlude each other in a
fixed depth order, and in most videos one object leaves the view and comes back.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed and
configuration give byte-identical arrays. Sprites and the background canvas are
drawn by :mod:`vis_node.synth.sprites`.

A little over 400 lines on purpose: the camera, the trajectories, the placements and
the rendering share one random stream whose draw order fixes every generated (and
pinned) video, so the chain of draws stays readable in one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vis_node.synth.sprites import Sprite, background_canvas, distractor_sprite, salient_sprite

CATEGORIES: tuple[str, ...] = ("disc", "box", "triangle", "star", "ring")
"""Salient object categories; class id = index + 1 (0 = background)."""

DISTRACTOR = "distractor"
"""Category name of non-salient distractors (class id 0, never annotated)."""

_CANVAS_SCALE = 1.4
_EDGE_MARGIN = 3.0


@dataclass(frozen=True)
class SynthConfig:
    """Settings of :func:`generate_video`.

    Attributes
    ----------
    width, height:
        Frame size in pixels.
    frames:
        Video length in frames.
    min_objects, max_objects:
        Range of the number of salient objects (each of a different category).
    distractors:
        Number of small non-salient distractors.
    object_size:
        Range of salient object diameters as a fraction of ``min(width, height)``.
    max_speed:
        Largest object speed as a fraction of ``min(width, height)`` per frame.
    exit_probability:
        Chance that one object leaves the view and re-enters (needs >= 20 frames).
    camera_zoom:
        Largest relative camera zoom change (0.08 = +-8 %).
    """

    width: int = 320
    height: int = 240
    frames: int = 40
    min_objects: int = 2
    max_objects: int = 4
    distractors: int = 3
    object_size: tuple[float, float] = (0.22, 0.34)
    max_speed: float = 0.03
    exit_probability: float = 0.8
    camera_zoom: float = 0.08

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f"frame size must be at least 32x32, got {self.width}x{self.height}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if not 1 <= self.min_objects <= self.max_objects <= len(CATEGORIES):
            raise ValueError(
                f"need 1 <= min_objects <= max_objects <= {len(CATEGORIES)}, "
                f"got {self.min_objects}, {self.max_objects}"
            )
        if self.distractors < 0:
            raise ValueError(f"distractors must be >= 0, got {self.distractors}")
        low, high = self.object_size
        if not 0.0 < low <= high <= 0.6:
            raise ValueError(
                f"object_size must satisfy 0 < low <= high <= 0.6, got {self.object_size}"
            )
        if not 0.0 < self.max_speed <= 0.2:
            raise ValueError(f"max_speed must lie in (0, 0.2], got {self.max_speed}")
        if not 0.0 <= self.exit_probability <= 1.0:
            raise ValueError(f"exit_probability must lie in [0, 1], got {self.exit_probability}")
        if not 0.0 <= self.camera_zoom <= 0.2:
            raise ValueError(f"camera_zoom must lie in [0, 0.2], got {self.camera_zoom}")


@dataclass(frozen=True)
class SynthObject:
    """One object of a synthetic video (salient object or distractor).

    Attributes
    ----------
    id:
        Instance id; salient objects use 1..n (the ids in the annotation), distractors
        n+1.. (never in the annotation).
    category_id:
        ``CATEGORIES.index(name) + 1`` for salient objects, 0 for distractors.
    category_name:
        Category name, or :data:`DISTRACTOR`.
    salient:
        Whether the object is salient (annotated).
    depth:
        Drawing order; larger is nearer the camera. Distractors are behind all
        salient objects.
    visible:
        ``bool[T]``: whether any pixel of the object is visible in frame t.
    visible_area:
        ``int64[T]`` visible (unoccluded, in-view) pixels per frame.
    full_area:
        ``int64[T]`` in-view pixels of the full silhouette per frame (ignoring
        occlusion).
    offscreen:
        ``(start, stop)`` frame range in which the object was steered fully out of
        view, or ``None``.
    """

    id: int
    category_id: int
    category_name: str
    salient: bool
    depth: int
    visible: np.ndarray
    visible_area: np.ndarray
    full_area: np.ndarray
    offscreen: tuple[int, int] | None = None

    def to_json(self) -> dict[str, object]:
        """JSON-serialisable summary (per-frame areas as lists)."""
        return {
            "id": self.id,
            "category_id": self.category_id,
            "category_name": self.category_name,
            "salient": self.salient,
            "depth": self.depth,
            "visible_area": self.visible_area.tolist(),
            "full_area": self.full_area.tolist(),
            "offscreen": list(self.offscreen) if self.offscreen else None,
        }


@dataclass(frozen=True)
class SynthVideo:
    """A generated video and its ground truth.

    Attributes
    ----------
    seed:
        Seed it was generated from.
    config:
        Settings it was generated with.
    frames:
        ``uint8[T, H, W, 3]`` RGB frames.
    ids:
        ``uint16[T, H, W]`` visible salient instance ids (0 = background).
    semantic:
        ``uint8[T, H, W]`` class ids of the visible salient pixels (0 = background).
    objects:
        Salient objects (ids 1..n), then distractors.
    amodal:
        Salient object id -> ``bool[T, H, W]`` full in-view silhouettes, occluded
        parts included.
    """

    seed: int
    config: SynthConfig
    frames: np.ndarray
    ids: np.ndarray
    semantic: np.ndarray
    objects: list[SynthObject]
    amodal: dict[int, np.ndarray] = field(repr=False)

    @property
    def salient_objects(self) -> list[SynthObject]:
        """The annotated objects."""
        return [o for o in self.objects if o.salient]


def _smooth_wave(t: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """``float[T]`` sine in [-1, 1] with 0.3 to 1.2 random cycles over the video."""
    cycles = rng.uniform(0.3, 1.2)
    return np.sin(2 * np.pi * cycles * t / max(total, 1) + rng.uniform(0, 2 * np.pi))


def _camera(
    cfg: SynthConfig, canvas_shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """``float[T, 3, 3]`` canvas -> frame affine transforms (pan and zoom)."""
    t = np.arange(cfg.frames, dtype=np.float64)
    zoom = 1.0 + cfg.camera_zoom * _smooth_wave(t, cfg.frames, rng)
    canvas_h, canvas_w = canvas_shape
    z_min = 1.0 - cfg.camera_zoom
    span_x = max(canvas_w / 2 - cfg.width / (2 * z_min) - 1, 0.0)
    span_y = max(canvas_h / 2 - cfg.height / (2 * z_min) - 1, 0.0)
    cx = canvas_w / 2 + rng.uniform(0.3, 1.0) * span_x * _smooth_wave(t, cfg.frames, rng)
    cy = canvas_h / 2 + rng.uniform(0.3, 1.0) * span_y * _smooth_wave(t, cfg.frames, rng)
    mats = np.zeros((cfg.frames, 3, 3))
    mats[:, 0, 0] = mats[:, 1, 1] = zoom
    mats[:, 0, 2] = cfg.width / 2 - zoom * cx
    mats[:, 1, 2] = cfg.height / 2 - zoom * cy
    mats[:, 2, 2] = 1.0
    return mats


def _trajectory(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """``float[T, 2]`` smooth random screen positions (x, y) kept near the view."""
    width, height = cfg.width, cfg.height
    vmax = cfg.max_speed * min(width, height)
    low = np.array([0.18 * width, 0.18 * height])
    high = np.array([0.82 * width, 0.82 * height])
    position = rng.uniform(low + 0.05 * (high - low), high - 0.05 * (high - low))
    angle = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(0.4, 1.0) * vmax * np.array([np.cos(angle), np.sin(angle)])
    path = np.zeros((cfg.frames, 2))
    for t in range(cfg.frames):
        path[t] = position
        accel = rng.normal(0.0, 0.15 * vmax, 2)
        accel += 0.04 * (np.maximum(low - position, 0.0) - np.maximum(position - high, 0.0))
        velocity = 0.97 * velocity + accel
        speed = float(np.hypot(*velocity))
        if speed > vmax:
            velocity *= vmax / speed
        position = position + velocity
    return path


def _exit_offsets(
    cfg: SynthConfig, path: np.ndarray, radius: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int]]:
    """Offsets ``float[T, 2]`` that steer an object out of view and back.

    Returns the offsets and the ``(start, stop)`` frames in which the object is fully
    out of view.
    """
    total = cfg.frames
    ramp = max(3, total // 10)
    hold = int(rng.integers(4, max(5, total // 5) + 1))
    span = 2 * ramp + hold
    start = int(rng.integers(int(0.15 * total), max(int(0.15 * total) + 1, total - span - 3)))
    stop = start + span
    t = np.arange(total)
    weight = np.clip(np.minimum(t - start + 1, stop - t) / ramp, 0.0, 1.0)
    weight = weight * weight * (3 - 2 * weight)
    middle = path[(start + stop) // 2]
    gaps = [middle[0], cfg.width - middle[0], middle[1], cfg.height - middle[1]]
    side = int(np.argmin(gaps))
    direction = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]][side], dtype=np.float64)
    axis = side // 2
    edge_gap = path[:, axis] if side % 2 == 0 else (cfg.width, cfg.height)[axis] - path[:, axis]
    distance = np.maximum(edge_gap, 0.0) + radius + _EDGE_MARGIN
    offsets = (weight * distance)[:, None] * direction
    full = np.flatnonzero(weight >= 1.0)
    return offsets, (int(full[0]), int(full[-1]) + 1)


def _paste(
    frame: np.ndarray, scene: np.ndarray, sprite: Sprite, matrix: np.ndarray, label: int
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Draw ``sprite`` with the 2x3 sprite -> frame ``matrix`` over ``frame`` and ``scene``.

    Returns the region ``(rows, cols)`` and the ``bool`` silhouette inside it, or
    ``None`` when the sprite is out of view.
    """
    height, width = scene.shape
    size = sprite.mask.shape[0]
    corners = np.array(
        [[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], dtype=np.float64
    )
    mapped = corners @ matrix.T
    x0 = max(int(np.floor(mapped[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(mapped[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(mapped[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(mapped[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    local = matrix.copy()
    local[:, 2] -= (x0, y0)
    shape = (x1 - x0, y1 - y0)
    mask = cv2.warpAffine(sprite.mask, local, shape, flags=cv2.INTER_LINEAR) > 127
    if not mask.any():
        return None
    rgb = cv2.warpAffine(
        sprite.rgb, local, shape, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    region = (slice(y0, y1), slice(x0, x1))
    frame[region][mask] = rgb[mask]
    scene[region][mask] = label
    return region, mask


def _sprite_matrix(sprite: Sprite, centre: np.ndarray, scale: float, angle: float) -> np.ndarray:
    """2x3 affine from sprite pixels to frame pixels (rotate, scale, move to ``centre``)."""
    size = sprite.mask.shape[0]
    c = (size - 1) / 2.0
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (centre - linear @ np.array([c, c]))[:, None]])


@dataclass
class _Placement:
    """An object to draw: sprite, per-frame pose and identity."""

    id: int
    category_id: int
    depth: int
    sprite: Sprite
    centres: np.ndarray  # float[T, 2] frame pixels (x, y)
    scales: np.ndarray  # float[T]
    angles: np.ndarray  # float[T] radians
    offscreen: tuple[int, int] | None = None


def _salient_placements(cfg: SynthConfig, rng: np.random.Generator) -> list[_Placement]:
    """Salient objects: distinct categories, random depths, one maybe leaving the view."""
    total = cfg.frames
    count = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    categories = rng.choice(len(CATEGORIES), size=count, replace=False)
    depths = rng.permutation(count) + cfg.distractors
    leaves = total >= 20 and rng.random() < cfg.exit_probability
    exit_index = int(rng.integers(count)) if leaves else -1
    short = min(cfg.width, cfg.height)
    t = np.arange(total, dtype=np.float64)
    placements = []
    for index, category in enumerate(categories):
        radius = rng.uniform(*cfg.object_size) * short / 2
        sprite = salient_sprite(CATEGORIES[category], radius, rng)
        path = _trajectory(cfg, rng)
        scales = 1.0 + 0.12 * _smooth_wave(t, total, rng)
        angles = rng.uniform(0, 2 * np.pi) + np.deg2rad(rng.uniform(-4.0, 4.0)) * t
        offscreen = None
        if index == exit_index:
            offsets, offscreen = _exit_offsets(cfg, path, radius * scales, rng)
            path = path + offsets
        placements.append(
            _Placement(
                index + 1,
                int(category) + 1,
                int(depths[index]),
                sprite,
                path,
                scales,
                angles,
                offscreen,
            )
        )
    return placements


def _distractor_placements(
    cfg: SynthConfig,
    canvas: np.ndarray,
    cameras: np.ndarray,
    first_id: int,
    rng: np.random.Generator,
) -> list[_Placement]:
    """Distractors fixed on the background canvas, so they move with the camera."""
    canvas_h, canvas_w = canvas.shape[:2]
    short = min(cfg.width, cfg.height)
    placements = []
    for index in range(cfg.distractors):
        radius = rng.uniform(0.025, 0.05) * short
        x, y = rng.uniform(0.2, 0.8) * canvas_w, rng.uniform(0.2, 0.8) * canvas_h
        patch = canvas[max(int(y) - 4, 0) : int(y) + 5, max(int(x) - 4, 0) : int(x) + 5]
        sprite = distractor_sprite(radius, patch.reshape(-1, 3).mean(axis=0), rng)
        centres = (cameras @ np.array([x, y, 1.0]))[:, :2]
        angles = np.full(cfg.frames, rng.uniform(0, 2 * np.pi))
        placements.append(
            _Placement(first_id + index, 0, index, sprite, centres, cameras[:, 0, 0], angles)
        )
    return placements


def _render(
    cfg: SynthConfig, canvas: np.ndarray, cameras: np.ndarray, placements: list[_Placement]
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Draw every frame back to front.

    Returns
    -------
    frames, scene, silhouettes:
        ``uint8[T, H, W, 3]`` RGB, ``uint16[T, H, W]`` id of the visible object per
        pixel (distractors included) and, per object id, ``bool[T, H, W]`` full
        in-view silhouettes.
    """
    shape = (cfg.frames, cfg.height, cfg.width)
    frames = np.empty(shape + (3,), dtype=np.uint8)
    scene = np.zeros(shape, dtype=np.uint16)
    silhouettes = {p.id: np.zeros(shape, dtype=bool) for p in placements}
    ordered = sorted(placements, key=lambda p: p.depth)
    for t in range(cfg.frames):
        frames[t] = cv2.warpAffine(
            canvas,
            cameras[t, :2],
            (cfg.width, cfg.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        for item in ordered:
            matrix = _sprite_matrix(
                item.sprite, item.centres[t], float(item.scales[t]), float(item.angles[t])
            )
            pasted = _paste(frames[t], scene[t], item.sprite, matrix, item.id)
            if pasted is not None:
                region, mask = pasted
                silhouettes[item.id][t][region] = mask
    return frames, scene, silhouettes


def generate_video(seed: int, config: SynthConfig | None = None) -> SynthVideo:
    """Generate one synthetic video with ground truth.

    Parameters
    ----------
    seed:
        Seed of ``numpy.random.default_rng``; equal seeds give identical videos.
    config:
        Settings; defaults to :class:`SynthConfig()`.

    Returns
    -------
    SynthVideo
        Frames ``uint8[T, H, W, 3]``, ids ``uint16[T, H, W]``, semantic
        ``uint8[T, H, W]``, the object list and the salient silhouettes.
    """
    cfg = config if config is not None else SynthConfig()
    rng = np.random.default_rng(seed)
    canvas_shape = (round(cfg.height * _CANVAS_SCALE), round(cfg.width * _CANVAS_SCALE))
    canvas = background_canvas(*canvas_shape, rng)
    cameras = _camera(cfg, canvas_shape, rng)
    salient = _salient_placements(cfg, rng)
    distractors = _distractor_placements(cfg, canvas, cameras, len(salient) + 1, rng)
    frames, scene, silhouettes = _render(cfg, canvas, cameras, salient + distractors)

    ids = np.where(scene <= len(salient), scene, 0).astype(np.uint16)
    lut = np.zeros(len(salient) + len(distractors) + 1, dtype=np.uint8)
    objects = []
    for item in salient + distractors:
        lut[item.id] = item.category_id
        visible_area = np.count_nonzero(scene == item.id, axis=(1, 2)).astype(np.int64)
        objects.append(
            SynthObject(
                id=item.id,
                category_id=item.category_id,
                category_name=CATEGORIES[item.category_id - 1] if item.category_id else DISTRACTOR,
                salient=item.category_id > 0,
                depth=item.depth,
                visible=visible_area > 0,
                visible_area=visible_area,
                full_area=silhouettes[item.id].sum(axis=(1, 2)).astype(np.int64),
                offscreen=item.offscreen,
            )
        )
    amodal = {item.id: silhouettes[item.id] for item in salient}
    return SynthVideo(seed, cfg, frames, ids, lut[ids], objects, amodal)
