"""The Batches protocol every task hands to the training loop, and batches of plain rows.

A source of batches knows how many examples it holds, cuts the batch at given positions and
moves itself to a device. Inputs are one tensor, or a tuple of tensors (token ids and their
mask, say) that the model takes as positional arguments; targets are one tensor.
"""

from __future__ import annotations

from typing import Protocol

import torch

Inputs = torch.Tensor | tuple[torch.Tensor, ...]


class Batches(Protocol):
    """What training.fit_model asks of a data source."""

    def __len__(self) -> int:
        """Number of examples."""
        ...

    def batch(self, positions: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
        """Inputs and targets of the examples at `positions`."""
        ...

    def to(self, device: torch.device) -> Batches:
        """The same examples with their tensors on `device`."""
        ...


class TensorRows:
    """Rows of features (N, F) with their targets (N, O): encoded loans, or any feature table."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        if len(features) != len(targets):
            raise ValueError(
                f"features have {len(features)} rows but targets {len(targets)}; align them"
            )
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows (B, F) and targets (B, O) at `positions`."""
        return self.features[positions], self.targets[positions]

    def to(self, device: torch.device) -> TensorRows:
        """The same rows on `device`."""
        return TensorRows(self.features.to(device), self.targets.to(device))


def call_model(model: torch.nn.Module, inputs: Inputs) -> torch.Tensor:
    """The model's output for a batch's inputs: a tuple is passed as positional arguments."""
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def slice_inputs(inputs: Inputs, start: int, stop: int) -> Inputs:
    """Examples start..stop of a batch's inputs."""
    if isinstance(inputs, tuple):
        return tuple(part[start:stop] for part in inputs)
    return inputs[start:stop]


def values_per_example(inputs: Inputs) -> int:
    """Numbers in one example's inputs, from a batch of at least one."""
    parts = inputs if isinstance(inputs, tuple) else (inputs,)
    return sum(part[0].numel() for part in parts)
