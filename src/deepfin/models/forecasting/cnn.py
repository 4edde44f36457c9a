"""Temporal convolutional net: residual blocks of causal dilated 1-D convolutions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.errors import ConfigError


@dataclass(frozen=True)
class CNNConfig:
    """Sizes and hyperparameters of the temporal convolutional forecaster."""

    n_features: int
    lookback: int
    n_outputs: int
    channels: int = 32
    kernel_size: int = 3
    num_levels: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        names = ("n_features", "lookback", "n_outputs", "channels", "kernel_size", "num_levels")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"cnn: {name} must be an integer >= 1; got {value!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"cnn: dropout must be a number in [0, 1); got {self.dropout!r}")

    @property
    def receptive_field(self) -> int:
        """Number of past steps the last output can see."""
        # two convolutions per level, level i dilated by 2**i
        return 1 + 2 * (self.kernel_size - 1) * (2**self.num_levels - 1)


class CausalConv1d(nn.Conv1d):
    """Dilated 1-D convolution whose output at step t sees only inputs at steps <= t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve (B, C_in, T) to (B, C_out, T) without looking ahead."""
        # pad on the left only: right padding would let step t read steps after t
        left = self.dilation[0] * (self.kernel_size[0] - 1)
        return super().forward(F.pad(x, (left, 0)))  # (B, C_in, T + left) -> (B, C_out, T)


class TemporalBlock(nn.Module):
    """Two causal convolutions with a residual connection."""

    def __init__(
        self, in_channels: int, channels: int, kernel_size: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, channels, kernel_size, dilation=dilation)
        self.conv2 = CausalConv1d(channels, channels, kernel_size, dilation=dilation)
        self.dropout = nn.Dropout(dropout)
        # 1x1 convolution only where the residual must change width
        self.skip = nn.Conv1d(in_channels, channels, 1) if in_channels != channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, C_in, T) to (B, C, T)."""
        out = self.dropout(F.relu(self.conv1(x)))  # (B, C_in, T) -> (B, C, T)
        out = self.dropout(F.relu(self.conv2(out)))  # (B, C, T)
        residual = x if self.skip is None else self.skip(x)  # (B, C_in, T) -> (B, C, T)
        return F.relu(out + residual)


class CNNForecaster(nn.Module):
    """Stack of temporal blocks with dilations 1, 2, 4, ...; the last step feeds a head."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.n_features] + [config.channels] * config.num_levels
        self.blocks = nn.Sequential(
            *(
                TemporalBlock(widths[i], config.channels, config.kernel_size, 2**i, config.dropout)
                for i in range(config.num_levels)
            )
        )
        self.head = nn.Linear(config.channels, config.n_outputs)

    def sequence_features(self, x: torch.Tensor) -> torch.Tensor:
        """Causal features (B, C, T) of windows (B, T, F): column t depends on x[:, :t+1] only."""
        x = x.transpose(1, 2)  # (B, T, F) -> (B, F, T): Conv1d wants channels before time
        return self.blocks(x)  # (B, F, T) -> (B, C, T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        features = self.sequence_features(x)  # (B, T, F) -> (B, C, T)
        return self.head(features[:, :, -1])  # (B, C) -> (B, O)
