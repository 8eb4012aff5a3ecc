"""GPU runtime on ONNX Runtime's TensorRT / CUDA providers: provider selection, engine
cache, INT8 calibration table, CPU fallback.

The orchestration tests run on any machine: ``onnxruntime.InferenceSession`` is
replaced by :class:`RecordingSession`, which records the providers and options VSIS
requests, writes an "engine" file where TensorRT would, and runs the graph on the CPU
provider. The parity tests at the end need an NVIDIA GPU with onnxruntime-gpu and skip
elsewhere.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from vis_node.cli import main
from vis_node.perception.compare import compare_predictions
from vis_node.perception.checkpoint import save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.engine_cache import CALIBRATION_TABLE, MANIFEST
from vis_node.perception.model import build_model
from vis_node.perception.onnx_runtime import OnnxPredictor
from vis_node.perception.predictor import TorchPredictor, preprocess
from vis_node.perception.runtime import cached_onnx_export, make_predictor
from vis_node.perception.tensorrt import (
    CalibrationBatches,
    EngineCacheError,
    TensorRTPredictor,
    instance_profile,
    tensorrt_options,
)

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
REAL_SESSION = ort.InferenceSession
HAS_GPU_RUNTIME = torch.cuda.is_available() and TRT in ort.get_available_providers()
NEEDS_GPU = pytest.mark.skipif(
    not HAS_GPU_RUNTIME,
    reason="needs a CUDA GPU and onnxruntime-gpu with the TensorRT provider "
    "(pip install 'vis_node[tensorrt]'); scripts/gpu_check.py runs these on a GPU machine",
)


class RecordingSession:
    """Stands in for ``onnxruntime.InferenceSession`` on a machine without a GPU."""

    calls: list[tuple[str, list]] = []

    def __init__(self, path: str, sess_options: object = None, providers: list | None = None):
        providers = list(providers or [])
        RecordingSession.calls.append((Path(path).name, providers))
        for provider in providers:
            if isinstance(provider, tuple) and provider[0] == TRT:
                engine = Path(provider[1]["trt_engine_cache_path"]) / "TRTKernel_graph_sm90.engine"
                if not engine.exists():
                    engine.write_bytes(f"engine of {Path(path).name}".encode())
        self._session = REAL_SESSION(path, sess_options, providers=[CPU])

    def __getattr__(self, name: str) -> object:
        return getattr(self._session, name)


@pytest.fixture()
def gpu_machine(tmp_path, monkeypatch):
    """Pretend two CUDA GPUs and an ONNX Runtime with the TensorRT provider."""
    from vis_node.perception import tensorrt

    RecordingSession.calls = []
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(ort, "InferenceSession", RecordingSession)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CUDA, CPU])
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(tensorrt, "gpu_identity", lambda index: ("NVIDIA H200", "9.0"))
    monkeypatch.setattr(tensorrt, "tensorrt_version", lambda: "10.9.0")
    return tmp_path / "cache" / "engines"


def _checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            input_size=64, fpn_channels=16, head_channels=16, seg_in_channels=16,
            seg_channels=16, seg_dilated_channels=8, seg_crop_size=8, class_hidden_dim=16,
            embedding_dim=8, pretrained_backbone=False, score_threshold=0.0,
            mask_threshold=0.0, num_proposals=4,
        )
    )
    return save_model(model, tmp_path / "tiny" / "model.pt")


def _frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        cv2.imwrite(str(folder / f"{k:05d}.png"), rng.integers(0, 256, (48, 64, 3), np.uint8))
    return folder


def test_tensorrt_options_per_precision(tmp_path):
    assert tensorrt_options(1, tmp_path, "fp16") == {
        "device_id": 1,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(tmp_path),
        "trt_fp16_enable": True,
        "trt_int8_enable": False,
    }
    assert tensorrt_options(0, tmp_path, "fp32")["trt_fp16_enable"] is False
    int8 = tensorrt_options(0, tmp_path, "int8", int8_table=True)
    assert int8["trt_int8_enable"] is True and int8["trt_fp16_enable"] is True
    assert int8["trt_int8_calibration_table_name"] == CALIBRATION_TABLE
    assert int8["trt_int8_use_native_calibration_table"] is False


def test_instance_profile_spans_one_to_all_proposals(tmp_path, monkeypatch):
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    from vis_node.perception.checkpoint import load_model

    export = cached_onnx_export(load_model(_checkpoint(tmp_path))[0])
    assert instance_profile(export, 1) == {
        "trt_profile_min_shapes": "seg_features:1x16x8x8,boxes:1x4,image_index:1",
        "trt_profile_opt_shapes": "seg_features:1x16x8x8,boxes:4x4,image_index:4",
        "trt_profile_max_shapes": "seg_features:1x16x8x8,boxes:4x4,image_index:4",
    }


def test_tensorrt_runtime_requests_tensorrt_then_cuda_then_cpu(gpu_machine, tmp_path, caplog):
    checkpoint = _checkpoint(tmp_path)
    with caplog.at_level(logging.INFO):
        predictor = make_predictor(checkpoint, "tensorrt", device="cuda:1")
    assert isinstance(predictor, TensorRTPredictor)
    slot = gpu_machine / "tiny.fp16.1x3x64x64"
    (dense_name, dense), (instance_name, instance) = RecordingSession.calls
    assert (dense_name, instance_name) == ("dense.onnx", "instance.onnx")
    assert dense[0] == (TRT, tensorrt_options(1, slot / "dense", "fp16"))
    assert dense[1:] == [(CUDA, {"device_id": 1}), CPU]
    assert instance[0][1]["trt_engine_cache_path"] == str(slot / "instance")
    assert instance[0][1]["trt_profile_max_shapes"].endswith("boxes:4x4,image_index:4")
    assert "building TensorRT fp16 engines for NVIDIA H200" in caplog.text
    manifest = json.loads((slot / MANIFEST).read_text())
    assert manifest["key"]["device_name"] == "NVIDIA H200"
    assert sorted(manifest["files"]) == [
        "dense/TRTKernel_graph_sm90.engine", "instance/TRTKernel_graph_sm90.engine"
    ]
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), np.uint8)
    assert len(predictor(image)) == 4
    caplog.clear()
    with caplog.at_level(logging.INFO):
        make_predictor(checkpoint, "tensorrt", device="cuda:1")
    assert "building" not in caplog.text


def test_engines_of_another_gpu_are_rebuilt_and_corrupt_ones_refused(
    gpu_machine, tmp_path, caplog, monkeypatch
):
    from vis_node.perception import tensorrt

    checkpoint = _checkpoint(tmp_path)
    make_predictor(checkpoint, "tensorrt")
    slot = gpu_machine / "tiny.fp16.1x3x64x64"
    engine = slot / "dense" / "TRTKernel_graph_sm90.engine"
    engine.write_bytes(b"truncated")
    corrupt = "corrupt.*dense/TRTKernel_graph_sm90.engine.*--rebuild"
    with pytest.raises(EngineCacheError, match=corrupt):
        make_predictor(checkpoint, "tensorrt")
    (slot / MANIFEST).write_text("{not json")
    with pytest.raises(EngineCacheError, match="unreadable"):
        make_predictor(checkpoint, "tensorrt")
    monkeypatch.setattr(tensorrt, "gpu_identity", lambda index: ("NVIDIA L4", "8.9"))
    (slot / MANIFEST).unlink()
    make_predictor(checkpoint, "tensorrt")
    manifest = json.loads((slot / MANIFEST).read_text())
    assert manifest["key"]["device_name"] == "NVIDIA L4"
    monkeypatch.setattr(tensorrt, "gpu_identity", lambda index: ("NVIDIA H200", "9.0"))
    with caplog.at_level(logging.INFO):
        make_predictor(checkpoint, "tensorrt")
    assert "they were built for another compute_capability, device_name" in caplog.text
    assert not engine.read_bytes() == b"truncated"


def test_int8_calibrates_the_dense_graph_once_and_reports_accuracy(gpu_machine, tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path)
    with pytest.raises(ValueError, match="--precision int8 --calib"):
        make_predictor(checkpoint, "tensorrt", precision="int8")
    frames = _frames(tmp_path / "frames", 6)
    out = tmp_path / "out"
    args = ["export", str(checkpoint), "--format", "tensorrt", "--precision", "int8",
            "--calib", str(frames), "--calib-frames", "4", "--out", str(out)]
    assert main(args) == 0
    slot = out / "engines" / "tiny.int8.1x3x64x64"
    table = slot / "dense" / CALIBRATION_TABLE
    assert table.stat().st_size > 100
    ranges = json.loads((slot / "dense" / "calibration.json").read_text())
    assert {"images", "objectness", "seg_features"} <= set(ranges["data"])
    dense = next(p for name, p in RecordingSession.calls if name == "dense.onnx")
    assert dense[0][1]["trt_int8_enable"] is True
    instance = next(p for name, p in RecordingSession.calls if name == "instance.onnx")
    assert instance[0][1]["trt_int8_enable"] is False and instance[0][1]["trt_fp16_enable"]
    report = json.loads((out / "accuracy.json").read_text())
    assert report["frames"] == 2 and report["precision"] == "int8"
    assert report["matched_fraction"] == 1.0
    stamp = table.stat().st_mtime_ns
    assert main(args) == 0
    assert table.stat().st_mtime_ns == stamp
    table.write_bytes(b"\0" * 16)
    capsys.readouterr()
    assert main(args) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main([*args, "--rebuild"]) == 0
    assert table.stat().st_size > 100


def test_calibration_batches_feed_the_calibrator():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (30, 40, 3), np.uint8) for _ in range(7)]
    reader = CalibrationBatches(iter(images), 32, 2, 5)
    feeds = []
    while (feed := reader.get_next()) is not None:
        feeds.append(feed["images"])
    assert [f.shape for f in feeds] == [(2, 3, 32, 32), (2, 3, 32, 32)]
    np.testing.assert_array_equal(feeds[1][0:1], preprocess(images[2], 32))
    with pytest.raises(ValueError, match="max_images >= batch_size"):
        CalibrationBatches(images, 32, 4, 2)


def test_without_a_gpu_every_runtime_falls_back_to_the_cpu_with_a_reason(
    tmp_path, monkeypatch, caplog, capsys
):
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    checkpoint = _checkpoint(tmp_path)
    with caplog.at_level(logging.WARNING):
        trt = make_predictor(checkpoint, "tensorrt")
    assert type(trt) is OnnxPredictor
    assert "device cuda requested but no CUDA GPU is visible" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        eager = make_predictor(checkpoint, "torch", device="cuda:0")
    assert isinstance(eager, TorchPredictor) and eager.device == "cpu"
    assert "falling back to the CPU" in caplog.text
    with pytest.raises(ValueError, match="use cpu, cuda or cuda:N"):
        make_predictor(checkpoint, "onnx", device="gpu0")
    assert main(["export", str(checkpoint), "--format", "tensorrt", "--out",
                 str(tmp_path / "out")]) == (0 if TRT in ort.get_available_providers() else 2)
    if TRT not in ort.get_available_providers():
        assert "pip install 'vis_node[tensorrt]'" in capsys.readouterr().err


def test_a_cpu_only_onnx_runtime_falls_back_from_tensorrt_and_cuda(
    gpu_machine, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    checkpoint = _checkpoint(tmp_path)
    with caplog.at_level(logging.WARNING):
        predictor = make_predictor(checkpoint, "tensorrt", device="cuda:1")
    assert type(predictor) is OnnxPredictor
    assert "has no TensorRT provider" in caplog.text and "using the CPU" in caplog.text
    assert "has no CUDA provider" in caplog.text
    assert all(providers == [CPU] for _, providers in RecordingSession.calls)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    RecordingSession.calls = []
    make_predictor(checkpoint, "onnx", device="cuda:1")
    assert [p for _, p in RecordingSession.calls] == [[(CUDA, {"device_id": 1}), CPU]] * 2


def _synth_frames(count: int) -> list[np.ndarray]:
    from vis_node.synth import SynthConfig, generate_video

    return list(generate_video(3, SynthConfig(width=320, height=240, frames=count)).frames)


@NEEDS_GPU
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_eager_pytorch_on_the_gpu(precision, tmp_path, monkeypatch):
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    engine = make_predictor("synth", "tensorrt", device="cuda", precision=precision)
    assert isinstance(engine, TensorRTPredictor)
    eager = make_predictor("synth", "torch", device="cpu")
    report = compare_predictions(eager, engine, _synth_frames(8))
    assert report["matched_fraction"] >= 0.9
    assert report["mean_mask_iou"] >= (0.95 if precision == "fp32" else 0.9)


@NEEDS_GPU
def test_cuda_provider_matches_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    gpu = make_predictor("synth", "onnx", device="cuda")
    cpu = make_predictor("synth", "onnx", device="cpu")
    report = compare_predictions(cpu, gpu, _synth_frames(8))
    assert report["matched_fraction"] == 1.0 and report["mean_mask_iou"] >= 0.98
