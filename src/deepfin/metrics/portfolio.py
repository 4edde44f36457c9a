"""The decile long-short book of a cross-sectional forecast: its return, turnover and Sharpe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from deepfin.errors import ConfigError, DataError
from deepfin.metrics.regression import checked_series

TRADING_DAYS = 252


@dataclass(frozen=True)
class LongShortBook:
    """Per rebalancing date: the book's simple return before and after costs, and its turnover."""

    dates: np.ndarray
    gross_return: np.ndarray
    net_return: np.ndarray
    turnover: np.ndarray  # sum over tickers of |w_t - w_(t-1)|; the first book is bought from cash
    sharpe: float | None  # annualised; None with fewer than 2 dates or no spread
    sharpe_net: float | None

    @property
    def mean_turnover(self) -> float | None:
        """Mean turnover per rebalancing date (per day at horizon 1), or None without a book."""
        return float(self.turnover.mean()) if self.turnover.size else None


def long_short_book(
    *,
    dates: npt.ArrayLike,
    tickers: Sequence[Any] | np.ndarray | pl.Series,
    forecast: npt.ArrayLike,
    actual_return: npt.ArrayLike,
    horizon: int = 1,
    cost_bps: float = 5.0,
    fraction: float = 0.1,
    min_names: int = 5,
) -> LongShortBook:
    """Each date, long the top `fraction` of tickers by forecast and short the bottom, equal-weight.

    `actual_return` is the realised next-horizon log return of each (date, ticker) row. Each leg
    holds max(1, floor(fraction * names)) tickers at weight +-1/leg; dates with fewer than
    `min_names` tickers make no book; equal forecasts rank by ticker, the later name higher.
    Returns are simple (exp(log) - 1); with horizon h the book trades every h-th date, and its
    Sharpe is annualised by sqrt(252 / h). Costs: `cost_bps` per unit of turnover.
    """
    date_values = np.asarray(dates)
    forecast_v, actual_v = checked_series(forecast=forecast, actual_return=actual_return)
    labels = pl.Series("ticker", tickers)
    if labels.null_count():
        raise DataError(f"{labels.null_count()} rows have no ticker; drop them before scoring")
    if date_values.ndim != 1 or date_values.size != actual_v.size or labels.len() != actual_v.size:
        raise DataError(
            f"got {date_values.size} dates, {labels.len()} tickers and {actual_v.size} returns; "
            "pass one date and one ticker per (date, ticker) row"
        )
    if horizon < 1 or cost_bps < 0 or not 0 < fraction <= 0.5 or min_names < 2:
        raise ConfigError(
            f"need horizon >= 1, cost_bps >= 0, 0 < fraction <= 0.5 and min_names >= 2; got "
            f"horizon={horizon}, cost_bps={cost_bps}, fraction={fraction}, min_names={min_names}"
        )
    calendar, date_index = np.unique(date_values, return_inverse=True)
    date_index = date_index.ravel().astype(np.int64)
    codes = _ticker_codes(labels)
    n_codes = int(codes.max()) + 1
    pairs = np.sort(date_index * n_codes + codes)
    if (pairs[1:] == pairs[:-1]).any():
        raise DataError("some (date, ticker) rows repeat; keep one row per ticker and date")
    # with horizon > 1, every horizon-th date from the first: one book's outcome ends before
    # the next book is formed, so the returns do not overlap
    rows = np.flatnonzero(date_index % horizon == 0) if horizon > 1 else np.arange(codes.size)
    order = rows[_ranked(date_index[rows], forecast_v[rows], codes[rows], n_codes=n_codes)]
    traded, starts, counts = np.unique(date_index[order], return_index=True, return_counts=True)
    group = np.repeat(np.arange(counts.size), counts)
    position = np.arange(order.size) - starts[group]
    # 10% of 5 to 19 names rounds to none: each leg holds at least one
    legs = np.maximum(1, np.floor(counts * fraction + 1e-9)).astype(np.int64)
    short, long = position < legs[group], position >= (counts - legs)[group]
    booked = counts >= min_names  # thinner dates make no book
    held = (short | long) & booked[group]
    period = (np.cumsum(booked) - 1)[group[held]]  # index among the booked dates
    weight = np.where(long[held], 1.0, -1.0) / legs[group[held]]
    held_rows = order[held]
    n_periods = int(booked.sum())
    period_key = period * n_codes + codes[held_rows]
    gross = np.bincount(period, weight * np.expm1(actual_v[held_rows]), minlength=n_periods)
    turnover = _turnover(period_key, weight, period, n_codes=n_codes, n_periods=n_periods)
    net = gross - turnover * cost_bps / 1e4
    per_year = TRADING_DAYS / horizon
    return LongShortBook(
        dates=calendar[traded[booked]],
        gross_return=gross,
        net_return=net,
        turnover=turnover,
        sharpe=_sharpe(gross, per_year),
        sharpe_net=_sharpe(net, per_year),
    )


def _ticker_codes(labels: pl.Series) -> np.ndarray:
    """Each row's ticker as its position among the sorted distinct tickers."""
    # sorted codes: ties break the same way whatever order the rows came in
    names = labels.cast(pl.String).unique().sort()
    return labels.cast(pl.String).cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64)


def _ranked(
    date_index: np.ndarray, forecast: np.ndarray, codes: np.ndarray, *, n_codes: int
) -> np.ndarray:
    """Row order by date, then forecast, then ticker."""
    by_value = np.argsort(forecast)
    ascending = forecast[by_value]
    level = np.empty(forecast.size, dtype=np.int64)  # dense rank: equal forecasts share one
    level[by_value] = np.concatenate(([0], np.cumsum(ascending[1:] > ascending[:-1])))
    n_levels = int(level.max(initial=0)) + 1
    if (int(date_index.max(initial=0)) + 1) * n_levels * n_codes >= 2**62:
        return np.lexsort((codes, forecast, date_index))  # too many for one int64 key
    # one int64 key sorts 3x faster than a three-key lexsort
    return np.argsort((date_index * n_levels + level) * n_codes + codes)


