"""``vsis track`` (track per-frame detections) and ``vsis bench-track`` (benchmark).

``vsis track --frames FRAMES --detections DETS --out OUT`` reads ``DETS/<seq>/<frame>.png``
instance maps whose ids mean nothing across frames (plus optional
``DETS/<seq>/<frame>.json`` with ``{"<id>": {"class_scores": [...], "score": s}}``),
tracks them over the frames of FRAMES (an image folder, video or DAVIS-style root) and
writes ``OUT/<seq>/<frame>.png`` with consistent track ids; a frame without a
detection PNG counts as a frame with no detections. When the detections carry
class scores, ``OUT/<seq>/<frame>.json`` gets, per track id, the class scores, the
score and the online-unified ``label`` with its ``label_confidence``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from vis_node.structures.frames import Frame
    from vis_node.tracking.tracker import OnlineTracker
    from vis_node.structures.instances import Instances
    from vis_node.tracking.unification import OnlineUnifier

LOG = logging.getLogger(__name__)

UNIFIER_FLAGS_EXCLUDED = ("max_idle",)
"""Unifier settings that are not ``vsis track`` flags (``max_idle`` is the tracker's
``max_lost_age``)."""

DEFAULT_DAVIS_ROOT = Path("../shared/data/davis2016")
"""Where the realistic bench looks for DAVIS-2016 (``shared/`` beside the clone)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track`` and ``bench-track`` sub-commands to the ``vsis`` parser."""
    from vis_node.registry import FLOWS
    from vis_node.settings import add_flags
    from vis_node.tracking.tracker_config import TrackerConfig
    from vis_node.tracking.unification import UnifierConfig

    parser = subparsers.add_parser(
        "track",
        help="give per-frame instance PNGs consistent track ids",
        description=(
            "Track DETS/<seq>/<frame>.png instance maps (ids arbitrary per frame; optional "
            "<frame>.json with class scores) over the frames of FRAMES and write "
            "OUT/<seq>/<frame>.png with consistent track ids."
        ),
    )
    parser.add_argument(
        "--frames", type=Path, required=True, help="image folder, video or DAVIS root"
    )
    parser.add_argument(
        "--detections", type=Path, required=True, help="DETS/<seq>/<frame>.png folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--flow",
        choices=FLOWS.names(),
        default=FLOWS.default,
        help=f"optical flow for identity propagation (default {FLOWS.default}); {FLOWS.help()}",
    )
    parser.add_argument(
        "--no-reid", action="store_true", help="disable the re-identification memory"
    )
    add_flags(parser.add_argument_group("tracker"), TrackerConfig)
    add_flags(
        parser.add_argument_group("label unification (with class scores; max_idle follows "
                                  "--max-lost-age)"),
        UnifierConfig, exclude=UNIFIER_FLAGS_EXCLUDED,
    )
    parser.set_defaults(func=run_track)

    add_bench_track_parser(subparsers, "bench-track")


def add_bench_track_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    """Add the tracking benchmark as sub-command ``name`` (``vsis bench track``,
    ``vsis bench-track``)."""
    bench = subparsers.add_parser(
        name,
        help="benchmark tracking (HOTA, IDF1, ID switches, id-0 share, ms/frame)",
        description=(
            "Realistic (default): real DAVIS-2016 cut-outs over inpainted real backgrounds, "
            "look-alikes, dropped, jittered, merged and false detections, an object "
            "vanishing mid-view, ids shuffled, no class cues; compares no tracking, an IoU "
            "tracker, the issue-4 tracker and the tracker. --synthetic: the synthetic "
            "videos with whole frames dropped."
        ),
    )
    bench.add_argument(
        "--synthetic", action="store_true", help="run the synthetic bench instead"
    )
    bench.add_argument(
        "--davis-root",
        type=Path,
        default=DEFAULT_DAVIS_ROOT,
        help=f"DAVIS-2016 root of the realistic bench (default {DEFAULT_DAVIS_ROOT})",
    )
    bench.add_argument(
        "--large",
        action="store_true",
        help="realistic bench at full size: 8 scenes of 80 frames at 854x480 "
        "(default: 3 scenes of 60 frames at 427x240)",
    )
    bench.add_argument(
        "--separation-png",
        type=Path,
        help="realistic bench: also measure how the colour embedding separates objects "
        "and write the histogram here",
    )
    bench.add_argument("--videos", type=int, help="number of videos (default 3; synthetic 5)")
    bench.add_argument("--seed", type=int, default=0, help="first video seed (default 0)")
    bench.add_argument(
        "--frames", type=int, default=40, help="synthetic: frames per video (default 40)"
    )
    bench.add_argument(
        "--drop-rate",
        type=float,
        default=0.1,
        help="synthetic: chance a frame has no detections (0.1)",
    )
    bench.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Execute ``vsis bench track``: print the results table; returns the exit code."""
    from vis_node.tracking.bench import format_table, run_benchmark, run_realistic_benchmark
    from vis_node.tracking.bench_scenes import SceneConfig, davis_root_or_none

    try:
        if args.synthetic:
            rows = run_benchmark(
                videos=args.videos or 5,
                seed=args.seed,
                drop_rate=args.drop_rate,
                frames=args.frames,
            )
        else:
            if davis_root_or_none(args.davis_root) is None:
                print(
                    f"vsis bench track: skipped the realistic bench: no DAVIS-2016 under "
                    f"{args.davis_root} (pass --davis-root, or --synthetic)",
                    file=sys.stderr,
                )
                return 0
            config = SceneConfig(frames=80, width=854) if args.large else SceneConfig()
            videos = args.videos or (8 if args.large else 3)
            rows = run_realistic_benchmark(args.davis_root, videos, args.seed, config)
            if args.separation_png is not None:
                from vis_node.tracking.bench_separation import (
                    format_separation,
                    measure_separation,
                    plot_separation,
                )

                separation = measure_separation(args.davis_root, videos, args.seed, config)
                print(format_separation(separation))
                plot_separation({"colour embedding": separation}, args.separation_png)
                print(f"wrote {args.separation_png}")
    except ValueError as exc:
        print(f"vsis bench track: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    return 0


def run_track(args: argparse.Namespace) -> int:
    """Execute ``vsis track``; returns the exit code."""
    from tqdm import tqdm

    from vis_node.io.labels import read_label_folder
    from vis_node.settings import from_values
    from vis_node.tracking.unification import OnlineUnifier, UnifierConfig

    try:
        tracker = _build_tracker(args)
        unifier = OnlineUnifier(
            from_values(UnifierConfig, args, exclude=UNIFIER_FLAGS_EXCLUDED),
            max_idle=tracker.config.max_lost_age,
        )
    except ValueError as exc:
        print(f"vsis track: error: {exc}", file=sys.stderr)
        return 2
    index = read_label_folder(args.detections)
    written = 0
    for sequence, frames in _sequences(args.frames, sorted(index)):
        tracker.reset()
        unifier.reset()
        by_name = dict(index[sequence])
        seen: set[str] = set()
        for frame in tqdm(frames, desc=sequence, unit="frame"):
            instances, scores_given = _read_detections(by_name.get(frame.name), frame)
            tracked = tracker.update(instances, frame.image)
            _write_frame(args.out / sequence, frame.name, tracked, scores_given, unifier)
            seen.add(frame.name)
            written += 1
        missing = set(by_name) - seen
        if missing:
            LOG.warning(
                "%s: %d detection PNGs have no frame of that name in %s (e.g. %s)",
                sequence,
                len(missing),
                args.frames,
                sorted(missing)[0],
            )
    print(f"wrote {written} tracked frames to {args.out}")
    return 0


def _build_tracker(args: argparse.Namespace) -> OnlineTracker:
    """The tracker configured by the command-line flags (their defaults: TrackerConfig's)."""
    from vis_node.registry import FLOWS
    from vis_node.settings import from_values
    from vis_node.tracking.tracker import DEFAULT, OnlineTracker
    from vis_node.tracking.tracker_config import TrackerConfig

    return OnlineTracker(
        from_values(TrackerConfig, args),
        flow=FLOWS.build(args.flow),
        association=None if args.no_reid else DEFAULT,
    )


def _sequences(
    frames_path: Path, det_sequences: list[str]
) -> Iterator[tuple[str, Iterator[Frame]]]:
    """Pair each detection sequence with its frames.

    A DAVIS root is read sequence by sequence; any other source (image folder, video)
    is one sequence, matched by name or, when DETS holds a single sequence, to it.
    """
    from vis_node.structures.errors import InputDataError
    from vis_node.io.readers import DavisRoot
    from vis_node.io.sources import SourceKind, detect_source, open_source

    if detect_source(frames_path) is SourceKind.DAVIS_ROOT:
        root = DavisRoot(frames_path)
        unknown = [s for s in det_sequences if s not in root.sequences]
        if unknown:
            raise InputDataError(
                frames_path, f"no frames for detection sequence(s) {', '.join(unknown)}"
            )
        for sequence in det_sequences:
            yield sequence, root.frames(sequence)
        return
    frames = open_source(frames_path)
    first = next(frames, None)
    if first is None:
        raise InputDataError(frames_path, "no frames in this input")
    if first.sequence in det_sequences:
        sequence = first.sequence
    elif len(det_sequences) == 1:
        sequence = det_sequences[0]
    else:
        raise InputDataError(
            frames_path,
            f"sequence {first.sequence!r} is not among the detection sequences "
            f"({', '.join(det_sequences)}); pass a DAVIS root or a DETS folder with one sequence",
        )
    yield sequence, _chain_first(first, frames)


def _chain_first(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    yield from rest


def _read_detections(path: Path | None, frame: Frame) -> tuple[Instances, bool]:
    """Instances of one detection PNG (+ JSON); empty when the frame has no PNG.

    Returns the instances and whether class scores came from a JSON file.
    """
    import json

    import numpy as np

    from vis_node.structures.errors import InputDataError
    from vis_node.io.labels import read_label_png
    from vis_node.structures.instances import Instances

    if path is None:
        return Instances.empty(frame.height, frame.width), False
    ids, _ = read_label_png(path)
    if ids.shape != (frame.height, frame.width):
        raise InputDataError(
            path,
            f"size {ids.shape[1]}x{ids.shape[0]} differs from frame {frame.width}x{frame.height}",
        )
    values = [int(v) for v in np.unique(ids) if v != 0]
    masks = np.stack([ids == v for v in values]) if values else np.zeros((0, *ids.shape), bool)
    json_path = path.with_suffix(".json")
    if not json_path.is_file():
        return Instances.from_masks(masks), False
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(json_path, f"not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InputDataError(json_path, 'expected {"<id>": {"class_scores": [...], "score": s}}')
    parsed = [_parse_entry(json_path, value, meta.get(str(value))) for value in values]
    if not parsed:
        return Instances.empty(frame.height, frame.width), False
    if len({len(probs) for probs, _ in parsed}) > 1:
        raise InputDataError(json_path, "all 'class_scores' lists must have the same length")
    return Instances.from_masks(
        masks,
        class_probs=np.array([probs for probs, _ in parsed], np.float32),
        scores=np.array([score for _, score in parsed], np.float32),
    ), True


def _parse_entry(json_path: Path, value: int, entry: object) -> tuple[list[float], float]:
    """``(class_scores, score)`` of one instance's JSON entry.

    ``class_scores[c]`` is the score of class id ``c``; without it the instance has one
    class. Without ``score`` the detection score is the largest class score.
    """
    from vis_node.structures.errors import InputDataError

    if not isinstance(entry, dict):
        raise InputDataError(json_path, f"no entry for instance id {value}")
    raw_probs = entry.get("class_scores")
    raw_score = entry.get("score")
    if raw_probs is None and raw_score is None:
        raise InputDataError(json_path, f"id {value}: give 'class_scores' and/or 'score'")
    try:
        probs = [1.0] if raw_probs is None else [float(p) for p in raw_probs]
        score = max(probs) if raw_score is None else float(raw_score)
    except (TypeError, ValueError):
        raise InputDataError(
            json_path,
            f"id {value}: 'class_scores' must be a non-empty list of numbers and 'score' a number",
        ) from None
    if not 0.0 < score <= 1.0:
        raise InputDataError(json_path, f"id {value}: score {score} is not in (0, 1]")
    return probs, score


def _write_frame(
    folder: Path, name: str, tracked: Instances, scores_given: bool, unifier: OnlineUnifier
) -> None:
    """Write ``<folder>/<name>.png`` (track ids) and, with class scores, ``<name>.json``."""
    import json

    from vis_node.io.labels import write_instance_png

    write_instance_png(folder / f"{name}.png", tracked.id_map())
    if not scores_given:
        return
    labels, confidence = unifier.update(tracked.track_ids, tracked.class_probs)
    meta = {
        str(int(track_id)): {
            "class_scores": [float(p) for p in probs],
            "score": float(score),
            "label": int(label),
            "label_confidence": float(conf),
            "predicted": bool(predicted),
        }
        for track_id, probs, score, label, conf, predicted in zip(
            tracked.track_ids,
            tracked.class_probs,
            tracked.scores,
            labels,
            confidence,
            tracked.predicted,
        )
        if track_id > 0
    }
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=1))
