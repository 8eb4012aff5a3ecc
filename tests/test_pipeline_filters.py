"""Runtime filters (score, classes, count, mask area) in the core and in ``vsis run``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vis_node.pipeline.filters import FilteredPredictor, InstanceFilter, filter_predictor
from vis_node.structures.label_map import LabelMap
from vis_node.structures.instances import Instances

LABELS = LabelMap(["background", "person", "dog", "car"], "test")


def _instances() -> Instances:
    """Four instances of a 20x20 frame: areas 100, 4, 36, 64; classes person, dog, car, dog."""
    masks = np.zeros((4, 20, 20), bool)
    masks[0, :10, :10] = True
    masks[1, 12:14, 12:14] = True
    masks[2, 10:16, 0:6] = True
    masks[3, 12:20, 12:20] = True
    probs = np.array(
        [[0.5, 0.4, 0.1, 0.0], [0.0, 0.2, 0.7, 0.1], [0.1, 0.0, 0.1, 0.8], [0.0, 0.1, 0.6, 0.3]],
        np.float32,
    )
    return Instances.from_masks(
        masks, class_probs=probs, saliency=np.array([0.9, 0.3, 0.6, 0.75], np.float32)
    )


def _kept(instances: Instances) -> list[float]:
    return [round(float(s), 2) for s in instances.saliency]


def test_defaults_keep_everything():
    instances = _instances()
    assert InstanceFilter().keeps_all
    assert InstanceFilter()(instances, LABELS) is instances


@pytest.mark.parametrize(
    "settings,kept",
    [
        ({"score_threshold": 0.6}, [0.9, 0.6, 0.75]),
        ({"class_allow": ("dog",)}, [0.3, 0.75]),
        ({"class_allow": ("person", "car")}, [0.9, 0.6]),
        ({"max_instances": 2}, [0.9, 0.75]),
        ({"min_mask_area": 36}, [0.9, 0.6, 0.75]),
        ({"class_allow": ("dog",), "max_instances": 1}, [0.75]),
        ({"score_threshold": 0.5, "min_mask_area": 50, "max_instances": 5}, [0.9, 0.75]),
    ],
)
def test_filters_keep_the_right_instances_in_frame_order(settings, kept):
    """The background column never decides the class (instance 0 is a 'person')."""
    assert _kept(InstanceFilter(**settings)(_instances(), LABELS)) == kept


def test_bad_settings_and_unknown_classes_say_what_to_do():
    with pytest.raises(ValueError, match=r"score_threshold must be in \[0, 1\]"):
        InstanceFilter(score_threshold=1.5)
    with pytest.raises(ValueError, match="must be >= 0"):
        InstanceFilter(max_instances=-1)
    with pytest.raises(ValueError, match="choose from person, dog, car"):
        InstanceFilter(class_allow=("zebra",))(_instances(), LABELS)
    wrong = LabelMap(["background", "a"], "other")
    with pytest.raises(ValueError, match="4 class columns but the label map of 'other' has 2"):
        InstanceFilter(max_instances=1)(_instances(), wrong)


def test_filtered_predictor_wraps_any_predictor():
    class Fake:
        class_names = LABELS.names

        def __call__(self, image: np.ndarray) -> Instances:
            return _instances()

    fake = Fake()
    assert filter_predictor(fake, InstanceFilter(), "models/x/model.pt") is fake
    wrapped = filter_predictor(fake, InstanceFilter(max_instances=1), "models/dogs/model.pt")
    assert isinstance(wrapped, FilteredPredictor)
    assert wrapped.label_map == LabelMap(LABELS.names, "dogs")
    assert wrapped.class_names == LABELS.names
    assert _kept(wrapped(np.zeros((20, 20, 3), np.uint8))) == [0.9]
    with pytest.raises(ValueError, match="not in the label map of model 'dogs'"):
        filter_predictor(fake, InstanceFilter(class_allow=("cat",)), "models/dogs/model.pt")


def test_vsis_run_applies_the_filter_flags(tmp_path, capsys):
    from vis_node.cli import main
    from vis_node.synth import SynthConfig, generate_video

    frames = tmp_path / "frames"
    frames.mkdir()
    for index, image in enumerate(generate_video(4, SynthConfig(width=160, height=128, frames=3)).frames):
        cv2.imwrite(str(frames / f"{index:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    common = [str(frames), "--model", "synth", "--runtime", "torch", "--no-overlay"]
    assert main(["run", *common, "--out", str(tmp_path / "all")]) == 0
    assert main(["run", *common, "--out", str(tmp_path / "one"), "--max-instances", "1"]) == 0
    everything = json.loads((tmp_path / "all" / "results.json").read_text())
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    assert len(everything) > 1, "the synth model should find several objects here"
    assert 1 <= len(one) < len(everything)
    assert main(["run", *common, "--out", str(tmp_path / "bad"), "--classes", "zebra"]) == 2
    assert "choose from disc, box, triangle, star, ring" in capsys.readouterr().err
