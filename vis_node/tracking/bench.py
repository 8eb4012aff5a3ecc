"""``vsis bench-track``: tracking quality and speed on synthetic videos.

Detections are the ground-truth masks of :func:`vis_node.synth.generate_video` with
ids shuffled in every frame, noisy class probabilities, and some frames dropped
(no detections), so only the tracker can restore identities. Four methods run on the
same detections:

* ``no tracking``: the per-frame (shuffled) ids as they come;
* ``IoUTracker+``: MaskTrack R-CNN's baseline (box IoU >= 0.3, score and class cues,
  memory of all tracks, no appearance, no flow);
* ``propagation``: SISO identity propagation by optical flow only;
* ``propagation + re-id``: the full :class:`~vis_node.tracking.tracker.OnlineTracker`.

Quality is scored with HOTA, IDF1 and ID switches (:mod:`vis_node.evaluation.tracking`);
speed is the mean wall time per frame of tracking plus online unification.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vis_node.tracking.scores import IoUTrackerPlusScore
from vis_node.tracking.baseline import BaselineTracker
from vis_node.tracking.bench_scenes import SceneConfig, davis_root_or_none
from vis_node.tracking.tracker import OnlineTracker
from vis_node.tracking.tracker_config import TrackerConfig
from vis_node.structures.instances import Instances
from vis_node.tracking.unification import OnlineUnifier

METHODS: tuple[str, ...] = (
    "no tracking",
    "IoUTracker+",
    "propagation",
    "issue-4 tracker",
    "propagation + re-id",
)
"""Methods of the synthetic benchmark, in table order."""

REALISTIC_METHODS: tuple[str, ...] = ("no tracking", "IoU tracker", "issue-4 tracker", "tracker")
"""Methods of the realistic benchmark, in table order."""

Tracker = OnlineTracker | BaselineTracker


@dataclass(frozen=True)
class BenchRow:
    """Scores of one method over all benchmark videos.

    Attributes
    ----------
    method:
        One of :data:`METHODS`.
    hota, deta, assa, idf1:
        Fractions in ``[0, 1]`` (trackeval, combined over videos).
    idsw:
        Number of ID switches.
    id0_share:
        Share of the published detections left at track id 0.
    ms_per_frame:
        Mean wall time of tracking + unification per frame, in milliseconds.
    """

    method: str
    hota: float
    deta: float
    assa: float
    idf1: float
    idsw: int
    id0_share: float
    ms_per_frame: float


def make_detections(
    ids: np.ndarray,
    class_of: dict[int, int],
    num_classes: int,
    rng: np.random.Generator,
    drop: bool,
) -> tuple[Instances, np.ndarray]:
    """Detections of one frame from its ground-truth id map.

    Parameters
    ----------
    ids:
        ``uint16[H, W]`` ground-truth instance ids.
    class_of:
        Instance id -> class id.
    num_classes:
        Length ``C`` of the class-probability vectors (class 0 = background).
    rng:
        Random generator for the shuffling and the class noise.
    drop:
        Return no detections (a dropped frame).

    Returns
    -------
    instances, frame_ids:
        Detections in random order (true class probability uniform in
        ``[0.55, 0.95]``, the rest spread at random over the other classes), and
        ``int64[N]`` shuffled per-frame ids ``1..N`` that carry no identity.
    """
    height, width = ids.shape
    present = [int(k) for k in np.unique(ids) if k != 0]
    if drop or not present:
        return Instances.empty(height, width, num_classes), np.zeros(0, dtype=np.int64)
    order = rng.permutation(len(present))
    masks = np.stack([ids == present[i] for i in order])
    probs = np.zeros((len(order), num_classes), dtype=np.float32)
    for row, i in enumerate(order):
        true_class = class_of[present[i]]
        p_true = rng.uniform(0.55, 0.95)
        others = [c for c in range(1, num_classes) if c != true_class]
        probs[row, true_class] = p_true
        probs[row, others] = (1.0 - p_true) * rng.dirichlet(np.ones(len(others)))
    return Instances.from_masks(masks, class_probs=probs), rng.permutation(len(order)) + 1


def _trackers(realistic: bool) -> dict[str, Callable[[], Tracker]]:
    iou_tracker = lambda: OnlineTracker(  # noqa: E731
        TrackerConfig(min_hits=1, max_lost_age=10_000, max_memory=10_000, coast=False),
        flow=None,
        association=IoUTrackerPlusScore(),
    )
    if realistic:
        return {
            "IoU tracker": iou_tracker,
            "issue-4 tracker": lambda: BaselineTracker(),
            "tracker": lambda: OnlineTracker(),
        }
    return {
        "IoUTracker+": iou_tracker,
        "propagation": lambda: OnlineTracker(TrackerConfig(max_lost_age=0), association=None),
        "issue-4 tracker": lambda: BaselineTracker(),
        "propagation + re-id": lambda: OnlineTracker(),
    }


@dataclass(frozen=True)
class _Video:
    name: str
    frames: np.ndarray
    ids: np.ndarray
    detections: list[tuple[Instances, np.ndarray]]


def _synthetic_videos(videos: int, seed: int, drop_rate: float, frames: int) -> Iterator[_Video]:
    from vis_node.synth import CATEGORIES, SynthConfig, generate_video

    num_classes = len(CATEGORIES) + 1
    for index in range(videos):
        video = generate_video(seed + index, SynthConfig(frames=frames))
        class_of = {o.id: o.category_id for o in video.salient_objects}
        rng = np.random.default_rng(seed + index)
        dropped = rng.random(len(video.frames)) < drop_rate
        detections = [
            make_detections(video.ids[t], class_of, num_classes, rng, bool(dropped[t]))
            for t in range(len(video.frames))
        ]
        yield _Video(f"video{index:03d}", np.asarray(video.frames), video.ids, detections)


def _realistic_videos(root: Path, videos: int, seed: int, config: SceneConfig) -> Iterator[_Video]:
    from vis_node.tracking import bench_scenes

    for index in range(videos):
        scene = bench_scenes.make_scene(root, index, seed, config)
        rng = np.random.default_rng(10_000 + seed + index)
        detections = [bench_scenes.make_detections(ids, config, rng) for ids in scene.ids]
        yield _Video(scene.name, scene.frames, scene.ids, detections)


def _score(videos: Iterable[_Video], methods: tuple[str, ...], realistic: bool) -> list[BenchRow]:
    from vis_node.evaluation.tracking import evaluate_tracking_data, sequence_data

    factories = _trackers(realistic)
    data: dict[str, dict[str, dict]] = {m: {} for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    untracked = dict.fromkeys(methods, 0)
    published = 0
    for video in tqdm(videos, desc="bench-track", unit="video"):
        published += sum(len(instances) for instances, _ in video.detections)
        for method in methods:
            tracker = factories[method]() if method in factories else None
            unifier = OnlineUnifier()
            predicted = np.zeros(video.ids.shape, dtype=np.int64)
            for t, (instances, frame_ids) in enumerate(video.detections):
                start = time.perf_counter()
                if tracker is None:
                    tracked = instances.with_track_ids(frame_ids)
                else:
                    tracked = tracker.update(instances, video.frames[t])
                unifier.update(tracked.track_ids, tracked.class_probs)
                times[method].append(time.perf_counter() - start)
                untracked[method] += int(np.sum(tracked.track_ids[: len(instances)] == 0))
                predicted[t] = tracked.id_map()
            data[method][video.name] = sequence_data(video.ids, predicted)
    rows = []
    for method in methods:
        report = evaluate_tracking_data(data[method])
        rows.append(
            BenchRow(
                method=method,
                hota=report["HOTA"],
                deta=report["DetA"],
                assa=report["AssA"],
                idf1=report["IDF1"],
                idsw=report["IDSW"],
                id0_share=untracked[method] / max(1, published),
                ms_per_frame=1000.0 * float(np.mean(times[method])),
            )
        )
    return rows


def run_benchmark(
    videos: int = 5, seed: int = 0, drop_rate: float = 0.1, frames: int = 40
) -> list[BenchRow]:
    """Run every method of :data:`METHODS` on ``videos`` synthetic videos.

    Parameters
    ----------
    videos:
        Number of videos; video ``i`` uses seed ``seed + i``.
    seed:
        First video seed (the detection noise uses the same seed).
    drop_rate:
        Probability that a frame's detections are dropped.
    frames:
        Frames per video.

    Returns
    -------
    list[BenchRow]
        One row per method, in :data:`METHODS` order.
    """
    if videos < 1:
        raise ValueError(f"videos must be >= 1, got {videos}")
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate}")
    return _score(_synthetic_videos(videos, seed, drop_rate, frames), METHODS, realistic=False)


def run_realistic_benchmark(
    root: Path, videos: int = 3, seed: int = 0, config: SceneConfig | None = None
) -> list[BenchRow]:
    """Run every method of :data:`REALISTIC_METHODS` on realistic DAVIS-2016 scenes.

    Parameters
    ----------
    root:
        DAVIS-2016 root with ``JPEGImages/480p`` and ``Annotations/480p``.
    videos:
        Number of scenes (see :func:`vis_node.tracking.bench_scenes.make_scene`).
    seed:
        Base seed of scenes and detection noise.
    config:
        Scene size and error rates; default :class:`SceneConfig` (CI size: 60 frames
        at 427 x 240).

    Returns
    -------
    list[BenchRow]
        One row per method, in :data:`REALISTIC_METHODS` order.
    """
    if videos < 1:
        raise ValueError(f"videos must be >= 1, got {videos}")
    if davis_root_or_none(root) is None:
        raise FileNotFoundError(
            f"no DAVIS-2016 data under {root} (need JPEGImages/480p and Annotations/480p); "
            "pass --davis-root, or run the synthetic bench with --synthetic"
        )
    scenes = _realistic_videos(root, videos, seed, config or SceneConfig())
    return _score(scenes, REALISTIC_METHODS, realistic=True)


def format_table(rows: list[BenchRow]) -> str:
    """Render benchmark rows as a fixed-width text table (scores in percent)."""
    header = (
        f"{'method':<22}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'IDF1':>7}{'IDSW':>6}{'id 0':>7}"
        f"{'ms/frame':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.method:<22}{100 * row.hota:>7.1f}{100 * row.deta:>7.1f}{100 * row.assa:>7.1f}"
            f"{100 * row.idf1:>7.1f}{row.idsw:>6d}{100 * row.id0_share:>6.1f}%"
            f"{row.ms_per_frame:>10.2f}"
        )
    return "\n".join(lines)
