"""Forecasts and prices laid on one (periods, tickers) grid of the price calendar, validated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from deepfin.errors import DataError


@dataclass
class Grid:
    """Forecasts and one-period returns on a (P periods, N tickers) grid."""

    decision_dates: pl.Series  # (P,) the date each period's position is decided and traded
    end_dates: pl.Series  # (P,) the next price date, when the period's return is known
    tickers: list[str]
    forecast: np.ndarray  # (P, N), NaN where a ticker has no forecast
    simple_return: np.ndarray  # (P, N), NaN before a ticker's first close
    quoted: np.ndarray  # (P, N) a close exists on the decision date


def _checked(frame: pl.DataFrame, name: str, value_column: str) -> pl.DataFrame:
    """The date, ticker and value columns of a frame, checked to be complete and unique."""
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"{name} must be a polars DataFrame (pl.from_pandas converts pandas)")
    needed = ["date", "ticker", value_column]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise DataError(f"{name} lacks column(s) {missing}; it needs {needed}, has {frame.columns}")
    if frame.height == 0:
        raise DataError(f"{name} is empty (no rows); check the filter or the file")
    if not frame.schema["date"].is_temporal():
        raise DataError(f"{name}.date is {frame.schema['date']}; parse it to a date first")
    frame = frame.select(
        "date", pl.col("ticker").cast(pl.String), pl.col(value_column).cast(pl.Float64)
    )
    nulls = {
        column: count
        for column, count in zip(needed, frame.null_count().row(0), strict=True)
        if count
    }
    values = frame[value_column].to_numpy()
    if nulls or not np.isfinite(values).all():
        raise DataError(f"{name} has missing or non-finite values ({nulls}); drop those rows")
    if value_column == "close" and (values <= 0).any():
        raise DataError(f"prices has {(values <= 0).sum()} non-positive closes; fix the data")
    return frame


def make_grid(forecasts: pl.DataFrame, prices: pl.DataFrame) -> Grid:
    """Validate both frames and lay forecasts and returns on the price calendar."""
    forecasts = _checked(forecasts, "forecasts", "forecast")
    prices = _checked(prices, "prices", "close")
    if forecasts.schema["date"] != prices.schema["date"]:
        raise DataError(
            f"forecasts.date is {forecasts.schema['date']} but prices.date is "
            f"{prices.schema['date']}; cast both to the same type"
        )
    tickers = sorted(forecasts["ticker"].unique().to_list())
    prices = prices.filter(pl.col("ticker").is_in(tickers))
    calendar = prices["date"].unique().sort()
    calendar_key = calendar.to_physical().to_numpy()

    n_dates, n_tickers = calendar.len(), len(tickers)

    def cells(frame: pl.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        date_key = frame["date"].to_physical().to_numpy()
        row = np.minimum(np.searchsorted(calendar_key, date_key), n_dates - 1)
        col = frame["ticker"].cast(pl.Enum(tickers)).to_physical().to_numpy().astype(np.int64)
        on_calendar = calendar_key[row] == date_key
        if np.bincount(row[on_calendar] * n_tickers + col[on_calendar]).max() > 1:
            raise DataError(
                f"{name} has duplicate (date, ticker) rows; keep one per day and ticker"
            )
        return row, col, on_calendar

    close = np.full((n_dates, n_tickers), np.nan)  # (T, N)
    close[cells(prices, "prices")[:2]] = prices["close"].to_numpy()
    row, col, on_calendar = cells(forecasts, "forecasts")
    unpriced = ~on_calendar | ~np.isfinite(close[row, col])
    if unpriced.any():
        date, ticker = forecasts.filter(pl.Series(unpriced)).row(0)[:2]
        raise DataError(
            f"{unpriced.sum()} forecasts have no close on their date in prices, e.g. {ticker} on "
            f"{date}; the dates are misaligned: give prices for every forecast date and ticker"
        )
    first, last = int(row.min()), min(int(row.max()), n_dates - 2)
    if last < first:
        raise DataError(
            f"prices end on {calendar[-1]}, the first forecast date; a backtest needs closes "
            "after the forecast dates to earn a return"
        )
    # forward-fill closes down each ticker: row index of the latest close so far, per column
    latest = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(len(close))[:, None], 0))
    filled = np.take_along_axis(close, latest, axis=0)
    periods = slice(first, last + 1)
    forecast = np.full((last + 1 - first, n_tickers), np.nan)
    keep = row <= last  # a forecast on the final price date has no next close to earn
    forecast[row[keep] - first, col[keep]] = forecasts["forecast"].to_numpy()[keep]
    return Grid(
        decision_dates=calendar[periods],
        end_dates=calendar[first + 1 : last + 2],
        tickers=tickers,
        forecast=forecast,
        simple_return=filled[first + 1 : last + 2] / filled[periods] - 1,
        quoted=np.isfinite(close[periods]),
    )
