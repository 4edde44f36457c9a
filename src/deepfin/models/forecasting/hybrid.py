"""Long- and short-term memory hybrid: LSTM and GRU paths fused by a learned gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.forecasting.recurrent import RecurrentConfig, layer_options
from deepfin.models.kernels.fused_rnn import FusedGRU, FusedLSTM


@dataclass(frozen=True)
class HybridConfig(RecurrentConfig):
    """Sizes and hyperparameters of the LSTM-GRU hybrid forecaster."""

    model_name: ClassVar[str] = "hybrid"
    attention: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.attention, bool):
            raise ConfigError(f"hybrid: attention must be true or false; got {self.attention!r}")


class HybridForecaster(nn.Module):
    """Gate-fused LSTM and GRU states, optionally attending over the fused history."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.lstm = FusedLSTM(**layer_options(config))
        self.gru = FusedGRU(**layer_options(config))
        # one gate value per hidden unit and time step: g = sigmoid(W [h_lstm; h_gru] + b)
        self.gate = nn.Linear(2 * hidden, hidden)
        # learned query: the model chooses what to look up in its memory of past states
        self.query = nn.Linear(hidden, hidden) if config.attention else None
        self.dropout = nn.Dropout(config.dropout)
        head_inputs = 2 * hidden if config.attention else hidden
        self.head = nn.Linear(head_inputs, config.n_outputs)

    def fuse(self, x: torch.Tensor) -> torch.Tensor:
        """Fused hidden sequence (B, T, H) of the LSTM and GRU paths over windows (B, T, F)."""
        h_lstm, _ = self.lstm(x)  # (B, T, F) -> (B, T, H)
        h_gru, _ = self.gru(x)  # (B, T, F) -> (B, T, H)
        g = torch.sigmoid(self.gate(torch.cat([h_lstm, h_gru], dim=-1)))  # (B, T, 2H) -> (B, T, H)
        return g * h_lstm + (1.0 - g) * h_gru  # (B, T, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        fused = self.fuse(x)  # (B, T, F) -> (B, T, H)
        last = fused[:, -1, :]  # (B, T, H) -> (B, H)
        if self.query is not None:
            # external memory: the newest state reads back whichever past states it matches
            query = self.query(last).unsqueeze(1)  # (B, H) -> (B, 1, H)
            context = F.scaled_dot_product_attention(query, fused, fused)  # (B, 1, H)
            last = torch.cat([last, context.squeeze(1)], dim=-1)  # (B, H) + (B, H) -> (B, 2H)
        return self.head(self.dropout(last))  # (B, H or 2H) -> (B, O)
