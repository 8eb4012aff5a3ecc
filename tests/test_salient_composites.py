"""Copy-paste composites of the salient heads' training (what they train: test_salient_model.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from vis_node.training.salient_composites import CompositeConfig, composite_images
from vis_node.training.salient_train_config import parse_config

REPO = Path(__file__).resolve().parents[1]

DONOR_COLOUR = (20, 40, 230)
"""Object colour of sequence 0's frames (on a red background)."""


def _frames() -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Two sequences of three 60x80 frames: a blue square on red, a white disc on green."""
    frames, sequence_of = [], []
    for sequence, (background, colour) in enumerate(
        [((200, 30, 30), DONOR_COLOUR), ((30, 160, 40), (250, 250, 250))]
    ):
        for shift in range(3):
            image = np.empty((60, 80, 3), np.uint8)
            image[:] = background
            mask = np.zeros((60, 80), np.uint8)
            if sequence == 0:
                mask[10 + shift : 30 + shift, 20:44] = 1
            else:
                yy, xx = np.mgrid[:60, :80]
                mask[(yy - 35) ** 2 + (xx - 50 - shift) ** 2 < 15**2] = 1
            image[mask > 0] = colour
            frames.append((image, mask))
            sequence_of.append(sequence)
    return frames, sequence_of


def test_composites_paste_one_sequences_object_onto_anothers_frame() -> None:
    frames, sequence_of = _frames()
    config = CompositeConfig(count=12, scale=(0.5, 1.0), color_jitter=0.0)
    made = list(composite_images(frames, sequence_of, config, np.random.default_rng(0)))
    assert len(made) == 12
    donors = set()
    for image, mask in made:
        assert mask.dtype == bool and mask.shape == image.shape[:2] and mask.any()
        inside = [tuple(int(v) for v in p) for p in image[mask]]
        outside = {tuple(int(v) for v in p) for p in image[~mask]}
        # the object comes from one sequence (its edge resampled), the frame around it
        # from the other, whose own object stays there but is not in the target mask
        donor_is_blue = inside.count(DONOR_COLOUR) >= 0.8 * len(inside)
        assert donor_is_blue or inside.count((250, 250, 250)) >= 0.8 * len(inside)
        donors.add(donor_is_blue)
        if donor_is_blue:
            assert outside <= {(30, 160, 40), (250, 250, 250)}
        else:
            assert outside <= {(200, 30, 30), DONOR_COLOUR}
    assert donors == {True, False}  # objects of both sequences were pasted


def test_composites_need_two_sequences_and_a_valid_config() -> None:
    frames, _ = _frames()
    with pytest.raises(ValueError, match="two sequences"):
        next(composite_images(frames, [0] * len(frames), CompositeConfig(count=1),
                              np.random.default_rng(0)))
    with pytest.raises(ValueError, match="composites.count"):
        CompositeConfig(count=-1)
    with pytest.raises(ValueError, match="composites.scale"):
        CompositeConfig(count=1, scale=(0.0, 1.0))
    values = yaml.safe_load((REPO / "vis_node" / "models" / "real" / "train.yaml").read_text())
    values["composites"] = {"count": 5, "colour": 0.1}
    with pytest.raises(ValueError, match="colour"):
        parse_config(values)
    values["composites"] = {"count": 5, "scale": [0.4, 0.9]}
    assert parse_config(values).composites == CompositeConfig(count=5, scale=(0.4, 0.9))
