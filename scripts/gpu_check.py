"""One-shot GPU check of VSIS: runtimes, parity with the CPU, DDP training.

Run on a machine with an NVIDIA GPU (and, for the TensorRT rows, onnxruntime-gpu with
the TensorRT provider; see docs/GPU.md), from the repository root::

    . scripts/env.sh && python scripts/gpu_check.py --out gpu_check.json

It measures, on synthetic 320x240 frames with the shipped model ``synth``, or with
``--images DIR --model real`` on the frames of an image folder (DAVIS-2016's 854x480
JPEGs, say; a GPU machine without ``../shared`` gets a few copied along):

* ms per frame (median of ``--iterations`` frames, pre/post-processing included) of
  eager PyTorch on the GPU, ONNX Runtime's CUDA provider, and ONNX Runtime's TensorRT
  provider in FP16 and INT8 (calibrated on ``calibration/synth``), and each one's
  speed ratio against eager PyTorch on the same GPU (and ONNX Runtime on the
  machine's CPU, the parity reference, timed the same way);
* each GPU runtime's agreement with the CPU outputs (ONNX Runtime on the CPU):
  matched instances, mask IoU, score and box differences
  (:func:`vis_node.perception.compare.compare_predictions`);
* a data-parallel training step: two processes under ``torchrun`` (NCCL on two GPUs
  when there are two, else Gloo on the CPU: the DDP equivalence test), plus a few
  single-GPU training steps with mixed precision.

Every section records its error instead of stopping the run; the JSON is written
after each section, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _section(results: dict[str, Any], out: Path, name: str, run: Callable[[], Any]) -> None:
    """Run one check, store its result (or error) under ``name``, rewrite the JSON."""
    started = time.monotonic()
    try:
        results[name] = run()
    except Exception as exc:  # a check script reports every failure and goes on
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    results.setdefault("seconds", {})[name] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"[{name}] {json.dumps(results[name], default=str)[:400]}", flush=True)


def environment() -> dict[str, Any]:
    """Versions, GPU and ONNX Runtime providers."""
    import onnxruntime as ort
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def synth_frames(count: int) -> list:
    """``count`` frames of a held-out synthetic video (seed 4242), 320 x 240."""
    from vis_node.synth import SynthConfig, generate_video

    return list(generate_video(4242, SynthConfig(width=320, height=240, frames=count)).frames)


def folder_frames(folder: Path, count: int) -> list:
    """The first ``count`` frames (``uint8[H, W, 3]`` RGB) of an image folder."""
    from vis_node.io.readers import list_images, read_image

    return [read_image(path) for path in list_images(folder)[:count]]


def _providers(predictor: object) -> list[str] | None:
    """The ONNX Runtime providers a predictor's sessions run on (``None``: not ONNX)."""
    sessions = [getattr(predictor, "_dense_session", None),
                *getattr(predictor, "_sessions", {}).values()]
    providers = [p for s in sessions if s is not None for p in s.get_providers()]
    return sorted(set(providers)) or None


def runtimes(model: str, frames: list, iterations: int, cache: Path) -> dict[str, Any]:
    """Latency of every GPU runtime, ratio to eager PyTorch, parity with the CPU."""
    import onnxruntime as ort

    from vis_node.perception.bench import measure_latency
    from vis_node.perception.compare import compare_predictions
    from vis_node.perception.checkpoint import load_model, model_name, resolve_model
    from vis_node.perception.runtime import cached_onnx_export, make_predictor
    from vis_node.perception.tensorrt import CalibrationBatches, TensorRTPredictor, engine_slot

    os.environ["VSIS_CACHE_DIR"] = str(cache)
    reference = make_predictor(model, "onnx", device="cpu")
    predictors = {
        "onnx_cpu": lambda: reference,
        "torch_cuda": lambda: make_predictor(model, "torch", device="cuda"),
        "onnx_cuda": lambda: make_predictor(model, "onnx", device="cuda"),
    }
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        predictors["tensorrt_fp16"] = lambda: make_predictor(
            model, "tensorrt", device="cuda", precision="fp16"
        )

        def int8() -> TensorRTPredictor:
            from vis_node.io.sources import open_source

            export = cached_onnx_export(load_model(model)[0])
            name = model_name(resolve_model(model))
            folder, key = engine_slot(export, cache / "engines", name, "int8", 0)
            images = (f.image for f in open_source(ROOT / "calibration" / "synth"))
            batches = CalibrationBatches(images, export.config.input_size, 1, 64)
            return TensorRTPredictor(export, folder, key, calibration=batches)

        predictors["tensorrt_int8"] = int8
    rows: dict[str, Any] = {}
    for name, build in predictors.items():
        started = time.monotonic()
        try:
            predictor = build()
            load_s = time.monotonic() - started
            stats = measure_latency(
                lambda p=predictor: p(frames[0]), warmup=10, iterations=iterations
            )
            rows[name] = {
                "runtime_class": type(predictor).__name__,
                "providers": _providers(predictor),
                "load_s": round(load_s, 1),
                "median_ms": round(stats.median_ms, 3),
                "p90_ms": round(stats.p90_ms, 3),
                # the reference row is the CPU itself: nothing to compare
                "vs_cpu": None if predictor is reference
                else compare_predictions(reference, predictor, frames),
            }
        except Exception as exc:
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
    eager = rows.get("torch_cuda", {}).get("median_ms")
    for row in rows.values():
        if eager and "median_ms" in row:
            row["speedup_vs_torch_cuda"] = round(eager / row["median_ms"], 2)
    return rows


