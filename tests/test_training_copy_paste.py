"""Copy-paste composition: instance count, occlusion, boxes."""

from __future__ import annotations

import numpy as np

from vis_node.training.config import CopyPasteConfig
from vis_node.training.copy_paste import Donor, donors_of, jitter_colors, paste_objects
from vis_node.training.samples import Sample

SIZE = 64
EXACT = CopyPasteConfig(
    probability=1.0, max_objects=2, scale=(1.0, 1.0), color_jitter=0.0, min_area=4
)


def _base() -> Sample:
    image = np.full((SIZE, SIZE, 3), 10, dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[8:40, 8:40] = True
    image[mask] = (200, 0, 0)
    return Sample(image, mask[None], np.array([1]), np.array([100]))


def _donor(color: tuple[int, int, int], side: int, label: int, identity: int) -> Donor:
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[5 : 5 + side, 20 : 20 + side] = True
    image[mask] = color
    return Donor(image, mask, label, identity)


def test_pasted_objects_become_instances_and_occlude() -> None:
    donors = [_donor((0, 255, 0), 16, 2, 7), _donor((0, 0, 255), 12, 3, 8)]
    out = paste_objects(_base(), donors, np.random.default_rng(3), EXACT)
    assert out.masks.shape == (3, SIZE, SIZE)
    assert out.labels.tolist() == [1, 2, 3]
    assert out.identities.tolist() == [100, 7, 8]
    # Masks are disjoint and the later pastes keep their full size (scale 1).
    assert int(out.masks.sum(axis=0).max()) == 1
    assert int(out.masks[2].sum()) == 12 * 12
    # The base object lost exactly the pixels now covered by pasted objects.
    original = _base().masks[0]
    assert int(out.masks[0].sum()) == int((original & ~(out.masks[1] | out.masks[2])).sum())
    # Image pixels under each mask are the pasted colours (no jitter).
    assert (out.image[out.masks[1]] == (0, 255, 0)).all()
    assert (out.image[out.masks[2]] == (0, 0, 255)).all()


def test_targets_boxes_match_masks() -> None:
    out = paste_objects(_base(), [_donor((0, 255, 0), 10, 2, 7)], np.random.default_rng(0), EXACT)
    target = out.target()
    for box, mask in zip(target["boxes"].numpy(), out.masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
    pasted = out.masks[1]
    x1, y1, x2, y2 = target["boxes"][1].int().tolist()
    assert (x2 - x1, y2 - y1) == (10, 10) and pasted[y1:y2, x1:x2].all()


def test_fully_covered_instance_is_dropped() -> None:
    big = _donor((0, 255, 0), 40, 2, 7)
    big.mask[:] = True
    big.image[:] = (0, 255, 0)
    out = paste_objects(_base(), [big], np.random.default_rng(0), EXACT)
    assert out.labels.tolist() == [2]
    assert out.masks.shape == (1, SIZE, SIZE) and out.masks[0].all()


def test_donors_of_lists_every_instance() -> None:
    donors = donors_of(_base())
    assert len(donors) == 1 and donors[0].label == 1 and donors[0].identity == 100


def test_jitter_strength_zero_is_identity() -> None:
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert np.array_equal(jitter_colors(pixels, np.random.default_rng(0), 0.0), pixels)
