"""Sets of heads trained apart and averaged (``SalientConfig.head_ensemble``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import synthetic_frame_features

from vis_node.perception.head_ensemble import HeadEnsemble
from vis_node.perception.nanodet import load_nanodet
from vis_node.perception.salient_checkpoint import load_salient_model, save_salient_model
from vis_node.perception.salient_config import SalientConfig
from vis_node.perception.salient_model import MaskHead, SaliencyHead, SalientNanoDet
from vis_node.training import salient_trainer
from vis_node.training.salient_train_config import parse_config

REPO = Path(__file__).resolve().parents[1]


def _features(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    p3 = torch.from_numpy(rng.standard_normal((1, 128, 8, 12), np.float32))
    p4 = torch.from_numpy(rng.standard_normal((1, 128, 4, 6), np.float32))
    images = torch.from_numpy(rng.standard_normal((1, 3, 64, 96), np.float32))
    rois = torch.tensor([[0.0, 24.0, 16.0, 64.0, 48.0], [0.0, 2.0, 3.0, 30.0, 40.0]])
    return p3, p4, images, rois


class _Fixed(torch.nn.Module):
    """A member whose outputs are its first row's first value and one fixed row."""

    def __init__(self, row: list[float]) -> None:
        super().__init__()
        self.row = torch.tensor([row])

    def forward(self, _: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.row[:, 0], self.row


def test_an_ensemble_averages_logits_and_renormalises_embeddings() -> None:
    torch.manual_seed(0)
    config = SalientConfig()
    p3, p4, images, rois = _features(np.random.default_rng(0))
    geometry = torch.rand(2, 9)
    saliency = [SaliencyHead(128, config) for _ in range(3)]
    masks = [MaskHead(128, config) for _ in range(2)]
    with torch.no_grad():
        logits = HeadEnsemble(saliency)(p3, p4, rois, geometry)
        mask_logits, embeddings = HeadEnsemble(masks, unit_outputs=(1,))(p3, p4, images, rois)
        singles = [head(p3, p4, images, rois) for head in masks]
        expected = torch.stack([h(p3, p4, rois, geometry) for h in saliency]).mean(dim=0)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(mask_logits, (singles[0][0] + singles[1][0]) / 2)
    mean = (singles[0][1] + singles[1][1]) / 2
    torch.testing.assert_close(embeddings, mean / mean.norm(dim=1, keepdim=True))
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(2))
    # members that disagree: the mean of two orthogonal unit rows is restored to unit length
    unit = HeadEnsemble([_Fixed([1.0, 0.0]), _Fixed([0.0, 1.0])], unit_outputs=(1,))
    scores, rows = unit(torch.zeros(1))
    torch.testing.assert_close(scores, torch.tensor([0.5]))
    torch.testing.assert_close(rows, torch.tensor([[2 ** -0.5, 2 ** -0.5]]))
    with pytest.raises(ValueError, match="at least one member"):
        HeadEnsemble([])


def test_one_set_keeps_the_checkpoint_layout_and_more_sets_keep_the_first_draws() -> None:
    models = {}
    for size in (1, 3):
        torch.manual_seed(0)
        config = SalientConfig(head_ensemble=size, refiner_size=64)
        models[size] = SalientNanoDet(config, load_nanodet())
    single = models[1].state_dict()
    triple = models[3].state_dict()
    assert "saliency_head.mlp.0.weight" in single and "mask_head.fuse.4.weight" in single
    assert len(models[1].head_sets()) == 1 and len(models[3].head_sets()) == 3
    for key, value in single.items():
        if key.startswith(("saliency_head.", "mask_head.")):
            part, rest = key.split(".", 1)
            # the first set and the refiner start from the draws of a one-set model
            assert torch.equal(triple[f"{part}.members.0.{rest}"], value)
            assert not torch.equal(triple[f"{part}.members.2.{rest}"], value) or "bias" in rest
        else:
            assert torch.equal(triple[key], value), key
    with pytest.raises(ValueError, match="head_ensemble=0"):
        SalientConfig(head_ensemble=0)


def test_an_ensemble_checkpoint_loads_and_predicts_as_saved(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SalientNanoDet(SalientConfig(head_ensemble=2), load_nanodet()).eval()
    path = save_salient_model(model, tmp_path / "model.pt", meta={"seed": 0})
    loaded, meta = load_salient_model(path)
    assert loaded.config.head_ensemble == 2 and meta == {"seed": 0}
    p3, p4, images, rois = _features(np.random.default_rng(1))
    with torch.no_grad():
        # the checkpoint stores float16 weights
        want = [h.half().float()(p3, p4, images, rois)[0] for _, h in model.head_sets()]
        got = loaded.mask_head(p3, p4, images, rois)[0]
    torch.testing.assert_close(got, (want[0] + want[1]) / 2, atol=1e-4, rtol=1e-4)
    one_set = SalientNanoDet(SalientConfig(), load_nanodet())
    with pytest.raises(RuntimeError, match="members"):
        one_set.load_state_dict(loaded.state_dict())


def _trained_heads(size: int, tmp_path: Path, monkeypatch) -> tuple[SalientNanoDet, list]:
    """A model with ``size`` sets of heads after ``_train_heads`` (3 steps each) on
    synthetic cached frames, seed 5; and its loss history."""
    values = yaml.safe_load((REPO / "vis_node" / "models" / "real" / "train.yaml").read_text())
    values.update(steps=3, frames_per_step=2, seed=5, composites={"count": 0})
    values["model"] = {**values["model"], "head_ensemble": size}
    config = parse_config(values)
    rng = np.random.default_rng(7)
    frames = [synthetic_frame_features(rng) for _ in range(4)]
    monkeypatch.setattr(salient_trainer, "DavisRoot", lambda root: root)
    monkeypatch.setattr(salient_trainer, "onnx_dense_runner", lambda model, folder: None)
    monkeypatch.setattr(salient_trainer, "sequence_features", lambda *args, **kw: frames)
    torch.manual_seed(config.seed)
    model = SalientNanoDet(config.model, load_nanodet())
    history = salient_trainer._train_heads(
        model, config, ("dog",), tmp_path, np.random.default_rng(config.seed)
    )
    return model, history


def test_each_set_of_heads_trains_with_its_own_seed(tmp_path: Path, monkeypatch) -> None:
    single, single_history = _trained_heads(1, tmp_path, monkeypatch)
    pair, history = _trained_heads(2, tmp_path, monkeypatch)
    one = {k: v for k, v in single.state_dict().items() if k.startswith("saliency_head.")}
    assert one
    pair_state = pair.state_dict()
    for key, value in one.items():
        rest = key.split(".", 1)[1]
        # the first set trains exactly as a one-set model does
        assert torch.equal(pair_state[f"saliency_head.members.0.{rest}"], value)
    second, _ = pair.head_sets()[1]
    torch.manual_seed(6)  # seed + 1: the second set's initial weights
    fresh = SaliencyHead(128, pair.config)
    moved = [not torch.equal(p, q) for p, q in zip(second.parameters(), fresh.parameters())]
    differs = [not torch.equal(p, q) for p, q in
               zip(second.parameters(), pair.head_sets()[0][0].parameters())]
    assert all(moved) and all(differs)
    assert [h["heads"] for h in history[:-1]] == [0, 0, 0, 1, 1, 1]
    assert history[:3] == single_history[:3]
    assert history[-1] == {"frames": 8, "composites": 0}  # two sequences' worth: flip on
