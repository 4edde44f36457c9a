"""FT-Transformer (Gorishniy et al. 2021): one token per feature, self-attention, a [CLS] head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.forecasting.transformer import EncoderBlock
from deepfin.models.tabular.logistic import check_dropout, check_positive_ints


@dataclass(frozen=True)
class FTTransformerConfig:
    """Sizes and hyperparameters of the FT-Transformer scorer."""

    n_features: int
    d_token: int = 32
    n_heads: int = 4
    num_layers: int = 2
    dim_feedforward: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_positive_ints(
            "ft_transformer",
            n_features=self.n_features,
            d_token=self.d_token,
            n_heads=self.n_heads,
            num_layers=self.num_layers,
            dim_feedforward=self.dim_feedforward,
        )
        check_dropout("ft_transformer", self.dropout)
        if self.d_token % self.n_heads:
            raise ConfigError(
                f"ft_transformer: d_token={self.d_token} must be divisible by "
                f"n_heads={self.n_heads}; choose d_token as a multiple of n_heads"
            )


class FeatureTokenizer(nn.Module):
    """Token j = x_j * w_j + b_j for every encoded feature j, after a learned [CLS] token."""

    def __init__(self, n_features: int, d_token: int) -> None:
        super().__init__()
        # its own module, so DP-SGD can take per-sample gradients of these raw parameters
        bound = 1 / math.sqrt(d_token)
        self.weight = nn.Parameter(torch.empty(n_features, d_token).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_features, d_token).uniform_(-bound, bound))
        self.cls = nn.Parameter(torch.empty(1, 1, d_token).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, F) to tokens (B, 1 + F, H)."""
        tokens = x.unsqueeze(-1) * self.weight + self.bias  # (B, F, 1) * (F, H) -> (B, F, H)
        cls = self.cls.expand(len(x), -1, -1)  # (1, 1, H) -> (B, 1, H)
        return torch.cat([cls, tokens], dim=1)  # -> (B, 1 + F, H)


class FTTransformerScorer(nn.Module):
    """Feature tokens through pre-norm encoder blocks; the [CLS] token feeds the head."""

    def __init__(self, config: FTTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = FeatureTokenizer(config.n_features, config.d_token)
        # no positions: features are a set, each token already carries its feature's weights
        self.blocks = nn.ModuleList(
            EncoderBlock(config.d_token, config.n_heads, config.dim_feedforward, config.dropout)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_token)
        self.head = nn.Linear(config.d_token, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map encoded applicants (B, F) to default log-odds (B, 1)."""
        hidden = self.tokenizer(x)  # (B, F) -> (B, 1 + F, H)
        for block in self.blocks:
            hidden = block(hidden)  # (B, 1 + F, H)
        return self.head(self.final_norm(hidden[:, 0, :]))  # (B, H) -> (B, 1)