def _turnover(
    key: np.ndarray, weight: np.ndarray, period: np.ndarray, *, n_codes: int, n_periods: int
) -> np.ndarray:
    """Sum of |w_t - w_(t-1)| per period, from held positions keyed period * n_codes + code."""
    sort = np.argsort(key, kind="stable")
    sorted_key, sorted_weight = key[sort], weight[sort]

    if not key.size:
        return np.zeros(n_periods)

    def held_at(query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each queried key is held, and its weight (0 when not)."""
        at = np.minimum(np.searchsorted(sorted_key, query), sorted_key.size - 1)
        found = sorted_key[at] == query
        return found, np.where(found, sorted_weight[at], 0.0)

    # a name held now: its change from the previous book (weight 0 if it was not in it)
    _, before = held_at(key - n_codes)
    turnover = np.bincount(period, np.abs(weight - before), minlength=n_periods)
    # a name dropped by the next book: sold at the next date, if there is one
    kept, _ = held_at(key + n_codes)
    dropped = ~kept & (period + 1 < n_periods)
    turnover += np.bincount(period[dropped] + 1, np.abs(weight[dropped]), minlength=n_periods)
    return turnover


def _sharpe(period_return: np.ndarray, periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio against cash (a long-short book is self-financing)."""
    if period_return.size < 2:
        return None
    spread = float(period_return.std(ddof=1))
    if spread == 0:
        return None
    return float(period_return.mean() / spread * math.sqrt(periods_per_year))


@dataclass(frozen=True)
class DecilePortfolios:
    """Per rebalancing date: each decile's simple return, and the top-minus-bottom book's."""

    dates: np.ndarray
    returns: np.ndarray  # (dates, deciles): the lowest forecasts first
    long_short: np.ndarray  # top decile minus bottom decile, before costs
    long_short_net: np.ndarray  # after `cost_bps` per unit of turnover
    turnover: np.ndarray
    sharpe: float | None
    sharpe_net: float | None

    @property
    def mean_returns(self) -> np.ndarray:
        """(deciles,) each decile's mean return per period."""
        return self.returns.mean(axis=0)


def decile_portfolios(
    *,
    dates: npt.ArrayLike,
    tickers: Sequence[Any] | np.ndarray | pl.Series,
    forecast: npt.ArrayLike,
    actual_return: npt.ArrayLike,
    periods_per_year: float,
    weight: npt.ArrayLike | None = None,
    deciles: int = 10,
    cost_bps: float = 10.0,
) -> DecilePortfolios:
    """Each date, the tickers sorted by forecast into `deciles` groups of (near) equal size,
    each held at equal weight or in proportion to `weight` (size, say); the high-minus-low book
    is long the top group and short the bottom one. `actual_return` is the log return over the
    holding period; the dates should be one period apart (no overlapping outcomes). Dates with
    fewer names than deciles are left out."""
    date_values = np.asarray(dates)
    forecast_v, actual_v = checked_series(forecast=forecast, actual_return=actual_return)
    held = np.ones(actual_v.size) if weight is None else np.asarray(weight, dtype=np.float64)
    if held.shape != actual_v.shape or not np.isfinite(held).all() or (held < 0).any():
        raise DataError("weights must be finite, >= 0 and one per (date, ticker) row")
    if deciles < 2 or cost_bps < 0 or periods_per_year <= 0:
        raise ConfigError(
            f"need deciles >= 2, cost_bps >= 0, periods_per_year > 0; got {deciles}, "
            f"{cost_bps}, {periods_per_year}"
        )
    calendar, date_index = np.unique(date_values, return_inverse=True)
    date_index = date_index.ravel().astype(np.int64)
    codes = _ticker_codes(pl.Series("ticker", tickers))
    n_codes = int(codes.max()) + 1
    order = _ranked(date_index, forecast_v, codes, n_codes=n_codes)
    traded, starts, counts = np.unique(date_index[order], return_index=True, return_counts=True)
    group = np.repeat(np.arange(counts.size), counts)
    rank = np.arange(order.size) - starts[group]
    decile = rank * deciles // counts[group]  # (rows,) 0 = lowest forecasts
    booked = counts >= deciles
    rows, group, decile = order[booked[group]], group[booked[group]], decile[booked[group]]
    period = (np.cumsum(booked) - 1)[group]
    n_periods = int(booked.sum())
    cell = period * deciles + decile
    total = np.bincount(cell, held[rows], minlength=n_periods * deciles)
    share = np.divide(held[rows], total[cell], out=np.zeros(rows.size), where=total[cell] > 0)
    returns = np.bincount(cell, share * np.expm1(actual_v[rows]), minlength=n_periods * deciles)
    returns = returns.reshape(n_periods, deciles)
    ends = (decile == 0) | (decile == deciles - 1)
    side = np.where(decile[ends] == deciles - 1, 1.0, -1.0) * share[ends]
    turnover = _turnover(
        period[ends] * n_codes + codes[rows[ends]],
        side,
        period[ends],
        n_codes=n_codes,
        n_periods=n_periods,
    )
    long_short = returns[:, -1] - returns[:, 0]
    net = long_short - turnover * cost_bps / 1e4
    return DecilePortfolios(
        dates=calendar[traded[booked]],
        returns=returns,
        long_short=long_short,
        long_short_net=net,
        turnover=turnover,
        sharpe=_sharpe(long_short, periods_per_year),
        sharpe_net=_sharpe(net, periods_per_year),
    )
