"""The optimiser and the one gradient buffer the training loop steps with."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepfin.training.config import TrainingConfig


def make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the trainable parameters, in the model's own groups if it has them
    (a pretrained encoder's layers at decaying rates, say)."""
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # one fused kernel per step instead of a dozen small ops per parameter: on the small nets
    # of this library that is a tenth of each training step on a CPU
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    groups = getattr(model, "parameter_groups", None)
    params: Any = (
        groups(config.learning_rate)
        if callable(groups)
        else [p for p in model.parameters() if p.requires_grad]
    )
    return optimizer_class(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )


class RateSchedule:
    """Each step's learning rate: a linear warm-up, then constant or linear decay to zero.

    The rate is a function of the step alone, so a resumed run follows the same schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainingConfig, steps: int):
        self.optimizer = optimizer
        self.base_rates = [group["lr"] for group in optimizer.param_groups]
        self.warmup = round(config.warmup_fraction * steps)
        self.steps = max(steps, 1)
        self.decays = config.lr_schedule == "linear"
        self.first_step = 0  # steps taken before the current epoch

    @property
    def active(self) -> bool:
        """Whether the rate ever differs from the base rate."""
        return self.warmup > 0 or self.decays

    def factor(self, step: int) -> float:
        """The share of the base rate at `step` (0-based)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        if not self.decays:
            return 1.0
        return max(0.0, (self.steps - step) / max(1, self.steps - self.warmup))

    def set(self, step: int) -> None:
        """Set every group's rate for `step`."""
        factor = self.factor(step)
        for group, rate in zip(self.optimizer.param_groups, self.base_rates, strict=True):
            group["lr"] = rate * factor


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
