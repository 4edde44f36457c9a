"""Daily variance estimators by hand, and targets and regressors that only look the right way."""

from __future__ import annotations

import logging
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.volatility import (
    VARIANCE_FLOOR,
    VolatilityHistory,
    daily_variance,
    forward_mean,
    log_returns,
    trailing_means,
)
from deepfin.errors import ConfigError, DataError

DAY = pl.DataFrame(
    {
        "open": [100.0, 101.0],
        "high": [102.0, 104.0],
        "low": [99.0, 100.0],
        "close": [101.0, 103.0],
    }
)


def test_estimators_by_hand() -> None:
    o, h, low, c = 101.0, 104.0, 100.0, 103.0  # the second day
    parkinson = math.log(h / low) ** 2 / (4 * math.log(2))
    garman_klass = 0.5 * math.log(h / low) ** 2 - (2 * math.log(2) - 1) * math.log(c / o) ** 2
    rogers = math.log(h / c) * math.log(h / o) + math.log(low / c) * math.log(low / o)
    assert daily_variance(DAY, "close")[0][1] == pytest.approx(math.log(103 / 101) ** 2)
    assert daily_variance(DAY, "parkinson")[0][1] == pytest.approx(parkinson)
    assert daily_variance(DAY, "garman_klass")[0][1] == pytest.approx(garman_klass)
    assert daily_variance(DAY, "rogers_satchell")[0][1] == pytest.approx(rogers)


def test_range_estimators_agree_with_the_true_variance_of_a_simulated_walk() -> None:
    generator = np.random.default_rng(0)
    sigma, steps, days = 0.01, 390, 400  # a day of one-minute steps
    paths = np.cumsum(generator.normal(0, sigma / math.sqrt(steps), (days, steps)), axis=1)
    opens = np.concatenate([[0.0], paths[:-1, -1]])
    log_prices = opens[:, None] + np.concatenate([np.zeros((days, 1)), paths - paths[:, :1]], 1)
    frame = pl.DataFrame(
        {
            "open": np.exp(opens),
            "high": np.exp(log_prices.max(axis=1)),
            "low": np.exp(log_prices.min(axis=1)),
            "close": np.exp(log_prices[:, -1]),
        }
    )
    for estimator in ("parkinson", "garman_klass", "rogers_satchell"):
        mean = daily_variance(frame, estimator)[0].mean()
        # a discretely sampled range is a little narrow: within 15% of sigma^2
        assert mean == pytest.approx(sigma**2, rel=0.15), estimator


def test_a_missing_range_falls_back_to_close_to_close(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        variance, used = daily_variance(DAY.select("close"), "garman_klass")
    assert used == "close"
    assert "needs open and high and low" in caplog.text
    assert variance[1] == pytest.approx(math.log(103 / 101) ** 2)


def test_unknown_estimator_and_inconsistent_prices_are_refused() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        daily_variance(DAY, "yang_zhang_typo")
    with pytest.raises(DataError, match="high below the low"):
        daily_variance(DAY.with_columns(pl.col("low") + 10), "parkinson")
    adjusted = DAY.with_columns(pl.col("close") * 0.9)  # an adjusted close under raw highs/lows
    with pytest.raises(DataError, match="is the close adjusted"):
        daily_variance(adjusted, "garman_klass")


def test_forward_mean_and_trailing_means_by_hand() -> None:
    values = np.arange(1.0, 8.0)  # 1..7
    target = forward_mean(values, 2)
    assert target[:5].tolist() == [2.5, 3.5, 4.5, 5.5, 6.5]
    assert np.isnan(target[5:]).all()
    means = trailing_means(values, (1, 3))
    assert means[:, 0].tolist() == values.tolist()
    assert np.isnan(means[:2, 1]).all()
    assert means[2:, 1].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert log_returns(pl.DataFrame({"close": [1.0, math.e]}))[1] == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(day=st.integers(30, 99), horizon=st.integers(1, 10), shock=st.floats(0.1, 10.0))
def test_values_at_day_t_never_read_later_days(day: int, horizon: int, shock: float) -> None:
    values = np.random.default_rng(day).chisquare(1, 100)
    changed = values.copy()
    changed[day + 1 :] *= shock
    before, after = trailing_means(values)[: day + 1], trailing_means(changed)[: day + 1]
    assert np.array_equal(before, after, equal_nan=True)
    # a target at t reads t+1 .. t+horizon only: changing day+1 on moves targets from day-h+1 on
    target, moved = forward_mean(values, horizon), forward_mean(changed, horizon)
    untouched = max(0, day - horizon + 1)
    assert np.array_equal(target[:untouched], moved[:untouched], equal_nan=True)


def test_history_floors_days_without_movement_at_a_fixed_floor() -> None:
    history = VolatilityHistory(np.array([0.0, 0.01, -0.02]), np.array([0.0, 1e-4, 4e-4]))
    assert history.variance[0] == VARIANCE_FLOOR  # no later day sets it
    assert history.variance[1:].tolist() == [1e-4, 4e-4]
    with pytest.raises(DataError, match="too few"):
        VolatilityHistory(np.zeros(1), np.ones(1))
    with pytest.raises(DataError, match="never move"):
        VolatilityHistory(np.zeros(3), np.zeros(3))
