"""Strategy returns from forecasts, with trading costs, and their performance statistics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import polars as pl

from deepfin.backtest.grid import make_grid
from deepfin.errors import ConfigError, DataError
from deepfin.metrics.performance import Stats, equity_and_drawdown, performance_stats

# Conventions (each one is pinned by a test):
# - timing: the position decided at date t, from forecasts made with close_t, trades at close_t
#   and earns the simple return close_next / close_t - 1 to the next price date; a daily row is
#   labelled by that end date. One-period returns come from `prices`, never from a forecast
#   frame's horizon-h actuals, so horizon > 1 forecasts still earn daily returns.
# - rebalancing: on every `rebalance_every`-th forecast date (the holding period); in between,
#   weights drift with prices, w_i (1 + r_i) / (1 + r_portfolio), as an untouched book would.
# - costs: cost_bps on traded value, turnover = sum |w_target - w_drifted|, plus fixed_cost (a
#   fraction of NAV) on each rebalance that trades; both are charged as a fraction of the NAV
#   at the trade and settled at the period's end, so net_return = gross_return - cost exactly.
# - benchmark: buy-and-hold for one ticker; for a panel the equal-weight universe of the
#   forecast tickers quoted on the decision date, rebalanced daily (no drift) and cost-free.
# - closes are forward-filled within a ticker: a gap earns 0 and then the whole move, and a
#   delisted holding is carried flat until the next rebalance sells it.

Mode = Literal["long_flat", "long_short"]
Weighting = Literal["equal", "signal"]
BASIS_POINT = 1e-4


@dataclass(frozen=True)
class BacktestConfig:
    """How forecasts become positions, how often they trade and what trading costs."""

    mode: Mode = "long_flat"
    # trade only where |forecast| > threshold; None: the sign (one ticker), pure rank (panel)
    threshold: float | None = None
    top_k: int | None = None  # panel: names held long (or give top_fraction)
    bottom_k: int | None = None  # panel long_short: names held short; None: as many as long
    top_fraction: float | None = None  # panel: share of the names held long; 0.1 = top decile
    weighting: Weighting = "equal"  # panel: equal, or ∝ |forecast|; gross exposure 1 per side
    rebalance_every: int = 1  # forecast dates between trades, i.e. the holding period
    cost_bps: float = 0.0  # basis points of traded value
    fixed_cost: float = 0.0  # fraction of NAV per rebalance that trades (0.0001 = 1 bp)
    periods_per_year: int = 252
    risk_free_rate: float = 0.0  # annual, for Sharpe and Sortino

    def __post_init__(self) -> None:
        if self.mode not in ("long_flat", "long_short"):
            raise ConfigError(f"mode must be 'long_flat' or 'long_short'; got {self.mode!r}")
        if self.weighting not in ("equal", "signal"):
            raise ConfigError(f"weighting must be 'equal' or 'signal'; got {self.weighting!r}")
        if self.threshold is not None and not 0 <= self.threshold < float("inf"):
            raise ConfigError(f"threshold must be >= 0 or None; got {self.threshold}")
        if self.top_k is not None and self.top_fraction is not None:
            raise ConfigError("give top_k or top_fraction, not both")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1; got {self.top_k}")
        if self.bottom_k is not None and (self.bottom_k < 1 or self.mode != "long_short"):
            raise ConfigError(f"bottom_k={self.bottom_k} needs mode='long_short' and be >= 1")
        max_fraction = 0.5 if self.mode == "long_short" else 1.0
        if self.top_fraction is not None and not 0 < self.top_fraction <= max_fraction:
            raise ConfigError(
                f"top_fraction must be in (0, {max_fraction}] for mode={self.mode!r} so the long "
                f"and short books cannot overlap; got {self.top_fraction}"
            )
        if self.rebalance_every < 1 or self.periods_per_year < 1:
            raise ConfigError(
                f"rebalance_every={self.rebalance_every} and periods_per_year="
                f"{self.periods_per_year} must both be >= 1"
            )
        if not (0 <= self.cost_bps < 10_000 and 0 <= self.fixed_cost < 1):
            raise ConfigError(
                f"cost_bps must lie in [0, 10000) (a cost below the whole amount traded) and "
                f"fixed_cost in [0, 1); got {self.cost_bps}, "
                f"{self.fixed_cost}"
            )


@dataclass(frozen=True)
class BacktestResult:
    """Daily returns, costs, exposures and equity curves; positions; statistics per series."""

    daily: pl.DataFrame
    positions: pl.DataFrame  # date (decision date), ticker, weight: the book held after trading
    stats: dict[str, Stats]  # "gross", "net", "benchmark"
    config: BacktestConfig


def forecasts_from_predictions(predictions: pl.DataFrame, *, model: str) -> pl.DataFrame:
    """The (date, ticker, forecast) frame of one model from a run's predictions.parquet."""
    # a model forecasts a return; a one-line factor gives a signal to rank by
    column = next(
        (c for c in (f"{model}_log_return", f"{model}_signal") if c in predictions.columns),
        f"{model}_log_return",
    )
    if column not in predictions.columns:
        models = [
            c.removesuffix("_log_return").removesuffix("_signal")
            for c in predictions.columns
            if c.endswith(("_log_return", "_signal")) and c != "actual_log_return"
        ]
        raise DataError(f"predictions have no column {column!r}; models there: {models}")
    return predictions.select("date", "ticker", pl.col(column).alias("forecast"))


