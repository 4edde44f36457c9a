"""A model's outputs and loss over a whole source of batches, without gradients."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepfin.data.batches import Batches, Inputs, call_model

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# evaluation batches small enough that a recurrent net's per-step buffers stay in cache
EVAL_BATCH = 256


def outputs_and_targets(
    model: nn.Module, data: Batches, positions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs (M, O) and targets (M, O) at `positions`, in eval mode without gradients."""
    device = next(model.parameters(), torch.empty(0)).device
    outputs, targets = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(positions), EVAL_BATCH):
            inputs, target = data.batch(positions[start : start + EVAL_BATCH])
            outputs.append(call_model(model, _to(inputs, device)).float().cpu())
            targets.append(target.float().cpu())
    model.train(was_training)
    if not outputs:
        return torch.zeros((0, 1)), torch.zeros((0, 1))
    return torch.cat(outputs), torch.cat(targets)


def _to(inputs: Inputs, device: torch.device) -> Inputs:
    if isinstance(inputs, tuple):
        return tuple(part.to(device) for part in inputs)
    return inputs.to(device)


def predict_batches(model: nn.Module, data: Batches) -> torch.Tensor:
    """Model outputs for every example of `data`, (M, O), in eval mode without gradients."""
    return outputs_and_targets(model, data, torch.arange(len(data)))[0]


def evaluate_loss(model: nn.Module, data: Batches, loss_fn: LossFunction) -> float:
    """Mean loss over all examples of `data`."""
    outputs, targets = outputs_and_targets(model, data, torch.arange(len(data)))
    return float(loss_fn(outputs, targets))
