"""Smoke test of ``vsis bench-model`` and the latency / FLOP helpers (not a benchmark)."""

from __future__ import annotations

import pytest
from torch import nn

from vis_node.cli import main
from vis_node.perception.bench import count_flops, measure_latency


def test_count_flops_of_a_linear_layer():
    import torch

    layer = nn.Linear(8, 4)
    assert count_flops(layer, torch.zeros(3, 8)) == 2 * 3 * 8 * 4


def test_measure_latency_counts_calls():
    calls = []
    stats = measure_latency(lambda: calls.append(1), warmup=2, iterations=5)
    assert len(calls) == 7
    assert stats.p90_ms >= stats.median_ms >= 0.0 and stats.throughput > 0 and stats.cpu_ms >= 0
    with pytest.raises(ValueError, match="iterations >= 1"):
        measure_latency(lambda: None, warmup=0, iterations=0)


def test_bench_model_prints_one_row_per_backbone_runtime_and_maskrcnn(capsys):
    code = main(["bench-model", "--size", "64", "--backbones", "mobilenet_v2",
                 "--iterations", "1", "--warmup", "0"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("s4net", "maskrcnn"))]
    assert [row[:2] for row in rows] == [
        ["s4net-mobilenet_v2", "torch"], ["s4net-mobilenet_v2", "onnx"],
        ["maskrcnn-r50-fpn", "torch"],
    ]
    assert rows[0][2] == rows[1][2] and rows[0][3] == rows[1][3]
    assert rows[2][-2:] == ["1.00x", "1.000"]


def test_bench_model_rejects_unknown_runtime(capsys):
    assert main(["bench-model", "--runtimes", "tvm", "--iterations", "1"]) == 2
    assert "unknown runtimes" in capsys.readouterr().err


def test_compare_predictions_pairs_instances_by_mask_iou():
    import numpy as np

    from vis_node.perception.compare import compare_predictions
    from vis_node.structures.instances import Instances

    masks = np.zeros((3, 10, 10), bool)
    masks[0, :5, :5] = True
    masks[1, 5:, 5:] = True

    def reference(image):
        return Instances(masks, np.array([[0, 0, 5, 5], [5, 5, 10, 10], [0, 0, 0, 0]]),
                         np.eye(3)[[1, 2, 1]], np.ones(3), scores=np.array([0.9, 0.8, 0.6]))

    def candidate(image):
        shifted = masks[[1, 0]].copy()
        shifted[1, :5, 4] = False
        return Instances(shifted, np.array([[5, 5, 10, 10], [0, 0, 4, 5]]),
                         np.eye(3)[[2, 2]], np.ones(2), scores=np.array([0.8, 0.7]))

    report = compare_predictions(reference, candidate, [np.zeros((10, 10, 3), np.uint8)])
    assert report["reference_instances"] == 3 and report["candidate_instances"] == 2
    assert report["matched_fraction"] == pytest.approx(2 / 3)
    assert report["mean_mask_iou"] == pytest.approx((1.0 + 0.8) / 2)
    assert report["max_score_diff"] == pytest.approx(0.2)
    assert report["mean_box_diff_px"] == pytest.approx(0.125)
    assert report["class_agreement"] == 0.5
