"""Multilayer perceptron for tabular credit data."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepfin.models.tabular.logistic import check_dropout, check_positive_ints


@dataclass(frozen=True)
class MLPConfig:
    """Sizes and hyperparameters of the MLP scorer."""

    n_features: int
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_positive_ints(
            "mlp",
            n_features=self.n_features,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
        )
        check_dropout("mlp", self.dropout)


class MLPScorer(nn.Module):
    """Linear -> GELU -> dropout blocks, then a linear head to the default log-odds."""

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.n_features
        for _ in range(config.num_layers):
            # GELU rather than ReLU: smooth, so integrated gradients converge in few steps;
            # no batch norm, since DP-SGD needs every sample's gradient independent of the batch
            layers += [nn.Linear(width, config.hidden_size), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden_size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map encoded applicants (B, F) to default log-odds (B, 1)."""
        return self.head(self.body(x))  # (B, F) -> (B, H) -> (B, 1)
