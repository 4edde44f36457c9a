"""Daily variance from prices (close-to-close or a range estimator), and the targets and
regressors built from it; every value at day t uses days <= t, every target days > t only."""

from __future__ import annotations

import logging
import math

import numpy as np
import polars as pl

from deepfin.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# what each estimator reads besides the close
ESTIMATORS: dict[str, tuple[str, ...]] = {
    "close": (),  # the squared close-to-close log return
    "parkinson": ("high", "low"),  # Parkinson (1980): the high-low range
    "garman_klass": ("open", "high", "low"),  # Garman and Klass (1980)
    "rogers_satchell": ("open", "high", "low"),  # Rogers and Satchell (1991): drift-free
}
HAR_LAGS = (1, 5, 22)  # Corsi (2009): the day, the week and the month before
VARIANCE_FLOOR = 1e-10  # a daily move of 0.001%: below any real market's day
PRICE_TOLERANCE = 1e-6  # relative: rounding in a vendor's file


def check_estimator(estimator: str) -> str:
    """`estimator` if it is one deepfin knows, else a ConfigError listing them."""
    if estimator not in ESTIMATORS:
        raise ConfigError(
            f"unknown variance estimator {estimator!r}; choose one of {list(ESTIMATORS)}"
        )
    return estimator


def log_returns(frame: pl.DataFrame) -> np.ndarray:
    """Close-to-close log returns of one series, (N,): day 0 has none and is NaN."""
    close = frame["close"].to_numpy().astype(np.float64)
    returns = np.full(close.size, np.nan)
    returns[1:] = np.diff(np.log(close))
    return returns


def daily_variance(frame: pl.DataFrame, estimator: str) -> tuple[np.ndarray, str]:
    """Each day's variance (N,) by `estimator` and the estimator used: close-to-close when the
    file lacks the columns a range estimator needs (said in a warning)."""
    check_estimator(estimator)
    missing = [
        column
        for column in ESTIMATORS[estimator]
        if column not in frame.columns or frame[column].null_count() == frame.height
    ]
    if missing:
        log.warning(
            "the %s estimator needs %s, which the data lacks; using close-to-close squared "
            "returns instead",
            estimator,
            " and ".join(missing),
        )
        estimator = "close"
    if estimator == "close":
        return log_returns(frame) ** 2, estimator
    close = frame["close"].to_numpy().astype(np.float64)
    high = frame["high"].to_numpy().astype(np.float64)
    low = frame["low"].to_numpy().astype(np.float64)
    if (high < low).any():
        raise DataError(
            f"{int((high < low).sum())} day(s) have a high below the low; fix the file or use "
            "--estimator close"
        )
    opening = frame["open"].to_numpy().astype(np.float64) if "open" in frame.columns else close
    slack = PRICE_TOLERANCE * high
    outside = (np.maximum(close, opening) > high + slack) | (
        np.minimum(close, opening) < low - slack
    )
    if outside.any():
        raise DataError(
            f"{int(outside.sum())} day(s) have an open or close outside their high-low range: "
            "is the close adjusted (for dividends, splits) while open, high and low are not? "
            "Pass unadjusted closes with --columns close=<column>, or use --estimator close"
        )
    range_squared = np.log(high / low) ** 2
    if estimator == "parkinson":
        return range_squared / (4.0 * math.log(2.0)), estimator
    if estimator == "garman_klass":
        body = np.log(close / opening) ** 2
        return 0.5 * range_squared - (2.0 * math.log(2.0) - 1.0) * body, estimator
    upper = np.log(high / close) * np.log(high / opening)
    lower = np.log(low / close) * np.log(low / opening)
    return upper + lower, estimator


def forward_mean(values: np.ndarray, horizon: int) -> np.ndarray:
    """At day t, the mean of values t+1 .. t+horizon (N,): the average variance a forecast
    made at t's close is judged on; NaN where those days are not all in the data."""
    if horizon < 1:
        raise ConfigError(f"the horizon is at least 1 day; got {horizon}")
    sums = np.concatenate([[0.0], np.cumsum(values)])
    target = np.full(values.size, np.nan)
    n_origins = values.size - horizon
    if n_origins > 0:
        origins = np.arange(n_origins)
        target[:n_origins] = (sums[origins + 1 + horizon] - sums[origins + 1]) / horizon
    return target


def trailing_means(values: np.ndarray, lags: tuple[int, ...] = HAR_LAGS) -> np.ndarray:
    """At day t, the mean of the last k values (t-k+1 .. t) for each k in `lags`, (N, len(lags));
    NaN until k values exist: the HAR regressors."""
    sums = np.concatenate([[0.0], np.cumsum(values)])
    columns = np.full((values.size, len(lags)), np.nan)
    for column, lag in enumerate(lags):
        ends = np.arange(lag - 1, values.size)
        columns[ends, column] = (sums[ends + 1] - sums[ends + 1 - lag]) / lag
    return columns


class VolatilityHistory:
    """One series' daily log returns and variance proxy (N,), held once; models fit on a
    prefix and forecast at origins, each forecast reading days <= its origin only."""

    def __init__(self, returns: np.ndarray, variance: np.ndarray) -> None:
        if returns.shape != variance.shape or returns.ndim != 1:
            raise DataError("returns and variances must be 1-D and of one length")
        if not (np.isfinite(returns).all() and np.isfinite(variance).all()):
            raise DataError("returns and variances must be finite; drop the first day's NaN")
        self.returns = returns
        if returns.size < 3:
            raise DataError(f"{returns.size} day(s) of returns are too few for any risk model")
        if not (variance > 0).any():
            raise DataError("every daily variance is zero: the prices never move")
        # a day without movement (close unchanged, high = low) would make QLIKE infinite; the
        # floor is fixed, so no later day sets it
        self.floor = VARIANCE_FLOOR
        self.variance = np.maximum(variance, self.floor)

    def __len__(self) -> int:
        return self.returns.size
