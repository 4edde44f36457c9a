"""Transformer encoder: pre-norm self-attention blocks over the window, head on the last token."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfin.errors import ConfigError


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and hyperparameters of the transformer forecaster."""

    n_features: int
    lookback: int
    n_outputs: int
    d_model: int = 32
    n_heads: int = 4
    num_layers: int = 2
    dim_feedforward: int = 64
    dropout: float = 0.0

    def __post_init__(self) -> None:
        names = ("n_features", "lookback", "n_outputs", "d_model", "n_heads", "num_layers")
        for name in (*names, "dim_feedforward"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"transformer: {name} must be an integer >= 1; got {value!r}")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"transformer: dropout must be a number in [0, 1); got {self.dropout!r}"
            )
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"transformer: d_model={self.d_model} must be divisible by n_heads={self.n_heads}; "
                "choose d_model as a multiple of n_heads"
            )


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Fixed sine/cosine position codes (T, H) of Vaswani et al. (2017)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    angles = position * frequency  # (T, 1) * (ceil(H/2),) -> (T, ceil(H/2))
    codes = torch.zeros(length, d_model)
    codes[:, 0::2] = torch.sin(angles)
    codes[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # odd H has one cosine fewer
    return codes


class EncoderBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, d_model: int, n_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.attention_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.feed_forward_norm = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.GELU(),
            nn.Linear(dim_feedforward, d_model),
            nn.Dropout(dropout),
        )
        self.residual_dropout = nn.Dropout(dropout)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention (B, T, H) -> (B, T, H)."""
        batch, steps, width = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # (B, T, H) -> 3 x (B, T, H)
        # split H into n_heads heads of width H / n_heads: (B, T, H) -> (B, heads, T, H / heads)
        q, k, v = (t.view(batch, steps, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        # no causal mask: every step in the window is already in the past of the forecast
        drop = self.dropout if self.training else 0.0
        heads = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # (B, heads, T, H/heads)
        merged = heads.transpose(1, 2).reshape(batch, steps, width)  # -> (B, T, H)
        return self.residual_dropout(self.out(merged))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, T, H) to (B, T, H)."""
        x = x + self.attend(self.attention_norm(x))
        return x + self.feed_forward(self.feed_forward_norm(x))


class TransformerForecaster(nn.Module):
    """Input projection, sinusoidal positions, encoder blocks; the last token feeds a head."""

    positions: torch.Tensor

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.input_projection = nn.Linear(config.n_features, config.d_model)
        # fixed, so rebuilt from the config rather than stored with the weights
        positions = sinusoidal_positions(config.lookback, config.d_model)
        self.register_buffer("positions", positions, persistent=False)
        self.blocks = nn.ModuleList(
            EncoderBlock(config.d_model, config.n_heads, config.dim_feedforward, config.dropout)
            for _ in range(config.num_layers)
        )
        # pre-norm blocks leave the residual stream unnormalised; normalise once before the head
        self.final_norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        steps = x.shape[1]
        if steps > self.config.lookback:
            raise ConfigError(
                f"transformer: got windows of {steps} steps but positions exist for "
                f"lookback={self.config.lookback}; rebuild the model with lookback >= {steps}"
            )
        hidden = self.input_projection(x) + self.positions[:steps]  # (B, T, F) -> (B, T, H)
        for block in self.blocks:
            hidden = block(hidden)  # (B, T, H)
        return self.head(self.final_norm(hidden[:, -1, :]))  # (B, H) -> (B, O)
