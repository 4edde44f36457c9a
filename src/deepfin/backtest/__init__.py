"""Backtests: strategy returns from forecasts, with trading costs."""

from deepfin.backtest.strategy import (
    BacktestConfig,
    BacktestResult,
    forecasts_from_predictions,
    performance_stats,
    run_backtest,
)

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "forecasts_from_predictions",
    "performance_stats",
    "run_backtest",
]
