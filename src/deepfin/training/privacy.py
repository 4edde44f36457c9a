"""Differentially private training (DP-SGD with Opacus): clipped per-sample gradients, noise,
Poisson-sampled batches and an RDP accountant for the privacy budget spent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from deepfin.errors import ConfigError
from deepfin.training import TrainingConfig

# opacus is imported where DP-SGD is used: it takes over a second, and most runs never need it


def _alphas() -> list[float]:
    """RDP orders searched for the tightest epsilon: Opacus' defaults stop at 63, too low for
    the small noise that large budgets allow (the bound is then loose and Opacus warns)."""
    from opacus.accountants import RDPAccountant

    return [*RDPAccountant.DEFAULT_ALPHAS, 80, 96, 128, 192, 256, 512, 1024]


@dataclass(frozen=True)
class PrivacyConfig:
    """The privacy budget (epsilon, delta) to spend and the per-sample gradient clip."""

    epsilon: float = 3.0
    delta: float = 1e-5
    # per-sample gradients of these nets have norms near 1; clipping most of them turns the
    # loss into a sign-like objective that ruins calibration (Taiwan: Brier 0.16 at 1, 0.14 at 5)
    max_grad_norm: float = 5.0

    def __post_init__(self) -> None:
        if not self.epsilon > 0 or not 0 < self.delta < 1 or not self.max_grad_norm > 0:
            raise ConfigError(
                f"privacy: epsilon={self.epsilon} and max_grad_norm={self.max_grad_norm} "
                f"must be > 0 and delta={self.delta} in (0, 1)"
            )


@dataclass
class PrivateTraining:
    """A model wrapped for per-sample gradients, its DP optimiser and the noise it adds."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    privacy: PrivacyConfig
    noise_multiplier: float
    sample_rate: float
    steps_per_epoch: int

    def release(self) -> nn.Module:
        """The trained model without the per-sample gradient hooks."""
        from opacus import GradSampleModule

        assert isinstance(self.model, GradSampleModule)
        return self.model.to_standard_module()

    def spent(self, *, epochs: int) -> dict[str, Any]:
        """The budget spent by `epochs` epochs (early stopping may spend less than the target)."""
        steps = epochs * self.steps_per_epoch
        return {
            "epsilon": epsilon_spent(
                noise_multiplier=self.noise_multiplier,
                sample_rate=self.sample_rate,
                steps=steps,
                delta=self.privacy.delta,
            ),
            "delta": self.privacy.delta,
            "target_epsilon": self.privacy.epsilon,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.privacy.max_grad_norm,
            "sample_rate": self.sample_rate,
            "steps": steps,
            # validation rows pick the epoch kept, and the preprocessing is fitted in the clear
            "scope": "training rows, through the network weights; not the encoder statistics, "
            "score bins or validation rows",
        }


def make_private(
    model: nn.Module, *, privacy: PrivacyConfig, training: TrainingConfig, rows: int
) -> PrivateTraining:
    """Wrap `model` for DP-SGD, with noise set so `training.epochs` epochs spend the budget."""
    from opacus import GradSampleModule
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.optimizers import DPOptimizer
    from opacus.validators import ModuleValidator

    if privacy.delta >= 1 / rows:
        raise ConfigError(
            f"privacy: delta={privacy.delta} must be below 1 / training rows = {1 / rows:.2g}; "
            "otherwise a whole record may leak with probability delta"
        )
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ConfigError(f"privacy: this model cannot be trained with DP-SGD: {errors[0]}")
    sample_rate = min(1.0, training.batch_size / rows)
    steps_per_epoch = math.ceil(rows / training.batch_size)
    noise_multiplier = get_noise_multiplier(
        target_epsilon=privacy.epsilon,
        target_delta=privacy.delta,
        sample_rate=sample_rate,
        steps=training.epochs * steps_per_epoch,
        accountant="rdp",
        alphas=_alphas(),
    )
    wrapped = GradSampleModule(model, loss_reduction="mean")
    optimizer_class = torch.optim.AdamW if training.optimizer == "adamw" else torch.optim.Adam
    base = optimizer_class(
        wrapped.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    optimizer = DPOptimizer(
        base,
        noise_multiplier=noise_multiplier,
        max_grad_norm=privacy.max_grad_norm,
        expected_batch_size=training.batch_size,
        loss_reduction="mean",
    )
    return PrivateTraining(
        wrapped, optimizer, privacy, noise_multiplier, sample_rate, steps_per_epoch
    )


def epsilon_spent(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> float:
    """Epsilon of `steps` Poisson-subsampled Gaussian steps at `delta` (RDP accountant)."""
    from opacus.accountants import RDPAccountant

    if steps == 0:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta, alphas=_alphas()))
