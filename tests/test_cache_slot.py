"""The export cache verifies each slot by hash and rebuilds a damaged or foreign one."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from vis_node.cli import main
from vis_node.structures.errors import InputDataError
from vis_node.perception.cache_slot import RECORD_FILE, cached_slot, slot_problem
from vis_node.perception.checkpoint import save_model
from vis_node.perception.export_onnx import export_onnx
from vis_node.perception.onnx_runtime import OnnxPredictor
from vis_node.perception.predictor import TorchPredictor
from vis_node.perception.runtime import cached_onnx_export, make_predictor

from test_perception_runtime import _model

IMAGE = np.random.default_rng(3).integers(0, 256, (48, 80, 3), dtype=np.uint8)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VSIS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "graph"),
    [(_truncate, "dense.onnx"), (_empty, "instance.onnx")],
    ids=["truncated-dense", "empty-instance"],
)
def test_damaged_graph_is_rebuilt_with_one_log_line(
    cache: Path, caplog: pytest.LogCaptureFixture, damage, graph: str
) -> None:
    model = _model(0)
    first = cached_onnx_export(model)
    size = (first.folder / graph).stat().st_size
    damage(first.folder / graph)
    with caplog.at_level(logging.WARNING):
        repaired = cached_onnx_export(model)
    assert [r.getMessage() for r in caplog.records] == [
        f"rebuilding cached export {first.folder}: {graph} does not match its recorded "
        "hash (truncated, emptied or replaced)"
    ]
    assert repaired.folder == first.folder and (first.folder / graph).stat().st_size == size
    expected = TorchPredictor(model)(IMAGE)
    got = OnnxPredictor(repaired)(IMAGE)
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-5)
    np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-2)


def test_slot_holding_another_models_graphs_is_rebuilt(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model, other = _model(0), _model(1)
    mine, theirs = cached_onnx_export(model), cached_onnx_export(other)
    for name in ("dense.onnx", "instance.onnx"):
        shutil.copy(theirs.folder / name, mine.folder / name)
    with caplog.at_level(logging.WARNING):
        repaired = cached_onnx_export(model)
    [line] = [r.getMessage() for r in caplog.records]
    assert "dense.onnx does not match its recorded hash" in line
    expected = TorchPredictor(model)(IMAGE)
    wrong = TorchPredictor(other)(IMAGE)
    got = OnnxPredictor(repaired)(IMAGE)
    assert np.abs(expected.boxes - wrong.boxes).max() > 0.5
    np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-2)


def test_whole_slot_of_another_model_is_rebuilt(cache: Path, caplog: pytest.LogCaptureFixture):
    model, other = _model(0), _model(1)
    mine, theirs = cached_onnx_export(model), cached_onnx_export(other)
    shutil.rmtree(mine.folder)
    shutil.copytree(theirs.folder, mine.folder)
    with caplog.at_level(logging.WARNING):
        repaired = cached_onnx_export(model)
    [line] = [r.getMessage() for r in caplog.records]
    assert "it holds the export of another model" in line
    assert repaired.fingerprint == mine.fingerprint


def test_slot_without_a_record_is_rebuilt(cache: Path, caplog: pytest.LogCaptureFixture):
    model = _model(0)
    first = cached_onnx_export(model)
    record = json.loads((first.folder / RECORD_FILE).read_text())
    assert sorted(record["files"]) == ["dense.onnx", "export.json", "instance.onnx"]
    (first.folder / RECORD_FILE).unlink()
    with caplog.at_level(logging.WARNING):
        cached_onnx_export(model)
    assert "it has no slot.json" in caplog.records[0].getMessage()
    assert slot_problem(first.folder, record["key"]) is None


def test_cached_slot_is_generic_over_the_files_a_slot_holds(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "a.bin").write_bytes(b"graph a")
        (folder / "b.engine").write_bytes(b"engine b")

    def load(folder: Path) -> str:
        return (folder / "a.bin").read_text()

    slot = tmp_path / "kind" / "slot"
    assert cached_slot(slot, "k1", build, load) == "graph a"
    assert cached_slot(slot, "k1", build, load) == "graph a" and len(builds) == 1
    (slot / "b.engine").write_bytes(b"engine c")
    assert cached_slot(slot, "k1", build, load) == "graph a" and len(builds) == 2
    assert cached_slot(slot, "k2", build, load) == "graph a" and len(builds) == 3
    assert sorted(p.name for p in slot.iterdir()) == ["a.bin", "b.engine", RECORD_FILE]
    with pytest.raises(ValueError, match="wrote no files"):
        cached_slot(tmp_path / "kind" / "none", "k", lambda folder: None, load)


def test_cli_run_repairs_a_truncated_cache_slot(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    checkpoint = save_model(_model(0), tmp_path / "tiny" / "model.pt")
    export = make_predictor(checkpoint, "onnx").export
    _truncate(export.dense_path)
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000.png"), IMAGE)
    assert main(["run", str(frames), "--out", str(tmp_path / "out"), "--model",
                 str(checkpoint), "--no-overlay"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.startswith(f"rebuilding cached export {export.folder}: dense.onnx does not match")


def test_unloadable_export_folder_is_an_input_error_naming_the_cause(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    export_onnx(_model(0), folder)
    _empty(folder / "instance.onnx")
    with pytest.raises(InputDataError, match="instance.onnx: ONNX Runtime cannot load"):
        OnnxPredictor(folder)


def test_perception_node_backend_repairs_the_cache(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from vis_node.pipeline.backends import load_backend

    checkpoint = save_model(_model(0), tmp_path / "tiny" / "model.pt")
    export = make_predictor(checkpoint, "onnx").export
    _empty(export.instance_path)
    with caplog.at_level(logging.WARNING):
        backend = load_backend(str(checkpoint), runtime="onnx")
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"rebuilding cached export {export.folder}: instance.onnx")
    expected = TorchPredictor(_model(0))(IMAGE)
    np.testing.assert_allclose(backend.predict(IMAGE, 0).boxes, expected.boxes, atol=1e-2)


def test_salient_model_export_is_verified_and_rebuilt_too(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    from vis_node.perception.nanodet import NanoDetG
    from vis_node.perception.salient_checkpoint import save_salient_model
    from vis_node.perception.salient_config import SalientConfig
    from vis_node.perception.salient_model import SalientNanoDet

    torch.manual_seed(0)
    network = SalientNanoDet(SalientConfig(input_size=128), NanoDetG()).eval()
    checkpoint = save_salient_model(network, tmp_path / "salient" / "model.pt")
    image = cv2.resize(IMAGE, (128, 96))
    expected = make_predictor(checkpoint, "torch")(image)
    first = make_predictor(checkpoint, "onnx")
    [slot] = (cache / "onnx").iterdir()
    graphs = sorted(p.name for p in slot.glob("*.onnx"))
    assert len(graphs) == 3
    _truncate(slot / graphs[0])
    with caplog.at_level(logging.WARNING):
        repaired = make_predictor(checkpoint, "onnx")
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        f"rebuilding cached export {slot}: {graphs[0]} does not match its recorded hash "
        "(truncated, emptied or replaced)"
    )
    for predictor in (first, repaired):
        got = predictor(image)
        assert len(got) == len(expected)
        np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-2)
