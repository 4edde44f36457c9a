"""Forecast metrics: point errors, ranking IC and the Diebold-Mariano test; plain floats out."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats


def _as_series(**named_arrays: npt.ArrayLike) -> list[np.ndarray]:
    """Return the inputs as 1-D float arrays, checked to be non-empty, finite and equally long."""
    series = []
    for name, values in named_arrays.items():
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D; got shape {array.shape}. Flatten it first.")
        if array.size == 0:
            raise ValueError(f"{name} is empty; metrics need at least one observation.")
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(
                f"{name} has {bad} NaN or infinite values; drop or fill them before scoring."
            )
        series.append(array)
    lengths = {name: array.size for name, array in zip(named_arrays, series, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs must have equal lengths; got {lengths}. Align them by date.")
    return series


def mean_absolute_error(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean of |actual - forecast|."""
    actual_v, forecast_v = _as_series(actual=actual, forecast=forecast)
    return float(np.mean(np.abs(actual_v - forecast_v)))


def root_mean_squared_error(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Square root of the mean of (actual - forecast)^2."""
    actual_v, forecast_v = _as_series(actual=actual, forecast=forecast)
    error = actual_v - forecast_v
    # divide by the largest error first so squaring neither underflows nor overflows
    largest_error = float(np.max(np.abs(error)))
    if largest_error == 0.0:
        return 0.0
    return largest_error * float(np.sqrt(np.mean((error / largest_error) ** 2)))


def mean_absolute_percentage_error(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean of |actual - forecast| / |actual|, in percent."""
    actual_v, forecast_v = _as_series(actual=actual, forecast=forecast)
    zero_count = int((actual_v == 0).sum())
    if zero_count:
        raise ValueError(
            f"actual has {zero_count} zero values, so MAPE is undefined; MAPE is for prices, "
            "use mean_absolute_error for returns."
        )
    return float(np.mean(np.abs((actual_v - forecast_v) / actual_v)) * 100.0)


def directional_accuracy(actual_return: npt.ArrayLike, forecast_return: npt.ArrayLike) -> float:
    """Share of periods where sign(forecast_return) == sign(actual_return), skipping actual == 0."""
    actual_v, forecast_v = _as_series(actual_return=actual_return, forecast_return=forecast_return)
    # a flat period has no direction to get right, so it neither helps nor hurts the score
    moved = actual_v != 0
    if not moved.any():
        raise ValueError(
            "every actual_return is exactly 0, so direction is undefined; check the returns."
        )
    return float(np.mean(np.sign(actual_v[moved]) == np.sign(forecast_v[moved])))


def r2_out_of_sample(
    actual: npt.ArrayLike, forecast: npt.ArrayLike, benchmark: npt.ArrayLike
) -> float:
    """Campbell-Thompson out-of-sample R²: 1 - SSE(forecast) / SSE(benchmark)."""
    actual_v, forecast_v, benchmark_v = _as_series(
        actual=actual, forecast=forecast, benchmark=benchmark
    )
    forecast_sse = float(np.sum((actual_v - forecast_v) ** 2))
    benchmark_sse = float(np.sum((actual_v - benchmark_v) ** 2))
    if benchmark_sse == 0.0:
        # an exact benchmark can only be matched (0) or lost to (-inf); no ratio to take
        return 0.0 if forecast_sse == 0.0 else -math.inf
    return 1.0 - forecast_sse / benchmark_sse


def diebold_mariano(
    actual: npt.ArrayLike,
    forecast: npt.ArrayLike,
    benchmark: npt.ArrayLike,
    *,
    horizon: int = 1,
    power: int = 2,
) -> dict[str, float]:
    """Diebold-Mariano test with the Harvey-Leybourne-Newbold correction; negative favours model."""
    actual_v, forecast_v, benchmark_v = _as_series(
        actual=actual, forecast=forecast, benchmark=benchmark
    )
    n_obs = actual_v.size
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1; got {horizon}.")
    if power < 1:
        raise ValueError(f"power must be >= 1 (1: absolute loss, 2: squared loss); got {power}.")
    if n_obs <= max(horizon, 1):
        raise ValueError(
            f"Diebold-Mariano needs more observations than horizon and at least 2; "
            f"got n={n_obs}, horizon={horizon}. Score a longer test period."
        )
    loss_differential = (
        np.abs(actual_v - forecast_v) ** power - np.abs(actual_v - benchmark_v) ** power
    )
    mean_differential = float(loss_differential.mean())
    if not loss_differential.any():
        return {"statistic": 0.0, "p_value": 1.0, "mean_loss_differential": 0.0}

    centred = loss_differential - mean_differential
    # h-step forecast errors are MA(h-1), so autocovariances past lag h-1 are zero in theory
    autocovariance = [
        float(centred[lag:] @ centred[: n_obs - lag]) / n_obs for lag in range(horizon)
    ]
    long_run_variance = autocovariance[0] + 2.0 * sum(autocovariance[1:])
    if long_run_variance <= 0.0:
        # the rectangular kernel is not positive definite; fall back to the lag-0 variance
        long_run_variance = autocovariance[0]
    if long_run_variance <= 0.0:
        # constant non-zero differential: one forecast is better by the same amount every period
        return {
            "statistic": math.copysign(math.inf, mean_differential),
            "p_value": 0.0,
            "mean_loss_differential": mean_differential,
        }
    dm_statistic = mean_differential / math.sqrt(long_run_variance / n_obs)
    hln_factor = math.sqrt((n_obs + 1 - 2 * horizon + horizon * (horizon - 1) / n_obs) / n_obs)
    statistic = dm_statistic * hln_factor
    p_value = float(2.0 * stats.t.sf(abs(statistic), df=n_obs - 1))
    return {
        "statistic": statistic,
        "p_value": min(p_value, 1.0),
        "mean_loss_differential": mean_differential,
    }


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
        raise ValueError(f"dates must be 1-D; got shape {date_values.shape}.")
    actual_v, forecast_v = _as_series(actual=actual, forecast=forecast)
    if date_values.size != actual_v.size:
        raise ValueError(
            f"dates has {date_values.size} entries but actual has {actual_v.size}; "
            "pass one date per (date, ticker) row."
        )
    if np.issubdtype(date_values.dtype, np.datetime64) and np.isnat(date_values).any():
        raise ValueError("dates contains NaT; drop rows without a date first.")
    if min_names < 2:
        raise ValueError(f"min_names must be >= 2 for a correlation; got {min_names}.")

    unique_dates, date_index = np.unique(date_values, return_inverse=True)
    order = np.argsort(date_index, kind="stable")
    group = date_index.ravel()[order]
    actual_sorted, forecast_sorted = actual_v[order], forecast_v[order]
    counts = np.bincount(group, minlength=unique_dates.size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))

    ic, ic_defined = _grouped_pearson(actual_sorted, forecast_sorted, group, starts, counts)
    rank_ic, rank_defined = _grouped_pearson(
        _rank_within_groups(actual_sorted, group, starts),
        _rank_within_groups(forecast_sorted, group, starts),
        group,
        starts,
        counts,
    )
    # exact min == max test: a constant group's centred values can be rounding noise, not 0
    varies = (
        np.maximum.reduceat(actual_sorted, starts) > np.minimum.reduceat(actual_sorted, starts)
    ) & (
        np.maximum.reduceat(forecast_sorted, starts) > np.minimum.reduceat(forecast_sorted, starts)
    )
    keep = (counts >= min_names) & varies & ic_defined & rank_defined
    return {"date": unique_dates[keep], "ic": ic[keep], "rank_ic": rank_ic[keep]}


