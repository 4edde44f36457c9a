"""Point-forecast errors: MAE, RMSE, MAPE, hit rate and out-of-sample R²; plain floats out."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from deepfin.errors import DataError


def checked_series(**named_arrays: npt.ArrayLike) -> list[np.ndarray]:
    """Return the inputs as 1-D float arrays, checked to be non-empty, finite and equally long."""
    series = []
    for name, values in named_arrays.items():
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise DataError(f"{name} must be 1-D; got shape {array.shape}. Flatten it first.")
        if array.size == 0:
            raise DataError(f"{name} is empty; metrics need at least one observation.")
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise DataError(
                f"{name} has {bad} NaN or infinite values; drop or fill them before scoring."
            )
        series.append(array)
    lengths = {name: array.size for name, array in zip(named_arrays, series, strict=True)}
    if len(set(lengths.values())) > 1:
        raise DataError(f"inputs must have equal lengths; got {lengths}. Align them by date.")
    return series


def mean_absolute_error(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean of |actual - forecast|."""
    actual_v, forecast_v = checked_series(actual=actual, forecast=forecast)
    return float(np.mean(np.abs(actual_v - forecast_v)))


def root_mean_squared_error(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Square root of the mean of (actual - forecast)^2."""
    actual_v, forecast_v = checked_series(actual=actual, forecast=forecast)
    error = actual_v - forecast_v
    # divide by the largest error first so squaring neither underflows nor overflows
    largest_error = float(np.max(np.abs(error)))
    if largest_error == 0.0:
        return 0.0
    return largest_error * float(np.sqrt(np.mean((error / largest_error) ** 2)))


def mean_absolute_percentage_error(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean of |actual - forecast| / |actual|, in percent."""
    actual_v, forecast_v = checked_series(actual=actual, forecast=forecast)
    zero_count = int((actual_v == 0).sum())
    if zero_count:
        raise DataError(
            f"actual has {zero_count} zero values, so MAPE is undefined; MAPE is for prices, "
            "use mean_absolute_error for returns."
        )
    return float(np.mean(np.abs((actual_v - forecast_v) / actual_v)) * 100.0)


def directional_accuracy(actual_return: npt.ArrayLike, forecast_return: npt.ArrayLike) -> float:
    """Share of periods where sign(forecast_return) == sign(actual_return), skipping actual == 0."""
    actual_v, forecast_v = checked_series(
        actual_return=actual_return, forecast_return=forecast_return
    )
    # a flat period has no direction to get right, so it neither helps nor hurts the score
    moved = actual_v != 0
    if not moved.any():
        raise DataError(
            "every actual_return is exactly 0, so direction is undefined; check the returns."
        )
    return float(np.mean(np.sign(actual_v[moved]) == np.sign(forecast_v[moved])))


def r2_out_of_sample(
    actual: npt.ArrayLike, forecast: npt.ArrayLike, benchmark: npt.ArrayLike
) -> float:
    """Campbell-Thompson out-of-sample R²: 1 - SSE(forecast) / SSE(benchmark)."""
    actual_v, forecast_v, benchmark_v = checked_series(
        actual=actual, forecast=forecast, benchmark=benchmark
    )
    forecast_sse = float(np.sum((actual_v - forecast_v) ** 2))
    benchmark_sse = float(np.sum((actual_v - benchmark_v) ** 2))
    if benchmark_sse == 0.0:
        # an exact benchmark can only be matched (0) or lost to (-inf); no ratio to take
        return 0.0 if forecast_sse == 0.0 else -math.inf
    return 1.0 - forecast_sse / benchmark_sse
