"""The naive forecaster every deep model must beat, and the size checks the baselines share."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepfin.errors import ConfigError


def check_sizes(model: str, n_features: int, lookback: int, n_outputs: int) -> None:
    """Raise ValueError unless every data-dependent size is an integer >= 1."""
    for name, value in (
        ("n_features", n_features),
        ("lookback", lookback),
        ("n_outputs", n_outputs),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{model}: {name} must be an integer >= 1; got {value!r}")


@dataclass(frozen=True)
class NaiveConfig:
    """Sizes of the naive forecaster; it has no hyperparameters."""

    n_features: int
    lookback: int
    n_outputs: int

    def __post_init__(self) -> None:
        check_sizes("naive", self.n_features, self.lookback, self.n_outputs)


class NaiveForecaster(nn.Module):
    """Forecast = last observed features @ fixed weights + constant; nothing is trained."""

    last_step_weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, config: NaiveConfig) -> None:
        super().__init__()
        self.config = config
        # buffers, not parameters: saved with the weights, never touched by an optimiser
        self.register_buffer("last_step_weight", torch.zeros(config.n_features, config.n_outputs))
        self.register_buffer("bias", torch.zeros(config.n_outputs))

    @torch.no_grad()
    def set_forecast(self, *, constant: torch.Tensor, source_feature: int | None = None) -> None:
        """Forecast `constant`, plus the last value of `source_feature` when one is given."""
        n_features = self.config.n_features
        if source_feature is not None and not 0 <= source_feature < n_features:
            raise ConfigError(
                f"naive: source_feature={source_feature} is not a feature index; "
                f"use 0..{n_features - 1} or None"
            )
        # broadcasting lets a scalar stand for the same constant in every output
        self.bias.copy_(torch.as_tensor(constant, dtype=self.bias.dtype).expand_as(self.bias))
        self.last_step_weight.zero_()
        if source_feature is not None:
            self.last_step_weight[source_feature, :] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        return x[:, -1, :] @ self.last_step_weight + self.bias  # (B, F) @ (F, O) -> (B, O)
