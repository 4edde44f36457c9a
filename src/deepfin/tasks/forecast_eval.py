"""Scoring forecasts: the prediction table of a test period and its metrics per model."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from deepfin.metrics import forecast_metrics, panel_ic_metrics

MIN_PANEL_NAMES = 5
# the metrics a leaderboard or report table shows, in order
HEADLINE_METRICS = (
    "mae",
    "rmse",
    "mape",
    "directional_accuracy",
    "r2_oos",
    "dm_statistic",
    "dm_p_value",
    "ic_mean",
    "icir",
    "rank_ic_mean",
    "rank_icir",
)  # tickers per date below which a cross-sectional IC means nothing


def prediction_table(rows: pl.DataFrame, forecasts: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per forecast origin: date, ticker, close, actuals, and each model's return and price."""
    close = rows["close"].to_numpy()
    actual_price = rows["future_close"].to_numpy()
    columns: dict[str, np.ndarray] = {
        "actual_log_return": np.log(actual_price / close),
        "actual_price": actual_price,
    }
    for name, forecast_return in forecasts.items():
        columns[f"{name}_log_return"] = forecast_return
        columns[f"{name}_price"] = close * np.exp(forecast_return)
    return rows.select("date", "ticker", "close").with_columns(
        pl.Series(name, values) for name, values in columns.items()
    )


def score_predictions(table: pl.DataFrame, models: list[str], *, horizon: int) -> dict[str, Any]:
    """Metrics of each model's columns in a prediction table; IC too when it is a panel."""
    close = table["close"].to_numpy()
    actual_price = table["actual_price"].to_numpy()
    actual_return = table["actual_log_return"].to_numpy()
    panel = table["ticker"].n_unique() >= MIN_PANEL_NAMES
    metrics: dict[str, Any] = {}
    for name in models:
        forecast_return = table[f"{name}_log_return"].to_numpy()
        metrics[name] = forecast_metrics(
            actual_price=actual_price,
            forecast_price=table[f"{name}_price"].to_numpy(),
            naive_price=close,
            actual_return=actual_return,
            forecast_return=forecast_return,
            horizon=horizon,
        )
        if panel and name != "naive":
            metrics[name] |= panel_ic_metrics(
                dates=table["date"].to_numpy(),
                actual_return=actual_return,
                forecast_return=forecast_return,
            )
    return metrics
