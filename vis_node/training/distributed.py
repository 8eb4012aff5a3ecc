"""Data-parallel training plumbing: process group, sharded batch loading, loss averaging.

``vsis train`` runs unchanged under ``torchrun`` (one process per GPU, or several CPU
processes)::

    torchrun --nproc_per_node 2 -m vis_node.cli train CONFIG          # one machine
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 \\
        -m vis_node.cli train CONFIG                                   # two machines

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :class:`DistContext`
reads them and joins the process group (NCCL on GPUs, Gloo on CPUs).

Batches. A step's global batch of ``batch_size`` images is made of *units*: pairs of
frames of one sequence (they share identities for the embedding loss), plus one single
frame when ``batch_size`` is odd. Unit ``u`` of step ``s`` has the global index
``g = s * U + u`` (``U`` units per step) and draws all its randomness from
``numpy.random.default_rng([seed, g])``, so its content depends neither on the rank
that loads it nor on the number of processes. :class:`torch.utils.data.DistributedSampler`
deals the units round-robin to the ranks (rank ``r`` gets ``u = r (mod W)``); a rank
splits its share round-robin into ``grad_accumulation`` micro-batches. Each micro-batch
is one forward/backward pass whose loss is normalised within the micro-batch (the
S4Net losses average over the micro-batch's anchors, cells and instances), and the
step's gradient is the mean over all ``W x grad_accumulation`` micro-batches. Hence
``W`` processes with accumulation ``A`` compute the same step as one process with
accumulation ``W x A``: micro-batch ``a`` of rank ``r`` holds the units
``u = r + a W (mod W A)``, and one process's micro-batch ``r + a W`` holds exactly those.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from vis_node.perception.device import cuda_unavailable_reason, resolve_device
from vis_node.training.augment import BatchSampler
from vis_node.training.samples import Sample

LOG = logging.getLogger(__name__)

UNIT_SIZE = 2
"""Images per batch unit: two frames of one sequence."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) training job.

    Attributes
    ----------
    rank:
        Global rank, 0 for the main process.
    world_size:
        Number of processes.
    device:
        Torch device string of this process (``cpu`` or ``cuda:N``).
    """

    rank: int
    world_size: int
    device: str

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and validations."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether a process group with more than one process is in use."""
        return self.world_size > 1

    @classmethod
    def from_env(cls, device: str) -> DistContext:
        """Read ``torchrun``'s environment and join the process group when ``WORLD_SIZE > 1``.

        Parameters
        ----------
        device:
            Requested device (``cpu``, ``cuda``, ``cuda:N``). Under ``torchrun`` on CUDA
            each process takes GPU ``LOCAL_RANK``; a CUDA request that cannot be served
            falls back to the CPU with a warning (see
            :func:`vis_node.perception.device.resolve_device`).

        Raises
        ------
        ValueError
            ``cuda:N`` with several processes (each process picks its own GPU: pass
            ``cuda``), or a malformed device string.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        if world_size <= 1:
            return cls(0, 1, resolve_device(device))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda:"):
            raise ValueError(
                f"device={device!r} under torchrun: pass --device cuda; each process uses "
                "GPU LOCAL_RANK (restrict the GPUs with CUDA_VISIBLE_DEVICES)"
            )
        if device == "cuda":
            reason = cuda_unavailable_reason(local_rank)
            if reason is not None:  # a CPU fallback would mix Gloo and NCCL ranks
                raise ValueError(
                    f"rank {rank} cannot use its GPU: {reason}; start at most as many "
                    "processes per machine as it has GPUs, or pass --device cpu"
                )
        resolved = resolve_device(f"cuda:{local_rank}" if device == "cuda" else device)
        if resolved.startswith("cuda"):
            torch.cuda.set_device(torch.device(resolved))
            dist.init_process_group("nccl", device_id=torch.device(resolved))
        else:
            dist.init_process_group("gloo")
        LOG.info("rank %d of %d on %s (%s)", rank, world_size, resolved, dist.get_backend())
        return cls(rank, world_size, resolved)

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise mean of ``values`` over the processes (``values`` unchanged alone)."""
        if not self.distributed:
            return values
        summed = values.to(self.device).clone()
        dist.all_reduce(summed)
        return summed.cpu() / self.world_size

    def close(self) -> None:
        """Leave the process group."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def units_per_step(batch_size: int) -> int:
    """Number of batch units (pairs, plus one single frame for odd sizes) of a step."""
    return -(-batch_size // UNIT_SIZE)


def check_partition(batch_size: int, world_size: int, grad_accumulation: int) -> None:
    """Raise ``ValueError`` unless a step's units split evenly into micro-batches."""
    parts = world_size * grad_accumulation
    if units_per_step(batch_size) % parts:
        raise ValueError(
            f"batch_size={batch_size} makes {units_per_step(batch_size)} frame pairs per "
            f"step, which do not split into {world_size} process(es) x grad_accumulation "
            f"{grad_accumulation}: make batch_size a multiple of {UNIT_SIZE * parts}"
        )


class StepUnits(Dataset):
    """Every batch unit of a run, by global index ``step * U + u`` (see module docstring).

    Parameters
    ----------
    sampler:
        Draws augmented samples from the training sources.
    seed:
        Run seed.
    batch_size:
        Images per step (global, over all processes).
    steps:
        Steps of the run.
    """

    def __init__(self, sampler: BatchSampler, seed: int, batch_size: int, steps: int) -> None:
        self.sampler = sampler
        self.seed = seed
        self.batch_size = batch_size
        self.units = units_per_step(batch_size)
        self.steps = steps

    def __len__(self) -> int:
        return self.steps * self.units

    def __getitem__(self, index: int) -> list[Sample]:
        """The samples of unit ``index`` (two frames, or one for the odd last unit)."""
        unit = index % self.units
        size = min(UNIT_SIZE, self.batch_size - UNIT_SIZE * unit)
        return self.sampler.batch(np.random.default_rng([self.seed, index]), size)


def _keep_units(units: list[list[Sample]]) -> list[list[Sample]]:
    """DataLoader collate function: keep the list of units as it is."""
    return units


def step_batches(
    dataset: StepUnits,
    context: DistContext,
    *,
    start_step: int,
    grad_accumulation: int,
    num_workers: int,
) -> Iterator[list[list[Sample]]]:
    """This process's micro-batches of every step from ``start_step`` on.

    Yields
    ------
    list of list of Sample
        ``grad_accumulation`` micro-batches per step, each a flat list of samples.
    """
    check_partition(dataset.batch_size, context.world_size, grad_accumulation)
    remaining = Subset(dataset, range(start_step * dataset.units, len(dataset)))
    sampler = DistributedSampler(
        remaining, num_replicas=context.world_size, rank=context.rank, shuffle=False
    )
    loader = DataLoader(
        remaining,
        batch_size=dataset.units // context.world_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_keep_units,
        persistent_workers=num_workers > 0,
    )
    for units in loader:
        yield [
            [sample for unit in units[a::grad_accumulation] for sample in unit]
            for a in range(grad_accumulation)
        ]
