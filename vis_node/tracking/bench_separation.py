"""How well an appearance embedding tells real objects apart (realistic-bench scenes).

For every scene of :mod:`vis_node.tracking.bench_scenes` the ground-truth visible mask
of each object is embedded in every frame; cosine similarities are then collected for
three kinds of pairs: the *same* object ``lag`` frames apart, two *look-alikes* (cut-outs
of one sequence) in the same frame, and two *different* objects in the same frame. A
good re-identification embedding puts the same-object distribution well above both
others; the overlap is what the relative re-id test and the motion gate must resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vis_node.structures.instances import Instances
from vis_node.tracking.association import mask_iou, match_by_iou
from vis_node.tracking.bench_scenes import SceneConfig, make_scene
from vis_node.tracking.embedding import ColourHistogramEmbedder, Embedder

PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)
"""Percentiles reported per pair kind."""


@dataclass(frozen=True)
class Separation:
    """Cosine similarities per pair kind.

    Attributes
    ----------
    same:
        Same object, frames ``lag`` apart, per lag: ``{lag: float64[K]}``.
    lookalike:
        ``float64[K]`` two look-alikes in one frame.
    different:
        ``float64[K]`` two objects of different sequences in one frame.
    """

    same: dict[int, np.ndarray]
    lookalike: np.ndarray
    different: np.ndarray


def measure_separation(
    root: Path,
    videos: int,
    seed: int,
    config: SceneConfig,
    embedder: Embedder | None = None,
    lags: tuple[int, ...] = (1, 5, 20),
    min_area: int = 200,
    detector: Callable[[np.ndarray], Instances] | None = None,
) -> Separation:
    """Collect similarities over ``videos`` realistic scenes.

    Parameters
    ----------
    root:
        DAVIS-2016 root.
    videos, seed, config:
        Scenes as in :func:`vis_node.tracking.bench.run_realistic_benchmark`.
    embedder:
        Embedding to measure; default the tracker's colour fallback, or the
        detector's own embeddings when there is a ``detector``.
    lags:
        Frame distances of the same-object pairs.
    min_area:
        Visible parts smaller than this many pixels are skipped.
    detector:
        A segmenter (``uint8[H, W, 3]`` RGB -> :class:`Instances`): objects are then
        its detections matched to the ground truth (mask IoU >= ``MATCH_IOU``, one to
        one) instead of the ground-truth masks, embedded by ``embedder`` or, without
        one, by the detector (``Instances.embeddings``).
    """
    if embedder is None and detector is None:
        embedder = ColourHistogramEmbedder()
    same: dict[int, list[float]] = {lag: [] for lag in lags}
    lookalike: list[float] = []
    different: list[float] = []
    for index in range(videos):
        scene = make_scene(root, index, seed, config)
        vectors: dict[tuple[int, int], np.ndarray] = {}
        for t, (image, ids) in enumerate(zip(scene.frames, scene.ids)):
            found = _embed_objects(image, ids, min_area, embedder, detector)
            for k, vector in found.items():
                vectors[(t, k)] = vector / max(np.linalg.norm(vector), 1e-12)
            objects = sorted(found)
            for i, a in enumerate(objects):
                for b in objects[i + 1 :]:
                    value = float(vectors[(t, a)] @ vectors[(t, b)])
                    pair = {a, b} == set(scene.lookalikes)
                    (lookalike if pair else different).append(value)
        for (t, k), vector in vectors.items():
            for lag in lags:
                other = vectors.get((t + lag, k))
                if other is not None:
                    same[lag].append(float(vector @ other))
    return Separation(
        same={lag: np.array(v) for lag, v in same.items()},
        lookalike=np.array(lookalike),
        different=np.array(different),
    )


MATCH_IOU = 0.5
"""Least mask IoU of a detection with an object's ground truth to stand for it."""


def _embed_objects(
    image: np.ndarray,
    ids: np.ndarray,
    min_area: int,
    embedder: Embedder | None,
    detector: Callable[[np.ndarray], Instances] | None,
) -> dict[int, np.ndarray]:
    """Object id -> ``float64[D]`` embedding of the objects found in one frame."""
    objects = [k for k in (1, 2, 3) if np.count_nonzero(ids == k) >= min_area]
    if not objects:
        return {}
    truth = np.stack([ids == k for k in objects])
    if detector is None:
        assert embedder is not None
        return dict(zip(objects, np.asarray(embedder(image, truth), dtype=np.float64)))
    detections = detector(image)
    if len(detections) == 0:
        return {}
    rows, cols = match_by_iou(mask_iou(truth, detections.masks), MATCH_IOU)
    if embedder is not None:
        vectors = np.asarray(embedder(image, detections.masks[cols]), dtype=np.float64)
    elif detections.embeddings is not None:
        vectors = np.asarray(detections.embeddings[cols], dtype=np.float64)
    else:
        raise ValueError("the detector gives no embeddings; pass an embedder")
    return {objects[r]: v for r, v in zip(rows, vectors)}


def format_separation(separation: Separation, title: str = "colour embedding") -> str:
    """Percentile table of the similarity distributions of the embedding ``title``."""
    header = f"{'pairs':<22}{'count':>7}" + "".join(f"{f'p{p}':>7}" for p in PERCENTILES)
    rows = [(f"same object, lag {lag}", v) for lag, v in separation.same.items()]
    rows += [("look-alikes", separation.lookalike), ("different objects", separation.different)]
    lines = [f"{title}: cosine similarity", header, "-" * len(header)]
    for name, values in rows:
        cells = (
            "".join(f"{q:>7.2f}" for q in np.percentile(values, PERCENTILES))
            if len(values)
            else ""
        )
        lines.append(f"{name:<22}{len(values):>7d}{cells}")
    return "\n".join(lines)


def plot_separation(separations: dict[str, Separation], path: Path) -> None:
    """Write overlaid similarity histograms to ``path`` (PNG), one panel per embedding.

    Parameters
    ----------
    separations:
        Embedding title -> its similarities.
    path:
        PNG to write (its folder is created).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.linspace(-0.25, 1.0, 51)
    figure, panels = plt.subplots(
        1, len(separations), figsize=(6 * len(separations), 4), squeeze=False
    )
    for axes, (title, separation) in zip(panels[0], separations.items()):
        for lag, values in separation.same.items():
            axes.hist(
                values, bins, density=True, histtype="step", label=f"same object, lag {lag}"
            )
        axes.hist(separation.lookalike, bins, density=True, alpha=0.4, label="look-alikes")
        axes.hist(separation.different, bins, density=True, alpha=0.4, label="different objects")
        axes.set_xlabel(f"cosine similarity ({title})")
        axes.set_ylabel("density")
        axes.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
