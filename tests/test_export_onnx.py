"""ONNX export (fixed and dynamic batch) and ONNX Runtime parity with eager PyTorch."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from vis_node.cli import main
from vis_node.structures.errors import InputDataError
from vis_node.perception.compare import compare_predictions
from vis_node.perception.checkpoint import save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.export_onnx import export_onnx, model_fingerprint, read_export
from vis_node.perception.model import build_model
from vis_node.perception.onnx_runtime import OnnxPredictor
from vis_node.perception.detections import at_input_resolution
from vis_node.perception.predictor import StagedPredictor, TorchPredictor, preprocess

SIZE = 128


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = ModelConfig(
        input_size=SIZE, fpn_channels=32, head_channels=32, seg_in_channels=32,
        seg_channels=32, seg_dilated_channels=16, seg_crop_size=12, class_hidden_dim=32,
        embedding_dim=16, pretrained_backbone=False, score_threshold=0.0,
    )
    return build_model(config).eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = []
    for k in range(3):
        frame = rng.integers(0, 80, (96, 144, 3), dtype=np.uint8)
        frame[20 + 10 * k:70, 30:90 + 10 * k] = (220, 60, 40)
        frames.append(preprocess(frame, SIZE))
    return np.concatenate(frames)


@pytest.fixture(scope="module")
def dynamic_export(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("dynamic"), batch_size=None)


def _detect(predictor: StagedPredictor, images: np.ndarray) -> list[dict[str, np.ndarray]]:
    """The predictor's detections on the network input (as ``S4Net.forward`` gives)."""
    size = (predictor.input_size, predictor.input_size)
    return [at_input_resolution(raw, size, predictor.config.mask_threshold)
            for raw in predictor.raw(images)]


def _assert_parity(onnx_dets, torch_dets):
    for ours, ref in zip(onnx_dets, torch_dets, strict=True):
        ref = {k: v.numpy() for k, v in ref.items()}
        assert len(ours["boxes"]) == len(ref["boxes"]) == 20
        np.testing.assert_allclose(ours["boxes"], ref["boxes"], atol=1e-3)
        np.testing.assert_allclose(ours["scores"], ref["scores"], atol=1e-5)
        np.testing.assert_allclose(ours["class_probs"], ref["class_probs"], atol=1e-4)
        np.testing.assert_allclose(ours["embeddings"], ref["embeddings"], atol=1e-4)
        inter = (ours["masks"] & ref["masks"]).sum(axis=(1, 2))
        union = (ours["masks"] | ref["masks"]).sum(axis=(1, 2))
        assert union.min() > 0
        assert (inter / union).min() > 0.99


def test_dynamic_batch_matches_pytorch(model, images, dynamic_export):
    with torch.no_grad():
        expected = model(torch.from_numpy(images))
    _assert_parity(_detect(OnnxPredictor(dynamic_export), images), expected)
    _assert_parity(_detect(OnnxPredictor(dynamic_export), images[1:2]), expected[1:2])


def test_fixed_batch_export_runs_and_pads(model, images, tmp_path):
    export = export_onnx(model, tmp_path, batch_size=2)
    assert read_export(tmp_path).batch_size == 2
    predictor = OnnxPredictor(tmp_path)
    with torch.no_grad():
        expected = model(torch.from_numpy(images[:2]))
    _assert_parity(_detect(predictor, images[:2]), expected)
    _assert_parity(_detect(predictor, images[:1]), expected[:1])
    with pytest.raises(ValueError, match="exceeds the exported batch 2"):
        predictor.raw(images)
    assert export.fingerprint == model_fingerprint(model)


def test_frame_predictor_agrees_with_torch_predictor(model, dynamic_export):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(2)]
    report = compare_predictions(TorchPredictor(model), OnnxPredictor(dynamic_export), frames)
    assert report["reference_instances"] == report["candidate_instances"] == 40
    assert report["matched_fraction"] == 1.0 and report["class_agreement"] == 1.0
    assert report["mean_mask_iou"] > 0.99 and report["max_score_diff"] < 1e-5


def test_no_proposals_gives_empty_detections(model, dynamic_export, images):
    predictor = OnnxPredictor(dynamic_export)
    predictor.config = ModelConfig.from_dict({**model.config.to_dict(), "score_threshold": 1.1})
    detections = _detect(predictor, images[:1])[0]
    assert detections["masks"].shape == (0, SIZE, SIZE)
    assert detections["class_probs"].shape == (0, 6)


def test_read_export_errors(tmp_path, dynamic_export):
    with pytest.raises(InputDataError, match=r"missing dense\.onnx"):
        read_export(tmp_path)
    for name in ("dense.onnx", "instance.onnx"):
        (tmp_path / name).write_bytes((dynamic_export.folder / name).read_bytes())
    (tmp_path / "export.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputDataError, match="not a VSIS ONNX export manifest"):
        read_export(tmp_path)


def test_export_cli_output_runs_with_vsis_run(model, tmp_path, capsys):
    checkpoint = save_model(model, tmp_path / "tiny" / "model.pt")
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "x"),
                 "--dynamic-batch"]) == 0
    assert read_export(tmp_path / "x").batch_size is None
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"{k:05d}.png"), np.full((48, 64, 3), 40 * k, np.uint8))
    assert main(["run", str(frames), "--out", str(tmp_path / "run"), "--runtime", "onnx",
                 "--model", str(tmp_path / "x"), "--no-overlay"]) == 0
    assert len(list((tmp_path / "run" / "instances" / "frames").glob("*.png"))) == 2
    assert main(["export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "y")]) == 2
    assert "no such model" in capsys.readouterr().err
