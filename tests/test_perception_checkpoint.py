"""Shipped-checkpoint save / load / resolve and the eager predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vis_node.structures.errors import InputDataError
from vis_node.perception.checkpoint import load_model, resolve_model, save_model
from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.perception.detections import RawDetections, at_input_resolution, to_instances
from vis_node.perception.predictor import TorchPredictor, preprocess


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = ModelConfig(
        input_size=128, fpn_channels=32, head_channels=32, seg_crop_size=12,
        pretrained_backbone=False,
        score_threshold=0.0,
    )
    return build_model(config).eval()


def test_save_load_round_trip_in_half_precision(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "m" / "model.pt", meta={"steps": 3})
    loaded, meta = load_model(tmp_path / "m")
    assert meta == {"steps": 3}
    assert loaded.config.input_size == 128 and not loaded.training
    for key, value in tiny_model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(loaded.state_dict()[key], value.half().float())
    assert resolve_model(path) == path


def test_model_dir_lookup_by_name(tiny_model, tmp_path, monkeypatch):
    save_model(tiny_model, tmp_path / "mini" / "model.pt")
    monkeypatch.setenv("VSIS_MODELS_DIR", str(tmp_path))
    assert resolve_model("mini") == tmp_path / "mini" / "model.pt"
    with pytest.raises(InputDataError, match=r"shipped model name \(mini\)"):
        resolve_model("nope")


def test_corrupt_and_foreign_checkpoints(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(InputDataError, match="not a readable VSIS checkpoint"):
        load_model(tmp_path / "bad.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(InputDataError, match="not a VSIS model checkpoint"):
        load_model(tmp_path / "foreign.pt")


def test_preprocess_shape_and_range():
    image = np.full((48, 64, 3), 255, np.uint8)
    batch = preprocess(image, 32)
    assert batch.shape == (1, 3, 32, 32) and batch.dtype == np.float32
    assert batch.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="uint8"):
        preprocess(image.astype(np.float32), 32)


def test_to_instances_maps_back_to_frame():
    raw = RawDetections(
        boxes=np.array([[4, 8, 12, 16]], np.float32),
        scores=np.array([0.9], np.float32),
        mask_probs=np.ones((1, 4, 4), np.float32),
        windows=np.array([[0, 0, 32, 32]], np.float32),
        class_probs=np.array([[0.1, 0.9]], np.float32),
        embeddings=np.ones((1, 4), np.float32),
    )
    instances = to_instances(raw, (64, 96), 32, 0.5)
    np.testing.assert_allclose(instances.boxes, [[12, 16, 36, 32]])
    assert instances.masks.shape == (1, 64, 96)
    rows, cols = np.nonzero(instances.masks[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 31, 12, 35)
    np.testing.assert_allclose(instances.saliency, [0.9])


def test_torch_predictor_outputs_frame_resolution(tiny_model):
    predictor = TorchPredictor(tiny_model)
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    instances = predictor(image)
    n = len(instances.saliency)
    assert instances.masks.shape == (n, 90, 120)
    assert instances.class_probs.shape == (n, len(tiny_model.config.class_names))
    assert predictor.class_names[0] == "background"


def test_torch_predictor_batch_matches_model_forward(tiny_model):
    rng = np.random.default_rng(2)
    size = tiny_model.config.input_size
    images = np.concatenate(
        [preprocess(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), size) for _ in range(2)]
    )
    with torch.no_grad():
        expected = tiny_model.eval()(torch.from_numpy(images))
    input_size = (size, size)
    ours = [
        at_input_resolution(raw, input_size, tiny_model.config.mask_threshold)
        for raw in TorchPredictor(tiny_model).raw(images)
    ]
    assert sum(len(d["boxes"]) for d in ours) > 0
    for mine, ref in zip(ours, expected, strict=True):
        np.testing.assert_allclose(mine["boxes"], ref["boxes"].numpy(), atol=1e-3)
        np.testing.assert_allclose(mine["scores"], ref["scores"].numpy(), atol=1e-5)
        np.testing.assert_allclose(mine["class_probs"], ref["class_probs"].numpy(), atol=1e-4)
        assert (mine["masks"] == ref["masks"].numpy()).mean() > 0.999
