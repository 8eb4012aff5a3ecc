"""Measure the graph's cost relative to the model (the performance target of issue 10).

One run: the model alone on the bag's frames (same process, same runtime, one frame at
a time), then ``vsis replay`` of the same bag through the graph twice, then the model
alone again; the model's figures pool both passes, so a shared machine whose load
changes during the run weighs on both sides alike (each pass is also reported).
Reported:

* ``overhead_pct``: from the replay at pace ``max`` (each frame crosses an idle graph):
  (end-to-end median - model median) / model median, in percent: tracking +
  unification + ROS transport (image and instance messages, decoding) as a share of
  the model's own time;
* ``overhead_vs_model_in_graph_pct``: the same against the model as it ran inside the
  graph (the perception node's mean ``inference`` time; means on both sides): what the
  graph adds beyond the model, once the model's own slow-down from sharing the cores
  with the other nodes is taken out;
* ``throughput_pct``: from the replay at pace ``stream`` (one frame always waiting for
  the model, as from a camera faster than the model; tracking and unification of a
  frame overlap the model on the next): frames delivered per second by the graph
  / frames per second of the model alone, in percent. The ``max`` replay's
  throughput is reported too (``serial_throughput_pct``): it is bounded by the
  overhead, since no two frames are ever in the graph at once;
* ``graph_extra_cpu_pct``: the CPU the three node processes spent per frame in the
  ``stream`` replay (each node's ``cpu_ms_per_frame`` diagnostic, every thread of its
  process), beyond the model alone's CPU per frame, in percent of the latter. On a
  machine whose cores the model already fills, the stream throughput cannot exceed
  about 100 / (100 + this) percent, whatever the scheduling. The replay's own CPU per
  frame, as camera and recorder, comes on top and is reported beside the nodes'
  (``cpu_ms_per_frame.replay_stream``).

``--threads N`` gives the model N CPU threads, alone and in the graph's perception node:
on a machine with few cores the graph's other nodes compete with the model's threads
for them, which the ratios then show as overhead.

Absolute times on a shared machine are noise; the ratios are what to compare, and
``--repeat N`` takes N such measurements and reports the median of each ratio (each
measurement is in ``runs``).

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


def model_times(backend: object, frames: list) -> tuple[list[float], float]:
    """Seconds of ``backend.predict`` on each of ``frames``, one at a time, and the CPU
    milliseconds per frame this process spent on them (every thread)."""
    times = []
    cpu_start = time.process_time()
    for frame in frames:
        start = time.perf_counter()
        backend.predict(frame.image, frame.stamp_ns)
        times.append(time.perf_counter() - start)
    return times, 1000.0 * (time.process_time() - cpu_start) / len(frames)


def model_in_graph_ms(nodes: dict[str, dict[str, float]]) -> float | None:
    """Mean milliseconds of the perception node's ``inference`` stage (the model as it ran
    in the graph, sharing the cores with the other nodes), or ``None`` if not reported."""
    for name, stages in nodes.items():
        if "perception" in name and "inference" in stages:
            return stages["inference"]
    return None


def median_or_none(values: list[float | None]) -> float | None:
    """Median of the values that were measured (``None`` if none was)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summary(times: list[float]) -> dict[str, float]:
    """Median milliseconds and frames per second of per-frame durations in seconds."""
    return {"median_ms": 1000.0 * statistics.median(times), "fps": len(times) / sum(times)}


