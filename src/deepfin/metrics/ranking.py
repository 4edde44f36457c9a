"""Cross-sectional ranking skill: daily IC and Rank IC of a panel, and their summaries."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import ConfigError, DataError
from deepfin.metrics.regression import checked_series
from deepfin.metrics.significance import newey_west_variance


def _grouped_pearson(
    x: np.ndarray, y: np.ndarray, group: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation per contiguous group, and whether it was defined (non-zero spread)."""
    x_centred = x - (np.add.reduceat(x, starts) / counts)[group]
    y_centred = y - (np.add.reduceat(y, starts) / counts)[group]
    covariance = np.add.reduceat(x_centred * y_centred, starts)
    scale = np.sqrt(np.add.reduceat(x_centred**2, starts) * np.add.reduceat(y_centred**2, starts))
    defined = scale > 0
    correlation = np.divide(covariance, scale, out=np.zeros_like(covariance), where=defined)
    return np.clip(correlation, -1.0, 1.0), defined


def _rank_within_groups(values: np.ndarray, group: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Average-tie ranks (1-based) of values within each contiguous, date-sorted group."""
    # one global rankdata over the key (group, dense value rank) ranks every group at once;
    # subtracting the rows in earlier groups turns the global rank into the within-group rank
    dense_rank = stats.rankdata(values, method="dense").astype(np.int64)
    key = group.astype(np.int64) * (int(dense_rank.max()) + 1) + dense_rank
    return stats.rankdata(key, method="average") - starts[group]


def cross_sectional_ic(
    dates: npt.ArrayLike,
    actual: npt.ArrayLike,
    forecast: npt.ArrayLike,
    *,
    min_names: int = 5,
) -> dict[str, np.ndarray]:
    """Per-date Pearson IC and Spearman rank IC of forecast vs actual across names."""
    date_values = np.asarray(dates)
    if date_values.ndim != 1:
        raise DataError(f"dates must be 1-D; got shape {date_values.shape}.")
    actual_v, forecast_v = checked_series(actual=actual, forecast=forecast)
    if date_values.size != actual_v.size:
        raise DataError(
            f"dates has {date_values.size} entries but actual has {actual_v.size}; "
            "pass one date per (date, ticker) row."
        )
    if np.issubdtype(date_values.dtype, np.datetime64) and np.isnat(date_values).any():
        raise DataError("dates contains NaT; drop rows without a date first.")
    if min_names < 2:
        raise ConfigError(f"min_names must be >= 2 for a correlation; got {min_names}.")

    unique_dates, date_index = np.unique(date_values, return_inverse=True)
    order = np.argsort(date_index.ravel(), kind="stable")
    counts = np.bincount(date_index.ravel(), minlength=unique_dates.size)
    del date_index
    actual_sorted, forecast_sorted = actual_v[order], forecast_v[order]
    del order
    bounds = np.concatenate(([0], np.cumsum(counts)))
    ic, rank_ic = np.zeros(unique_dates.size), np.zeros(unique_dates.size)
    keep = np.zeros(unique_dates.size, dtype=bool)
    # dates a block at a time: the ranks and centred copies stay the size of a block
    for first, stop in _date_blocks(bounds):
        rows = slice(bounds[first], bounds[stop])
        ic[first:stop], rank_ic[first:stop], keep[first:stop] = _daily_ic(
            actual_sorted[rows], forecast_sorted[rows], counts[first:stop], min_names
        )
    return {"date": unique_dates[keep], "ic": ic[keep], "rank_ic": rank_ic[keep]}


def _date_blocks(bounds: np.ndarray, rows: int = 65_536) -> list[tuple[int, int]]:
    """(first, stop) date ranges of about `rows` rows each; a date is never split."""
    cuts = np.searchsorted(bounds, np.arange(rows, bounds[-1], rows), side="right") - 1
    edges = np.unique(np.concatenate(([0], cuts, [len(bounds) - 1])))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _daily_ic(
    actual: np.ndarray, forecast: np.ndarray, counts: np.ndarray, min_names: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IC, Rank IC and whether each is defined, for date-sorted rows with `counts` per date."""
    group = np.repeat(np.arange(counts.size), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ic, ic_defined = _grouped_pearson(actual, forecast, group, starts, counts)
    rank_ic, rank_defined = _grouped_pearson(
        _rank_within_groups(actual, group, starts),
        _rank_within_groups(forecast, group, starts),
        group,
        starts,
        counts,
    )
    # exact min == max test: a constant group's centred values can be rounding noise, not 0
    varies = (np.maximum.reduceat(actual, starts) > np.minimum.reduceat(actual, starts)) & (
        np.maximum.reduceat(forecast, starts) > np.minimum.reduceat(forecast, starts)
    )
    return ic, rank_ic, (counts >= min_names) & varies & ic_defined & rank_defined


def ic_summary(ic_series: npt.ArrayLike, *, horizon: int = 1) -> dict[str, float]:
    """Mean, std, t-stat and ICIR of a daily IC series (Qlib's IC/ICIR, or Rank IC/Rank ICIR).

    With `horizon` > 1 the daily ICs share overlapping outcomes, so the t-stat uses a
    Newey-West variance with horizon - 1 lags instead of treating the days as independent.
    """
    (ic_v,) = checked_series(ic_series=ic_series)
    n_days = ic_v.size
    if n_days < 2:
        raise DataError(f"ic_summary needs at least 2 days for a std; got {n_days}.")
    ic_mean = float(ic_v.mean())
    ic_std = float(ic_v.std(ddof=1))
    if ic_std > 0.0:
        icir = ic_mean / ic_std
    else:
        # identical IC every day: the ratio is unbounded in the sign of the mean
        icir = 0.0 if ic_mean == 0.0 else math.copysign(math.inf, ic_mean)
    t_stat = icir * math.sqrt(n_days)
    if horizon > 1 and ic_std > 0.0:
        t_stat = ic_mean / math.sqrt(newey_west_variance(ic_v, lags=horizon - 1) / n_days)
    return {
        "mean": ic_mean,
        "std": ic_std,
        "t_stat": t_stat,
        "icir": icir,
        "n_days": float(n_days),
    }


def panel_ic_metrics(
    *,
    dates: npt.ArrayLike,
    actual_return: npt.ArrayLike,
    forecast_return: npt.ArrayLike,
    min_names: int = 5,
    horizon: int = 1,
) -> dict[str, float]:
    """IC, ICIR, Rank IC and Rank ICIR (with std and t-stat) of a (date, ticker) panel."""
    daily = cross_sectional_ic(dates, actual_return, forecast_return, min_names=min_names)
    n_days = daily["date"].size
    if n_days < 2:
        raise DataError(
            f"only {n_days} dates have at least min_names={min_names} tickers with varying "
            "actual and forecast returns; the panel needs at least min_names tickers per date "
            "on 2 or more dates. Add tickers or lower min_names."
        )
    ic = ic_summary(daily["ic"], horizon=horizon)
    rank_ic = ic_summary(daily["rank_ic"], horizon=horizon)
    return {
        "ic_mean": ic["mean"],
        "ic_std": ic["std"],
        "ic_t_stat": ic["t_stat"],
        "icir": ic["icir"],
        "rank_ic_mean": rank_ic["mean"],
        "rank_ic_std": rank_ic["std"],
        "rank_ic_t_stat": rank_ic["t_stat"],
        "rank_icir": rank_ic["icir"],
        "n_days": float(n_days),
    }