def run_backtest(
    *, forecasts: pl.DataFrame, prices: pl.DataFrame, config: BacktestConfig | None = None
) -> BacktestResult:
    """Trade the forecasts on the prices' daily returns; returns before/after costs and stats."""
    config = config or BacktestConfig()
    grid = make_grid(forecasts, prices)
    forecast_dates = np.isfinite(grid.forecast).any(axis=1)
    rebalance = forecast_dates & ((np.cumsum(forecast_dates) - 1) % config.rebalance_every == 0)
    rebalance_dates = grid.decision_dates.filter(pl.Series(rebalance))
    target = _target_weights(grid.forecast[rebalance], rebalance_dates, config)
    weights, gross, turnover = _simulate(grid.simple_return, target, rebalance, grid.end_dates)
    traded = rebalance & (turnover > 0)
    cost = config.cost_bps * BASIS_POINT * turnover + config.fixed_cost * traded
    net = gross - cost
    # one ticker: this is buy-and-hold, since a lone asset's weight never drifts from 1
    quoted = grid.quoted
    benchmark = np.where(quoted, grid.simple_return, 0.0).sum(axis=1) / quoted.sum(axis=1)
    gross_exposure, net_exposure = np.abs(weights).sum(1), weights.sum(1)

    columns: dict[str, Any] = {
        "date": grid.end_dates,
        "decision_date": grid.decision_dates,
        "rebalance": rebalance,
        "gross_return": gross,
        "net_return": net,
        "benchmark_return": benchmark,
        "turnover": turnover,
        "cost": cost,
        "gross_exposure": gross_exposure,
        "net_exposure": net_exposure,
    }
    for name, series in (("gross", gross), ("net", net), ("benchmark", benchmark)):
        columns[f"{name}_equity"], columns[f"{name}_drawdown"] = equity_and_drawdown(series)
    rows, cols = np.nonzero(weights)
    positions = pl.DataFrame(
        {
            "date": grid.decision_dates.gather(rows),
            "ticker": pl.Series(grid.tickers, dtype=pl.String).gather(cols),
            "weight": weights[rows, cols],
        }
    )

    stats = partial(
        performance_stats,
        dates=grid.end_dates,
        periods_per_year=config.periods_per_year,
        risk_free_rate=config.risk_free_rate,
        start_date=grid.decision_dates[0],
    )
    years = gross.size / config.periods_per_year
    trading: Stats = {
        "average_turnover_per_rebalance": float(turnover[rebalance].mean()),
        "annual_turnover": float(turnover.sum() / years),
        "average_gross_exposure": float(gross_exposure.mean()),
        "average_net_exposure": float(net_exposure.mean()),
        "n_rebalances": int(rebalance.sum()),
    }
    holding = gross_exposure > 0
    return BacktestResult(
        daily=pl.DataFrame(columns),
        positions=positions,
        stats={
            "gross": stats(gross, active=holding) | trading | {"total_cost": 0.0},
            "net": stats(net, active=holding) | trading | {"total_cost": float(cost.sum())},
            "benchmark": stats(benchmark)
            | {key: None for key in trading}
            | {"average_gross_exposure": 1.0, "average_net_exposure": 1.0, "total_cost": 0.0},
        },
        config=config,
    )


