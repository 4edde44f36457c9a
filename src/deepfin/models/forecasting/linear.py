"""The linear baseline: a ridge regression of the flattened window, solved in closed form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from deepfin.errors import ConfigError, DataError
from deepfin.models.forecasting.baselines import check_sizes


@dataclass(frozen=True)
class LinearConfig:
    """Sizes and ridge penalty of the linear forecaster."""

    n_features: int
    lookback: int
    n_outputs: int
    ridge_alpha: float = 1.0

    def __post_init__(self) -> None:
        check_sizes("linear", self.n_features, self.lookback, self.n_outputs)
        alpha = self.ridge_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha >= 0.0:
            raise ConfigError(f"linear: ridge_alpha must be a number >= 0; got {alpha!r}")


@dataclass
class RidgeStatistics:
    """Sums over a ridge regression's rows: their count, x, y, x^T x and x^T y (float64)."""

    count: int
    sum_x: torch.Tensor
    sum_y: torch.Tensor
    xtx: torch.Tensor
    xty: torch.Tensor


class LinearForecaster(nn.Module):
    """Linear map of the flattened window; fitted in closed form as a ridge regression."""

    def __init__(self, config: LinearConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.lookback * config.n_features, config.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, O)."""
        return self.linear(x.flatten(1))  # (B, T, F) -> (B, T*F) -> (B, O)

    def fit_closed_form(
        self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> LinearForecaster:
        """Set the weights to the ridge solution over all (x (B, T, F), y (B, O)) batches."""
        return self.solve(self.statistics(batches))

    def statistics(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> RidgeStatistics:
        """What the ridge solution needs of the batches, for any penalty: one pass over them."""
        n_inputs, n_outputs = self.linear.in_features, self.linear.out_features
        # sufficient statistics only, so memory is (T*F)^2 whatever the number of windows;
        # float64 because X^T X - n mean mean^T cancels badly in float32
        stats = RidgeStatistics(
            count=0,
            sum_x=torch.zeros(n_inputs, dtype=torch.float64),
            sum_y=torch.zeros(n_outputs, dtype=torch.float64),
            xtx=torch.zeros(n_inputs, n_inputs, dtype=torch.float64),
            xty=torch.zeros(n_inputs, n_outputs, dtype=torch.float64),
        )
        for x, y in batches:
            inputs = x.detach().flatten(1).to("cpu", torch.float64)  # (B, T, F) -> (B, T*F)
            targets = y.detach().reshape(len(y), -1).to("cpu", torch.float64)  # (B, O)
            if inputs.shape[1] != n_inputs or targets.shape[1] != n_outputs:
                raise ValueError(
                    f"linear: batch shapes {tuple(x.shape)} -> {tuple(y.shape)} do not match "
                    f"the model's (B, {self.config.lookback}, {self.config.n_features}) -> "
                    f"(B, {n_outputs}); build the model from the same data"
                )
            stats.count += len(inputs)
            stats.sum_x += inputs.sum(0)
            stats.sum_y += targets.sum(0)
            stats.xtx += inputs.T @ inputs
            stats.xty += inputs.T @ targets
        return stats

    @torch.no_grad()
    def solve(self, stats: RidgeStatistics) -> LinearForecaster:
        """Set the weights to the ridge solution of `stats` with this model's penalty."""
        count, n_inputs = stats.count, self.linear.in_features
        if count == 0:
            raise ValueError("linear: fit_closed_form got no batches; pass at least one (x, y)")
        # centring takes the intercept out of the problem, so the penalty never shrinks it
        mean_x, mean_y = stats.sum_x / count, stats.sum_y / count
        centred_xtx = stats.xtx - count * torch.outer(mean_x, mean_x)  # (T*F, T*F)
        centred_xty = stats.xty - count * torch.outer(mean_x, mean_y)  # (T*F, O)
        penalty = self.config.ridge_alpha * torch.eye(n_inputs, dtype=torch.float64)
        try:
            coef = torch.linalg.solve(centred_xtx + penalty, centred_xty)  # (T*F, O)
        except torch.linalg.LinAlgError as error:
            raise DataError(
                "linear: the ridge system is singular (collinear or constant inputs); "
                "set ridge_alpha > 0"
            ) from error
        intercept = mean_y - mean_x @ coef  # (O,)
        self.linear.weight.copy_(coef.T)  # nn.Linear stores (O, T*F)
        self.linear.bias.copy_(intercept)
        return self
