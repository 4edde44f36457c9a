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
    outputs = targets = torch.zeros((0, 1))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(positions), EVAL_BATCH):
            inputs, target = data.batch(positions[start : start + EVAL_BATCH])
            output = call_model(model, _to(inputs, device)).float().cpu()
            if start == 0:
                # filled in place: a list of small outputs to concatenate would pin the heap
                # between the batches' freed buffers, which glibc then cannot return
                outputs = output.new_empty((len(positions), *output.shape[1:]))
                targets = torch.empty((len(positions), *target.shape[1:]))  # float, on the CPU
            outputs[start : start + len(output)] = output
            targets[start : start + len(target)] = target
    model.train(was_training)
    return outputs, targets


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
