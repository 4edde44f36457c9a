"""Gated recurrent unit net (GRU) with a linear head on the last hidden state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from deepfin.models.forecasting.recurrent import RecurrentConfig, layer_options
from deepfin.models.kernels.fused_rnn import FusedGRU


@dataclass(frozen=True)
class GRUConfig(RecurrentConfig):
    """Sizes and hyperparameters of the GRU forecaster."""

    model_name: ClassVar[str] = "gru"


class GRUForecaster(nn.Module):
    """GRU over the window; the last hidden state feeds a linear head."""

    def __init__(self, config: GRUConfig) -> None:
        super().__init__()
        self.config = config
        self.gru = FusedGRU(
            **layer_options(config),
        )
        # dropout on the summary state so the option also regularises a one-layer net
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        hidden_seq, _ = self.gru(x)  # (B, T, F) -> (B, T, H)
        last = hidden_seq[:, -1, :]  # (B, T, H) -> (B, H): the state after the newest step
        return self.head(self.dropout(last))  # (B, H) -> (B, O)
