"""The forecasting nets (lstm, gru, hybrid, ...) as volatility models: windows of log-variance
features in, the log of the coming average variance out, trained by the generic loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepfin.data.volatility import HAR_LAGS, VolatilityHistory, forward_mean, trailing_means
from deepfin.data.windows import WindowDataset
from deepfin.errors import DataError
from deepfin.models import build_model
from deepfin.training import History, TrainingConfig, fit_model

FEATURES = ("log_variance", "log_variance_week", "log_variance_month", "return")
WARMUP = max(HAR_LAGS) - 1  # days before the first row with every feature


def volatility_features(history: VolatilityHistory) -> np.ndarray:
    """Causal features per day (N, F): the log of the day's, week's and month's variance and the
    day's return; NaN before a month of history."""
    means = np.log(trailing_means(history.variance))  # (N, 3)
    return np.column_stack([means, history.returns])


def qlike_of_log(outputs: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    """Mean QLIKE of forecasts and realised variances given as standardised logs: with
    d = log(realised / forecast), the loss e^d - d - 1."""
    gap = scale * (targets - outputs)
    return (torch.exp(gap) - gap - 1.0).mean()


@dataclass
class NetworkFit:
    """A trained net with the statistics of its training days (features and log targets)."""

    model: nn.Module
    feature_mean: np.ndarray  # (F,)
    feature_std: np.ndarray  # (F,)
    target_mean: float
    target_std: float
    log_bias: float  # added to the log forecast: half the validation residual variance (mse)
    history: History


def windows(
    features: np.ndarray, targets: np.ndarray, origins: np.ndarray, lookback: int
) -> WindowDataset:
    """Windows (B, T, F) ending at `origins` over features (N, F), with row targets (N,)."""
    return WindowDataset(
        torch.from_numpy(np.nan_to_num(features).astype(np.float32)),
        torch.from_numpy(np.nan_to_num(targets).astype(np.float32)[:, None]),
        torch.from_numpy(origins.astype(np.int64)),
        lookback=lookback,
    )


def fit_network(
    name: str,
    history: VolatilityHistory,
    *,
    train_end: int,
    val: tuple[int, int],
    horizon: int,
    lookback: int,
    loss: str,
    params: dict[str, object],
    training: TrainingConfig,
    previous: NetworkFit | None = None,
) -> NetworkFit:
    """Train on origins whose target ends by `train_end`, stop early on origins in `val`
    (inclusive, targets inside it too); start from `previous`'s weights when given."""
    features = volatility_features(history)[: val[1] + 1]
    log_target = np.log(forward_mean(history.variance[: val[1] + 1], horizon))
    first = WARMUP + lookback - 1
    train_origins = np.arange(first, train_end - horizon + 1)
    val_origins = np.arange(max(val[0], first), val[1] - horizon + 1)
    if train_origins.size < 100 or val_origins.size < 10:
        raise DataError(
            f"{name}: too few training days ({train_origins.size}) or validation days "
            f"({val_origins.size}) for lookback {lookback} and horizon {horizon}; use a later "
            "test_start, a shorter lookback or more val_days"
        )
    rows = features[: train_end + 1][WARMUP:]
    feature_mean, feature_std = rows.mean(axis=0), rows.std(axis=0) + 1e-8
    target_mean = float(log_target[train_origins].mean())
    target_std = float(log_target[train_origins].std()) + 1e-8
    scaled = (features - feature_mean) / feature_std
    scaled_target = (log_target - target_mean) / target_std
    torch.manual_seed(training.seed)  # the same weights whatever ran before
    model = build_model(
        name, n_features=len(FEATURES), lookback=lookback, n_outputs=1, params=params
    )
    if previous is not None:
        model.load_state_dict(previous.model.state_dict())

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if loss == "qlike":
            return qlike_of_log(outputs, targets, target_std)
        return ((outputs - targets) ** 2).mean()

    run = fit_model(
        model,
        windows(scaled, scaled_target, train_origins, lookback),
        windows(scaled, scaled_target, val_origins, lookback),
        loss_fn=loss_fn,
        config=training,
    )
    fitted = NetworkFit(model, feature_mean, feature_std, target_mean, target_std, 0.0, run)
    if loss == "mse":  # exp of a mean log is the median, below the mean: lift it (lognormal)
        residual = log_target[val_origins] - _log_forecast(fitted, features, val_origins, lookback)
        fitted.log_bias = 0.5 * float(residual.var())
    return fitted


def _log_forecast(
    fitted: NetworkFit, features: np.ndarray, origins: np.ndarray, lookback: int
) -> np.ndarray:
    scaled = (features - fitted.feature_mean) / fitted.feature_std
    data = windows(scaled, np.zeros(len(features)), origins, lookback)
    fitted.model.eval()
    with torch.no_grad():
        inputs, _ = data.batch(torch.arange(len(data)))
        outputs = fitted.model(inputs)[:, 0].double().numpy()
    return fitted.target_mean + fitted.target_std * outputs


def forecast_network(
    fitted: NetworkFit, history: VolatilityHistory, origins: np.ndarray, *, lookback: int
) -> np.ndarray:
    """Average variance over the next horizon days for each origin (reads days <= origin)."""
    features = volatility_features(history)[: int(origins.max()) + 1]
    log_forecast = _log_forecast(fitted, features, origins, lookback) + fitted.log_bias
    return np.maximum(np.exp(log_forecast), history.floor)
