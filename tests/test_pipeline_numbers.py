"""Pinned accuracy of ``vsis run --model synth`` on a seeded synthetic video (regression).

The numbers were measured once with ONNX Runtime on the CPU; a change to the model,
post-processing, tracker or unification that moves them fails here. Update them only
together with a note saying why the change is right.
"""

from __future__ import annotations

import pytest

from vis_node.cli import main
from vis_node.evaluation import evaluate
from vis_node.synth.generator import SynthConfig
from vis_node.synth.writer import write_synth_root

PINNED_JF = 0.7462
"""DAVIS-2016 J&F (class-agnostic) of the two seeded videos."""

PINNED_AP50 = 0.7087
"""YouTube-VIS AP at IoU 0.5, with the unified classes."""

TOLERANCE = 2e-3
"""Room for float differences between CPU kernels; far below any real regression."""


def test_vsis_run_synth_scores_the_pinned_numbers(tmp_path):
    root = write_synth_root(tmp_path / "synth", videos=2, seed=4242, config=SynthConfig(frames=16))
    out = tmp_path / "run"
    assert main(["run", str(root), "--out", str(out), "--model", "synth", "--no-overlay"]) == 0
    gt = root / "Annotations" / "480p"
    davis = evaluate("davis2016", out / "instances", gt)
    ytvis = evaluate(
        "ytvis", out / "instances", gt,
        pred_semantics=out / "semantics", gt_semantics=root / "Semantics" / "480p",
    )
    assert davis["num_sequences"] == 2
    assert davis["JF"] == pytest.approx(PINNED_JF, abs=TOLERANCE)
    assert ytvis["AP50"] == pytest.approx(PINNED_AP50, abs=TOLERANCE)


def test_vsis_run_with_the_ground_truth_oracle_scores_one(tmp_path):
    root = write_synth_root(tmp_path / "synth", videos=2, seed=4242, config=SynthConfig(frames=8))
    out = tmp_path / "run"
    assert main(["run", str(root), "--out", str(out), "--model", f"gt:{root}", "--no-overlay"]) == 0
    davis = evaluate("davis2016", out / "instances", root / "Annotations" / "480p")
    assert davis["num_sequences"] == 2
    assert davis["JF"] == pytest.approx(1.0), "each sequence replays its own annotations"
