"""Long- and short-term memory hybrid: LSTM and GRU paths fused by a learned gate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.models.kernels.fused_rnn import FusedGRU, FusedLSTM


@dataclass(frozen=True)
class HybridConfig:
    """Sizes and hyperparameters of the LSTM-GRU hybrid forecaster."""

    n_features: int
    lookback: int
    n_outputs: int
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    attention: bool = False

    def __post_init__(self) -> None:
        for name in ("n_features", "lookback", "n_outputs", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"hybrid: {name} must be an integer >= 1; got {value!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"hybrid: dropout must be a number in [0, 1); got {self.dropout!r}")
        if not isinstance(self.attention, bool):
            raise ValueError(f"hybrid: attention must be true or false; got {self.attention!r}")


class HybridForecaster(nn.Module):
    """Gate-fused LSTM and GRU states, optionally attending over the fused history."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        # torch applies recurrent dropout only between layers, and warns when there is just one
        between_layers = config.dropout if config.num_layers > 1 else 0.0
        self.lstm = FusedLSTM(
            config.n_features, hidden, config.num_layers, batch_first=True, dropout=between_layers
        )
        self.gru = FusedGRU(
            config.n_features, hidden, config.num_layers, batch_first=True, dropout=between_layers
        )
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
