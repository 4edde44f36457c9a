"""Plain Elman recurrent net: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b), linear head on h_T."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from deepfin.models.forecasting.recurrent import RecurrentConfig, layer_options


@dataclass(frozen=True)
class RNNConfig(RecurrentConfig):
    """Sizes and hyperparameters of the Elman forecaster."""

    model_name: ClassVar[str] = "rnn"


class RNNForecaster(nn.Module):
    """Elman RNN over the window; the last hidden state feeds a linear head."""

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        self.rnn = nn.RNN(**layer_options(config), nonlinearity="tanh")
        # dropout on the summary state so the option also regularises a one-layer net
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        hidden_seq, _ = self.rnn(x)  # (B, T, F) -> (B, T, H)
        last = hidden_seq[:, -1, :]  # (B, T, H) -> (B, H): the state after the newest step
        return self.head(self.dropout(last))  # (B, H) -> (B, O)
