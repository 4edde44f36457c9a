"""Deep VaR and ES: a forecasting net reads windows of log-variance features and returns and
forecasts the next day's tail, either as quantiles (pinball loss; ES as the mean of the tail's
quantiles) or as VaR and ES together (the FZ0 loss, so ES is forecast, not read off a quantile).

The net's outputs scale the training days' own tail of returns filtered by the last month's
volatility: at zero it is filtered historical simulation, and each output is the log of how
much wider today's tail is than that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import DataError
from deepfin.models import build_model
from deepfin.tasks.risk.networks import FEATURES, WARMUP, volatility_features, windows
from deepfin.training import TrainingConfig, fit_model

TAIL_METHODS = ("quantile", "fz0")
TAIL_QUANTILES = 4  # quantiles inside each tail, whose mean is the quantile model's ES
MAX_LOG_SCALE = 5.0  # a tail at most e^5 times the training days' own


def tail_probabilities(method: str, level: float) -> np.ndarray:
    """The tail probabilities a net forecasts for `level`, deepest first: for `quantile` the
    midpoints of the tail (their mean is ES) then its edge (VaR); for `fz0` ES's then VaR's."""
    tail = 1.0 - level
    if method == "fz0":
        return np.array([tail, tail])
    return np.array([*(tail * (np.arange(TAIL_QUANTILES) + 0.5) / TAIL_QUANTILES), tail])


def empirical_values(sample: np.ndarray, method: str, level: float) -> np.ndarray:
    """The training sample's own values of what the net forecasts (increasing, negative)."""
    tail = 1.0 - level
    if method == "fz0":
        quantile = float(np.quantile(sample, tail))
        return np.array([float(sample[sample <= quantile].mean()), quantile])
    return np.quantile(sample, tail_probabilities(method, level))


def base_gaps(base_values: np.ndarray) -> torch.Tensor:
    """The gaps (K,) between increasing negative values and from the last to zero."""
    gaps = np.diff(np.concatenate([base_values, [0.0]]))
    return torch.tensor(np.maximum(gaps, 1e-6), dtype=torch.float32)


MONTH = FEATURES.index("log_variance_month")


class TailHead(nn.Module):
    """A net whose outputs (B, K) become K increasing negative tail values (B, K): each gap
    between neighbours is the training days' gap of volatility-filtered returns, times the
    last month's volatility (relative to training), times e^output. At output zero it is
    filtered historical simulation with a one-month volatility; the net learns corrections."""

    gaps: torch.Tensor
    month_spread: torch.Tensor

    def __init__(self, net: nn.Module, base_values: np.ndarray, month_spread: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("gaps", base_gaps(base_values))
        # the standard deviation of the log monthly variance on training days: it turns the
        # standardised feature back into a log variance relative to its training mean
        self.register_buffer("month_spread", torch.tensor(month_spread, dtype=torch.float32))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Tail values (B, K), deepest first, of windows (B, T, F)."""
        volatility = torch.exp(0.5 * self.month_spread * windows[:, -1, MONTH : MONTH + 1])
        scale = torch.exp(self.net(windows).clamp(-MAX_LOG_SCALE, MAX_LOG_SCALE))  # (B, K)
        steps = self.gaps * scale * volatility
        return -torch.flip(torch.cumsum(torch.flip(steps, [1]), 1), [1])


def pinball(
    values: torch.Tensor, targets: torch.Tensor, probabilities: torch.Tensor
) -> torch.Tensor:
    """Mean pinball loss of quantiles (B, K) at `probabilities` (K,) of targets (B, 1)."""
    error = targets - values
    return torch.maximum(probabilities * error, (probabilities - 1.0) * error).mean(0).sum()


def fz0(values: torch.Tensor, targets: torch.Tensor, tail: float) -> torch.Tensor:
    """Mean FZ0 loss of (ES, VaR) forecasts (B, 2) as returns of targets (B, 1)."""
    shortfall, quantile = values[:, :1], values[:, 1:]
    hit = (targets <= quantile).to(values.dtype)
    loss = -hit * (quantile - targets) / (tail * shortfall) + quantile / shortfall
    return (loss + torch.log(-shortfall) - 1.0).mean()


@dataclass
class TailFit:
    """A trained tail net and the scales of its inputs and returns."""

    model: TailHead
    feature_mean: np.ndarray
    feature_std: np.ndarray
    return_scale: float


def _loss(
    method: str, probabilities: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if method == "fz0":
            return fz0(values, targets, float(probabilities[0]))
        return pinball(values, targets, probabilities.to(values.device))

    return loss


def fit_tail_network(
    name: str,
    method: str,
    level: float,
    history: VolatilityHistory,
    *,
    start: int,
    val_days: int,
    lookback: int,
    training: TrainingConfig,
    previous: TailFit | None = None,
) -> TailFit:
    """Train on origins before `start` (their next day too), stopping early on the last
    `val_days` of them; start from `previous`'s weights when given."""
    features = volatility_features(history)[:start]
    next_return = np.append(history.returns[1:start], np.nan)  # row t: day t+1's return
    first = WARMUP + lookback - 1
    val_first = start - 1 - val_days
    train_origins = np.arange(first, val_first - 1)  # next day before the validation block
    val_origins = np.arange(val_first, start - 1)
    if train_origins.size < 250:
        raise DataError(
            f"{name} {method}: {train_origins.size} training days before the first test day; "
            "it needs 250: choose a later test_start or fewer val_days"
        )
    rows = features[WARMUP:val_first]
    feature_mean, feature_std = rows.mean(axis=0), rows.std(axis=0) + 1e-8
    return_scale = float(np.std(next_return[train_origins]))
    scaled = (features - feature_mean) / feature_std
    target = next_return / return_scale
    probabilities = torch.tensor(tail_probabilities(method, level), dtype=torch.float32)
    month_spread = float(feature_std[MONTH])
    # each training day's return over its month's volatility, relative to training's
    volatility = np.exp(0.5 * month_spread * scaled[train_origins, MONTH])
    base = empirical_values(target[train_origins] / volatility, method, level)
    torch.manual_seed(training.seed)  # the same weights whatever ran before
    net = build_model(name, n_features=len(FEATURES), lookback=lookback, n_outputs=base.size)
    model = TailHead(net, base, month_spread)
    if previous is not None:
        model.load_state_dict(previous.model.state_dict())
        model.gaps.copy_(base_gaps(base))  # this fold's own filtered tail
        model.month_spread.fill_(month_spread)
    fit_model(
        model,
        windows(scaled, target, train_origins, lookback),
        windows(scaled, target, val_origins, lookback),
        loss_fn=_loss(method, probabilities),
        config=training,
    )
    return TailFit(model, feature_mean, feature_std, return_scale)


def forecast_tail(
    fitted: TailFit, history: VolatilityHistory, origins: np.ndarray, *, method: str, lookback: int
) -> tuple[np.ndarray, np.ndarray]:
    """VaR and ES (positive losses, (N,) each) for the day after each origin."""
    features = volatility_features(history)[: int(origins.max()) + 1]
    scaled = (features - fitted.feature_mean) / fitted.feature_std
    data = windows(scaled, np.zeros(len(features)), origins, lookback)
    fitted.model.eval()
    with torch.no_grad():
        inputs, _ = data.batch(torch.arange(len(data)))
        values = fitted.model(inputs).double().numpy() * fitted.return_scale  # (N, K)
    var = -values[:, -1]
    es = -values[:, 0] if method == "fz0" else -values[:, :-1].mean(axis=1)
    return var, np.maximum(es, var)
