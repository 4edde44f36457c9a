"""Ridge regression on TF-IDF features: the baseline every model of sentiment scores faces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from sklearn.linear_model import Ridge
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.tabular.logistic import check_positive_ints


@dataclass(frozen=True)
class TfidfRidgeConfig:
    """Sizes (one output: the score), and the ridge penalty `alpha` (scikit-learn's)."""

    n_features: int
    n_classes: int  # outputs: 1, the score
    alpha: float = 1.0

    def __post_init__(self) -> None:
        check_positive_ints("tfidf_ridge", n_features=self.n_features)
        if self.n_classes != 1:
            raise ConfigError(f"tfidf_ridge scores texts: one output, not {self.n_classes}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float):
            raise ConfigError(f"tfidf_ridge: alpha must be a number; got {self.alpha!r}")
        if self.alpha <= 0:
            raise ConfigError(f"tfidf_ridge: alpha must be above 0; got {self.alpha}")


class TfidfRidge(nn.Module):
    """A score (B, 1) as one linear map of TF-IDF rows (B, F), dense or sparse."""

    def __init__(self, config: TfidfRidgeConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map TF-IDF rows (B, F) to scores (B, 1)."""
        if x.is_sparse:
            return torch.sparse.mm(x, self.linear.weight.T) + self.linear.bias
        return self.linear(x)

    @torch.no_grad()
    def fit_closed_form(self, x: sparse.csr_matrix, scores: np.ndarray) -> None:
        """Set the weights to scikit-learn's penalised least-squares fit."""
        solver = Ridge(alpha=self.config.alpha).fit(x, np.asarray(scores, dtype=np.float64))
        coef = torch.from_numpy(np.asarray(solver.coef_, dtype=np.float64).reshape(1, -1))
        self.linear.weight.copy_(coef.float())
        self.linear.bias.fill_(float(solver.intercept_))
