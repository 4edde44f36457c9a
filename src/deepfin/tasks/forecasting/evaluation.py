"""Scoring forecasts: the prediction table of a test period and its metrics per model.

Models are judged, ranked and tested on the target, the log return, which is free of each
ticker's price level; price errors are a second view (a few high-priced stocks dominate them).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from deepfin.data.features import FACTORS
from deepfin.errors import DataError
from deepfin.metrics.portfolio import long_short_book
from deepfin.metrics.ranking import panel_ic_metrics
from deepfin.metrics.regression import (
    checked_series,
    directional_accuracy,
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_out_of_sample,
    root_mean_squared_error,
)
from deepfin.metrics.significance import diebold_mariano, panel_diebold_mariano

log = logging.getLogger(__name__)

MIN_PANEL_NAMES = 5  # tickers below which a cross-sectional IC means nothing
COST_BPS = 5.0  # per unit of turnover: the net long-short Sharpe pays it
# rows that are references, not fitted models: a hit rate to beat, and one-line factors
ALWAYS_UP = "always_up"
REFERENCES = (ALWAYS_UP, *FACTORS)
# the metrics a leaderboard or report table shows, in order
HEADLINE_METRICS = (
    "return_rmse",
    "return_mae",
    "r2_oos",
    "directional_accuracy",
    "dm_statistic",
    "dm_p_value",
    "ic_mean",
    "icir",
    "rank_ic_mean",
    "rank_ic_t_stat",
    "rank_icir",
    "long_short_sharpe",
    "long_short_sharpe_net",
    "price_rmse",
    "price_mae",
    "price_mape",
)
# what each one-line factor is, for captions; a test holds the keys to FACTORS
FACTOR_NOTES = {
    "reversal": "minus the last return",
    "momentum_20": "the 20-day return",
    "low_volatility_20": "minus the 20-day volatility of daily returns",
}


def table_caption(panel: bool, *, several_tickers: bool | None = None) -> str:
    """What each column of a metrics table is computed on.

    `panel`: IC and factor rows are shown; `several_tickers` (default: `panel`): the DM test
    takes one observation per date.
    """
    several = panel if several_tickers is None else several_tickers
    test = (
        "with several tickers, one observation per date: the cross-sectional mean loss "
        "differential, Newey-West variance"
        if several
        else "Harvey-Leybourne-Newbold corrected"
    )
    parts = [
        "Return RMSE and MAE, R2 vs naive (1 - SSE / SSE of the zero-return forecast), hit rate "
        f"and the Diebold-Mariano test against naive ({test}) are computed on next-horizon log "
        "returns",
        "price RMSE, MAE and MAPE are a second view in price units",
        "always_up is the hit rate of forecasting a rise every day",
    ]
    if panel:
        parts[1:1] = [
            "IC and Rank IC are daily cross-sectional correlations averaged over dates",
            "the long-short Sharpe is the annualised Sharpe ratio of a book long the top 10% of "
            "tickers by forecast and short the bottom 10%, equal-weight, rebalanced daily (every "
            "h-th date at horizon h) on simple returns, before and after (net) "
            f"{COST_BPS:g} bps per unit of turnover; long_short_turnover is the book's mean sum "
            "of |weight change| per rebalance",
        ]
        factors = [f"{name} ({FACTOR_NOTES.get(name, 'a one-line factor')})" for name in FACTORS]
        parts.append(", ".join(factors) + " are one-line factors scored on the same rows")
    return "; ".join(parts) + "."


def is_panel(table: pl.DataFrame) -> bool:
    """Whether a prediction table has enough tickers for cross-sectional metrics."""
    return table["ticker"].n_unique() >= MIN_PANEL_NAMES


def prediction_table(rows: pl.DataFrame, forecasts: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per forecast origin: date, ticker, close, actuals, each model's return and price, factors.

    `suspect_outcome` marks rows whose outcome spans a one-day move beyond the bad-tick bound.
    """
    close = rows["close"].to_numpy()
    actual_price = rows["future_close"].to_numpy()
    columns: dict[str, np.ndarray] = {
        "actual_log_return": np.log(actual_price / close),
        "actual_price": actual_price,
    }
    for name, forecast_return in forecasts.items():
        columns[f"{name}_log_return"] = forecast_return
        columns[f"{name}_price"] = close * np.exp(forecast_return)
    return rows.select(
        "date",
        "ticker",
        "close",
        pl.col("jump_ahead").alias("suspect_outcome"),
        *[pl.col(f"{name}_signal").cast(pl.Float64) for name in FACTORS],
    ).with_columns(pl.Series(name, values) for name, values in columns.items())


