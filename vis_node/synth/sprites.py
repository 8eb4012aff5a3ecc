"""Appearance of synthetic videos: object sprites and the background canvas.

A salient object of a category is drawn once as a :class:`Sprite` (its silhouette and
its category's texture in a hue of its own, :func:`salient_sprite`); a distractor is a
low-contrast blob in the colour of the background under it
(:func:`distractor_sprite`); :func:`background_canvas` paints the textured canvas the
camera moves over. :mod:`vis_node.synth.generator` places, moves and renders them.
Every random draw comes from the caller's generator, in the caller's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Hue (degrees) of each category; a video jitters it by at most _HUE_JITTER.
_CATEGORY_HUE = {"disc": 5.0, "box": 220.0, "triangle": 120.0, "star": 50.0, "ring": 295.0}
_HUE_JITTER = 10.0
_COARSE_CELL = 48.0  # background noise cell sizes in canvas pixels
_FINE_CELL = 12.0


@dataclass
class Sprite:
    """Texture and shape of an object, drawn once in its own square."""

    rgb: np.ndarray  # uint8[S, S, 3]
    mask: np.ndarray  # uint8[S, S], 0 or 255; the shape fits the sprite's inscribed circle


def _hsv_to_rgb(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Float HSV (hue in degrees, saturation and value in [0, 1]) to ``uint8`` RGB."""
    hsv = np.stack(np.broadcast_arrays(hue, sat, val), axis=-1).astype(np.float32)
    rgb = cv2.cvtColor(hsv.reshape(1, -1, 3), cv2.COLOR_HSV2RGB).reshape(hsv.shape)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _polygon(points: np.ndarray, size: int, radius: float) -> np.ndarray:
    """Fill a polygon given in unit-circle coordinates into a ``uint8[S, S]`` mask."""
    centre = (size - 1) / 2.0
    mask = np.zeros((size, size), dtype=np.uint8)
    pixels = np.rint(points * radius + centre).astype(np.int32)
    cv2.fillPoly(mask, [pixels], 255)
    return mask


def _shape_mask(name: str, u: np.ndarray, v: np.ndarray, size: int, radius: float) -> np.ndarray:
    """``uint8[S, S]`` 0/255 silhouette of category ``name`` (fits the unit circle)."""
    rho = np.hypot(u, v)
    if name == "disc":
        inside = rho <= 0.95
    elif name == "box":
        inside = (np.abs(u) <= 0.68) & (np.abs(v) <= 0.68)
    elif name == "ring":
        inside = (rho <= 0.97) & (rho >= 0.55)
    elif name == "triangle":
        angles = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return _polygon(np.stack([np.cos(angles), np.sin(angles)], axis=1) * 0.97, size, radius)
    elif name == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 0.97, 0.45)
        points = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
        return _polygon(points, size, radius)
    else:
        raise ValueError(f"unknown category {name!r}")
    return inside.astype(np.uint8) * 255


def _texture(
    name: str, u: np.ndarray, v: np.ndarray, hue: float, rng: np.random.Generator
) -> np.ndarray:
    """``uint8[S, S, 3]`` RGB texture of category ``name`` over the sprite square."""
    rho = np.hypot(u, v)
    grain = rng.normal(0.0, 0.03, u.shape)
    if name == "disc":
        sat, val = 0.85, 1.0 - 0.45 * rho
    elif name == "box":
        cell = np.floor(u * 3.0).astype(int) + np.floor(v * 3.0).astype(int)
        sat, val = 0.8, np.where(cell % 2 == 0, 0.95, 0.45)
    elif name == "triangle":
        sat, val = 0.8, np.where(np.sin(v * 4.0 * np.pi) > 0, 0.9, 0.4)
    elif name == "star":
        dots = np.hypot((u * 4.0) % 1.0 - 0.5, (v * 4.0) % 1.0 - 0.5) < 0.22
        sat, val = 0.9, np.where(dots, 0.35, 1.0)
    elif name == "ring":
        sat, val = np.where(np.sin((u + v) * 3.5 * np.pi) > 0, 0.85, 0.35), 0.9
    else:
        raise ValueError(f"unknown category {name!r}")
    return _hsv_to_rgb(
        np.full(u.shape, hue), np.clip(sat + grain, 0, 1), np.clip(val + grain, 0, 1)
    )


def _sprite_grid(radius: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Unit-circle coordinates ``u, v`` (``float[S, S]``) of a sprite square of side S."""
    size = 2 * int(np.ceil(radius)) + 3
    centre = (size - 1) / 2.0
    axis = (np.arange(size, dtype=np.float64) - centre) / radius
    v, u = np.meshgrid(axis, axis, indexing="ij")
    return u, v, size


def salient_sprite(name: str, radius: float, rng: np.random.Generator) -> Sprite:
    """Sprite of a salient object of category ``name``."""
    u, v, size = _sprite_grid(radius)
    hue = (_CATEGORY_HUE[name] + rng.uniform(-_HUE_JITTER, _HUE_JITTER)) % 360.0
    mask = _shape_mask(name, u, v, size, radius)
    return Sprite(_texture(name, u, v, hue, rng), mask)


def distractor_sprite(radius: float, base: np.ndarray, rng: np.random.Generator) -> Sprite:
    """A low-contrast elliptic blob whose colour is ``base`` (``float[3]`` in 0..255) shifted."""
    u, v, size = _sprite_grid(radius)
    angle = rng.uniform(0, np.pi)
    ratio = rng.uniform(0.45, 0.9)
    ur = u * np.cos(angle) + v * np.sin(angle)
    vr = -u * np.sin(angle) + v * np.cos(angle)
    mask = ((ur / 0.95) ** 2 + (vr / (0.95 * ratio)) ** 2 <= 1.0).astype(np.uint8) * 255
    shift = rng.choice([-1.0, 1.0]) * rng.uniform(14.0, 26.0, 3)
    noise = rng.normal(0.0, 4.0, (size, size, 1))
    rgb = np.clip(np.rint(base + shift + noise), 0, 255).astype(np.uint8)
    return Sprite(rgb, mask)


def background_canvas(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``uint8[Hc, Wc, 3]`` canvas: colour gradient + smoothed noise + stripes."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    hues = rng.uniform(0, 360, 2)
    colours = _hsv_to_rgb(hues, rng.uniform(0.1, 0.35, 2), rng.uniform(0.35, 0.75, 2)).astype(
        np.float32
    )
    theta = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(theta) + ys * np.sin(theta)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
    image = colours[0] * (1 - ramp[..., None]) + colours[1] * ramp[..., None]
    for cell_size, amplitude in ((_COARSE_CELL, 28.0), (_FINE_CELL, 14.0)):
        cells = (max(2, round(height / cell_size)), max(2, round(width / cell_size)))
        grey = rng.normal(0.0, 1.0, cells + (1,))
        tint = rng.normal(0.0, 0.35, cells + (3,))
        noise = (grey + tint).astype(np.float32)
        image += amplitude * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    phi = rng.uniform(0, np.pi)
    period = rng.uniform(12.0, 40.0)
    stripes = np.sin(2 * np.pi * (xs * np.cos(phi) + ys * np.sin(phi)) / period)
    image += rng.uniform(6.0, 16.0) * stripes[..., None]
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
