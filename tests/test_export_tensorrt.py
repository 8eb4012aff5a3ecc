"""TensorRT engine cache, build orchestration and calibration batching (builder mocked).

TensorRT needs an NVIDIA GPU, so the real builder and runtime are not exercised here;
:class:`FakeBackend` stands in at the :class:`TensorRTBackend` seam.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vis_node.cli import main
from vis_node.perception.checkpoint import save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.export_onnx import OnnxExport
from vis_node.perception.model import build_model
from vis_node.perception.predictor import preprocess
from vis_node.perception.tensorrt import (
    MAGIC,
    CalibrationBatches,
    EngineCacheError,
    EngineKey,
    build_engines,
    load_or_build,
    read_engine,
    write_engine,
)


class FakeBackend:
    """Records builds; the 'engine' is the ONNX path, precision and shapes as bytes."""

    def __init__(self, version: str = "10.9.0", gpu: str = "NVIDIA H100", cc: str = "9.0"):
        self.version = version
        self._device = (gpu, cc)
        self.builds: list[tuple[str, str, dict, object]] = []

    def device(self) -> tuple[str, str]:
        return self._device

    def build(self, onnx_path, precision, shapes, calibrator) -> bytes:
        self.builds.append((Path(onnx_path).name, precision, shapes, calibrator))
        return f"{Path(onnx_path).name}|{precision}|{sorted(shapes)}".encode()


def _key(**changes: object) -> EngineKey:
    fields = {
        "model_hash": "a" * 64, "graph": "dense", "tensorrt_version": "10.9.0",
        "device_name": "NVIDIA H100", "compute_capability": "9.0", "precision": "fp16",
        "input_shape": (1, 3, 320, 320),
    }
    fields.update(changes)
    return EngineKey(**fields)


def test_key_digest_depends_on_every_field():
    base = _key()
    assert base.digest() == _key().digest()
    variants = [
        _key(model_hash="b" * 64), _key(graph="instance"), _key(tensorrt_version="10.10.0"),
        _key(device_name="NVIDIA L4"), _key(compute_capability="8.9"), _key(precision="int8"),
        _key(input_shape=(1, 3, 256, 256)),
    ]
    assert len({v.digest() for v in variants} | {base.digest()}) == 8
    assert base.slot_name("synth") == "synth.dense.fp16.1x3x320x320.engine"
    with pytest.raises(ValueError, match="precision='bf16'"):
        _key(precision="bf16")


def test_write_is_atomic_and_round_trips(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "m.engine"
    write_engine(path, _key(), b"engine-1")
    assert read_engine(path, _key()) == b"engine-1"
    assert path.read_bytes().startswith(MAGIC)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_engine(path, _key(), b"engine-2")
    monkeypatch.undo()
    assert read_engine(path, _key()) == b"engine-1"
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.engine"]


def test_stale_and_foreign_engines_are_rejected_with_a_log(tmp_path, caplog):
    path = tmp_path / "m.engine"
    assert read_engine(path, _key()) is None
    write_engine(path, _key(), b"engine")
    with caplog.at_level(logging.WARNING, logger="vis_node.perception.tensorrt"):
        assert read_engine(path, _key(model_hash="b" * 64)) is None
        assert read_engine(path, _key(tensorrt_version="10.10.0")) is None
        assert read_engine(path, _key(device_name="NVIDIA L4", compute_capability="8.9")) is None
    messages = [r.getMessage() for r in caplog.records]
    assert "stale TensorRT engine" in messages[0]
    assert "foreign TensorRT engine" in messages[1] and "tensorrt_version" in messages[1]
    assert "compute_capability, device_name" in messages[2]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"GARBAGE!" + data[8:],
        lambda data: data[:-3],
        lambda data: data[:12] + b"\xff" * 20 + data[32:],
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),
    ],
    ids=["magic", "truncated", "header", "bit-flip"],
)
def test_corrupt_engine_gives_clear_error(tmp_path, damage):
    path = tmp_path / "m.engine"
    write_engine(path, _key(), b"serialised-engine-bytes")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(EngineCacheError, match=r"m\.engine: corrupt .*--rebuild"):
        read_engine(path, _key())


def test_load_or_build_caches_and_rebuilds(tmp_path, caplog):
    fields = {"model_hash": "a" * 64, "graph": "dense", "precision": "fp16",
              "input_shape": (1, 3, 64, 64)}
    backend = FakeBackend()
    engine, path = load_or_build(backend, tmp_path, "tiny", fields, Path("dense.onnx"), {})
    assert engine == b"dense.onnx|fp16|[]" and path.name == "tiny.dense.fp16.1x3x64x64.engine"
    assert load_or_build(backend, tmp_path, "tiny", fields, Path("dense.onnx"), {})[0] == engine
    assert len(backend.builds) == 1
    upgraded = FakeBackend(version="10.10.0")
    with caplog.at_level(logging.WARNING, logger="vis_node.perception.tensorrt"):
        load_or_build(upgraded, tmp_path, "tiny", fields, Path("dense.onnx"), {})
    assert len(upgraded.builds) == 1 and "foreign" in caplog.text
    path.write_bytes(b"junk")
    with pytest.raises(EngineCacheError):
        load_or_build(upgraded, tmp_path, "tiny", fields, Path("dense.onnx"), {})
    load_or_build(upgraded, tmp_path, "tiny", fields, Path("dense.onnx"), {}, rebuild=True)
    assert len(upgraded.builds) == 2
    assert load_or_build(upgraded, tmp_path, "tiny", fields, Path("dense.onnx"), {})[0] == engine


def test_build_engines_keys_and_profiles(tmp_path):
    config = ModelConfig(input_size=128, seg_in_channels=16, num_proposals=7, seg_crop_size=12,
                         pretrained_backbone=False)
    export = OnnxExport(tmp_path, config, "c" * 64, batch_size=2)
    backend = FakeBackend()
    calibrator = object()
    dense, instance = build_engines(backend, export, tmp_path / "engines", "tiny", "int8",
                                    calibrator=calibrator)
    assert dense[1].name == "tiny.dense.int8.2x3x128x128.engine"
    assert instance[1].name == "tiny.instance.fp16.2x16x16x16.engine"
    (dense_build, instance_build) = backend.builds
    assert dense_build == ("dense.onnx", "int8", {}, calibrator)
    assert instance_build[:2] == ("instance.onnx", "fp16") and instance_build[3] is None
    assert instance_build[2] == {"boxes": ((1, 4), (7, 4), (14, 4)),
                                 "image_index": ((1,), (7,), (14,))}
    with pytest.raises(ValueError, match="INT8 needs a calibrator"):
        build_engines(backend, export, tmp_path, "tiny", "int8")
    dynamic = OnnxExport(tmp_path, config, "c" * 64, batch_size=None)
    with pytest.raises(ValueError, match="fixed-batch"):
        build_engines(backend, dynamic, tmp_path, "tiny", "fp16")


def test_calibration_batches():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(10)]
    batches = list(CalibrationBatches(iter(frames), 32, batch_size=4, max_images=64))
    assert [b.shape for b in batches] == [(4, 3, 32, 32), (4, 3, 32, 32)]
    np.testing.assert_array_equal(batches[1][2:3], preprocess(frames[6], 32))
    assert len(list(CalibrationBatches(frames, 32, batch_size=2, max_images=5))) == 2
    with pytest.raises(ValueError, match="max_images >= batch_size"):
        CalibrationBatches(frames, 32, batch_size=4, max_images=2)


def test_export_tensorrt_without_tensorrt_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=64, fpn_channels=16, head_channels=16,
                                    seg_crop_size=8, pretrained_backbone=False))
    checkpoint = save_model(model, tmp_path / "tiny" / "model.pt")
    code = main(["export", str(checkpoint), "--format", "tensorrt", "--precision", "fp16",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "pip install 'vis_node[tensorrt]'" in capsys.readouterr().err
    code = main(["export", str(checkpoint), "--format", "tensorrt", "--precision", "int8",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--precision int8 needs --calib" in capsys.readouterr().err


def test_export_tensorrt_cli_with_mocked_builder(tmp_path, monkeypatch, capsys):
    """The CLI path: engines cached, ONNX Runtime standing in for the engines' runtime."""
    import json
    import types

    import cv2

    from vis_node.perception import tensorrt
    from vis_node.perception.onnx_runtime import OnnxPredictor

    class Backend(FakeBackend):
        trt = types.SimpleNamespace(IInt8EntropyCalibrator2=object)

    builds: list[FakeBackend] = []

    def make_backend() -> FakeBackend:
        builds.append(Backend())
        return builds[-1]

    monkeypatch.setattr(tensorrt, "TensorRT10Backend", make_backend)
    monkeypatch.setattr(tensorrt, "TensorRTPredictor", lambda export, d, i: OnnxPredictor(export))
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=64, fpn_channels=16, head_channels=16,
                                    seg_crop_size=8, pretrained_backbone=False,
                                    score_threshold=0.0, mask_threshold=0.0, num_proposals=4))
    checkpoint = save_model(model, tmp_path / "tiny" / "model.pt")
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        cv2.imwrite(str(frames / f"{k:05d}.png"), rng.integers(0, 256, (48, 64, 3), np.uint8))
    args = ["export", str(checkpoint), "--format", "tensorrt", "--precision", "int8",
            "--calib", str(frames), "--calib-frames", "4", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "accuracy.json").read_text())
    assert report["frames"] == 2 and report["precision"] == "int8"
    assert report["reference_instances"] == report["candidate_instances"] == 8
    assert report["matched_fraction"] == 1.0 and report["mean_mask_iou"] > 0.99
    engines = sorted(p.name for p in (tmp_path / "out" / "engines").glob("*.engine"))
    assert engines == ["tiny.dense.int8.1x3x64x64.engine", "tiny.instance.fp16.1x256x8x8.engine"]
    assert [b[:2] for b in builds[0].builds] == [("dense.onnx", "int8"), ("instance.onnx", "fp16")]
    assert main(args) == 0
    assert builds[1].builds == []
    capsys.readouterr()
    assert main([*args[:-2], "--calib-frames", "6", "--out", str(tmp_path / "out")]) == 2
    assert "pass a separate --holdout" in capsys.readouterr().err
