"""A portfolio of a panel's tickers: their returns side by side, the weights a user gives, and
the portfolio's daily return at constant weights (rebalanced every day)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from deepfin.data.files import read_table
from deepfin.errors import DataError

log = logging.getLogger(__name__)

MIN_COVERAGE = 0.95  # a ticker missing more of the dates than this is left out
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class AssetReturns:
    """Simple daily returns (D, A) of A tickers on D common dates."""

    dates: list
    tickers: list[str]
    returns: np.ndarray  # (D, A)


def asset_returns(prices: pl.DataFrame, *, judged_before: dt.date | None = None) -> AssetReturns:
    """Each ticker's simple daily return on the dates all kept tickers share; tickers with
    closes on fewer than 95% of the dates before `judged_before` (all dates if None) are left
    out, said in a warning: which tickers a portfolio holds is decided before its test days."""
    wide = prices.pivot(on="ticker", index="date", values="close", sort_columns=False).sort("date")
    tickers = [column for column in wide.columns if column != "date"]
    judged = wide if judged_before is None else wide.filter(pl.col("date") < judged_before)
    if judged.height == 0:
        raise DataError(
            f"no day of the data lies before {judged_before}; choose a later test_start"
        )
    coverage = {ticker: 1.0 - judged[ticker].null_count() / judged.height for ticker in tickers}
    sparse = [ticker for ticker in tickers if coverage[ticker] < MIN_COVERAGE]
    if sparse:
        shown = ", ".join(f"{ticker} ({coverage[ticker]:.0%})" for ticker in sparse[:5])
        log.warning(
            "left out %d ticker(s) with prices on under %.0f%% of the dates: %s",
            len(sparse),
            100 * MIN_COVERAGE,
            shown,
        )
    kept = [ticker for ticker in tickers if ticker not in sparse]
    if not kept:
        raise DataError("no ticker has prices on 95% of the dates; check the file")
    wide = wide.select("date", *kept).drop_nulls()
    if wide.height < 3:
        raise DataError("the tickers share fewer than 3 dates; check the file's dates")
    closes = wide.select(kept).to_numpy().astype(np.float64)  # (D, A)
    return AssetReturns(wide["date"].to_list()[1:], kept, closes[1:] / closes[:-1] - 1.0)


def read_portfolio_weights(source: str | Path) -> dict[str, float]:
    """Weight by ticker from a CSV/Parquet of ticker and weight: numbers, each ticker once,
    summing to one."""
    table = read_table(Path(source), "weights")
    columns = {column.lower(): column for column in table.columns}
    if "ticker" not in columns or "weight" not in columns:
        raise DataError(f"{source} needs a ticker and a weight column; it has {table.columns}")
    names = table[columns["ticker"]].cast(pl.Utf8).to_list()
    values = table[columns["weight"]].cast(pl.Float64, strict=False).to_numpy()
    if np.isnan(values).any():
        raise DataError(f"{source}: {int(np.isnan(values).sum())} weight(s) are not numbers")
    if len(set(names)) != len(names):
        raise DataError(f"{source} names a ticker twice; give each ticker one weight")
    total = float(values.sum())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise DataError(f"the weights in {source} sum to {total:.6g}; they must sum to 1")
    return dict(zip(names, values.tolist(), strict=True))


def check_weighted(weights: dict[str, float], tickers: list[str], *, why: str) -> None:
    """Refuse weights of tickers not among `tickers`, naming them and `why` they are not."""
    unknown = sorted(set(weights) - set(tickers))
    if unknown:
        raise DataError(
            f"the weights name {len(unknown)} ticker(s) {why}: {', '.join(unknown[:10])}"
        )


def portfolio_log_returns(assets: AssetReturns, weights: np.ndarray) -> np.ndarray:
    """The daily log return (D,) of the portfolio held at constant `weights`."""
    simple = assets.returns @ weights
    if (simple <= -1).any():
        raise DataError("the portfolio loses everything on some day; check prices and weights")
    return np.log1p(simple)