def _simulate(
    simple_return: np.ndarray, target: np.ndarray, rebalance: np.ndarray, dates: pl.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held weights (P, N), gross return (P,) and turnover (P,): trade, earn, drift, repeat."""
    n_periods, n_tickers = simple_return.shape
    weights = np.zeros((n_periods, n_tickers))
    gross, turnover = np.zeros(n_periods), np.zeros(n_periods)
    drifted = np.zeros(n_tickers)  # the book before today's trade
    targets = iter(target)
    for period in range(n_periods):
        held = drifted
        if rebalance[period]:
            held = next(targets)
            turnover[period] = np.abs(held - drifted).sum()
        # a held name always has a close on the decision date, so NaN only meets weight 0
        period_return = np.where(held != 0, simple_return[period], 0.0)
        gross[period] = held @ period_return
        if gross[period] <= -1:
            raise DataError(
                f"the strategy lost all its capital on {dates[period]} (gross return "
                f"{gross[period]:.2f}); check the prices, or hold more names per side"
            )
        weights[period] = held
        drifted = held * (1 + period_return) / (1 + gross[period])
    return weights, gross, turnover


def _target_weights(forecast: np.ndarray, dates: pl.Series, config: BacktestConfig) -> np.ndarray:
    """Weights (K, N) wanted at each of K rebalances from that day's forecasts (NaN: none)."""
    long_short = config.mode == "long_short"
    threshold = config.threshold
    if forecast.shape[1] == 1:
        # one ticker: the sign (or the threshold) sets the whole book; weighting has no room
        level = threshold or 0.0
        return (forecast > level) - long_short * (forecast < -level).astype(np.float64)
    if config.top_k is None and config.top_fraction is None:
        raise ConfigError("a panel needs top_k or top_fraction to choose the names to hold")
    has_forecast = np.isfinite(forecast)
    n_names = has_forecast.sum(axis=1)  # (K,)
    if config.top_k is not None:
        n_long = np.full(n_names.shape, config.top_k)
    else:
        n_long = np.maximum(1, np.floor(config.top_fraction * n_names + 1e-9)).astype(np.int64)
    n_short = np.zeros_like(n_long)
    if long_short:
        n_short = n_long if config.bottom_k is None else np.full(n_names.shape, config.bottom_k)
    short_of_names = np.flatnonzero(n_long + n_short > n_names)
    if short_of_names.size:
        first = short_of_names[0]
        raise DataError(
            f"{n_long[first]} long + {n_short[first]} short names wanted but only "
            f"{n_names[first]} tickers have a forecast on {dates[int(first)]} "
            f"({short_of_names.size} rebalance dates affected); lower top_k/bottom_k or use "
            "top_fraction"
        )
    # stable sort on the negated forecast: ties go to the earlier ticker, missing names last
    order = np.argsort(np.where(has_forecast, -forecast, np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(forecast.shape[1])[None, :], axis=1)  # 0 = best
    long = has_forecast & (rank < n_long[:, None])
    short = has_forecast & (n_names[:, None] - 1 - rank < n_short[:, None])
    if threshold is not None:
        long &= forecast > threshold
        short &= forecast < -threshold
    return _side_weights(forecast, long, config) - _side_weights(forecast, short, config)


def _side_weights(forecast: np.ndarray, chosen: np.ndarray, config: BacktestConfig) -> np.ndarray:
    """Non-negative weights over the chosen names summing to 1 per row (0 where none chosen)."""
    size = chosen.astype(np.float64)
    if config.weighting == "signal":
        signal = np.where(chosen, np.abs(np.nan_to_num(forecast)), 0.0)
        # a side whose forecasts are all exactly 0 carries no signal to size by: equal weight
        size = np.where(signal.sum(axis=1, keepdims=True) > 0, signal, size)
    total = size.sum(axis=1, keepdims=True)
    return np.divide(size, total, out=np.zeros_like(size), where=total > 0)