def main() -> int:
    """Run the measurement; print and return the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="rosbag2 (vsis bag make)")
    parser.add_argument("--model", default="real", help="model of the perception node")
    parser.add_argument("--runtime", default="onnx", help="inference runtime (default onnx)")
    parser.add_argument("--graph", choices=("composed", "processes"), default="processes")
    parser.add_argument("--domain", type=int, required=True, help="ROS_DOMAIN_ID of the graph")
    parser.add_argument("--out", type=Path, help="replay output folder (default a temp one)")
    parser.add_argument("--params", type=Path, action="append", default=[],
                        help="params YAML for the graph, repeatable, applied after the "
                        "package's (e.g. one setting motion_gate: false)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU inference threads of the model, alone and in the graph's "
                        "perception node (default 0: the runtime's, one per core)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measurements (model, replay, model) to take; the ratios "
                        "reported are their medians (default 1)")
    args = parser.parse_args()
    os.environ["ROS_DOMAIN_ID"] = str(args.domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from vis_node.pipeline.backends import load_backend
    from vis_node.replay.bags import replay_frames
    from vis_node.ros.replay import ReplaySettings, run_replay
    from vis_node.ros.cli import default_params_files

    backend = load_backend(args.model, runtime=args.runtime, threads=args.threads)
    frames = list(replay_frames(args.bag, None))
    model_times(backend, frames[:3])  # warm-up
    out = args.out or Path(tempfile.mkdtemp(prefix="vsis-ratios-"))
    out.mkdir(parents=True, exist_ok=True)
    extra = list(args.params)
    if args.threads:
        threads_yaml = out / "threads.yaml"
        threads_yaml.write_text(
            f"/**/vsis_perception:\n  ros__parameters:\n    threads: {args.threads}\n"
        )
        extra.append(threads_yaml)
    params = (*default_params_files(), *extra) if extra else ()
    serial = ReplaySettings(model=args.model, graph=args.graph, pace="max", params=params)
    stream = ReplaySettings(model=args.model, graph=args.graph, pace="stream", params=params)
    runs = []
    for index in range(args.repeat):
        before, cpu_before = model_times(backend, frames)
        report = run_replay(args.bag, out / f"run{index}", serial)
        streamed = run_replay(args.bag, out / f"run{index}-stream", stream)
        after, cpu_after = model_times(backend, frames)
        model_cpu = (cpu_before + cpu_after) / 2.0
        nodes_cpu = streamed.get("nodes_cpu_ms_per_frame", {})
        alone = {**summary(before + after), "before": summary(before), "after": summary(after)}
        end_to_end = report["end_to_end"]["median"]
        in_graph = model_in_graph_ms(report["nodes"])
        runs.append({
            "model_alone": alone,
            "graph": {"end_to_end_median_ms": end_to_end, "fps": report["throughput_fps"],
                      "delivered": report["delivered"],
                      "stages": {k: v["median"] for k, v in report["stages"].items()},
                      "nodes": report["nodes"], "model_in_graph_mean_ms": in_graph},
            "stream": {"fps": streamed["throughput_fps"], "delivered": streamed["delivered"],
                       "end_to_end_median_ms": streamed["end_to_end"]["median"],
                       "max_at_first_stage": streamed["max_at_first_stage"]},
            "cpu_ms_per_frame": {"model_alone": model_cpu, "nodes_stream": nodes_cpu,
                                 "replay_stream": streamed.get("replay_cpu_ms_per_frame")},
            "graph_extra_cpu_pct": (
                100.0 * (sum(nodes_cpu.values()) - model_cpu) / model_cpu
                if len(nodes_cpu) == 3 else None
            ),
            "overhead_pct": 100.0 * (end_to_end - alone["median_ms"]) / alone["median_ms"],
            "overhead_vs_model_in_graph_pct": (
                100.0 * (report["end_to_end"]["mean"] - in_graph) / in_graph if in_graph else None
            ),
            "throughput_pct": 100.0 * streamed["throughput_fps"] / alone["fps"],
            "serial_throughput_pct": 100.0 * report["throughput_fps"] / alone["fps"],
        })
    result = {
        "frames": len(frames),
        "size": [frames[0].width, frames[0].height],
        "graph": args.graph,
        "threads": args.threads,
        "overhead_pct": statistics.median(r["overhead_pct"] for r in runs),
        "overhead_vs_model_in_graph_pct": median_or_none(
            [r["overhead_vs_model_in_graph_pct"] for r in runs]
        ),
        "throughput_pct": statistics.median(r["throughput_pct"] for r in runs),
        "serial_throughput_pct": statistics.median(r["serial_throughput_pct"] for r in runs),
        "graph_extra_cpu_pct": median_or_none([r["graph_extra_cpu_pct"] for r in runs]),
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
