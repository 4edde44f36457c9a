"""The batches of one training epoch: shuffled examples, a source's own plan (whole dates of a
panel), or Poisson-sampled rows for DP-SGD; under DDP each rank draws its share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from deepfin.data.batches import Batches, Inputs, slice_inputs, values_per_example
from deepfin.errors import DataError
from deepfin.training import distributed

Plan = Callable[[int], list[torch.Tensor]]


def _plan_of(train: Batches) -> Plan | None:
    """The source's own plan of an epoch's batches, if it has one (`batch_positions`)."""
    plan: Plan | None = getattr(train, "batch_positions", None)
    return plan


def batch_count(train: Batches, batch_size: int) -> int:
    """About how many batches this rank trains on per epoch (for the progress bar)."""
    if _plan_of(train) is not None:
        return len(_planned(train, batch_size))
    return math.ceil(len(train) / distributed.world_size() / batch_size)


def epoch_batches(
    train: Batches, batch_size: int, *, device: torch.device, poisson_sampling: bool = False
) -> tuple[int, Iterator[tuple[Inputs, torch.Tensor]]]:
    """This rank's batches of one epoch, drawn with torch's generator, and how many there are."""
    if _plan_of(train) is not None:
        plan = _planned(train, batch_size)
        return len(plan), (train.batch(positions) for positions in plan)
    # under DDP every rank draws the same permutation and trains on its own share of it
    order = distributed.shard(torch.randperm(len(train), device=device))
    count = math.ceil(len(order) / batch_size)
    return count, _shuffled(train, order, batch_size, poisson_sampling)


def _planned(train: Batches, batch_size: int) -> list[torch.Tensor]:
    """This rank's share of the source's plan; every rank gets as many (DDP steps together)."""
    plan = _plan_of(train)
    assert plan is not None
    batches = plan(batch_size)
    world = distributed.world_size()
    if len(batches) < world:
        raise DataError(
            f"the training data makes {len(batches)} batch(es) of whole dates for {world} "
            "processes; use fewer processes or a smaller batch size"
        )
    return batches[distributed.rank() : len(batches) // world * world : world]


def _shuffled(
    train: Batches, order: torch.Tensor, batch_size: int, poisson_sampling: bool
) -> Iterator[tuple[Inputs, torch.Tensor]]:
    """(inputs, targets) of each batch, in `order`; examples are gathered many batches at once."""
    if poisson_sampling:
        for _ in range(0, len(order), batch_size):
            # DP-SGD's privacy accounting assumes each row joins each batch independently
            chosen = torch.rand(len(train), device=order.device) < batch_size / len(train)
            positions = torch.nonzero(chosen).squeeze(1)
            if len(positions):  # empty with chance (1 - q)^rows: negligible for our sizes
                yield train.batch(positions)
        return
    # one gather per 64 batches (at most about a million values) instead of one per batch
    example_values = values_per_example(train.batch(order[:1])[0]) if len(order) else 1
    per_gather = batch_size * max(1, min(64, 2**20 // (batch_size * example_values)))
    for first in range(0, len(order), per_gather):
        inputs, targets = train.batch(order[first : first + per_gather])
        for start in range(0, len(targets), batch_size):
            stop = start + batch_size
            yield slice_inputs(inputs, start, stop), targets[start:stop]