def ddp_equivalence() -> dict[str, Any]:
    """The two-process DDP test (torchrun, Gloo) against one process, on this machine."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "tests/test_training_distributed.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    return {"returncode": done.returncode, "tail": done.stdout[-1500:] + done.stderr[-1500:]}


def _tiny_config(out: Path, steps: int) -> Path:
    """A small training config (synthetic data) in ``out``."""
    import yaml

    config = {
        "model": {"pretrained_backbone": False, "input_size": 320},
        "data": [{"kind": "synth", "videos": 8, "seed": 1, "frames": 4}],
        "steps": steps,
        "batch_size": 8,
        "num_workers": 2,
        "checkpoint_interval": steps,
        "output_dir": str(out / "run"),
    }
    path = out / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def training(work: Path) -> dict[str, Any]:
    """Training steps on the GPU: one process (mixed precision) and, with two GPUs,
    two NCCL processes under torchrun; loss and seconds per step from history.json."""
    import torch

    results: dict[str, Any] = {}
    runs = {"one_gpu": [sys.executable, "-m", "vis_node.cli"]}
    if torch.cuda.device_count() >= 2:
        runs["two_gpus_nccl"] = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 "--nproc_per_node", "2", "-m", "vis_node.cli"]
    for name, launch in runs.items():
        folder = work / name
        folder.mkdir(parents=True)
        config = _tiny_config(folder, steps=20)
        started = time.monotonic()
        done = subprocess.run(
            [*launch, "train", str(config), "--device", "cuda"],
            cwd=ROOT, capture_output=True, text=True, timeout=400,
        )
        entry: dict[str, Any] = {"returncode": done.returncode,
                                 "wall_s": round(time.monotonic() - started, 1)}
        history = folder / "run" / "history.json"
        if history.is_file():
            steps = json.loads(history.read_text())["steps"]
            entry["first_loss"], entry["last_loss"] = steps[0]["loss"], steps[-1]["loss"]
            checkpoint = torch.load(folder / "run" / "checkpoint.pt", weights_only=False)
            entry["train_seconds"] = round(checkpoint["state"]["wall_seconds"], 2)
            entry["s_per_step"] = round(entry["train_seconds"] / len(steps), 3)
        else:
            entry["tail"] = done.stderr[-2000:]
        results[name] = entry
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--model", default="synth", help="shipped model (default synth)")
    parser.add_argument("--iterations", type=int, default=100, help="timed frames per runtime")
    parser.add_argument("--frames", type=int, default=16, help="frames of the parity check")
    parser.add_argument("--images", type=Path, default=None,
                        help="image folder whose frames are timed and compared "
                             "(default: a synthetic 320x240 video)")
    parser.add_argument("--skip-training", action="store_true",
                        help="only the environment and the runtimes")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"model": args.model}
    work = Path(tempfile.mkdtemp(prefix="vsis-gpu-check-"))
    _section(results, args.out, "environment", environment)
    if args.images is None:
        frames = synth_frames(args.frames)
    else:
        frames = folder_frames(args.images, args.frames)
        results["images"] = {"folder": str(args.images), "size": list(frames[0].shape[:2])}
    _section(results, args.out, "runtimes",
             lambda: runtimes(args.model, frames, args.iterations, work / "cache"))
    if not args.skip_training:
        _section(results, args.out, "ddp_two_process_gloo", ddp_equivalence)
        _section(results, args.out, "training_gpu", lambda: training(work / "train"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
