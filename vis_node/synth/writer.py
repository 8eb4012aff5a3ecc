"""Write synthetic videos as a DAVIS-style root with YouTube-VIS annotations.

Layout under the output folder::

    JPEGImages/480p/<seq>/<frame>.jpg   RGB frames (JPEG quality 95)
    Annotations/480p/<seq>/<frame>.png  salient instance ids (palette PNG)
    Semantics/480p/<seq>/<frame>.png    class ids (grey PNG)
    ytvis.json                          YouTube-VIS annotation file
    meta.json                           seed, config and every object, distractors included
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vis_node.io.labels import write_instance_png, write_semantic_png
from vis_node.io.ytvis_json import YtvisVideo, tracks_from_id_maps, write_annotation_json
from vis_node.synth.generator import CATEGORIES, SynthConfig, SynthVideo, generate_video

RESOLUTION = "480p"
"""Resolution folder name used for the DAVIS-style layout (whatever the frame size)."""

JPEG_QUALITY = 95
"""JPEG quality of the written frames."""


def video_seed(seed: int, index: int) -> int:
    """Seed of video ``index`` of a dataset generated with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def sequence_name(index: int) -> str:
    """Sequence folder name of video ``index`` (``synth_000``, ...)."""
    return f"synth_{index:03d}"


def frame_name(index: int) -> str:
    """File stem of frame ``index`` (``00000``, ...)."""
    return f"{index:05d}"


def write_sequence(root: Path, name: str, video: SynthVideo) -> None:
    """Write the frames, instance PNGs and semantic PNGs of one video under ``root``."""
    image_dir = root / "JPEGImages" / RESOLUTION / name
    image_dir.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(video.frames):
        stem = frame_name(index)
        path = image_dir / f"{stem}.jpg"
        ok = cv2.imwrite(
            str(path),
            cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
        )
        if not ok:
            raise OSError(f"{path}: could not write the JPEG; check the disk and permissions")
        write_instance_png(
            root / "Annotations" / RESOLUTION / name / f"{stem}.png", video.ids[index]
        )
        write_semantic_png(
            root / "Semantics" / RESOLUTION / name / f"{stem}.png", video.semantic[index]
        )


def write_synth_root(
    out: str | Path, *, videos: int, seed: int, config: SynthConfig | None = None
) -> Path:
    """Generate ``videos`` synthetic videos and write them as a dataset root.

    Parameters
    ----------
    out:
        Output folder; created if missing, must not already hold files.
    videos:
        Number of videos (sequences ``synth_000`` ...).
    seed:
        Dataset seed; video ``i`` uses :func:`video_seed` ``(seed, i)``.
    config:
        Generator settings; defaults to :class:`SynthConfig()`.

    Returns
    -------
    pathlib.Path
        The output folder.

    Raises
    ------
    FileExistsError
        If ``out`` exists and is not empty.
    """
    if videos < 1:
        raise ValueError(f"videos must be >= 1, got {videos}")
    cfg = config if config is not None else SynthConfig()
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; choose a new output folder")
    root.mkdir(parents=True, exist_ok=True)
    ytvis_videos, tracks, meta_videos = [], [], []
    for index in tqdm(range(videos), desc="synth videos", unit="video"):
        name = sequence_name(index)
        seed_i = video_seed(seed, index)
        video = generate_video(seed_i, cfg)
        write_sequence(root, name, video)
        video_id = index + 1
        ytvis_videos.append(
            YtvisVideo(
                id=video_id,
                name=name,
                width=cfg.width,
                height=cfg.height,
                file_names=tuple(f"{name}/{frame_name(t)}.jpg" for t in range(cfg.frames)),
            )
        )
        categories = {o.id: o.category_id for o in video.salient_objects}
        tracks.extend(tracks_from_id_maps(video.ids, categories, video_id))
        meta_videos.append(
            {
                "name": name,
                "video_id": video_id,
                "seed": seed_i,
                "objects": [o.to_json() for o in video.objects],
            }
        )
    write_annotation_json(root / "ytvis.json", ytvis_videos, tracks, CATEGORIES)
    meta = {
        "seed": seed,
        "config": asdict(cfg),
        "categories": list(CATEGORIES),
        "videos": meta_videos,
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return root
