"""Measure the graph's cost relative to the model (the performance target of issue 10).

One run: the model alone on the bag's frames (same process, same runtime, one frame at
a time), then ``vsis replay`` of the same bag through the graph. Reported:

* ``overhead_pct``: (end-to-end median - model median) / model median, in percent:
  tracking + unification + ROS transport (image and instance messages, decoding) as
  a share of the model's own time;
* ``throughput_pct``: frames delivered per second by the graph / frames per second of
  the model alone, in percent.

Absolute times on a shared machine are noise; the ratios are what to compare.

    python scripts/measure_graph_ratios.py BAG --model real --graph processes --domain 61
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def model_alone(bag: Path, model: str, runtime: str) -> dict[str, float]:
    """Median per-frame milliseconds and frames per second of the model on ``bag``'s frames."""
    from vis_node.pipeline.backends import load_backend
    from vis_node.replay.bags import replay_frames

    backend = load_backend(model, runtime=runtime)
    frames = list(replay_frames(bag, None))
    for frame in frames[:3]:
        backend.predict(frame.image, frame.stamp_ns)
    times = []
    for frame in frames:
        start = time.perf_counter()
        backend.predict(frame.image, frame.stamp_ns)
        times.append(time.perf_counter() - start)
    return {
        "frames": len(frames),
        "median_ms": 1000.0 * statistics.median(times),
        "fps": len(times) / sum(times),
        "height": frames[0].height,
        "width": frames[0].width,
    }


def main() -> int:
    """Run the measurement; print and return the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 (vsis bag make)")
    parser.add_argument("--model", default="real", help="model of the perception node")
    parser.add_argument("--runtime", default="onnx", help="inference runtime (default onnx)")
    parser.add_argument("--graph", choices=("composed", "processes"), default="processes")
    parser.add_argument("--pace", choices=("max", "recorded"), default="max")
    parser.add_argument("--domain", type=int, required=True, help="ROS_DOMAIN_ID of the graph")
    parser.add_argument("--out", type=Path, help="replay output folder (default a temp one)")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from vis_node.ros.replay import ReplaySettings, run_replay

    alone = model_alone(args.bag, args.model, args.runtime)
    out = args.out or Path(tempfile.mkdtemp(prefix="vsis-ratios-"))
    report = run_replay(
        args.bag, out, ReplaySettings(model=args.model, graph=args.graph, pace=args.pace)
    )
    end_to_end = report["end_to_end"]["median"]
    result = {
        "model_alone": alone,
        "graph": {"kind": args.graph, "pace": args.pace, "end_to_end_median_ms": end_to_end,
                  "fps": report["throughput_fps"], "delivered": report["delivered"],
                  "stages": {k: v["median"] for k, v in report["stages"].items()}},
        "overhead_pct": 100.0 * (end_to_end - alone["median_ms"]) / alone["median_ms"],
        "throughput_pct": 100.0 * report["throughput_fps"] / alone["fps"],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
