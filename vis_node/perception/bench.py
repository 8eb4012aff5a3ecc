"""Model benchmark (latency, params, FLOPs) and runtime-accuracy comparison.

``vsis bench-model`` measures S4Net with each backbone and runtime on one 320 x 320
frame and, in the same run, torchvision's Mask R-CNN R50-FPN (random weights, no
download, resized to the same input size) as the reference for the ratios.
:func:`vis_node.perception.compare.compare_predictions` scores one runtime's instances
against another's (ONNX Runtime or TensorRT against eager FP32).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vis_node.perception.config import ModelConfig
from vis_node.perception.predictor import Predictor
from vis_node.registry import BACKBONES

LEAN_CONFIG: dict[str, Any] = {
    "fpn_channels": 64,
    "head_channels": 96,
    "anchor_sizes": (24.0, 48.0, 96.0, 192.0),
    "num_proposals": 10,
    "seg_in_channels": 64,
    "seg_channels": 64,
    "seg_dilated_channels": 64,
    "seg_crop_size": 16,
    "class_hidden_dim": 128,
    "embedding_dim": 64,
    "pre_nms_top_k": 1000,
}
"""Overrides of the lean deployment config (as ``models/*/train.yaml``; the
defaults are the paper's widths and 20 proposals)."""

CONFIGS = ("lean", "default")
RUNTIMES = ("torch", "onnx")


@dataclass(frozen=True)
class LatencyStats:
    """Per-call latency of a benchmarked function.

    Attributes
    ----------
    median_ms, p90_ms:
        Median and 90th percentile of the wall-clock time in milliseconds.
    throughput:
        Calls per second (1000 / mean wall-clock latency).
    cpu_ms:
        Median CPU time of the process per call in milliseconds (all threads); on a
        machine shared with other jobs it varies less than the wall-clock time.
    """

    median_ms: float
    p90_ms: float
    throughput: float
    cpu_ms: float


@dataclass(frozen=True)
class BenchRow:
    """One line of the benchmark table.

    Attributes
    ----------
    model:
        ``"s4net-mobilenet_v2"``, ``"s4net-resnet50"`` or ``"maskrcnn-r50-fpn"``.
    runtime:
        ``"torch"`` or ``"onnx"``.
    params:
        Parameter count.
    flops:
        FLOPs of one forward pass (``FlopCounterMode``: convolutions and matrix
        products; RoIAlign and NMS are not counted).
    latency:
        Per-frame latency, pre- and post-processing included.
    """

    model: str
    runtime: str
    params: int
    flops: int
    latency: LatencyStats


def measure_latency(fn: Callable[[], object], *, warmup: int, iterations: int) -> LatencyStats:
    """Time ``iterations`` calls of ``fn`` after ``warmup`` untimed ones.

    Parameters
    ----------
    fn:
        The call to time.
    warmup:
        Untimed calls first (>= 0).
    iterations:
        Timed calls (>= 1).
    """
    if iterations < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}")
    for _ in range(warmup):
        fn()
    times, cpu_times = [], []
    for _ in range(iterations):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
        cpu_times.append((time.process_time() - cpu_start) * 1000.0)
    return LatencyStats(
        float(np.median(times)),
        float(np.percentile(times, 90)),
        1000.0 / float(np.mean(times)),
        float(np.median(cpu_times)),
    )


def count_flops(module: nn.Module, *args: Any) -> int:
    """FLOPs of ``module(*args)`` counted by :class:`FlopCounterMode` (no grad)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*args)
    return int(counter.get_total_flops())


def bench_config(backbone: str, config: str, input_size: int) -> ModelConfig:
    """Model config of a benchmark row (random weights; every proposal segmented).

    ``score_threshold`` is 0, so the worst case of ``num_proposals`` proposals goes
    through the segmentation branch on every frame (and ``pre_nms_top_k`` boxes
    through NMS). The crop size is capped at ``input_size / 8``.
    """
    if config not in CONFIGS:
        raise ValueError(f"config={config!r}: choose one of {CONFIGS}")
    overrides = dict(LEAN_CONFIG) if config == "lean" else {}
    crop = overrides.get("seg_crop_size", ModelConfig.seg_crop_size)
    overrides["seg_crop_size"] = min(crop, input_size // 8)
    return ModelConfig(
        backbone=backbone,
        pretrained_backbone=False,
        input_size=input_size,
        score_threshold=0.0,
        **overrides,
    )


def run_benchmark(
    *,
    backbones: Sequence[str] = BACKBONES.names(),
    runtimes: Sequence[str] = RUNTIMES,
    config: str = "lean",
    input_size: int = 320,
    warmup: int = 3,
    iterations: int = 20,
    maskrcnn: bool = True,
    frame: np.ndarray | None = None,
    device: str = "cpu",
) -> list[BenchRow]:
    """Benchmark S4Net (each backbone x runtime) and Mask R-CNN R50-FPN.

    Parameters
    ----------
    backbones, runtimes:
        What to measure.
    config:
        ``"lean"`` (:data:`LEAN_CONFIG`) or ``"default"`` (paper widths).
    input_size:
        Network input side in pixels (the frame is resized to it).
    warmup, iterations:
        Untimed and timed calls per row.
    maskrcnn:
        Add the Mask R-CNN reference row (eager PyTorch).
    frame:
        ``uint8[H, W, 3]`` RGB test frame; default a synthetic video frame.
    device:
        ``cpu``, ``cuda`` or ``cuda:N`` for every row (ONNX Runtime's CUDA provider for
        ``onnx``); an unusable GPU falls back to the CPU with a warning.

    Returns
    -------
    list of BenchRow
    """
    import onnxruntime as ort

    from vis_node.perception.export_onnx import export_onnx
    from vis_node.perception.model import build_model
    from vis_node.perception.onnx_runtime import OnnxPredictor
    from vis_node.perception.predictor import TorchPredictor
    from vis_node.perception.runtime import onnx_providers, runtime_device

    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        raise ValueError(f"unknown runtimes {sorted(unknown)}; choose from {RUNTIMES}")
    device = runtime_device("torch", device)
    providers = onnx_providers(device, ort.get_available_providers())
    if frame is None:
        from vis_node.synth import SynthConfig, generate_video

        synth = SynthConfig(width=input_size, height=input_size, frames=1)
        frame = generate_video(0, synth).frames[0]
    rows = []
    for backbone in backbones:
        torch.manual_seed(0)
        model = build_model(bench_config(backbone, config, input_size)).eval()
        params = sum(p.numel() for p in model.parameters())
        flops = count_flops(model, torch.rand(1, 3, input_size, input_size))
        name = f"s4net-{backbone}"
        for runtime in runtimes:
            if runtime == "torch":
                predictor: Predictor = TorchPredictor(model, device=device)
                stats = measure_latency(
                    lambda run=predictor: run(frame), warmup=warmup, iterations=iterations
                )
            else:
                with tempfile.TemporaryDirectory(prefix="vsis-bench-") as folder:
                    onnx_predictor = OnnxPredictor(
                        export_onnx(model, folder, batch_size=1), providers=providers
                    )
                    stats = measure_latency(
                        lambda run=onnx_predictor: run(frame),
                        warmup=warmup,
                        iterations=iterations,
                    )
            rows.append(BenchRow(name, runtime, params, flops, stats))
    if maskrcnn:
        rows.append(_maskrcnn_row(frame, input_size, warmup, iterations, device))
    return rows


def shipped_model_rows(
    model: str,
    frame: np.ndarray,
    *,
    runtimes: Sequence[str] = RUNTIMES,
    warmup: int = 3,
    iterations: int = 20,
    device: str = "cpu",
) -> list[BenchRow]:
    """Latency of a shipped model end to end (frame in, instances at frame size out).

    Parameters
    ----------
    model:
        Shipped model name or ``model.pt`` path.
    frame:
        ``uint8[H, W, 3]`` RGB frame at the camera's resolution (e.g. 854 x 480).
    runtimes, warmup, iterations, device:
        As :func:`run_benchmark`.

    Returns
    -------
    list of BenchRow
        One per runtime; FLOPs are those of the eager model on this frame (detector and
        the heads on the boxes it finds).
    """
    from vis_node.perception.runtime import make_predictor

    eager = make_predictor(model, "torch", device=device)
    network = getattr(eager, "model", None)
    params = sum(p.numel() for p in network.parameters()) if network is not None else 0
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        eager(frame)
    rows = []
    for runtime in runtimes:
        predictor = eager if runtime == "torch" else make_predictor(model, runtime, device=device)
        stats = measure_latency(lambda run=predictor: run(frame), warmup=warmup,
                                iterations=iterations)
        rows.append(BenchRow(f"{model} {frame.shape[1]}x{frame.shape[0]}", runtime, params,
                             int(counter.get_total_flops()), stats))
    return rows


def _maskrcnn_row(
    frame: np.ndarray, input_size: int, warmup: int, iterations: int, device: str = "cpu"
) -> BenchRow:
    """Mask R-CNN R50-FPN with random weights, its transform resizing to ``input_size``,
    on ``device`` (resolved: ``cpu`` or ``cuda:N``)."""
    import cv2
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=input_size, max_size=input_size
    ).eval()
    params = sum(p.numel() for p in model.parameters())
    resized = cv2.resize(frame, (input_size, input_size), interpolation=cv2.INTER_LINEAR)
    image = torch.from_numpy(resized).permute(2, 0, 1).float() / 255.0
    flops = count_flops(model, [image])
    model, image = model.to(device), image.to(device)

    def call() -> object:
        with torch.inference_mode():
            outputs = model([image])
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        return outputs

    return BenchRow(
        "maskrcnn-r50-fpn",
        "torch",
        params,
        flops,
        measure_latency(call, warmup=warmup, iterations=iterations),
    )


def format_table(rows: Sequence[BenchRow]) -> str:
    """Plain-text table; ``speed-up`` (median wall-clock) and ``FLOPs ratio`` are
    relative to Mask R-CNN.

    Without a Mask R-CNN row the ratio columns read ``-``.
    """
    reference = next((r for r in rows if r.model == "maskrcnn-r50-fpn"), None)
    header = (
        f"{'model':<22}{'runtime':<9}{'params(M)':>10}{'GFLOPs':>9}{'median ms':>11}"
        f"{'p90 ms':>9}{'frames/s':>10}{'CPU ms':>9}{'speed-up':>10}{'FLOPs ratio':>13}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        if reference is None:
            speed, ratio = "-", "-"
        else:
            speed = f"{reference.latency.median_ms / row.latency.median_ms:.2f}x"
            ratio = f"{row.flops / reference.flops:.3f}"
        lines.append(
            f"{row.model:<22}{row.runtime:<9}{row.params / 1e6:>10.2f}{row.flops / 1e9:>9.2f}"
            f"{row.latency.median_ms:>11.1f}{row.latency.p90_ms:>9.1f}"
            f"{row.latency.throughput:>10.1f}{row.latency.cpu_ms:>9.1f}{speed:>10}{ratio:>13}"
        )
    return "\n".join(lines)
