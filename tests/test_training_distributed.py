"""Data-parallel training: sharding of the global batch, and two Gloo processes under
torchrun matching one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from vis_node.perception.config import ModelConfig
from vis_node.perception.model import build_model
from vis_node.training.config import TrainConfig
from vis_node.training.distributed import DistContext, StepUnits, check_partition, step_batches
from vis_node.training.trainer import train

from tests.test_training_trainer import TINY_MODEL


class _UnitSampler:
    """Stands in for BatchSampler: a unit's samples record the unit's first draw."""

    def batch(self, rng: np.random.Generator, size: int) -> list[int]:
        first = int(rng.integers(1 << 30))
        return [first] * size


def _micro_batches(
    world: int, rank: int, accumulation: int, batch: int, steps: int, start: int = 1
) -> list[list[list[int]]]:
    sampler: Any = _UnitSampler()
    dataset = StepUnits(sampler, seed=3, batch_size=batch, steps=steps)
    return list(
        step_batches(
            dataset,
            DistContext(rank, world, "cpu"),
            start_step=start,
            grad_accumulation=accumulation,
            num_workers=0,
        )
    )


def test_ranks_and_accumulation_cut_a_step_into_the_same_micro_batches() -> None:
    single = _micro_batches(1, 0, 4, batch=8, steps=3)
    ranks = [_micro_batches(2, r, 2, batch=8, steps=3) for r in range(2)]
    assert len(single) == 2 and all(len(step) == 4 for step in single)  # steps 1 and 2
    for step in range(2):
        # micro-batch a of rank r is the single process's micro-batch r + a * world
        for r in range(2):
            for a in range(2):
                assert ranks[r][step][a] == single[step][r + 2 * a]
        drawn = [x for micro in single[step] for x in micro]
        assert len(drawn) == 8 and len(set(drawn)) == 4  # four pairs, each two frames
    assert set(single[0][0]).isdisjoint(single[1][0])
    # a resumed run (start at step 1) continues with the batches of an uninterrupted one
    for r in range(2):
        assert _micro_batches(2, r, 2, batch=8, steps=3, start=0)[1:] == ranks[r]


def test_a_global_batch_that_does_not_split_is_refused() -> None:
    check_partition(8, 2, 2)
    with pytest.raises(ValueError, match="multiple of 8"):
        check_partition(6, 2, 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        check_partition(2, 2, 1)


def _values(out: Path, accumulation: int) -> dict[str, object]:
    return {
        "model": dict(TINY_MODEL),
        "data": [{"kind": "synth", "videos": 4, "seed": 1, "frames": 4, "width": 96, "height": 64}],
        "copy_paste": {"probability": 0.5, "max_objects": 1, "min_area": 4},
        "optimizer": {"name": "sgd", "lr": 0.01, "warmup_steps": 1},
        "steps": 3,
        "batch_size": 4,
        "grad_accumulation": accumulation,
        "checkpoint_interval": 10,
        "seed": 7,
        "num_threads": 1,
        "output_dir": str(out),
    }


def _checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)


def _torchrun(config_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    launch = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "vis_node.cli", "train", str(config_path), "--device", "cpu", *extra,
    ]
    return subprocess.run(launch, env=env, capture_output=True, text=True, timeout=240)


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(_values(tmp_path / "ddp", 1)))
    done = _torchrun(config_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1 of 2 on cpu (gloo)" in done.stderr

    single = train(TrainConfig.from_dict(_values(tmp_path / "single", 2)))
    ddp, one = _checkpoint(tmp_path / "ddp"), _checkpoint(single)
    assert ddp["state"]["step"] == one["state"]["step"] == 3
    assert ddp["model"].keys() == one["model"].keys()
    for name, value in one["model"].items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=1e-6, atol=1e-6, msg=name)
    for a, b in zip(ddp["state"]["history"], one["state"]["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert (tmp_path / "ddp" / "final.pt").is_file()
    # the tolerance tells the two batch splits apart: one process without accumulation
    # (one micro-batch of four images) ends elsewhere
    whole = _checkpoint(train(TrainConfig.from_dict(_values(tmp_path / "whole", 1))))["model"]
    assert max(float((whole[k] - one["model"][k]).abs().max()) for k in whole) > 2e-5
    # and the three steps moved the weights, so the match is not between untouched models
    torch.manual_seed(7)
    start = build_model(ModelConfig.from_dict(TINY_MODEL)).state_dict()
    assert max(float((start[k] - one["model"][k]).abs().max()) for k in start) > 1e-3