def ic_summary(ic_series: npt.ArrayLike) -> dict[str, float]:
    """Mean, std, t-stat and ICIR of a daily IC series (Qlib's IC/ICIR, or Rank IC/Rank ICIR)."""
    (ic_v,) = _as_series(ic_series=ic_series)
    n_days = ic_v.size
    if n_days < 2:
        raise ValueError(f"ic_summary needs at least 2 days for a std; got {n_days}.")
    ic_mean = float(ic_v.mean())
    ic_std = float(ic_v.std(ddof=1))
    if ic_std > 0.0:
        icir = ic_mean / ic_std
    else:
        # identical IC every day: the ratio is unbounded in the sign of the mean
        icir = 0.0 if ic_mean == 0.0 else math.copysign(math.inf, ic_mean)
    return {
        "mean": ic_mean,
        "std": ic_std,
        "t_stat": icir * math.sqrt(n_days),
        "icir": icir,
        "n_days": float(n_days),
    }


def forecast_metrics(
    *,
    actual_price: npt.ArrayLike,
    forecast_price: npt.ArrayLike,
    naive_price: npt.ArrayLike,
    actual_return: npt.ArrayLike,
    forecast_return: npt.ArrayLike,
    horizon: int = 1,
) -> dict[str, float]:
    """One-call summary for a forecaster: price errors, direction, R² OOS and DM vs naive."""
    actual_p, forecast_p, naive_p, actual_r, forecast_r = _as_series(
        actual_price=actual_price,
        forecast_price=forecast_price,
        naive_price=naive_price,
        actual_return=actual_return,
        forecast_return=forecast_return,
    )
    dm = diebold_mariano(actual_p, forecast_p, naive_p, horizon=horizon, power=2)
    return {
        "mae": mean_absolute_error(actual_p, forecast_p),
        "rmse": root_mean_squared_error(actual_p, forecast_p),
        "mape": mean_absolute_percentage_error(actual_p, forecast_p),
        "directional_accuracy": directional_accuracy(actual_r, forecast_r),
        # the naive price forecast is a zero return forecast
        "r2_oos": r2_out_of_sample(actual_r, forecast_r, np.zeros_like(actual_r)),
        "dm_statistic": dm["statistic"],
        "dm_p_value": dm["p_value"],
        "n": float(actual_p.size),
    }


def panel_ic_metrics(
    *,
    dates: npt.ArrayLike,
    actual_return: npt.ArrayLike,
    forecast_return: npt.ArrayLike,
    min_names: int = 5,
) -> dict[str, float]:
    """IC, ICIR, Rank IC and Rank ICIR (with std and t-stat) of a (date, ticker) panel."""
    daily = cross_sectional_ic(dates, actual_return, forecast_return, min_names=min_names)
    n_days = daily["date"].size
    if n_days < 2:
        raise ValueError(
            f"only {n_days} dates have at least min_names={min_names} tickers with varying "
            "actual and forecast returns; the panel needs at least min_names tickers per date "
            "on 2 or more dates. Add tickers or lower min_names."
        )
    ic = ic_summary(daily["ic"])
    rank_ic = ic_summary(daily["rank_ic"])
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
