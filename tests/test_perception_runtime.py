"""Runtime selection and the ONNX export cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vis_node.cli import main
from vis_node.perception.checkpoint import save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.perception.onnx_runtime import OnnxPredictor
from vis_node.perception.predictor import TorchPredictor
from vis_node.perception.runtime import cached_onnx_export, make_predictor


def _model(seed: int):
    torch.manual_seed(seed)
    config = ModelConfig(
        input_size=64, fpn_channels=16, head_channels=16, seg_in_channels=16,
        seg_channels=16, seg_dilated_channels=8, seg_crop_size=8, class_hidden_dim=16,
        embedding_dim=8, pretrained_backbone=False, score_threshold=0.0, num_proposals=5,
    )
    return build_model(config).eval()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_export_is_made_once_per_model_and_replaced_when_broken(cache):
    model = _model(0)
    first = cached_onnx_export(model)
    assert first.folder.parent == cache / "onnx"
    stamp = first.dense_path.stat().st_mtime_ns
    again = cached_onnx_export(model)
    assert again.folder == first.folder and again.dense_path.stat().st_mtime_ns == stamp
    other = cached_onnx_export(_model(1))
    assert other.folder != first.folder and other.fingerprint != first.fingerprint
    (first.folder / "export.json").write_text("{not json")
    repaired = cached_onnx_export(model)
    assert repaired.fingerprint == first.fingerprint
    assert sorted(p.name for p in (cache / "onnx").iterdir()) == sorted(
        [first.folder.name, other.folder.name]
    )


def test_make_predictor_runtimes_agree(cache, tmp_path):
    checkpoint = save_model(_model(0), tmp_path / "tiny" / "model.pt")
    onnx = make_predictor(checkpoint, "onnx")
    eager = make_predictor(checkpoint, "torch")
    assert isinstance(onnx, OnnxPredictor) and isinstance(eager, TorchPredictor)
    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    a, b = onnx(image), eager(image)
    assert len(a) == len(b) == 5 and a.masks.shape == (5, 48, 80)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
    with pytest.raises(ValueError, match="choose one of"):
        make_predictor(checkpoint, "tvm")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the no-GPU fallback")
def test_tensorrt_runtime_without_a_gpu_runs_on_the_cpu(cache, tmp_path, capsys):
    checkpoint = save_model(_model(0), tmp_path / "tiny" / "model.pt")
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000.png"), np.zeros((32, 32, 3), np.uint8))
    run = ["run", str(frames), "--model", str(checkpoint), "--runtime", "tensorrt", "--no-overlay"]
    assert main([*run, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "instances").is_dir()
    assert main([*run, "--out", str(tmp_path / "bad"), "--device", "gpu"]) == 2
    assert "use cpu, cuda or cuda:N" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
