"""``--device`` parsing and the CPU fallback with its logged reason."""

from __future__ import annotations

import logging

import pytest
import torch

from vis_node.perception.device import parse_device, resolve_device
from vis_node.perception.runtime import onnx_providers, runtime_device


def test_parse_device_accepts_cpu_cuda_and_an_index():
    assert parse_device("cpu") == ("cpu", None)
    assert parse_device("CUDA") == ("cuda", None)
    assert parse_device("cuda:3") == ("cuda", 3)
    for bad in ("gpu", "cuda:", "cuda:x", "cpu:0", "cuda:1:2", ""):
        with pytest.raises(ValueError, match="use cpu, cuda or cuda:N"):
            parse_device(bad)


@pytest.fixture()
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_usable_gpus_resolve_to_an_index(two_gpus, caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_device("cuda") == "cuda:0"
        assert resolve_device("cuda:1") == "cuda:1"
        assert runtime_device("tensorrt", "auto") == "cuda:0"
        assert runtime_device("onnx", "auto") == "cpu"
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("setup", "request_", "reason"),
    [
        ({"cuda": None}, "cuda", "this PyTorch build has no CUDA support"),
        (
            {"available": False},
            "cuda:0",
            "no CUDA GPU is visible (driver missing or CUDA_VISIBLE_DEVICES empty)",
        ),
        ({}, "cuda:2", "cuda:2 does not exist: 2 CUDA GPU(s) visible (cuda:0..cuda:1)"),
    ],
)
def test_unusable_gpus_fall_back_to_the_cpu_saying_why(
    two_gpus, monkeypatch, caplog, setup, request_, reason
):
    if "cuda" in setup:
        monkeypatch.setattr(torch.version, "cuda", setup["cuda"])
    if "available" in setup:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: setup["available"])
    with caplog.at_level(logging.WARNING):
        assert resolve_device(request_) == "cpu"
    assert f"device {request_} requested but {reason}: falling back to the CPU" in caplog.text


def test_tensorrt_on_the_cpu_and_providers_of_a_device(two_gpus, caplog):
    with caplog.at_level(logging.WARNING):
        assert runtime_device("tensorrt", "cpu") == "cpu"
    assert "TensorRT needs a GPU" in caplog.text
    cpu_and_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu", cpu_and_cuda) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", cpu_and_cuda) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert onnx_providers("cuda:0", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert "has no CUDA provider" in caplog.text and "onnxruntime-gpu" in caplog.text
