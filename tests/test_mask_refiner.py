"""The full-resolution mask refiner: crop geometry, fallbacks, training and wiring."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vis_node.perception.mask_refiner import (
    MaskRefiner,
    crop_to_square,
    grown_box,
    paste_from_square,
    refine_masks,
)
from vis_node.perception.salient_config import SalientConfig
from vis_node.perception.salient_predictor import SalientPredictor
from vis_node.training.refiner_trainer import (
    RefinerTrainConfig,
    cut_holes,
    degrade,
    jitter_colours,
    swap_background,
    train_refiner,
    training_crops,
)


def _ellipse_mask(height: int = 120, width: int = 200) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (90, 60), (40, 25), 20.0, 0, 360, 1, -1)
    return mask.astype(bool)


def test_crop_and_paste_back_round_trip() -> None:
    mask = _ellipse_mask()
    box = grown_box(mask, 0.15)
    assert box is not None
    x1, y1, x2, y2 = box
    rows, cols = np.nonzero(mask)
    assert x1 < cols.min() and x2 > cols.max() + 1 and y1 < rows.min() and y2 > rows.max() + 1
    square = crop_to_square(mask.astype(np.float32), box, 64, cv2.INTER_LINEAR)
    back = paste_from_square(square, box, mask.shape, 0.5)
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou > 0.93
    assert grown_box(np.zeros((5, 5), bool), 0.15) is None


def test_refine_masks_uses_the_refined_mask_and_keeps_a_coarse_one_it_empties() -> None:
    image = np.zeros((120, 200, 3), np.uint8)
    masks = np.stack([_ellipse_mask(), np.zeros((120, 200), bool)])
    masks[1, 10:20, 150:190] = True

    def fill(crops: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """Refined = the whole crop for the first instance, nothing for the second."""
        logits = np.full(coarse[:, 0].shape, -20.0, np.float32)
        logits[0] = 20.0
        return logits

    out = refine_masks(fill, image, masks, size=32, margin=0.1, threshold=0.5)
    x1, y1, x2, y2 = grown_box(masks[0], 0.1)
    assert out[0].sum() == pytest.approx((x2 - x1) * (y2 - y1), rel=0.1)
    np.testing.assert_array_equal(out[1], masks[1])


def test_the_crop_also_holds_the_detection_box() -> None:
    # The coarse mask covers only the left part of the detected object: the crop (and so
    # what the refiner may paint) reaches over the whole detection box.
    image = np.zeros((120, 200, 3), np.uint8)
    mask = np.zeros((1, 120, 200), bool)
    mask[0, 40:80, 40:70] = True
    box = np.array([[40.0, 40.0, 160.0, 80.0]], np.float32)
    assert grown_box(mask[0], 0.1, box[0]) == pytest.approx((28.0, 36.0, 172.0, 84.0))

    def fill(crops: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """Refined = the whole crop."""
        return np.full(coarse[:, 0].shape, 20.0, np.float32)

    alone = refine_masks(fill, image, mask, size=32, margin=0.1, threshold=0.5)
    with_box = refine_masks(fill, image, mask, size=32, margin=0.1, threshold=0.5, boxes=box)
    assert np.flatnonzero(alone[0].any(0)).max() < 75
    cols, rows = np.flatnonzero(with_box[0].any(0)), np.flatnonzero(with_box[0].any(1))
    assert cols.min() == 28 and rows.min() == 36 and rows.max() == 83
    assert cols.max() > 160  # past the box's right side (the resampled crop's edge blurs)


def test_the_mirrored_pass_is_mirrored_back_and_averaged() -> None:
    # A refiner that paints the left 3/4 of whatever crop it sees: the mirrored crop's
    # map, mirrored back, covers the right 3/4, so the average reaches the threshold on
    # the middle half only; the batch holds each crop twice, the mirrored one flipped.
    image = np.zeros((120, 200, 3), np.uint8)
    image[:, :100] = 255
    mask = np.zeros((1, 120, 200), bool)
    mask[0, 40:80, 40:160] = True
    seen: list[np.ndarray] = []

    def left(crops: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """Refined = the left three quarters of each crop."""
        seen.append(crops)
        logits = np.full(coarse[:, 0].shape, -20.0, np.float32)
        logits[:, :, : 3 * logits.shape[2] // 4] = 20.0
        return logits

    plain = refine_masks(left, image, mask, size=32, margin=0.0, threshold=0.75)
    both = refine_masks(left, image, mask, size=32, margin=0.0, threshold=0.75, flip=True)
    assert len(seen[0]) == 1 and len(seen[1]) == 2
    np.testing.assert_array_equal(seen[1][1], seen[1][0][..., ::-1])
    plain_cols, both_cols = np.flatnonzero(plain[0].any(0)), np.flatnonzero(both[0].any(0))
    assert plain_cols.min() == 40 and 125 <= plain_cols.max() <= 133
    assert 66 <= both_cols.min() <= 74 and 125 <= both_cols.max() <= 133


def test_degraded_masks_are_coarse_versions_of_the_truth() -> None:
    rng = np.random.default_rng(0)
    truth = cv2.resize(_ellipse_mask().astype(np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST)
    for _ in range(10):
        coarse = degrade(truth, rng)
        iou = ((coarse > 0) & (truth > 0)).sum() / ((coarse > 0) | (truth > 0)).sum()
        assert iou > 0.6
        assert set(np.unique(coarse)) <= {0.0, 1.0}


def test_holes_are_cut_inside_the_mask_only() -> None:
    rng = np.random.default_rng(0)
    truth = cv2.resize(_ellipse_mask().astype(np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST)
    for _ in range(10):
        holed = cut_holes(truth, rng)
        assert not (holed & ~truth.astype(bool)).any()  # never grows
        assert 0 < holed.sum() < truth.sum()
    empty = np.zeros((64, 64), np.uint8)
    assert not cut_holes(empty, rng).any()


def test_degrade_with_holes_covers_less_of_the_object() -> None:
    rng = np.random.default_rng(0)
    truth = cv2.resize(_ellipse_mask().astype(np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST)

    def covered(holes: float) -> float:
        masks = [degrade(truth, rng, holes=holes) for _ in range(20)]
        return float(np.mean([((m > 0) & (truth > 0)).sum() / truth.sum() for m in masks]))

    assert covered(1.0) < covered(0.0) - 0.05


def test_background_swap_keeps_the_object_and_replaces_the_rest() -> None:
    rng = np.random.default_rng(0)
    crop = np.full((32, 32, 3), (200, 60, 40), np.uint8)
    target = np.zeros((32, 32), np.uint8)
    target[8:24, 8:24] = 1
    other = [(np.full((90, 120, 3), (10, 120, 250), np.uint8), np.zeros((90, 120), np.uint8))]
    out = swap_background(crop, target, other, (40.0, 40.0), rng)
    assert out.shape == crop.shape and out.dtype == np.uint8
    np.testing.assert_allclose(out[12:20, 12:20], crop[12:20, 12:20], atol=1)
    np.testing.assert_allclose(out[:3, :3], other[0][0][:3, :3], atol=1)


def test_colour_jitter_changes_colours_not_geometry() -> None:
    rng = np.random.default_rng(0)
    crop = np.zeros((32, 32, 3), np.uint8)
    crop[:, 16:] = (200, 60, 40)
    changed = [jitter_colours(crop, rng, 1.0) for _ in range(5)]
    assert all(c.shape == crop.shape and c.dtype == np.uint8 for c in changed)
    assert all(np.abs(c.astype(int) - crop).max() > 0 for c in changed)
    for c in changed:  # the edge stays at column 16 (blur softens it by a pixel or two)
        profile = c.astype(float).mean(axis=(0, 2))
        assert np.argmax(np.abs(np.diff(profile))) in (14, 15, 16)


def test_colour_jitter_turns_the_hue_as_far_as_asked() -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 220

    def hue_shifts(hue: float) -> list[float]:
        rng = np.random.default_rng(1)
        shifts = []
        for _ in range(40):
            out = jitter_colours(red, rng, 1.0, hue)
            h = float(cv2.cvtColor(out[:1, :1], cv2.COLOR_RGB2HSV)[0, 0, 0])
            shifts.append(min(h, 180.0 - h))  # distance from red on the 180-unit circle
        return shifts

    assert max(hue_shifts(0.0)) <= 1.0
    assert max(hue_shifts(RefinerTrainConfig.hue)) <= RefinerTrainConfig.hue + 1.0
    wide = hue_shifts(90.0)
    assert max(wide) > 45.0 and max(wide) <= 91.0
    with pytest.raises(ValueError, match="hue"):
        RefinerTrainConfig(hue=120.0)


def test_augmentation_changes_the_crops_not_the_targets() -> None:
    rng = np.random.default_rng(2)
    frames = []
    for _ in range(4):
        mask = np.zeros((60, 80), np.uint8)
        mask[15:45, 20:60] = 1
        frames.append((rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), mask))
    plain = training_crops(frames, np.random.default_rng(5), 6, 32)
    augmented = training_crops(frames, np.random.default_rng(5), 1, 32,
                               RefinerTrainConfig(background_swap=1.0, photometric=1.0))
    off = training_crops(frames, np.random.default_rng(5), 6, 32,
                         RefinerTrainConfig(background_swap=0.0, photometric=0.0,
                                            coarse_holes=0.0))
    assert all(torch.equal(a, b) for a, b in zip(plain, off))
    assert torch.equal(plain[2][:1], augmented[2])  # the first crop's frame and box
    assert not torch.equal(plain[0][:1], augmented[0])
    with pytest.raises(ValueError, match="background_swap"):
        RefinerTrainConfig(background_swap=1.5)


@pytest.mark.parametrize("deepest_stride", [8, 16])
def test_refiner_training_lowers_the_loss(deepest_stride: int) -> None:
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(6):
        image = rng.integers(0, 80, (96, 128, 3), dtype=np.uint8)
        mask = np.zeros((96, 128), np.uint8)
        centre = (int(rng.integers(40, 88)), int(rng.integers(30, 66)))
        cv2.ellipse(mask, centre, (int(rng.integers(15, 30)), int(rng.integers(10, 20))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        image[mask > 0] = (200, 60, 40)
        frames.append((image, mask))
    torch.manual_seed(0)
    refiner = MaskRefiner(deepest_stride=deepest_stride)
    history = train_refiner(refiner, frames, RefinerTrainConfig(steps=40, batch=4),
                            size=32, seed=0)
    first = np.mean([h["refiner"] for h in history[:5]])
    last = np.mean([h["refiner"] for h in history[-5:]])
    assert last < 0.7 * first
    assert all(not p.requires_grad for p in refiner.stem_parameters())


def test_refiner_training_is_bit_reproducible() -> None:
    rng = np.random.default_rng(2)
    frames = []
    for _ in range(4):
        image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
        mask = np.zeros((64, 96), np.uint8)
        cv2.circle(mask, (int(rng.integers(30, 66)), 32), int(rng.integers(10, 20)), 1, -1)
        frames.append((image, mask))
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        refiner = MaskRefiner()
        train_refiner(refiner, frames, RefinerTrainConfig(steps=6, batch=4), size=32, seed=0)
        weights.append({n: p.detach().clone() for n, p in refiner.named_parameters()})
    assert all(torch.equal(weights[0][n], weights[1][n]) for n in weights[0])
    torch.manual_seed(0)
    untrained = dict(MaskRefiner().named_parameters())
    assert not all(torch.equal(weights[0][n], untrained[n]) for n in weights[0])


def test_a_model_with_a_refiner_needs_its_runner() -> None:
    config = SalientConfig(refiner_size=64)
    with pytest.raises(ValueError, match="refiner"):
        SalientPredictor(config, lambda x: x, lambda *x: x, lambda *x: x)
    with pytest.raises(ValueError, match="multiple of refiner_stride=8"):
        SalientConfig(refiner_size=60)
    with pytest.raises(ValueError, match="multiple of refiner_stride=16"):
        SalientConfig(refiner_size=72, refiner_stride=16)
    with pytest.raises(ValueError, match="refiner_stride=32"):
        SalientConfig(refiner_size=64, refiner_stride=32)


def test_heads_or_refiner_from_a_checkpoint_of_other_sequences_is_refused(tmp_path: Path) -> None:
    from vis_node.perception.nanodet import NanoDetG
    from vis_node.perception.salient_checkpoint import save_salient_model
    from vis_node.perception.salient_model import SalientNanoDet
    from vis_node.training.salient_train_config import SalientDataConfig, SalientTrainConfig
    from vis_node.training.salient_trainer import train_salient

    path = save_salient_model(SalientNanoDet(SalientConfig(), NanoDetG()), tmp_path / "m.pt",
                              meta={"trained_on": ["dog"]})
    config = SalientTrainConfig(
        data=SalientDataConfig(root=str(tmp_path), sequences=("dog", "cows"), folds=(("dog",),)),
        model=dataclasses.replace(SalientConfig(), refiner_size=64),
        output_dir=str(tmp_path / "runs"),
    )
    with pytest.raises(ValueError, match="--heads-from .*same fold"):
        train_salient(config, fold=0, heads_from=path)
    with pytest.raises(ValueError, match="--refiner-from .*same fold"):
        train_salient(config, fold=0, refiner_from=path)
    with pytest.raises(ValueError, match="not both"):
        train_salient(config, fold=0, heads_from=path, refiner_from=path)