def score_predictions(table: pl.DataFrame, models: list[str], *, horizon: int) -> dict[str, Any]:
    """Metrics of each model's columns in a prediction table, and of the reference rows.

    Rows whose outcome is suspect are left out of every metric and counted in `n_excluded`.
    """
    flagged = "suspect_outcome" in table.columns
    suspect = table["suspect_outcome"] if flagged else pl.repeat(False, table.height, eager=True)
    n_excluded = int(suspect.sum())
    if n_excluded == table.height:
        raise DataError(f"all {table.height} outcomes are suspect jumps; nothing is left to score")
    # columns are taken one at a time through the mask: no filtered copy of the whole table
    keep = ~suspect.to_numpy() if n_excluded else slice(None)

    def column(name: str) -> np.ndarray:
        return table[name].to_numpy()[keep]

    # dates as their day numbers: they group the cross-sections at half the memory
    actual_return, actual_price = column("actual_log_return"), column("actual_price")
    dates = table["date"].to_physical().to_numpy()[keep]
    tickers = table["ticker"].filter(~suspect) if n_excluded else table["ticker"]
    n_tickers = tickers.n_unique()
    panel = n_tickers >= MIN_PANEL_NAMES
    common = {
        "n": float(len(actual_return)),
        "n_dates": float(len(np.unique(dates))),
        "n_tickers": float(n_tickers),
        "n_excluded": float(n_excluded),
    }
    metrics: dict[str, Any] = {}
    for name in models:
        forecast_return = column(f"{name}_log_return")
        row: dict[str, float | None] = {}
        row |= return_metrics(
            actual_return, forecast_return, dates, horizon=horizon, panel=n_tickers > 1
        )
        row |= price_metrics(actual_price, column(f"{name}_price"))
        if name == "naive":
            # the benchmark against itself: no direction, and nothing to test
            row |= {"directional_accuracy": None, "dm_statistic": None, "dm_p_value": None}
        elif panel:
            row |= _ic_metrics(dates, actual_return, forecast_return, name, horizon)
            row |= long_short_metrics(dates, tickers, actual_return, forecast_return, horizon)
        metrics[name] = row | common
    moved = actual_return != 0
    up_share = float((actual_return[moved] > 0).mean()) if moved.any() else None
    metrics[ALWAYS_UP] = {"directional_accuracy": up_share} | common
    if panel:
        for name in FACTORS:
            signal = column(f"{name}_signal")
            known = np.isfinite(signal)  # a factor's first rows lack the history it reads
            if known.sum() < 2:
                continue
            on, actual, signal = dates[known], actual_return[known], signal[known]
            metrics[name] = {
                "directional_accuracy": directional_accuracy(actual, signal),
                **_ic_metrics(on, actual, signal, name, horizon),
                **long_short_metrics(on, tickers.filter(pl.Series(known)), actual, signal, horizon),
            } | common
    return metrics


def return_metrics(
    actual_return: np.ndarray,
    forecast_return: np.ndarray,
    dates: np.ndarray,
    *,
    horizon: int,
    panel: bool,
) -> dict[str, float | None]:
    """Errors, hit rate, R² against naive and Diebold-Mariano against naive, on log returns.

    `panel`: more than one ticker, so the test takes one observation per date.
    """
    actual, forecast = checked_series(actual_return=actual_return, forecast_return=forecast_return)
    naive = np.zeros_like(actual)  # tomorrow's price is today's: a zero return
    dm: dict[str, float | None] = {"statistic": None, "p_value": None}
    try:
        if panel:
            dm |= panel_diebold_mariano(dates, actual, forecast, naive, horizon=horizon)
        else:
            dm |= diebold_mariano(actual, forecast, naive, horizon=horizon)
    except ValueError as error:
        # too few dates for a test (a short fold): the errors still stand, untested
        log.info("no Diebold-Mariano test: %s", error)
    return {
        "return_rmse": root_mean_squared_error(actual, forecast),
        "return_mae": mean_absolute_error(actual, forecast),
        "r2_oos": r2_out_of_sample(actual, forecast, naive),
        "directional_accuracy": directional_accuracy(actual, forecast),
        "dm_statistic": dm["statistic"],
        "dm_p_value": dm["p_value"],
    }


def price_metrics(actual_price: np.ndarray, forecast_price: np.ndarray) -> dict[str, float]:
    """The same forecasts as prices: RMSE, MAE and MAPE in price units."""
    return {
        "price_rmse": root_mean_squared_error(actual_price, forecast_price),
        "price_mae": mean_absolute_error(actual_price, forecast_price),
        "price_mape": mean_absolute_percentage_error(actual_price, forecast_price),
    }


def _ic_metrics(
    dates: np.ndarray, actual_return: np.ndarray, signal: np.ndarray, name: str, horizon: int
) -> dict[str, float]:
    try:
        return panel_ic_metrics(
            dates=dates, actual_return=actual_return, forecast_return=signal, horizon=horizon
        )
    except ValueError as error:
        # too few dates with enough names: the other metrics still stand
        log.warning("%s: no IC reported (%s)", name, error)
        return {}


def long_short_metrics(
    dates: np.ndarray,
    tickers: pl.Series,
    actual_return: np.ndarray,
    signal: np.ndarray,
    horizon: int,
) -> dict[str, float | None]:
    """Sharpe before and after costs, and mean turnover, of the decile long-short book."""
    book = long_short_book(
        dates=dates,
        tickers=tickers,
        forecast=signal,
        actual_return=actual_return,
        horizon=horizon,
        cost_bps=COST_BPS,
        min_names=MIN_PANEL_NAMES,
    )
    return {
        "long_short_sharpe": book.sharpe,
        "long_short_sharpe_net": book.sharpe_net,
        "long_short_turnover": book.mean_turnover,
    }


def excluded_note(metrics: dict[str, dict[str, Any]]) -> str | None:
    """A sentence on the test forecasts left out of the metrics as suspect jumps, if any."""
    excluded = max((row.get("n_excluded") or 0 for row in metrics.values()), default=0)
    if not excluded:
        return None
    return (
        f"{excluded:.0f} test forecast(s) whose outcome spans a one-day move beyond "
        "max_abs_log_return are left out of the metrics (suspect ticks or unadjusted splits); "
        "they are in predictions.parquet, flagged suspect_outcome."
    )


def caption_for(metrics: dict[str, dict[str, Any]]) -> str:
    """The caption of a metrics table of these rows."""
    panel = any(row.get("ic_mean") is not None for row in metrics.values())
    tickers = max((row.get("n_tickers") or 1 for row in metrics.values()), default=1)
    return table_caption(panel, several_tickers=tickers > 1)


def primary_rmse(row: dict[str, Any]) -> float | None:
    """The error a model is judged and ranked by (run folders before returns: price RMSE)."""
    value = row.get("return_rmse", row.get("rmse"))
    return None if value is None else float(value)
