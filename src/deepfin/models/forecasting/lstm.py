"""Long short-term memory net (LSTM) with a linear head on the last hidden state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from deepfin.models.forecasting.recurrent import RecurrentConfig, layer_options
from deepfin.models.kernels.fused_rnn import FusedLSTM


@dataclass(frozen=True)
class LSTMConfig(RecurrentConfig):
    """Sizes and hyperparameters of the LSTM forecaster."""

    model_name: ClassVar[str] = "lstm"


class LSTMForecaster(nn.Module):
    """LSTM over the window; the last hidden state feeds a linear head."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = FusedLSTM(
            **layer_options(config),
        )
        # dropout on the summary state so the option also regularises a one-layer net
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        hidden_seq, _ = self.lstm(x)  # (B, T, F) -> (B, T, H)
        last = hidden_seq[:, -1, :]  # (B, T, H) -> (B, H): the state after the newest step
        return self.head(self.dropout(last))  # (B, H) -> (B, O)
