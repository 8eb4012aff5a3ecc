"""The salient NanoDet model: heads, candidate selection, post-processing, training, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data_dir, synthetic_frame_features
import torch
import yaml

from vis_node.perception.nanodet import load_nanodet
from vis_node.perception.salient_config import SalientConfig, SalientOverrides
from vis_node.perception.salient_model import (
    SalientNanoDet,
    candidate_geometry,
    class_distribution,
    ternary_grid,
)
from vis_node.perception import salient_predictor
from vis_node.perception.salient_predictor import (
    Candidates,
    SalientPredictor,
    SalientTorchPredictor,
    drop_parts,
    fused_class_probs,
    salient_candidates,
)
from vis_node.training.salient_data import object_boxes, saliency_labels
from vis_node.training.salient_train_config import load_config, parse_config
from vis_node.training.salient_trainer import frame_losses
from vis_node.structures.label_map import FALLBACK_CLASS

REPO = Path(__file__).resolve().parents[1]
DAVIS = shared_data_dir() / "davis2016"
needs_davis = pytest.mark.skipif(not DAVIS.is_dir(), reason="needs ../shared/data/davis2016")


def _frame(sequence: str, index: int = 0) -> np.ndarray:
    from vis_node.io.readers import read_image

    return read_image(DAVIS / "JPEGImages" / "480p" / sequence / f"{index:05d}.jpg")


def test_ternary_grid_marks_box_and_ring() -> None:
    grid = ternary_grid(12, 0.25)[0, 0]
    assert set(np.unique(grid.numpy())) == {-1.0, 1.0}
    assert grid[6, 6] == 1.0 and grid[0, 0] == -1.0 and grid[0, 6] == -1.0
    # the box is 1 / 1.5 of the window side: 8 of 12 cells
    assert int((grid[6] > 0).sum()) == 8
    assert torch.equal(grid, grid.flip(0)) and torch.equal(grid, grid.T)


def test_candidate_geometry_relative_features() -> None:
    boxes = torch.tensor([[0.0, 0.0, 100.0, 50.0], [150.0, 75.0, 200.0, 100.0]])
    geometry = candidate_geometry(boxes, torch.tensor([0.8, 0.4]), (100.0, 200.0))
    assert geometry.shape == (2, 9)
    np.testing.assert_allclose(geometry[0, :4].numpy(), [0.25, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(geometry[:, 7].numpy(), [1.0, 0.25])  # area / largest
    np.testing.assert_allclose(geometry[:, 8].numpy(), [1.0, 0.5])  # score / best


def test_class_distribution_names_unknown_objects() -> None:
    probs = torch.full((2, 80), 0.01)
    probs[0, 16], probs[0, 15], probs[0, 18] = 0.58, 0.12, 0.1  # dog, also "cat", "sheep"
    probs[1, 16] = 0.1  # barely a dog: an object of unknown class
    dist = class_distribution(probs, 0.3, 4.0)
    names = SalientConfig().class_names
    assert names[int(dist[0].argmax())] == "dog"
    assert names[int(dist[1].argmax())] == FALLBACK_CLASS
    assert float(dist[0, names.index("dog")]) > 0.9  # a clear vote, not a flat spread
    np.testing.assert_allclose(dist.sum(1).numpy(), 1.0, rtol=1e-6)
    assert float(dist[:, 0].max()) == 0.0


def test_fused_class_probs_take_the_duplicates_evidence() -> None:
    probs = np.zeros((3, 80), np.float32)
    probs[0, 16], probs[1, 21], probs[2, 0] = 0.43, 0.23, 0.6  # dog, bear, person
    candidates = Candidates(
        boxes=np.array([[10, 0, 100, 90], [12, 5, 100, 92], [200, 0, 240, 90]], np.float32),
        scores=probs.max(1),
        class_probs=probs,
    )
    fused = fused_class_probs(candidates, np.array([1, 2]), 0.6)
    assert fused.shape == (2, 80)
    assert fused[0, 16] == pytest.approx(0.43) and fused[0, 21] == pytest.approx(0.23)
    assert fused[1, 0] == pytest.approx(0.6) and fused[1, 16] == 0.0


def test_drop_parts_keeps_whole_objects() -> None:
    masks = np.zeros((3, 20, 20), bool)
    masks[0, 2:18, 2:18] = True  # the object
    masks[1, 4:8, 4:8] = True  # a part of it
    masks[2, 0:2, 0:20] = True  # a separate thin object
    kept = drop_parts(masks, np.array([0, 1, 2]), 0.7)
    assert kept.tolist() == [0, 2]


def test_salient_candidates_fall_back_to_one_confident_detection() -> None:
    config = SalientConfig(saliency_threshold=0.5, fallback_score=0.3)
    scores = np.array([0.2, 0.45, 0.9])
    assert salient_candidates(np.array([0.6, 0.1, 0.7]), scores, config).tolist() == [0, 2]
    # nothing salient: only the most confident detection, never more than one
    assert salient_candidates(np.array([0.1, 0.3, 0.2]), scores, config).tolist() == [2]
    weak = np.array([0.2, 0.25, 0.1])
    assert salient_candidates(np.array([0.1, 0.3, 0.2]), weak, config).tolist() == []
    assert salient_candidates(np.zeros(0), np.zeros(0), config).tolist() == []
    disabled = SalientConfig(saliency_threshold=0.5, fallback_score=1.0)
    assert salient_candidates(np.array([0.1, 0.3, 0.2]), scores, disabled).tolist() == []


@pytest.mark.parametrize("box_mask", [True, False])
def test_a_fallback_detection_is_masked_by_its_box(
    monkeypatch: pytest.MonkeyPatch, box_mask: bool
) -> None:
    # One detection (a 0.6 "car") that the saliency head rejects and the mask head
    # leaves empty, as on a held-out car in smoke; a 208 x 416 frame is its own input.
    probs = np.zeros((1, 80), np.float32)
    probs[0, 2] = 0.6
    candidates = Candidates(
        boxes=np.array([[104.0, 52.0, 208.0, 156.0]], np.float32),
        scores=probs.max(1),
        class_probs=probs,
    )
    monkeypatch.setattr(salient_predictor, "select_candidates", lambda *_: candidates)
    config = SalientConfig(fallback_box_mask=box_mask)
    empty = np.zeros((1, 1), np.float32)

    def mask_head(*inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = len(inputs[3])
        size = config.mask_size
        return np.full((count, size, size), -8.0, np.float32), np.ones((count, 4), np.float32)

    predictor = SalientPredictor(
        config, lambda _: (empty, empty, empty, empty),
        lambda *_: np.array([-4.0], np.float32), mask_head,
    )
    instances = predictor(np.zeros((208, 416, 3), np.uint8))
    if not box_mask:
        assert len(instances) == 0  # the mask head's empty mask: nothing to report
        return
    assert len(instances) == 1
    rows, cols = np.nonzero(instances.masks[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (52, 155, 104, 207)
    assert instances.masks[0].sum() == 104 * 104
    np.testing.assert_allclose(instances.boxes[0], [104.0, 52.0, 208.0, 156.0])
    assert config.class_names[int(instances.class_probs[0].argmax())] == "car"


@pytest.mark.parametrize(
    ("flip", "limit", "mirrored"),
    [(True, 0, [True, True, True]), (True, 1, [True, False, False]),
     (True, 2, [True, True, False]), (False, 0, [False, False, False])],
)
def test_refiner_mirrors_frames_up_to_the_instance_limit(flip, limit, mirrored) -> None:
    config = SalientConfig(refiner_flip=flip, refiner_flip_max_instances=limit)
    assert [config.refiner_mirrors(k) for k in (1, 2, 3)] == mirrored


def test_refiner_instance_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="refiner_flip_max_instances"):
        SalientConfig(refiner_flip_max_instances=-1)


def test_overrides_replace_only_the_given_settings_and_refuse_bad_values() -> None:
    config = SalientConfig(saliency_threshold=0.5, refiner_flip=True)
    assert SalientOverrides().apply(config) == config
    changed = SalientOverrides(saliency_threshold=0.1, refiner_flip_max_instances=2).apply(config)
    assert (changed.saliency_threshold, changed.refiner_flip_max_instances) == (0.1, 2)
    assert changed.refiner_flip and changed.max_instances == config.max_instances
    with pytest.raises(ValueError, match="saliency_threshold=1.5"):
        SalientOverrides(saliency_threshold=1.5).apply(config)


def test_a_bad_override_fails_before_the_model_loads(monkeypatch) -> None:
    from vis_node.perception import runtime

    monkeypatch.setattr(runtime.RUNTIMES, "get", lambda name: pytest.fail("model loaded"))
    with pytest.raises(ValueError, match="refiner_flip_max_instances=-2"):
        runtime.make_predictor("real", overrides=SalientOverrides(refiner_flip_max_instances=-2))


def test_saliency_labels_reject_parts_and_background() -> None:
    foreground = np.zeros((100, 100), np.uint8)
    foreground[20:80, 20:80] = 1
    boxes = np.array(
        [[20, 20, 80, 80], [30, 30, 40, 40], [0, 0, 100, 100], [85, 85, 99, 99]], np.float32
    )
    labels = saliency_labels(boxes, foreground, object_boxes(foreground), box_cover=0.5,
                             object_cover=0.15)
    assert labels.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_saliency_labels_accept_a_sparse_object_in_its_own_box() -> None:
    foreground = np.zeros((100, 100), np.uint8)
    foreground[60:90, 20:80] = 1  # body
    foreground[10:60, 70:74] = 1  # long thin neck: the object fills 40 % of its box
    boxes = np.array([[20, 10, 80, 90], [20, 60, 80, 90]], np.float32)
    labels = saliency_labels(boxes, foreground, object_boxes(foreground), box_cover=0.5,
                             object_cover=0.15)
    assert labels.tolist() == [1.0, 1.0]


def test_object_boxes_merge_close_parts() -> None:
    foreground = np.zeros((60, 100), np.uint8)
    foreground[10:30, 10:30] = 1
    foreground[10:30, 33:40] = 1  # 3 px away: the same object
    foreground[40:50, 70:90] = 1
    boxes = object_boxes(foreground)
    assert sorted(boxes.tolist()) == [[10, 10, 40, 30], [70, 40, 90, 50]]


def test_shipped_training_config_folds_are_disjoint_and_cover_every_sequence() -> None:
    config = load_config(REPO / "vis_node" / "models" / "real" / "train.yaml")
    folded = [s for fold in config.data.folds for s in fold]
    assert sorted(folded) == sorted(config.data.sequences)
    assert len(set(folded)) == len(folded) == 12
    for fold, held_out in enumerate(config.data.folds):
        assert not set(held_out) & set(config.data.training_sequences(fold))


def test_config_rejects_overlapping_folds_and_unknown_keys() -> None:
    values = yaml.safe_load((REPO / "vis_node" / "models" / "real" / "train.yaml").read_text())
    values["data"]["folds"] = [["dog", "cows"], ["cows"]]
    with pytest.raises(ValueError, match="repeats"):
        parse_config(values)
    values["data"]["folds"] = []
    values["stepz"] = 3
    with pytest.raises(ValueError, match="stepz"):
        parse_config(values)


def test_heads_fit_one_frame() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frame = synthetic_frame_features(rng)
    model = SalientNanoDet(SalientConfig(), load_nanodet()).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(25):
        losses = frame_losses(model.head_sets()[0], frame, rng, pos_weight=1.0, mask_rois=1)
        loss = sum(losses.values())
        first = first if first is not None else {k: float(v.detach()) for k, v in losses.items()}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(first) == {"saliency", "mask"}
    assert float(losses["saliency"].detach()) < 0.5 * first["saliency"]
    assert float(losses["mask"].detach()) < first["mask"]
    assert all(not p.requires_grad for p in model.detector.parameters())


def _heads_after_steps(steps: int) -> dict[str, torch.Tensor]:
    """The trainable weights after ``steps`` Adam steps on one synthetic frame, seed 0."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frame = synthetic_frame_features(rng)
    model = SalientNanoDet(SalientConfig(), load_nanodet()).train()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.Adam(trainable.values(), lr=3e-3)
    for _ in range(steps):
        loss = sum(frame_losses(model.head_sets()[0], frame, rng, pos_weight=1.0, mask_rois=2).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {n: p.detach().clone() for n, p in trainable.items()}


def test_heads_training_is_bit_reproducible() -> None:
    # The model card's comparisons of recipes rest on it: the same seed and code give the
    # same weights on the CPU, with every thread torch uses.
    first, again = _heads_after_steps(4), _heads_after_steps(4)
    assert first.keys() == again.keys() and len(first) > 10
    assert all(torch.equal(first[n], again[n]) for n in first)
    untrained = _heads_after_steps(0)
    assert not all(torch.equal(first[n], untrained[n]) for n in first)


def test_a_composite_trains_the_mask_head_only() -> None:
    rng = np.random.default_rng(0)
    frame = synthetic_frame_features(rng)
    model = SalientNanoDet(SalientConfig(), load_nanodet()).train()
    losses = frame_losses(model.head_sets()[0], frame, rng, pos_weight=1.0, mask_rois=1, saliency=False)
    assert set(losses) == {"mask"}
    losses["mask"].backward()
    assert all(p.grad is None for p in model.saliency_head.parameters())
    assert any(p.grad is not None for p in model.mask_head.parameters())


@needs_davis
@pytest.mark.parametrize("head_ensemble", [1, 2])
def test_onnx_runtime_matches_eager_on_a_real_frame(head_ensemble: int, tmp_path: Path) -> None:
    from vis_node.perception.salient_export import SalientOnnxPredictor, export_salient_onnx

    import onnxruntime

    torch.manual_seed(0)
    # Threshold 0: every candidate is salient, so all four graphs run on many boxes; the
    # refiner as shipped (stem down to stride 16); one set of heads, or two averaged.
    config = SalientConfig(saliency_threshold=0.0, refiner_size=64, refiner_stride=16,
                           head_ensemble=head_ensemble)
    model = SalientNanoDet(config, load_nanodet(), pretrained_refiner=True).eval()
    image = _frame("motocross-jump", 10)
    eager = SalientTorchPredictor(model)(image)
    folder = export_salient_onnx(model, tmp_path / "export")
    onnx = SalientOnnxPredictor(folder)(image)
    crops, coarse = torch.rand(3, 3, 64, 64), (torch.rand(3, 1, 64, 64) > 0.5).float()
    refined = onnxruntime.InferenceSession(str(folder / "refiner.onnx")).run(
        None, {"crops": crops.numpy(), "coarse": coarse.numpy()}
    )[0]
    with torch.no_grad():
        np.testing.assert_allclose(refined, model.refiner(crops, coarse).numpy(), atol=1e-4)
    assert len(eager) == len(onnx) >= 2
    np.testing.assert_allclose(onnx.boxes, eager.boxes, atol=0.05)
    np.testing.assert_allclose(onnx.scores, eager.scores, atol=1e-4)
    np.testing.assert_allclose(onnx.embeddings, eager.embeddings, atol=1e-4)
    np.testing.assert_array_equal(onnx.labels, eager.labels)
    for a, b in zip(onnx.masks, eager.masks):
        iou = (a & b).sum() / max((a | b).sum(), 1)
        assert iou > 0.995


@needs_davis
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_shipped_real_model_on_fixed_frames(runtime: str, tmp_path: Path, monkeypatch) -> None:
    """Pinned outputs of the shipped default model (a regression here changes them)."""
    from vis_node import DEFAULT_MODEL
    from vis_node.perception.runtime import make_predictor

    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    assert DEFAULT_MODEL == "real"
    predictor = make_predictor(DEFAULT_MODEL, runtime)
    expected = {
        ("dog", 0): [("dog", (162.9, 57.6, 509.6, 303.5), 0.981, 42730)],
        ("motocross-jump", 10): [
            ("person", (536.6, 33.2, 732.1, 332.3), 0.990, 48751),
            ("motorcycle", (394.6, 139.1, 719.7, 469.4), 0.989, 74148),
        ],
    }
    for (sequence, index), instances in expected.items():
        out = predictor(_frame(sequence, index))
        assert [predictor.class_names[c] for c in out.labels] == [i[0] for i in instances]
        np.testing.assert_allclose(out.boxes, [i[1] for i in instances], atol=0.5)
        np.testing.assert_allclose(out.scores, [i[2] for i in instances], atol=0.005)
        np.testing.assert_allclose(out.masks.sum((1, 2)), [i[3] for i in instances], rtol=0.01)
        assert out.embeddings.shape == (len(instances), 128)
    # Without the refiner's mirrored pass (--no-refiner-flip): the same instances, the
    # masks of the single pass (the motorcycle 2.7 % smaller).
    single = make_predictor(DEFAULT_MODEL, runtime, overrides=SalientOverrides(refiner_flip=False))
    assert predictor.config.refiner_flip and not single.config.refiner_flip
    out = single(_frame("motocross-jump", 10))
    np.testing.assert_allclose(out.boxes, [i[1] for i in expected[("motocross-jump", 10)]], atol=0.5)
    np.testing.assert_allclose(out.masks.sum((1, 2)), [48123, 72154], atol=30)
    # Mirrored pass only on frames with at most one instance: the two-instance frame gets
    # the single pass, the one-instance frame keeps the mirrored masks.
    one = make_predictor(
        DEFAULT_MODEL, runtime, overrides=SalientOverrides(refiner_flip_max_instances=1)
    )
    np.testing.assert_allclose(
        one(_frame("motocross-jump", 10)).masks.sum((1, 2)), [48123, 72154], atol=30
    )
    np.testing.assert_allclose(one(_frame("dog", 0)).masks.sum((1, 2)), [42730], rtol=0.01)
    # A lower saliency threshold (--saliency-threshold 0.2) also reports what the model
    # ranks as less salient: beside bmx-trees' rider, a second rider and the bicycle.
    frame = _frame("bmx-trees", 40)
    clearest = predictor(frame)
    more = make_predictor(DEFAULT_MODEL, runtime, overrides=SalientOverrides(saliency_threshold=0.2))
    out = more(frame)
    assert [predictor.class_names[c] for c in clearest.labels] == ["person"]
    assert [predictor.class_names[c] for c in out.labels] == ["person", "person", "object"]
    np.testing.assert_allclose(out.scores, [0.95, 0.42, 0.33], atol=0.005)
    np.testing.assert_allclose(out.masks[0].sum(), clearest.masks[0].sum(), rtol=0.01)
    np.testing.assert_allclose(out.masks.sum((1, 2)), [13074, 3592, 6421], rtol=0.02)
