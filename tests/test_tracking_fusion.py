"""SISO sequential fusion (Algorithm 1), confidence scores and motion saliency."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vis_node.tracking.fusion import (
    binarise_saliency,
    confidence_score,
    fuse_instances,
    sequential_fusion,
)
from vis_node.tracking.motion_gate import MotionSaliencyGate, motion_saliency
from vis_node.structures.instances import Instances


def _hand_made() -> tuple[np.ndarray, np.ndarray]:
    """10 x 10 frame: salient columns 0-5; instances A (cols 0-3), B (cols 3-7),
    C (a 2x2 corner outside), D (row 0, all columns)."""
    salient = np.zeros((10, 10), bool)
    salient[:, 0:6] = True  # 60 px
    masks = np.zeros((4, 10, 10), bool)
    masks[0, :, 0:4] = True  # A, 40 px: IoU 40/60
    masks[1, :, 3:8] = True  # B, 50 px: IoU 30/80, then 20/50 after A is removed
    masks[2, 8:, 8:] = True  # C: outside
    masks[3, 0, :] = True  # D, 10 px: IoU 6/64 = 0.094 <= theta
    return salient, masks


def test_sequential_fusion_hand_made() -> None:
    salient, masks = _hand_made()
    result = sequential_fusion(
        salient, masks, labels=np.array([1, 2, 3, 4]), cls_scores=np.array([0.9, 0.5, 0.99, 0.99])
    )
    assert result.selected.tolist() == [0, 1]
    np.testing.assert_allclose(result.seg_scores, [40 / 60, 20 / 50])
    expected = np.zeros((10, 10), np.int64)
    expected[:, 0:4] = 1
    expected[:, 4:6] = 2  # B only gets what A left of the salient region
    np.testing.assert_array_equal(result.fusion_map, expected)
    assert result.regions[1].sum() == 20
    # CS = 1.3 S_seg S_cls / (0.3 S_seg + S_cls): A 0.78 / 1.1, B 0.26 / 0.62
    np.testing.assert_allclose(result.confidences, [0.78 / 1.1, 0.26 / 0.62])
    assert result.frame_confidence == pytest.approx((0.78 / 1.1 + 0.26 / 0.62) / 2)


def test_sequential_fusion_threshold_and_empty() -> None:
    salient, masks = _hand_made()
    only_d = sequential_fusion(salient, masks[3:], np.array([4]), np.array([0.9]))
    assert only_d.selected.tolist() == []
    assert only_d.frame_confidence == 0.0
    assert not only_d.fusion_map.any()
    lowered = sequential_fusion(salient, masks[3:], np.array([4]), np.array([0.9]), theta=0.09)
    assert lowered.selected.tolist() == [0]
    none = sequential_fusion(salient, masks[:0], np.zeros(0, int), np.zeros(0))
    assert none.selected.tolist() == [] and none.regions.shape == (0, 10, 10)


def test_confidence_score_hand_computed() -> None:
    assert confidence_score(0.5, 0.8) == pytest.approx(1.3 * 0.4 / (0.15 + 0.8))
    assert confidence_score(1.0, 1.0) == pytest.approx(1.0)
    assert confidence_score(0.0, 0.0) == 0.0
    # beta^2 < 1 weights the segmentation score more: swapping the scores changes CS
    assert confidence_score(0.9, 0.3) > confidence_score(0.3, 0.9)


def test_fuse_instances_keeps_salient_cut_instances() -> None:
    salient, masks = _hand_made()
    instances = Instances.from_masks(
        masks, class_probs=np.array([[0.1, 0.9], [0.5, 0.5], [0.0, 1.0], [0.0, 1.0]])
    )
    kept, confidence, selected = fuse_instances(instances, salient)
    assert len(kept) == 2
    assert selected.tolist() == [0, 1]
    np.testing.assert_array_equal(kept.boxes, [[0, 0, 4, 10], [4, 0, 6, 10]])
    np.testing.assert_allclose(kept.saliency, [40 / 60, 20 / 50], rtol=1e-6)
    assert confidence == pytest.approx((0.78 / 1.1 + 0.26 / 0.62) / 2)


def test_binarise_saliency_mean_plus_std() -> None:
    saliency = np.array([[0.0, 0.0, 0.0, 1.0]])  # mean 0.25, std 0.433
    np.testing.assert_array_equal(binarise_saliency(saliency), [[False, False, False, True]])
    assert not binarise_saliency(np.full((3, 3), 0.7)).any()


@pytest.mark.parametrize("model", ["affine", "homography"])
def test_motion_saliency_ignores_camera_motion(model: str) -> None:
    yy, xx = np.mgrid[:96, :128].astype(np.float32)
    flow = np.stack([1.5 + 0.02 * xx, -0.5 + 0.01 * yy], axis=-1)  # zooming, panning camera
    moving = (xx - 40) ** 2 + (yy - 50) ** 2 < 12**2
    flow[moving] = (6.0, 2.0)
    saliency = motion_saliency(flow, model=model, grid_step=4)
    assert saliency.dtype == np.float32
    assert saliency[~moving].max() < 0.05
    assert saliency[moving].min() > 0.5
    salient = binarise_saliency(saliency)
    np.testing.assert_array_equal(salient, moving)


def test_motion_saliency_static_scene_stays_low() -> None:
    flow = np.random.default_rng(0).normal(0, 0.05, (64, 64, 2)).astype(np.float32)
    assert motion_saliency(flow).max() < 0.3


class _RecordedFlow:
    """Flow stub: ``(dx, 0)`` pixels inside ``moving`` (a bool mask), zero elsewhere."""

    def __init__(self, moving: np.ndarray, dx: float) -> None:
        self.moving, self.dx, self.calls = moving, dx, 0

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        self.calls += 1
        flow = np.zeros((*source.shape[:2], 2), np.float32)
        flow[self.moving, 0] = self.dx
        return flow


def _moving_and_static() -> Instances:
    masks = np.zeros((3, 60, 80), bool)
    masks[0, 40:55, 5:20] = True  # static
    masks[1, 10:30, 40:60] = True  # moving
    masks[2, 0:5, 0:5] = True  # static, small
    probs = np.tile(np.array([[0.1, 0.9]], np.float32), (3, 1))
    return Instances(
        masks=masks, boxes=np.zeros((3, 4), np.float32), class_probs=probs,
        saliency=np.full(3, 0.9, np.float32),
    )


def test_motion_gate_keeps_the_moving_instance() -> None:
    instances = _moving_and_static()
    flow = _RecordedFlow(instances.masks[1], dx=6.0)
    gate = MotionSaliencyGate(flow=flow)
    frame = np.zeros((60, 80, 3), np.uint8)
    first, confidence = gate(instances, frame)
    assert len(first) == 3 and confidence == 1.0 and flow.calls == 0
    kept, confidence = gate(instances, frame)
    assert len(kept) == 1 and np.array_equal(kept.masks[0], instances.masks[1])
    assert 0.0 < confidence <= 1.0
    gate.reset()
    assert len(gate(instances, frame)[0]) == 3  # first frame again: no motion evidence


def test_motion_gate_never_empties_a_frame() -> None:
    """Motion where no instance is (a wrong background model, an undetected mover):
    every instance passes and the frame confidence is 0."""
    instances = _moving_and_static()
    moving = np.zeros((60, 80), bool)
    moving[30:40, 25:35] = True
    gate = MotionSaliencyGate(flow=_RecordedFlow(moving, dx=6.0))
    frame = np.zeros((60, 80, 3), np.uint8)
    gate(instances, frame)
    kept, confidence = gate(instances, frame)
    assert len(kept) == 3 and confidence == 0.0


def test_motion_gate_passes_everything_without_motion() -> None:
    instances = _moving_and_static()
    gate = MotionSaliencyGate(flow=_RecordedFlow(np.zeros((60, 80), bool), dx=0.0))
    frame = np.zeros((60, 80, 3), np.uint8)
    gate(instances, frame)
    kept, confidence = gate(instances, frame)
    assert len(kept) == 3 and confidence == 1.0
    with pytest.raises(ValueError, match="theta"):
        MotionSaliencyGate(theta=1.0)


def _panning_scene(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB frames ``(width, height) = size`` of one textured scene: the camera pans
    4 % of the width, a square (its own texture) moves 10 % of the width the other
    way. Drawn at 854 x 480 and resized, so every size shows the same content."""
    rng = np.random.default_rng(3)
    texture = cv2.resize(rng.integers(0, 255, (60, 107, 3), dtype=np.uint8), (1300, 480))
    square = cv2.resize(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), (140, 140))
    frames = []
    for pan, x in ((0, 300), (34, 215)):
        frame = texture[:, pan:pan + 854].copy()
        frame[170:310, x:x + 140] = square
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    return frames[1], frames[0]


def test_motion_gate_judges_a_larger_frame_like_an_854_pixel_one(monkeypatch) -> None:
    """The flow grid is the same size for 854 x 480 and 1920 x 1080 frames: the fit takes
    the same number of samples (its cost does not grow with the camera) and finds the
    same moving region."""
    from vis_node.tracking import motion_gate

    fit = motion_gate._fit_background
    samples: list[int] = []

    def counting(src, dst, model, threshold):
        samples.append(len(src))
        return fit(src, dst, model, threshold)

    monkeypatch.setattr(motion_gate, "_fit_background", counting)
    regions = [
        MotionSaliencyGate().moving_region(*_panning_scene(size))
        for size in ((854, 480), (1920, 1080))
    ]
    assert samples[0] == samples[1] <= 6500
    assert regions[0].shape == regions[1].shape
    for region in regions:  # on the 320 x 180 grid: the square's new place, the still left
        assert region[70:110, 85:128].mean() > 0.9 and region[:, :60].mean() < 0.05
    iou = (regions[0] & regions[1]).sum() / (regions[0] | regions[1]).sum()
    assert iou > 0.9
