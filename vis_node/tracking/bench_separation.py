"""How well an appearance embedding tells real objects apart (realistic-bench scenes).

For every scene of :mod:`vis_node.tracking.bench_scenes` the ground-truth visible mask
of each object is embedded in every frame; cosine similarities are then collected for
three kinds of pairs: the *same* object ``lag`` frames apart, two *look-alikes* (cut-outs
of one sequence) in the same frame, and two *different* objects in the same frame. A
good re-identification embedding puts the same-object distribution well above both
others; the overlap is what the relative re-id test and the motion gate must resolve.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
) -> Separation:
    """Collect similarities over ``videos`` realistic scenes.

    Parameters
    ----------
    root:
        DAVIS-2016 root.
    videos, seed, config:
        Scenes as in :func:`vis_node.tracking.bench.run_realistic_benchmark`.
    embedder:
        Embedding to measure; default the tracker's colour fallback.
    lags:
        Frame distances of the same-object pairs.
    min_area:
        Visible parts smaller than this many pixels are skipped.
    """
    embedder = embedder or ColourHistogramEmbedder()
    same: dict[int, list[float]] = {lag: [] for lag in lags}
    lookalike: list[float] = []
    different: list[float] = []
    for index in range(videos):
        scene = make_scene(root, index, seed, config)
        vectors: dict[tuple[int, int], np.ndarray] = {}
        for t, (image, ids) in enumerate(zip(scene.frames, scene.ids)):
            objects = [k for k in (1, 2, 3) if np.count_nonzero(ids == k) >= min_area]
            if not objects:
                continue
            embedded = embedder(image, np.stack([ids == k for k in objects]))
            for k, vector in zip(objects, np.asarray(embedded, dtype=np.float64)):
                vectors[(t, k)] = vector / max(np.linalg.norm(vector), 1e-12)
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


def format_separation(separation: Separation) -> str:
    """Percentile table of the similarity distributions."""
    header = f"{'pairs':<22}{'count':>7}" + "".join(f"{f'p{p}':>7}" for p in PERCENTILES)
    rows = [(f"same object, lag {lag}", v) for lag, v in separation.same.items()]
    rows += [("look-alikes", separation.lookalike), ("different objects", separation.different)]
    lines = ["colour-embedding cosine similarity", header, "-" * len(header)]
    for name, values in rows:
        cells = (
            "".join(f"{q:>7.2f}" for q in np.percentile(values, PERCENTILES))
            if len(values)
            else ""
        )
        lines.append(f"{name:<22}{len(values):>7d}{cells}")
    return "\n".join(lines)


def plot_separation(separation: Separation, path: Path) -> None:
    """Write overlaid similarity histograms to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.linspace(-0.05, 1.0, 43)
    figure, axes = plt.subplots(figsize=(7, 4))
    for lag, values in separation.same.items():
        axes.hist(values, bins, density=True, histtype="step", label=f"same object, lag {lag}")
    axes.hist(separation.lookalike, bins, density=True, alpha=0.4, label="look-alikes")
    axes.hist(separation.different, bins, density=True, alpha=0.4, label="different objects")
    axes.set_xlabel("cosine similarity (colour embedding)")
    axes.set_ylabel("density")
    axes.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
