"""``vsis train --validate-data`` on good and broken datasets, and the salient-folder source."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from vis_node.cli import main
from vis_node.training.config import TrainConfig
from vis_node.training.datasets import build_source
from vis_node.training.validate_data import SourceReport, validate_data

CLASSES = ["background", "dog", "car"]


def _config(*sources: dict) -> TrainConfig:
    return TrainConfig.from_dict(
        {"model": {"pretrained_backbone": False, "class_names": CLASSES}, "data": list(sources)}
    )


def _image(path: Path, size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    cv2.imwrite(str(path), rng.integers(0, 256, (size[1], size[0], 3), np.uint8))


def _mask(
    path: Path,
    size: tuple[int, int] = (40, 30),
    box: tuple[int, int, int, int] = (5, 5, 20, 15),
    palette: bool = False,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    array[y0:y1, x0:x1] = 1 if palette else 255
    if not palette:
        array[y0, x0:x1] = 90  # a soft (anti-aliased) edge, as in DUTS masks
    image = Image.fromarray(array, mode="P" if palette else "L")
    if palette:
        image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.save(path)


def _davis(root: Path) -> dict:
    for seq in ("dog-a", "car-b"):
        for k in range(2):
            _image(root / "JPEGImages" / "480p" / seq / f"{k:05d}.jpg")
            _mask(root / "Annotations" / "480p" / seq / f"{k:05d}.png", palette=True)
    return {"kind": "davis", "root": str(root), "categories": {"dog-a": "dog", "car-b": "car"}}


def _coco(root: Path) -> dict:
    _image(root / "images" / "a.jpg")
    _image(root / "images" / "b.jpg", (50, 20))
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.jpg", "width": 50, "height": 20},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 8, "name": "automobile"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 0, "area": 100.0,
             "bbox": [2, 2, 10, 10], "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
            {"id": 2, "image_id": 2, "category_id": 8, "iscrowd": 0, "area": 100.0,
             "bbox": [2, 2, 10, 10], "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
        ],
    }
    (root / "instances.json").write_text(json.dumps(data))
    return {"kind": "coco", "annotations": str(root / "instances.json"),
            "images": str(root / "images"), "categories": {"automobile": "car"}}


def _salient(root: Path) -> dict:
    for stem in ("x", "y"):
        _image(root / "images" / f"{stem}.jpg")
        _mask(root / "masks" / f"{stem}.png")
    return {"kind": "salient", "images": str(root / "images"), "masks": str(root / "masks"),
            "category": "dog"}


def _only(reports: list[SourceReport]) -> SourceReport:
    assert len(reports) == 1
    return reports[0]


def test_good_datasets_pass_with_counts(tmp_path):
    reports = validate_data(
        _config(_davis(tmp_path / "davis"), _coco(tmp_path / "coco"), _salient(tmp_path / "sal"),
                {"kind": "synth", "videos": 3, "frames": 4})
    )
    assert [(r.name, r.frames, r.instances, r.errors, r.warnings) for r in reports] == [
        ("data[0]", 4, 4, [], []),
        ("data[1]", 2, 2, [], []),
        ("data[2]", 2, 2, [], []),
        ("data[3]", 12, 0, [], []),
    ]
    assert reports[0].format().startswith("data[0] (davis): ok; 4 usable frames, 4 instances")


def test_broken_davis_root_lists_every_problem(tmp_path):
    source = _davis(tmp_path / "davis")
    root = tmp_path / "davis"
    (root / "JPEGImages" / "480p" / "dog-a" / "00001.jpg").unlink()
    _image(root / "JPEGImages" / "480p" / "car-b" / "00000.jpg", (41, 30))
    _mask(root / "Annotations" / "480p" / "car-b" / "00001.png", box=(0, 0, 0, 0), palette=True)
    source["categories"] = {"dog-a": "dog"}
    source["sequences"] = ["dog-a", "car-b", "cat-c"]
    report = _only(validate_data(_config(source)))
    errors = "\n".join(report.errors)
    assert len(report.errors) == 4, errors
    assert "dog-a/00001.png: no frame 00001.jpg for this annotation" in errors
    assert "car-b/00000.png: mask size (40, 30) (w, h) differs from the image's (41, 30)" in errors
    assert "car-b: no entry in categories" in errors
    assert "cat-c: sequence not found (the root has ['car-b', 'dog-a'])" in errors
    assert report.warnings == [
        f"{root}/Annotations/480p/car-b/00001.png: empty mask (no instance): trains as a "
        "background-only frame"
    ]
    assert report.frames == 2 and report.instances == 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: json.dumps({"images": []}),
         "missing or non-list keys ['annotations', 'categories']"),
        (lambda d: json.dumps({**d, "images": d["images"][:1]}), "image_id 2 is not in images"),
        (lambda d: json.dumps({**d, "categories": d["categories"][:1]}),
         "category_id 8 is not in categories"),
    ],
)
def test_broken_coco_json_is_reported(tmp_path, damage, message):
    source = _coco(tmp_path / "coco")
    path = Path(source["annotations"])
    path.write_text(damage(json.loads(path.read_text())))
    report = _only(validate_data(_config(source)))
    assert any(message in e for e in report.errors), report.errors


def test_coco_files_sizes_segmentations_and_classes(tmp_path):
    source = _coco(tmp_path / "coco")
    path = Path(source["annotations"])
    data = json.loads(path.read_text())
    data["images"][1]["height"] = 21
    data["images"].append({"id": 3, "file_name": "missing.jpg", "width": 40, "height": 30})
    data["categories"].append({"id": 9, "name": "zebra"})
    data["annotations"] += [
        {"id": 3, "image_id": 1, "category_id": 9, "segmentation": [[1, 1, 2]]},
        {"id": 4, "image_id": 1, "category_id": 7,
         "segmentation": [[3, 3, 3, 3, 3, 3]]},
    ]
    path.write_text(json.dumps(data))
    report = _only(validate_data(_config(source)))
    errors = "\n".join(report.errors)
    assert len(report.errors) == 3, errors
    assert "annotation 3: bad segmentation (polygons need at least 3 points" in errors
    assert "b.jpg: size (50, 20) (w, h) differs from the JSON's (50, 21)" in errors
    assert "missing.jpg" in errors
    warnings = "\n".join(report.warnings)
    assert "category 'zebra' is not a model class" in warnings
    assert "annotation 4: empty mask (zero area)" in warnings
    assert report.frames == 1 and report.instances == 1


def test_broken_salient_folders_and_the_source_reading_them(tmp_path):
    source = _salient(tmp_path / "sal")
    frames = build_source(TrainConfig.from_dict(
        {"model": {"pretrained_backbone": False, "class_names": CLASSES}, "data": [source]}
    ).data[0], tuple(CLASSES))
    frame = frames.read(0, 0)
    assert frames.sequences == ["x", "y"] and frame.classes == {1: 1}
    assert int(frame.ids.sum()) == 15 * 9  # the soft edge row (90 < 128) is background
    _image(tmp_path / "sal" / "images" / "z.png")
    _mask(tmp_path / "sal" / "masks" / "y.png", size=(40, 31))
    colour = np.zeros((30, 40, 3), np.uint8)
    colour[..., 2] = 255
    cv2.imwrite(str(tmp_path / "sal" / "masks" / "x.png"), colour)
    report = _only(validate_data(_config(source)))
    errors = "\n".join(report.errors)
    assert len(report.errors) == 3, errors
    assert "z.png: no mask z.png" in errors
    assert "y.png: mask size (40, 31) (w, h) differs" in errors
    assert "x.png: masks must be greyscale or palette PNGs, got mode RGB" in errors
    with pytest.raises(ValueError, match="salient data source needs images"):
        _config({"kind": "salient", "images": "a", "masks": "b"})
    with pytest.raises(ValueError, match=r"categories \['cat'\] are not in model.class_names"):
        _config({**source, "category": "cat"})


def test_cli_exit_codes(tmp_path, capsys):
    good = {"model": {"pretrained_backbone": False, "class_names": CLASSES},
            "data": [_salient(tmp_path / "sal")], "output_dir": str(tmp_path / "run")}
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    assert main(["train", str(tmp_path / "good.yaml"), "--validate-data"]) == 0
    assert "0 errors: ready to train" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()
    (tmp_path / "sal" / "masks" / "x.png").unlink()
    assert main(["train", str(tmp_path / "good.yaml"), "--validate-data"]) == 2
    out = capsys.readouterr().out
    assert "data[0] (salient): ERRORS" in out and "1 errors: fix them before training" in out


def _ytvis(root: Path) -> dict:
    from vis_node.io.ytvis_json import encode_rle

    names = [f"clip/{k:05d}.jpg" for k in range(2)]
    for name in names:
        _image(root / "JPEGImages" / name)
    big, small = np.zeros((30, 40), bool), np.zeros((30, 40), bool)
    big[2:20, 2:30] = True
    small[5:10, 5:10] = True
    data = {
        "videos": [{"id": 4, "width": 40, "height": 30, "length": 2, "file_names": names}],
        "categories": [
            {"id": 1, "name": "dog"}, {"id": 2, "name": "zebra"}, {"id": 3, "name": "car"}
        ],
        "annotations": [
            {"id": 1, "video_id": 4, "category_id": 1, "iscrowd": 0,
             "segmentations": [encode_rle(big), encode_rle(big)]},
            {"id": 2, "video_id": 4, "category_id": 3, "iscrowd": 0,
             "segmentations": [encode_rle(small), None]},
            {"id": 3, "video_id": 4, "category_id": 2, "iscrowd": 0,
             "segmentations": [encode_rle(small), encode_rle(small)]},
        ],
    }
    (root / "train.json").write_text(json.dumps(data))
    return {"kind": "ytvis", "annotations": str(root / "train.json"),
            "images": str(root / "JPEGImages")}


def test_ytvis_videos_keep_identities_and_broken_ones_are_reported(tmp_path):
    source = _ytvis(tmp_path / "yt")
    videos = build_source(_config(source).data[0], tuple(CLASSES))
    assert videos.sequences == ["clip"] and videos.frame_names(0) == ["00000", "00001"]
    first, second = videos.read(0, 0), videos.read(0, 1)
    assert first.classes == {1: 1, 2: 2} and second.classes == {1: 1}
    assert int((first.ids == 2).sum()) == 25 and int((first.ids == 1).sum()) == 18 * 28 - 25
    report = _only(validate_data(_config(source)))
    assert (report.frames, report.instances, report.errors) == (2, 3, [])
    assert report.warnings == [f"{source['annotations']}: category 'zebra' is not a model "
                               "class: its tracks are skipped (map it with categories: "
                               "{ytvis: model})"]
    path = Path(source["annotations"])
    data = json.loads(path.read_text())
    data["annotations"][0]["segmentations"].pop()
    path.write_text(json.dumps(data))
    (tmp_path / "yt" / "JPEGImages" / "clip" / "00001.jpg").unlink()
    report = _only(validate_data(_config(source)))
    assert report.errors == [f"{path}: video 4: annotations [1] do not have one segmentation "
                             "per frame (2)"]
    path.write_text("[]")
    report = _only(validate_data(_config(source)))
    assert "not a YouTube-VIS annotation file" in report.errors[0]
