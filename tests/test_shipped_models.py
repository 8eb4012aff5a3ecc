"""Pinned outputs of the shipped S4Net models on fixed frames, eager and ONNX Runtime.

A change of the weights, the post-processing or a runtime shows up here as moved boxes,
scores or mask areas (the `real` model is pinned in test_salient_model.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data_dir

DAVIS = shared_data_dir() / "davis2016"

SYNTH_EXPECTED = [  # label, box (x1, y1, x2, y2 px), score, mask area (px)
    ("triangle", (108.7, 84.1, 158.6, 136.1), 1.000, 1067),
    ("star", (161.0, 59.6, 210.3, 108.6), 1.000, 820),
    ("box", (232.0, 43.4, 280.5, 91.0), 1.000, 1696),
    ("box", (198.0, 36.0, 269.0, 106.4), 0.981, 1822),
    ("star", (132.0, 63.8, 202.1, 133.4), 0.918, 1284),
    ("star", (173.0, 45.8, 241.9, 110.4), 0.873, 1289),
]

DAVIS_EXPECTED = [  # the four strongest instances on cows/00020
    ("cow", (212.9, 145.2, 610.0, 406.9), 1.000, 47124),
    ("cow", (128.6, 157.7, 338.9, 368.5), 0.992, 5971),
    ("cow", (448.2, 131.6, 652.4, 325.1), 0.988, 11886),
    ("cow", (184.9, 106.2, 418.3, 335.8), 0.982, 20112),
]


def _check(predictor, image: np.ndarray, expected: list, count: int | None = None) -> None:
    out = predictor(image)
    if count is not None:
        assert len(out) == count
    out = out.select(np.arange(len(expected)))
    assert [predictor.class_names[c] for c in out.labels] == [e[0] for e in expected]
    np.testing.assert_allclose(out.boxes, [e[1] for e in expected], atol=0.5)
    np.testing.assert_allclose(out.scores, [e[2] for e in expected], atol=0.005)
    np.testing.assert_allclose(out.masks.sum((1, 2)), [e[3] for e in expected], rtol=0.01)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_synth_model_on_a_fixed_synthetic_frame(runtime, tmp_path, monkeypatch):
    from vis_node.perception.runtime import make_predictor
    from vis_node.synth import SynthConfig, generate_video

    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    frame = generate_video(7, SynthConfig(width=320, height=240, frames=3)).frames[2]
    _check(make_predictor("synth", runtime), frame, SYNTH_EXPECTED, count=6)


@pytest.mark.skipif(not DAVIS.is_dir(), reason="needs ../shared/data/davis2016")
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_davis_model_on_a_fixed_real_frame(runtime, tmp_path, monkeypatch):
    from vis_node.io.readers import read_image
    from vis_node.perception.runtime import make_predictor

    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    image = read_image(DAVIS / "JPEGImages" / "480p" / "cows" / "00020.jpg")
    _check(make_predictor("davis", runtime), image, DAVIS_EXPECTED, count=10)
