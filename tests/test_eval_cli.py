"""``vsis eval`` end to end on tiny PNG folders."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from vis_node.cli import main
from vis_node.io.labels import DAVIS_PALETTE, write_instance_png, write_semantic_png


def _write(root, seq: str, frames: np.ndarray, semantic: bool = False) -> None:
    for t, frame in enumerate(frames):
        path = root / seq / f"{t:05d}.png"
        if semantic:
            write_semantic_png(path, frame)
        else:
            write_instance_png(path, frame)


def _objects(num_frames: int = 4) -> np.ndarray:
    ids = np.zeros((num_frames, 12, 16), int)
    ids[:, 1:6, 1:6] = 1
    ids[:, 6:11, 8:14] = 2
    return ids


def _run(tmp_path, protocol: str, *extra: str) -> tuple[int, dict | None]:
    out = tmp_path / "reports" / f"{protocol}.json"
    code = main(
        [
            "eval",
            "--pred",
            str(tmp_path / "pred"),
            "--gt",
            str(tmp_path / "gt"),
            "--protocol",
            protocol,
            "--out",
            str(out),
            *extra,
        ]
    )
    return code, (json.loads(out.read_text()) if out.exists() else None)


def test_davis2016_report_and_missing_sequence(tmp_path, capsys, caplog) -> None:
    gt = _objects()
    _write(tmp_path / "gt", "alpha", gt)
    _write(tmp_path / "gt", "beta", gt)
    _write(tmp_path / "pred", "alpha", gt * 3)
    with caplog.at_level(logging.WARNING):
        code, report = _run(tmp_path, "davis2016")
    assert code == 0
    assert report["protocol"] == "davis2016"
    assert report["num_sequences"] == 2
    assert set(report["J"]) == {"mean", "recall", "decay"}
    assert set(report["F"]) == {"mean", "recall", "decay"}
    assert report["J"]["mean"] == pytest.approx(0.5)  # alpha perfect, beta missing -> empty
    assert report["F"]["mean"] == pytest.approx(0.5)
    assert report["JF"] == pytest.approx(0.5)
    assert report["per_sequence"]["alpha"]["JF"] == 1.0
    assert report["per_sequence"]["beta"] == {
        "J": 0.0,
        "F": 0.0,
        "JF": 0.0,
        "objects": {"1": {"J": 0.0, "F": 0.0}},
    }
    assert "beta is missing" in caplog.text
    printed = capsys.readouterr().out
    assert "alpha" in printed and "J mean" in printed


def test_void_pixels_in_palette_ground_truth(tmp_path) -> None:
    gt = np.zeros((12, 16), np.uint8)
    gt[2:6, 2:6] = 1
    gt[8:10, :] = 255  # void band
    path = tmp_path / "gt" / "s" / "00000.png"
    path.parent.mkdir(parents=True)
    image = Image.fromarray(gt, mode="P")
    image.putpalette(DAVIS_PALETTE)
    image.save(path)
    pred = np.where(gt == 1, 1, 0)
    pred[8:10, 3:12] = 1  # prediction spilling only onto void pixels
    _write(tmp_path / "pred", "s", pred[None])
    code, report = _run(tmp_path, "davis2016")
    assert code == 0
    assert report["J"]["mean"] == 1.0
    assert report["F"]["mean"] == 1.0


@pytest.mark.parametrize(
    ("protocol", "keys"),
    [
        ("davis2017-unsupervised", {"J", "F", "JF", "per_sequence"}),
        ("sesiv", {"JS", "FS", "OS"}),
        ("ytvis", {"AP", "AP50", "AP75", "AR1", "AR10"}),
        ("hota", {"HOTA", "IDF1", "IDSW"}),
    ],
)
def test_every_protocol_on_a_perfect_prediction(tmp_path, protocol: str, keys: set) -> None:
    gt = _objects()
    sem = np.where(gt == 1, 4, np.where(gt == 2, 7, 0))
    _write(tmp_path / "gt", "s", gt)
    _write(tmp_path / "pred", "s", np.where(gt > 0, 3 - gt, 0))  # ids swapped: 1 <-> 2
    _write(tmp_path / "gsem", "s", sem, semantic=True)
    _write(tmp_path / "psem", "s", sem, semantic=True)
    code, report = _run(
        tmp_path,
        protocol,
        "--pred-semantics",
        str(tmp_path / "psem"),
        "--gt-semantics",
        str(tmp_path / "gsem"),
    )
    assert code == 0
    assert report["protocol"] == protocol
    assert report["num_sequences"] == 1
    assert keys <= set(report)
    for key in keys - {"per_sequence", "J", "F", "IDSW"}:
        assert report[key] == pytest.approx(1.0), key
    if protocol == "hota":
        assert report["IDSW"] == 0 and isinstance(report["IDSW"], int)
    if protocol.startswith("davis"):
        assert report["J"] == {"mean": 1.0, "recall": 1.0, "decay": 0.0}


def test_missing_folder_exits_2_naming_it(tmp_path, capsys) -> None:
    _write(tmp_path / "gt", "s", _objects())
    code, report = _run(tmp_path, "davis2016")
    assert code == 2
    assert report is None
    assert str(tmp_path / "pred") in capsys.readouterr().err


def test_frame_size_mismatch_names_the_file(tmp_path, capsys) -> None:
    _write(tmp_path / "gt", "s", _objects(1))
    write_instance_png(tmp_path / "pred" / "s" / "00000.png", np.ones((12, 15), int))
    code, _ = _run(tmp_path, "davis2016")
    assert code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "pred" / "s" / "00000.png") in err
    assert "15x12" in err and "16x12" in err


def test_sesiv_without_semantics_exits_2(tmp_path, capsys) -> None:
    _write(tmp_path / "gt", "s", _objects(1))
    _write(tmp_path / "pred", "s", _objects(1))
    code, report = _run(tmp_path, "sesiv")
    assert code == 2
    assert report is None
    assert "--pred-semantics" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kept", "rule", "j_mean"),
    [((0, 2), "empty", 0.5), ((0, 2), "hold", 1.0), ((1,), "hold", 0.75)],
)
def test_missing_frames_score_empty_or_the_latest_earlier_prediction(
    tmp_path, caplog, kept, rule, j_mean
) -> None:
    """A replay at pace recorded writes only the frames the graph ran; ``--missing hold``
    scores the others with the prediction a subscriber last had (none before the first)."""
    gt = _objects(4)
    _write(tmp_path / "gt", "s", gt)
    for t in kept:
        write_instance_png(tmp_path / "pred" / "s" / f"{t:05d}.png", gt[t])
    with caplog.at_level(logging.WARNING):
        code, report = _run(tmp_path, "davis2016", "--missing", rule)
    assert code == 0
    assert report["J"]["mean"] == pytest.approx(j_mean)
    expected = "the latest earlier prediction" if rule == "hold" else "empty predictions"
    assert f"{4 - len(kept)} of 4 frames missing" in caplog.text and expected in caplog.text


def test_held_semantic_frames_repeat_the_latest_earlier_one(tmp_path) -> None:
    from vis_node.evaluation.loading import FolderPairs

    gt = _objects(3)
    classes = np.stack([np.full((12, 16), c, np.uint8) for c in (3, 4, 5)])
    for root in ("gt", "pred"):
        _write(tmp_path / root, "s", gt)
    _write(tmp_path / "gts", "s", classes, semantic=True)
    write_semantic_png(tmp_path / "preds" / "s" / "00001.png", classes[1])
    pairs = FolderPairs(tmp_path / "pred", tmp_path / "gt", pred_semantics=tmp_path / "preds",
                        gt_semantics=tmp_path / "gts", missing="hold")
    held = pairs.load("s").pred_semantics
    assert [int(frame[0, 0]) for frame in held] == [0, 4, 4]
    with pytest.raises(ValueError, match="choose one of empty, hold"):
        FolderPairs(tmp_path / "pred", tmp_path / "gt", missing="last")
