"""Multinomial logistic regression on TF-IDF features: the baseline every text model faces."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import nn

from deepfin.errors import ConfigError
from deepfin.models.tabular.logistic import check_positive_ints


@dataclass(frozen=True)
class TfidfLogisticConfig:
    """Sizes, and the inverse ridge penalty `c` (scikit-learn's C) of the regression."""

    n_features: int
    n_classes: int
    c: float = 10.0
    max_iter: int = 1000

    def __post_init__(self) -> None:
        check_positive_ints("tfidf_logistic", n_features=self.n_features, max_iter=self.max_iter)
        if self.n_classes < 2:
            raise ConfigError(f"tfidf_logistic: n_classes must be at least 2; got {self.n_classes}")
        if isinstance(self.c, bool) or not isinstance(self.c, int | float) or self.c <= 0:
            raise ConfigError(f"tfidf_logistic: c must be a number above 0; got {self.c!r}")


class TfidfLogistic(nn.Module):
    """Class logits (B, C) as one linear map of TF-IDF rows (B, F), dense or sparse."""

    def __init__(self, config: TfidfLogisticConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.n_features, config.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map TF-IDF rows (B, F) to class logits (B, C)."""
        if x.is_sparse:
            return torch.sparse.mm(x, self.linear.weight.T) + self.linear.bias
        return self.linear(x)

    @torch.no_grad()
    def fit_closed_form(self, x: sparse.csr_matrix, labels: np.ndarray) -> None:
        """Set the weights to scikit-learn's penalised maximum-likelihood fit (L-BFGS)."""
        present = np.unique(labels)
        if len(present) < 2:
            raise ConfigError("tfidf_logistic: the training texts hold a single class")
        solver = LogisticRegression(C=self.config.c, max_iter=self.config.max_iter)
        with warnings.catch_warnings():
            # a separable training set is the norm for TF-IDF: the penalty bounds the weights
            warnings.simplefilter("ignore", ConvergenceWarning)
            solver.fit(x, labels)
        weight = torch.zeros(self.config.n_classes, self.config.n_features, dtype=torch.float64)
        bias = torch.full((self.config.n_classes,), -1e4, dtype=torch.float64)  # unseen classes
        coef, intercept = solver.coef_, solver.intercept_
        if len(present) == 2:  # scikit-learn keeps one row for two classes: split it
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        rows = torch.from_numpy(present.astype(np.int64))
        weight[rows] = torch.from_numpy(np.asarray(coef, dtype=np.float64))
        bias[rows] = torch.from_numpy(np.asarray(intercept, dtype=np.float64))
        self.linear.weight.copy_(weight.float())
        self.linear.bias.copy_(bias.float())
