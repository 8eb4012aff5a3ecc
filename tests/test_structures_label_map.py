"""LabelMap: the names of a model's classes and the model's name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vis_node.structures.label_map import LabelMap


def test_dict_round_trip_and_size():
    labels = LabelMap(["background", "person", "dog"], "davis")
    assert labels.to_dict() == {"model_name": "davis", "names": ["background", "person", "dog"]}
    assert LabelMap.from_dict(labels.to_dict()) == labels
    assert len(labels) == 3 and labels.names[2] == "dog"
    assert labels != LabelMap(["background", "person", "dog"], "synth")


@pytest.mark.parametrize(
    "names,model,message",
    [
        (["background"], "m", "at least one class"),
        (["background", ""], "m", "non-empty string"),
        (["background", 3], "m", "non-empty string"),
        (["background", "a"], "", "the model's name"),
    ],
)
def test_invalid_label_maps_are_refused(names, model, message):
    with pytest.raises(ValueError, match=message):
        LabelMap(names, model)


def test_from_dict_names_missing_keys():
    with pytest.raises(ValueError, match="lacks model_name"):
        LabelMap.from_dict({"names": ["background", "a"]})


def test_structures_import_nothing_above_them():
    package = Path(__file__).resolve().parents[1] / "vis_node" / "structures"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vis_node"):
                assert node.module.startswith("vis_node.structures"), f"{path.name}: {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("vis_node") for a in node.names), path.name


@pytest.mark.parametrize(
    "names,fallback",
    [
        (["background", "object", "person", "dog"], 1),  # the real model's layout
        (["background", "person", "object"], 2),
        (["background", "object"], None),  # class-agnostic: "object" is the one label
        (["background", "person", "dog"], None),
    ],
)
def test_fallback_class_is_the_object_class_next_to_named_ones(names, fallback):
    assert LabelMap(names, "m").fallback_class == fallback
