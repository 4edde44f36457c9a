"""Long short-term memory net (LSTM) with a linear head on the last hidden state."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepfin.models.kernels.fused_rnn import FusedLSTM


@dataclass(frozen=True)
class LSTMConfig:
    """Sizes and hyperparameters of the LSTM forecaster."""

    n_features: int
    lookback: int
    n_outputs: int
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("n_features", "lookback", "n_outputs", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"lstm: {name} must be an integer >= 1; got {value!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lstm: dropout must be a number in [0, 1); got {self.dropout!r}")


class LSTMForecaster(nn.Module):
    """LSTM over the window; the last hidden state feeds a linear head."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = FusedLSTM(
            input_size=config.n_features,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            # torch applies this only between layers, and warns when there is just one
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        # dropout on the summary state so the option also regularises a one-layer net
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        hidden_seq, _ = self.lstm(x)  # (B, T, F) -> (B, T, H)
        last = hidden_seq[:, -1, :]  # (B, T, H) -> (B, H): the state after the newest step
        return self.head(self.dropout(last))  # (B, H) -> (B, O)
