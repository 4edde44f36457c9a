"""Significance of forecast comparisons: the Diebold-Mariano test, one series or a panel."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import ConfigError, DataError
from deepfin.metrics.regression import checked_series


def diebold_mariano(
    actual: npt.ArrayLike,
    forecast: npt.ArrayLike,
    benchmark: npt.ArrayLike,
    *,
    horizon: int = 1,
    power: int = 2,
) -> dict[str, float]:
    """Diebold-Mariano test with the Harvey-Leybourne-Newbold correction; negative favours model."""
    actual_v, forecast_v, benchmark_v = checked_series(
        actual=actual, forecast=forecast, benchmark=benchmark
    )
    if power < 1:
        raise ConfigError(f"power must be >= 1 (1: absolute loss, 2: squared loss); got {power}.")
    return diebold_mariano_losses(
        np.abs(actual_v - forecast_v) ** power,
        np.abs(actual_v - benchmark_v) ** power,
        horizon=horizon,
    )


def diebold_mariano_losses(
    model_loss: npt.ArrayLike, benchmark_loss: npt.ArrayLike, *, horizon: int = 1
) -> dict[str, float]:
    """Diebold-Mariano test (Harvey-Leybourne-Newbold corrected) of two per-period loss series,
    any loss (squared error, QLIKE, pinball, FZ0); negative favours the model."""
    model_v, benchmark_v = checked_series(model_loss=model_loss, benchmark_loss=benchmark_loss)
    n_obs = model_v.size
    if horizon < 1:
        raise ConfigError(f"horizon must be >= 1; got {horizon}.")
    if n_obs <= max(horizon, 1):
        raise DataError(
            f"Diebold-Mariano needs more observations than horizon and at least 2; "
            f"got n={n_obs}, horizon={horizon}. Score a longer test period."
        )
    loss_differential = model_v - benchmark_v
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


def newey_west_variance(series: np.ndarray, *, lags: int) -> float:
    """Long-run variance of a series: autocovariances to `lags`, Bartlett weights."""
    centred = series - series.mean()
    n_obs = centred.size
    variance = float(centred @ centred) / n_obs
    for lag in range(1, min(lags, n_obs - 1) + 1):
        weight = 1.0 - lag / (lags + 1)
        variance += 2.0 * weight * float(centred[lag:] @ centred[:-lag]) / n_obs
    return variance


def panel_diebold_mariano(
    dates: npt.ArrayLike,
    actual: npt.ArrayLike,
    forecast: npt.ArrayLike,
    benchmark: npt.ArrayLike,
    *,
    horizon: int = 1,
    power: int = 2,
) -> dict[str, float]:
    """Diebold-Mariano on a panel: the daily cross-sectional mean loss differential, HAC t-test.

    Stocks move together, so the rows of one date are not independent observations: the
    test has one observation per date, and Newey-West (Bartlett) variance for what remains
    serially correlated (overlapping horizons, volatility clusters). Negative favours model.
    """
    actual_v, forecast_v, benchmark_v = checked_series(
        actual=actual, forecast=forecast, benchmark=benchmark
    )
    date_values = np.asarray(dates)
    if date_values.shape != actual_v.shape:
        raise DataError(
            f"dates has {date_values.size} entries but actual has {actual_v.size}; "
            "pass one date per (date, ticker) row."
        )
    if horizon < 1 or power < 1:
        raise ConfigError(f"horizon and power must be >= 1; got {horizon} and {power}.")
    # in place: a panel's rows are many, and each temporary is as long as they are
    row_differential = np.abs(actual_v - forecast_v)
    row_differential **= power
    benchmark_loss = np.abs(actual_v - benchmark_v)
    benchmark_loss **= power
    row_differential -= benchmark_loss
    del benchmark_loss
    date_index = np.searchsorted(np.unique(date_values), date_values)
    counts = np.bincount(date_index)
    daily = np.bincount(date_index, weights=row_differential) / counts  # (dates,)
    n_dates = daily.size
    if n_dates < 3:
        raise DataError(
            f"the panel Diebold-Mariano test needs at least 3 dates; got {n_dates}. "
            "Score a longer test period."
        )
    mean_differential = float(daily.mean())
    if not daily.any():
        return {
            "statistic": 0.0,
            "p_value": 1.0,
            "mean_loss_differential": 0.0,
            "n_dates": float(n_dates),
        }
    # the usual automatic bandwidth, and at least the overlap of h-step forecasts
    lags = max(horizon - 1, math.floor(4 * (n_dates / 100) ** (2 / 9)))
    long_run_variance = newey_west_variance(daily, lags=lags)
    if long_run_variance <= 0.0:
        return {
            "statistic": math.copysign(math.inf, mean_differential),
            "p_value": 0.0,
            "mean_loss_differential": mean_differential,
            "n_dates": float(n_dates),
        }
    statistic = mean_differential / math.sqrt(long_run_variance / n_dates)
    p_value = float(2.0 * stats.t.sf(abs(statistic), df=n_dates - 1))
    return {
        "statistic": statistic,
        "p_value": min(p_value, 1.0),
        "mean_loss_differential": mean_differential,
        "n_dates": float(n_dates),
    }
