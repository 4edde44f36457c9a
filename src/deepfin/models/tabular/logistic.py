"""Logistic regression scorecard: default log-odds as a weighted sum of the encoded features."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepfin.errors import ConfigError


def check_positive_ints(model: str, **sizes: int) -> None:
    """Raise ValueError unless every named size is an integer >= 1."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{model}: {name} must be an integer >= 1; got {value!r}")


def check_dropout(model: str, dropout: float) -> None:
    """Raise ValueError unless dropout is a number in [0, 1)."""
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"{model}: dropout must be a number in [0, 1); got {dropout!r}")


@dataclass(frozen=True)
class LogisticConfig:
    """Size and ridge penalty (on the mean log loss) of the logistic scorecard."""

    n_features: int
    l2: float = 1e-3

    def __post_init__(self) -> None:
        check_positive_ints("logistic", n_features=self.n_features)
        if isinstance(self.l2, bool) or not isinstance(self.l2, int | float) or self.l2 < 0:
            raise ConfigError(f"logistic: l2 must be a number >= 0; got {self.l2!r}")


class LogisticScorer(nn.Module):
    """One linear layer: each feature adds weight * value to the log-odds, as in a scorecard."""

    def __init__(self, config: LogisticConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map encoded applicants (B, F) to default log-odds (B, 1)."""
        return self.linear(x)

    @torch.no_grad()
    def fit_newton(self, x: torch.Tensor, y: torch.Tensor, *, iterations: int = 50) -> None:
        """Set the weights to the penalised maximum-likelihood fit on rows (N, F), labels (N,)."""
        # Newton's method (IRLS) converges in a few steps to the exact optimum; SGD would leave
        # the baseline under-fitted on small tables, flattering the deep models beside it
        design = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
        labels = y.double().reshape(-1)
        penalty = torch.full((design.shape[1],), self.config.l2, dtype=torch.float64)
        penalty[-1] = 0.0  # the intercept is not shrunk
        coef = torch.zeros(design.shape[1], dtype=torch.float64)
        for _ in range(iterations):
            probability = torch.sigmoid(design @ coef)  # (N,)
            gradient = design.T @ (probability - labels) / len(x) + penalty * coef  # (F+1,)
            weight = probability * (1 - probability) / len(x)  # (N,)
            hessian = (
                (design.T * weight) @ design
                + torch.diag(penalty)
                + 1e-9 * torch.eye(design.shape[1], dtype=torch.float64)
            )  # (F+1, F+1)
            step = torch.linalg.solve(hessian, gradient)
            coef -= step
            if step.abs().max() < 1e-8:
                break
        self.linear.weight.copy_(coef[:-1][None].float())  # nn.Linear stores (1, F)
        self.linear.bias.copy_(coef[-1:].float())
