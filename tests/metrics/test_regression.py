"""deepfin.metrics (errors, significance, ranking) against hand-written references."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deepfin.metrics import ranking
from deepfin.metrics.ranking import cross_sectional_ic, ic_summary, panel_ic_metrics
from deepfin.metrics.regression import (
    directional_accuracy,
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_out_of_sample,
    root_mean_squared_error,
)
from deepfin.metrics.significance import diebold_mariano

ACTUAL_PRICE = np.array([100.0, 101.5, 99.0, 102.0, 103.5, 101.0])
FORECAST_PRICE = np.array([100.5, 101.0, 100.0, 101.0, 104.0, 102.5])


def hand_diebold_mariano(actual, forecast, benchmark, horizon, power):
    """Plain-loop DM (1995) with HLN (1997) correction, written independently of the library."""
    n = len(actual)
    d = []
    for t in range(n):
        d.append(abs(actual[t] - forecast[t]) ** power - abs(actual[t] - benchmark[t]) ** power)
    d_bar = sum(d) / n
    gammas = []
    for k in range(horizon):
        total = 0.0
        for t in range(k, n):
            total += (d[t] - d_bar) * (d[t - k] - d_bar)
        gammas.append(total / n)
    variance = gammas[0]
    for k in range(1, horizon):
        variance += 2 * gammas[k]
    dm = d_bar / math.sqrt(variance / n)
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = correction * dm
    p_value = 2 * (1 - stats.t.cdf(abs(statistic), n - 1))
    return statistic, p_value, d_bar


def make_panel(seed=0, n_dates=20, n_names=8, ties=False):
    rng = np.random.default_rng(seed)
    dates = np.repeat(np.arange("2024-01-01", n_dates, dtype="datetime64[D]"), n_names)
    actual = rng.normal(size=dates.size)
    forecast = 0.3 * actual + rng.normal(size=dates.size)
    if ties:
        actual, forecast = np.round(actual, 0), np.round(forecast, 0)
    shuffle = rng.permutation(dates.size)  # rows need not arrive grouped by date
    return dates[shuffle], actual[shuffle], forecast[shuffle]


# ---- point errors -------------------------------------------------------------------------


def test_point_errors_match_hand_numpy():
    error = ACTUAL_PRICE - FORECAST_PRICE
    assert mean_absolute_error(ACTUAL_PRICE, FORECAST_PRICE) == pytest.approx(
        np.mean(np.abs(error))
    )
    assert root_mean_squared_error(ACTUAL_PRICE, FORECAST_PRICE) == pytest.approx(
        np.sqrt(np.mean(error**2))
    )
    assert mean_absolute_percentage_error(ACTUAL_PRICE, FORECAST_PRICE) == pytest.approx(
        100 * np.mean(np.abs(error) / ACTUAL_PRICE)
    )
    assert isinstance(mean_absolute_error(ACTUAL_PRICE, FORECAST_PRICE), float)


def test_directional_accuracy_skips_flat_actuals():
    actual_return = np.array([0.01, -0.02, 0.0, 0.03, -0.01])
    forecast_return = np.array([0.02, 0.01, 0.05, 0.01, -0.03])
    assert directional_accuracy(actual_return, forecast_return) == pytest.approx(3 / 4)


def test_r2_out_of_sample_matches_campbell_thompson():
    actual = np.array([0.01, -0.02, 0.03, 0.0])
    forecast = np.array([0.005, -0.01, 0.02, 0.01])
    benchmark = np.zeros(4)
    expected = 1 - np.sum((actual - forecast) ** 2) / np.sum(actual**2)
    assert r2_out_of_sample(actual, forecast, benchmark) == pytest.approx(expected)


# ---- Diebold-Mariano ----------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("power", [1, 2])
def test_diebold_mariano_matches_hand_loop(horizon, power):
    rng = np.random.default_rng(horizon * 10 + power)
    actual = rng.normal(size=120)
    forecast = actual + rng.normal(scale=0.8, size=120)
    benchmark = actual + rng.normal(scale=1.0, size=120)
    result = diebold_mariano(actual, forecast, benchmark, horizon=horizon, power=power)
    statistic, p_value, d_bar = hand_diebold_mariano(
        list(actual), list(forecast), list(benchmark), horizon, power
    )
    assert result["statistic"] == pytest.approx(statistic, rel=1e-10)
    assert result["p_value"] == pytest.approx(p_value, rel=1e-8)
    assert result["mean_loss_differential"] == pytest.approx(d_bar, rel=1e-10)
    assert set(result) == {"statistic", "p_value", "mean_loss_differential"}


def test_diebold_mariano_perfect_forecast_is_significantly_better():
    rng = np.random.default_rng(1)
    actual = rng.normal(size=500)
    benchmark = actual + rng.normal(size=500)
    result = diebold_mariano(actual, actual.copy(), benchmark)
    assert result["statistic"] < 0
    assert result["p_value"] < 0.01


def test_diebold_mariano_swap_flips_sign():
    rng = np.random.default_rng(2)
    actual = rng.normal(size=200)
    forecast = actual + rng.normal(scale=0.9, size=200)
    benchmark = actual + rng.normal(scale=1.1, size=200)
    forward = diebold_mariano(actual, forecast, benchmark, horizon=3)
    backward = diebold_mariano(actual, benchmark, forecast, horizon=3)
    assert forward["statistic"] == pytest.approx(-backward["statistic"])
    assert forward["p_value"] == pytest.approx(backward["p_value"])


def test_diebold_mariano_identical_forecasts_give_zero_statistic():
    actual = np.arange(10.0)
    forecast = actual + 0.5
    result = diebold_mariano(actual, forecast, forecast.copy(), horizon=2)
    assert result == {"statistic": 0.0, "p_value": 1.0, "mean_loss_differential": 0.0}


def test_diebold_mariano_constant_differential_does_not_divide_by_zero():
    actual = np.zeros(10)
    result = diebold_mariano(actual, np.zeros(10), np.ones(10))
    assert result["statistic"] == -math.inf
    assert result["p_value"] == 0.0


# ---- information coefficient --------------------------------------------------------------


@pytest.mark.parametrize("block_rows", [65_536, 7])  # one block, or a few dates per block
@pytest.mark.parametrize("ties", [False, True])
def test_cross_sectional_ic_matches_scipy_per_date(ties, block_rows, monkeypatch):
    blocks = ranking._date_blocks
    monkeypatch.setattr(ranking, "_date_blocks", lambda bounds: blocks(bounds, rows=block_rows))
    dates, actual, forecast = make_panel(ties=ties)
    result = cross_sectional_ic(dates, actual, forecast, min_names=5)
    expected_dates, expected_ic, expected_rank_ic = [], [], []
    for date in np.unique(dates):
        mask = dates == date
        a, f = actual[mask], forecast[mask]
        if mask.sum() < 5 or np.ptp(a) == 0 or np.ptp(f) == 0:
            continue
        expected_dates.append(date)
        expected_ic.append(stats.pearsonr(f, a)[0])
        expected_rank_ic.append(stats.spearmanr(f, a)[0])
    np.testing.assert_array_equal(result["date"], np.array(expected_dates))
    np.testing.assert_allclose(result["ic"], expected_ic, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result["rank_ic"], expected_rank_ic, rtol=1e-10, atol=1e-12)


def test_cross_sectional_ic_skips_small_and_constant_dates():
    dates = np.array(["a"] * 6 + ["b"] * 3 + ["c"] * 6)
    actual = np.r_[np.arange(6.0), np.arange(3.0), np.full(6, 0.1)]
    forecast = np.r_[np.arange(6.0) ** 2, np.arange(3.0), np.arange(6.0)]
    result = cross_sectional_ic(dates, actual, forecast, min_names=5)
    assert list(result["date"]) == ["a"]
    assert result["rank_ic"][0] == pytest.approx(1.0)


def test_ic_summary_matches_hand_formula():
    ic = np.array([0.05, -0.02, 0.08, 0.01, 0.03])
    summary = ic_summary(ic)
    std = np.std(ic, ddof=1)
    assert summary["mean"] == pytest.approx(ic.mean())
    assert summary["std"] == pytest.approx(std)
    assert summary["t_stat"] == pytest.approx(ic.mean() / (std / np.sqrt(5)))
    assert summary["icir"] == pytest.approx(ic.mean() / std)
    assert summary["n_days"] == 5


def test_panel_ic_metrics_is_flat_json_and_consistent():
    dates, actual, forecast = make_panel(seed=3)
    metrics = panel_ic_metrics(dates=dates, actual_return=actual, forecast_return=forecast)
    daily = cross_sectional_ic(dates, actual, forecast)
    assert metrics["ic_mean"] == pytest.approx(daily["ic"].mean())
    assert metrics["rank_icir"] == pytest.approx(
        daily["rank_ic"].mean() / daily["rank_ic"].std(ddof=1)
    )
    assert metrics["n_days"] == 20
    assert all(isinstance(value, float) and math.isfinite(value) for value in metrics.values())
    json.dumps(metrics)


# ---- properties ---------------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_rmse_is_at_least_mae(pairs):
    actual, forecast = np.array(pairs).T
    mae = mean_absolute_error(actual, forecast)
    assert root_mean_squared_error(actual, forecast) >= mae * (1 - 1e-12)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_r2_oos_is_zero_when_forecast_is_benchmark(pairs):
    actual, forecast = np.array(pairs).T
    assert r2_out_of_sample(actual, forecast, forecast.copy()) == 0.0


panel_values = st.lists(
    st.tuples(st.integers(0, 3), st.integers(-1000, 1000), st.integers(-1000, 1000)),
    min_size=5,
    max_size=60,
)


@settings(max_examples=60)
@given(
    panel_values,
    st.floats(min_value=0.1, max_value=100),
    st.floats(min_value=-1000, max_value=1000),
)
def test_ic_is_invariant_to_positive_affine_forecast(rows, scale, shift):
    dates, actual, forecast = (np.array(column) for column in zip(*rows, strict=True))
    actual, forecast = actual.astype(float), forecast.astype(float)
    base = cross_sectional_ic(dates, actual, forecast, min_names=3)
    moved = cross_sectional_ic(dates, actual, scale * forecast + shift, min_names=3)
    np.testing.assert_array_equal(base["date"], moved["date"])
    np.testing.assert_allclose(base["ic"], moved["ic"], atol=1e-9)


@settings(max_examples=60)
@given(panel_values)
def test_rank_ic_is_invariant_to_monotone_forecast(rows):
    dates, actual, forecast = (np.array(column) for column in zip(*rows, strict=True))
    actual, forecast = actual.astype(float), forecast.astype(float)
    base = cross_sectional_ic(dates, actual, forecast, min_names=3)
    moved = cross_sectional_ic(dates, actual, np.exp(forecast / 100) - 7, min_names=3)
    np.testing.assert_array_equal(base["date"], moved["date"])
    np.testing.assert_allclose(base["rank_ic"], moved["rank_ic"], atol=1e-12)


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric",
    [mean_absolute_error, root_mean_squared_error, mean_absolute_percentage_error],
)
@pytest.mark.parametrize(
    ("actual", "forecast", "message"),
    [
        ([1.0, 2.0], [1.0], "equal lengths"),
        ([], [], "empty"),
        ([1.0, np.nan], [1.0, 2.0], "NaN"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_point_errors_reject_bad_input(metric, actual, forecast, message):
    with pytest.raises(ValueError, match=message):
        metric(np.array(actual), np.array(forecast))


def test_mape_rejects_zero_prices():
    with pytest.raises(ValueError, match="MAPE is for prices"):
        mean_absolute_percentage_error(np.array([0.0, 1.0]), np.array([1.0, 1.0]))


def test_directional_accuracy_rejects_all_flat():
    with pytest.raises(ValueError, match="exactly 0"):
        directional_accuracy(np.zeros(3), np.ones(3))


def test_r2_oos_rejects_nan_benchmark():
    with pytest.raises(ValueError, match="benchmark has 1 NaN"):
        r2_out_of_sample(np.ones(2), np.ones(2), np.array([0.0, np.nan]))


@pytest.mark.parametrize(
    ("size", "kwargs", "message"),
    [
        (5, {"horizon": 0}, "horizon must be >= 1"),
        (5, {"power": 0}, "power must be >= 1"),
        (3, {"horizon": 3}, "more observations than horizon"),
        (1, {}, "at least 2"),
    ],
)
def test_diebold_mariano_rejects_bad_settings(size, kwargs, message):
    values = np.arange(float(size))
    with pytest.raises(ValueError, match=message):
        diebold_mariano(values, values + 1, values - 2, **kwargs)


def test_diebold_mariano_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        diebold_mariano(np.ones(5), np.ones(5), np.ones(4))


def test_cross_sectional_ic_rejects_bad_input():
    dates, actual, forecast = make_panel()
    with pytest.raises(ValueError, match="one date per"):
        cross_sectional_ic(dates[:-1], actual, forecast)
    with pytest.raises(ValueError, match="NaT"):
        cross_sectional_ic(np.r_[dates[:-1], np.datetime64("NaT")], actual, forecast)
    with pytest.raises(ValueError, match="min_names must be >= 2"):
        cross_sectional_ic(dates, actual, forecast, min_names=1)
    with pytest.raises(ValueError, match="NaN"):
        cross_sectional_ic(dates, np.r_[actual[:-1], np.nan], forecast)


def test_ic_summary_rejects_short_or_nan_series():
    with pytest.raises(ValueError, match="at least 2 days"):
        ic_summary(np.array([0.1]))
    with pytest.raises(ValueError, match="NaN"):
        ic_summary(np.array([0.1, np.nan]))


def test_panel_ic_metrics_rejects_thin_panel():
    dates, actual, forecast = make_panel(n_names=3)
    with pytest.raises(ValueError, match="at least min_names tickers per date"):
        panel_ic_metrics(dates=dates, actual_return=actual, forecast_return=forecast)
