"""The optimiser and the one gradient buffer the training loop steps with."""

from __future__ import annotations

import torch
from torch import nn

from deepfin.training.config import TrainingConfig


def make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # one fused kernel per step instead of a dozen small ops per parameter: on the small nets
    # of this library that is a tenth of each training step on a CPU
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return optimizer_class(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )


class FlatGradients:
    """Every parameter's gradient as a view of one buffer: zeroing and clipping are one op each.

    On small nets the per-parameter Python of zero_grad and clip_grad_norm_ costs more than
    the arithmetic; autograd accumulates into the views in place.
    """

    def __init__(self, model: nn.Module) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        first = self.params[0]
        self.flat = torch.zeros(
            sum(p.numel() for p in self.params), dtype=first.dtype, device=first.device
        )
        offset = 0
        for p in self.params:
            p.grad = self.flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()

    @staticmethod
    def fits(model: nn.Module) -> bool:
        """Whether the trainable parameters can share one buffer (one dtype, one device)."""
        kinds = {(p.dtype, p.device) for p in model.parameters() if p.requires_grad}
        return len(kinds) == 1

    def zero(self) -> None:
        """Zero every gradient."""
        self.flat.zero_()

    def clip(self, max_norm: float) -> None:
        """Scale the gradients to a global norm of at most `max_norm`, as clip_grad_norm_."""
        norm = torch.linalg.vector_norm(self.flat)
        self.flat.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))

    def release(self) -> None:
        """Detach the parameters from the buffer."""
        for p in self.params:
            p.grad = None
