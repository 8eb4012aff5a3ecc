"""Copy-paste composition: pasting segmented objects of one image onto another.

A pasted object becomes its own instance with its own class and identity; the parts of
the instances underneath that it covers are removed from their masks, so masks stay
disjoint and describe visible pixels only. This turns single-object binary data
(DAVIS-2016) into multi-instance training images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vis_node.training.config import CopyPasteConfig
from vis_node.training.samples import Sample


@dataclass
class Donor:
    """One object to paste.

    Attributes
    ----------
    image:
        ``uint8[H, W, 3]`` RGB of the image the object comes from.
    mask:
        ``bool[H, W]`` the object's pixels (non-empty).
    label:
        Class id.
    identity:
        Object identity.
    """

    image: np.ndarray
    mask: np.ndarray
    label: int
    identity: int


def donors_of(sample: Sample) -> list[Donor]:
    """Every instance of ``sample`` as a :class:`Donor`."""
    return [
        Donor(sample.image, mask, int(label), int(identity))
        for mask, label, identity in zip(sample.masks, sample.labels, sample.identities)
        if mask.any()
    ]


def jitter_colors(pixels: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast and saturation change.

    Parameters
    ----------
    pixels:
        ``uint8[..., 3]`` RGB.
    rng:
        Source of the three factors, each uniform in ``[1 - strength, 1 + strength]``.
    strength:
        Largest relative change.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of the same shape.
    """
    brightness, contrast, saturation = rng.uniform(1.0 - strength, 1.0 + strength, size=3)
    x = pixels.astype(np.float32) * brightness
    x = (x - x.mean()) * contrast + x.mean()
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey[..., None]) * saturation + grey[..., None]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _transformed(
    donor: Donor, shape: tuple[int, int], rng: np.random.Generator, config: CopyPasteConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The donor's box crop, rescaled (to fit ``shape``), maybe mirrored, colour-jittered.

    Returns ``uint8[h, w, 3]`` pixels and the ``bool[h, w]`` mask.
    """
    rows = np.flatnonzero(donor.mask.any(axis=1))
    cols = np.flatnonzero(donor.mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pixels = donor.image[y0:y1, x0:x1]
    mask = donor.mask[y0:y1, x0:x1].astype(np.uint8)
    height, width = mask.shape
    scale = min(rng.uniform(*config.scale), shape[0] / height, shape[1] / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST).astype(bool)
    if rng.random() < 0.5:
        pixels, mask = pixels[:, ::-1], mask[:, ::-1]
    return jitter_colors(pixels, rng, config.color_jitter), mask


def paste_objects(
    sample: Sample, donors: list[Donor], rng: np.random.Generator, config: CopyPasteConfig
) -> Sample:
    """Paste ``donors`` onto ``sample`` one after the other (later ones on top).

    Each donor is cropped to its box, scaled by a factor drawn from ``config.scale``
    (reduced when needed so it fits the image), mirrored with probability 0.5, colour
    jittered and placed at a uniformly drawn position fully inside the image.

    Parameters
    ----------
    sample:
        Base image with ``K`` instances.
    donors:
        ``M`` objects to paste (from any image of the same size or not).
    rng:
        Source of every random choice.
    config:
        Scale range, jitter strength and ``min_area``.

    Returns
    -------
    Sample
        The composite: the base instances minus covered pixels, then the pasted
        objects, each as an instance with the donor's label and identity; instances
        left with fewer than ``config.min_area`` pixels are dropped.
    """
    image = sample.image.copy()
    height, width = image.shape[:2]
    masks = list(sample.masks.copy())
    labels = list(sample.labels)
    identities = list(sample.identities)
    for donor in donors:
        pixels, mask = _transformed(donor, (height, width), rng, config)
        h, w = mask.shape
        y = int(rng.integers(0, height - h + 1))
        x = int(rng.integers(0, width - w + 1))
        full = np.zeros((height, width), dtype=bool)
        full[y : y + h, x : x + w] = mask
        image[full] = pixels[mask]
        for existing in masks:
            existing &= ~full
        masks.append(full)
        labels.append(donor.label)
        identities.append(donor.identity)
    keep = [k for k, m in enumerate(masks) if int(m.sum()) >= config.min_area]
    return Sample(
        image=image,
        masks=np.stack([masks[k] for k in keep]) if keep else np.zeros((0, height, width), bool),
        labels=np.array([labels[k] for k in keep], dtype=np.int64),
        identities=np.array([identities[k] for k in keep], dtype=np.int64),
    )
