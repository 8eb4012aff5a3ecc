"""Write a small INT8 calibration image set from synthetic VSIS videos.

Usage::

    python calibration/make_synth_set.py [--out calibration/synth] [--images 64]

Takes evenly spaced frames of several seeded synthetic videos
(:func:`vis_node.synth.generate_video`) and writes them as JPEGs named
``<seed>_<frame>.jpg``, which ``vsis export MODEL --format tensorrt --precision int8
--calib calibration/synth`` reads as an image folder. The same seeds always give the
same images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vis_node.synth import SynthConfig, generate_video

FRAMES_PER_VIDEO = 8
"""Frames taken from each video (evenly spaced)."""


def make_set(out: Path, images: int, *, first_seed: int = 1000, quality: int = 85) -> list[Path]:
    """Write ``images`` synthetic 320x240 JPEGs to ``out``.

    Parameters
    ----------
    out:
        Output folder (created).
    images:
        Number of images (>= 1).
    first_seed:
        Seed of the first video; seeds far from the training seeds keep the set held out.
    quality:
        JPEG quality (0-100).

    Returns
    -------
    list of Path
        The written files, in order.
    """
    if images < 1:
        raise ValueError(f"images must be >= 1, got {images}")
    out.mkdir(parents=True, exist_ok=True)
    config = SynthConfig(frames=40)
    written: list[Path] = []
    videos = -(-images // FRAMES_PER_VIDEO)
    for offset in tqdm(range(videos), desc="calibration videos", unit="video"):
        seed = first_seed + offset
        video = generate_video(seed, config)
        picks = np.linspace(0, config.frames - 1, FRAMES_PER_VIDEO).round().astype(int)
        for index in picks[: images - len(written)]:
            path = out / f"{seed}_{index:05d}.jpg"
            bgr = cv2.cvtColor(video.frames[index], cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise OSError(f"{path}: OpenCV could not write this JPEG")
            written.append(path)
    return written


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "synth")
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    paths = make_set(args.out, args.images)
    print(f"wrote {len(paths)} images to {args.out}")


if __name__ == "__main__":
    main()
