"""Training data sources and batches: targets in the format S4Net.forward expects."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.synth.generator import SynthConfig, generate_video
from vis_node.synth.writer import video_seed
from vis_node.training.augment import BatchSampler
from vis_node.training.config import CopyPasteConfig, SourceConfig
from vis_node.training.image_sources import CocoSource
from vis_node.training.samples import IDENTITY_STRIDE, Sample, training_sample
from vis_node.training.video_sources import DavisSource, SynthSource

SYNTH_CLASSES = ("background", "disc", "box", "triangle", "star", "ring")
DAVIS_CLASSES = ("background", "person", "dog")
SIZE = 128


def _check_target(target: dict[str, torch.Tensor], count: int) -> None:
    assert set(target) == {"boxes", "masks", "labels", "track_ids"}
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (count, 4)
    assert target["masks"].dtype == torch.bool and target["masks"].shape == (count, SIZE, SIZE)
    assert target["labels"].dtype == torch.int64 and target["labels"].shape == (count,)
    assert target["track_ids"].dtype == torch.int64 and target["track_ids"].shape == (count,)


def test_synth_source_matches_generator() -> None:
    config = SourceConfig(kind="synth", videos=2, seed=3, frames=4, width=96, height=64)
    source = SynthSource(config, SYNTH_CLASSES)
    video = generate_video(video_seed(3, 1), SynthConfig(width=96, height=64, frames=4))
    frame = source.read(1, 2)
    assert np.array_equal(frame.image, video.frames[2])
    assert np.array_equal(frame.ids, video.ids[2])
    assert np.array_equal(frame.semantic(), video.semantic[2])
    assert source.sequences == ["synth_000", "synth_001"]
    sample = training_sample(frame, SIZE, 5 * IDENTITY_STRIDE)
    ids = [int(i) for i in np.unique(video.ids[2]) if i]
    assert sample.identities.tolist() == [5 * IDENTITY_STRIDE + i for i in ids]
    _check_target(sample.target(), len(ids))


def test_davis_source_one_instance_with_sequence_class(davis2016_root: Path) -> None:
    config = SourceConfig(
        kind="davis",
        root=str(davis2016_root),
        sequences=["dog"],
        categories={"dog": "dog"},
        frame_step=30,
    )
    source = DavisSource(config, DAVIS_CLASSES)
    assert source.frame_names(0) == ["00000", "00030"]
    frame = source.read(0, 1)
    assert frame.image.shape == (480, 854, 3) and frame.ids.shape == (480, 854)
    assert frame.classes == {1: 2}
    sample = training_sample(frame, SIZE, 0)
    assert sample.labels.tolist() == [2]
    _check_target(sample.target(), 1)


def test_coco_source_reads_polygons(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((40, 60, 3), 128, np.uint8))
    document = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 40, "width": 60}],
        "categories": [{"id": 7, "name": "dog"}, {"id": 9, "name": "zebra"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 0, "area": 400.0,
             "bbox": [10, 10, 20, 20], "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
            {"id": 2, "image_id": 1, "category_id": 9, "iscrowd": 0, "area": 100.0,
             "bbox": [40, 5, 10, 10], "segmentation": [[40, 5, 50, 5, 50, 15, 40, 15]]},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(document))
    config = SourceConfig(kind="coco", annotations=str(tmp_path / "ann.json"), images=str(tmp_path))
    source = CocoSource(config, DAVIS_CLASSES)
    assert source.sequences == ["a"]
    frame = source.read(0, 0)
    assert frame.classes == {1: 2}
    ys, xs = np.nonzero(frame.ids == 1)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 29, 10, 29)  # pycocotools raster
    assert not (frame.ids[5:15, 40:50]).any()


def _sampler() -> BatchSampler:
    source = SynthSource(
        SourceConfig(kind="synth", videos=3, seed=2, frames=6, width=96, height=64), SYNTH_CLASSES
    )
    return BatchSampler(
        [source],
        [1.0],
        input_size=SIZE,
        copy_paste=CopyPasteConfig(probability=1.0, max_objects=2, min_area=4),
        flip_probability=0.5,
    )


def test_batches_are_deterministic_and_pair_frames() -> None:
    sampler = _sampler()
    first = sampler.batch(np.random.default_rng([0, 4]), 4)
    again = sampler.batch(np.random.default_rng([0, 4]), 4)
    assert len(first) == 4
    for a, b in zip(first, again):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    for a, b in (first[:2], first[2:]):
        own_a = {int(i) // IDENTITY_STRIDE for i in a.identities}
        own_b = {int(i) // IDENTITY_STRIDE for i in b.identities}
        assert own_a & own_b  # the two frames of a pair share their sequence's objects


def test_batch_targets_feed_the_model() -> None:
    samples: list[Sample] = _sampler().batch(np.random.default_rng(1), 2)
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
    config = ModelConfig(
        pretrained_backbone=False, input_size=SIZE, fpn_channels=16, head_channels=16,
        seg_in_channels=8, seg_channels=8, seg_dilated_channels=8, seg_crop_size=8,
        class_hidden_dim=16, embedding_dim=8,
    )
    torch.manual_seed(0)
    losses = build_model(config)(images.float() / 255, [s.target() for s in samples])
    assert set(losses) == {f"loss_{n}" for n in ("objectness", "box", "mask", "class", "embedding")}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())


def _two_squares() -> Sample:
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 10:20, 10:20] = True
    masks[1, 40:50, 40:50] = True
    image = np.full((64, 64, 3), 200, np.uint8)
    return Sample(image, masks, np.array([1, 2]), np.array([7, 8]))


def test_zoom_in_crops_the_anchored_window_and_drops_what_leaves_it() -> None:
    zoomed = _two_squares().zoomed(2.0, (0.0, 0.0), min_area=4)
    assert zoomed.labels.tolist() == [1] and zoomed.identities.tolist() == [7]
    ys, xs = np.nonzero(zoomed.masks[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 39, 20, 39)
    assert (zoomed.image == 200).all()


def test_zoom_out_pads_with_black_at_the_anchor() -> None:
    zoomed = _two_squares().zoomed(0.5, (1.0, 1.0), min_area=4)
    assert zoomed.labels.tolist() == [1, 2]
    ys, xs = np.nonzero(zoomed.masks[1])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (52, 56, 52, 56)
    assert (zoomed.image[:32, :32] == 0).all() and (zoomed.image[40:, 40:] == 200).all()
    assert not _two_squares().zoomed(0.5, (1.0, 1.0), min_area=30).labels.size


def test_sampler_zoom_changes_object_sizes() -> None:
    source = SynthSource(
        SourceConfig(kind="synth", videos=3, seed=2, frames=6, width=96, height=64), SYNTH_CLASSES
    )
    plain, zooming = (
        BatchSampler([source], [1.0], input_size=SIZE,
                     copy_paste=CopyPasteConfig(probability=0.0, min_area=1),
                     flip_probability=0.0, zoom_range=zoom)
        for zoom in ((1.0, 1.0), (1.5, 3.0))
    )
    a = plain.batch(np.random.default_rng(5), 4)
    b = zooming.batch(np.random.default_rng(5), 4)
    area = lambda samples: np.mean([m.sum() for s in samples for m in s.masks])  # noqa: E731
    assert area(b) > 1.5 * area(a)
