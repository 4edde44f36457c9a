"""Tests for deepfin.backtest: hand-computed books, empyrical's statistics, properties, errors."""

import datetime as dt
import json
import math
import time

import empyrical
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.backtest import (
    BacktestConfig,
    forecasts_from_predictions,
    performance_stats,
    run_backtest,
)
from deepfin.data.splits import chronological_split
from deepfin.errors import DataError
from deepfin.tasks.forecasting.estimator import Forecaster
from tests.conftest import price_frame

DATES = [dt.date(2024, 1, day) for day in (2, 3, 4, 5)]
# A: +10%, -10%, 0%; B: 0%, +10%, -20%
CLOSES = {"A": [100.0, 110.0, 99.0, 99.0], "B": [50.0, 50.0, 55.0, 44.0]}
FORECASTS = {"A": [0.02, -0.03, -0.01], "B": [-0.01, 0.01, 0.02]}


def long_frame(values: dict[str, list[float]], column: str, dates=DATES) -> pl.DataFrame:
    """A (date, ticker, column) frame from one list of values per ticker."""
    return pl.DataFrame(
        {
            "date": [d for series in values.values() for d in dates[: len(series)]],
            "ticker": [t for t, series in values.items() for _ in series],
            column: [float(v) for series in values.values() for v in series],
        }
    )


def random_panel(seed: int, n_dates: int = 40, n_tickers: int = 6, drift: float = 0.0):
    """Random-walk prices and noise forecasts on a daily calendar."""
    rng = np.random.default_rng(seed)
    start = dt.date(2021, 1, 4)
    dates = [start + dt.timedelta(i) for i in range(n_dates)]
    log_return = drift + 0.02 * rng.standard_normal((n_dates, n_tickers))
    close = 50.0 * np.exp(np.cumsum(log_return, axis=0))
    tickers = [f"T{i}" for i in range(n_tickers)]
    prices = long_frame({t: close[:, i].tolist() for i, t in enumerate(tickers)}, "close", dates)
    forecast = rng.standard_normal((n_dates, n_tickers))
    forecasts = long_frame(
        {t: forecast[:, i].tolist() for i, t in enumerate(tickers)}, "forecast", dates
    )
    return prices, forecasts


def perfect_foresight(prices: pl.DataFrame) -> pl.DataFrame:
    """Forecasts equal to the next day's realised log return."""
    future = (pl.col("close").shift(-1) / pl.col("close")).log().over("ticker")
    return (
        prices.sort("ticker", "date")
        .select("date", "ticker", future.alias("forecast"))
        .drop_nulls()
    )


def weights_on(result, date) -> dict[str, float]:
    """The book held after trading on a decision date."""
    book = result.positions.filter(pl.col("date") == date)
    return dict(zip(book["ticker"], book["weight"], strict=True))


# ------------------------------------------------------------------ hand-computed books
def test_long_short_panel_matches_hand_computation():
    config = BacktestConfig(mode="long_short", top_k=1, cost_bps=10, fixed_cost=0.001)
    result = run_backtest(
        forecasts=long_frame(FORECASTS, "forecast"),
        prices=long_frame(CLOSES, "close"),
        config=config,
    )
    daily = result.daily
    # day 1: long A, short B; A +10%, B flat; book drifts to A 1.1/1.1, B -1/1.1
    # day 2: flip to short A, long B: trade |-1 - 1| + |1 + 1/1.1|; A -10%, B +10%
    # day 3: hold short A, long B, drifted to A -0.9/1.2, B 1.1/1.2; B -20%
    turnover = [2.0, 2.0 + 1.0 + 1 / 1.1, (1 - 0.9 / 1.2) + (1 - 1.1 / 1.2)]
    gross = [0.10, 0.10 + 0.10, -0.20]
    cost = [0.001 * t + 0.001 for t in turnover]
    assert daily["date"].to_list() == DATES[1:]
    assert daily["decision_date"].to_list() == DATES[:3]
    np.testing.assert_allclose(daily["turnover"], turnover, atol=1e-12)
    np.testing.assert_allclose(daily["gross_return"], gross, atol=1e-12)
    np.testing.assert_allclose(daily["cost"], cost, atol=1e-12)
    np.testing.assert_allclose(daily["net_return"], np.subtract(gross, cost), atol=1e-12)
    np.testing.assert_allclose(daily["benchmark_return"], [0.05, 0.0, -0.10], atol=1e-12)
    np.testing.assert_allclose(daily["net_equity"], np.cumprod(1 + np.subtract(gross, cost)))
    np.testing.assert_allclose(daily["gross_exposure"], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(daily["net_exposure"], [0.0, 0.0, 0.0], atol=1e-12)
    assert weights_on(result, DATES[1]) == {"A": -1.0, "B": 1.0}
    assert result.stats["net"]["total_cost"] == pytest.approx(sum(cost))
    assert result.stats["net"]["average_turnover_per_rebalance"] == pytest.approx(sum(turnover) / 3)
    assert result.stats["net"]["annual_turnover"] == pytest.approx(sum(turnover) / 3 * 252)


def test_weights_drift_between_rebalances():
    config = BacktestConfig(top_k=2, rebalance_every=2, cost_bps=10)
    result = run_backtest(
        forecasts=long_frame(FORECASTS, "forecast"),
        prices=long_frame(CLOSES, "close"),
        config=config,
    )
    # half in each; by day 2 the positions are worth 0.55 and 0.50 of a NAV of 1.05
    value_a, value_b = 0.5 * 1.1, 0.5 * 1.0
    day2 = (value_a * -0.1 + value_b * 0.1) / (value_a + value_b)
    value_a, value_b = value_a * 0.9, value_b * 1.1  # before the day-3 rebalance
    drifted_a = value_a / (value_a + value_b)
    turnover = [1.0, 0.0, 2 * abs(0.5 - drifted_a)]
    np.testing.assert_allclose(result.daily["gross_return"], [0.05, day2, -0.10], atol=1e-12)
    np.testing.assert_allclose(result.daily["turnover"], turnover, atol=1e-12)
    np.testing.assert_allclose(result.daily["cost"], np.multiply(turnover, 0.001), atol=1e-15)
    assert result.daily["rebalance"].to_list() == [True, False, True]
    assert weights_on(result, DATES[1])["A"] == pytest.approx(1.1 / 2.1)
    assert result.stats["net"]["n_rebalances"] == 2


def test_signal_weights_are_proportional_to_forecast_with_gross_one_per_side():
    forecasts = {"A": [0.03], "B": [0.01], "C": [-0.02], "D": [-0.06], "E": [0.0]}
    prices = {t: [10.0, 11.0] for t in forecasts}
    result = run_backtest(
        forecasts=long_frame(forecasts, "forecast"),
        prices=long_frame(prices, "close"),
        config=BacktestConfig(mode="long_short", top_k=2, weighting="signal"),
    )
    book = weights_on(result, DATES[0])
    assert book == pytest.approx({"A": 0.75, "B": 0.25, "C": -0.25, "D": -0.75})


def test_top_fraction_holds_the_top_decile():
    rng = np.random.default_rng(3)
    names = [f"T{i:02d}" for i in range(25)]
    forecasts = {t: [float(rng.normal())] for t in names}
    result = run_backtest(
        forecasts=long_frame(forecasts, "forecast"),
        prices=long_frame({t: [10.0, 10.5] for t in names}, "close"),
        config=BacktestConfig(mode="long_short", top_fraction=0.1),
    )
    book = weights_on(result, DATES[0])
    ranked = sorted(names, key=lambda t: forecasts[t][0])
    assert {t for t, w in book.items() if w > 0} == set(ranked[-2:])  # floor(0.1 * 25) = 2
    assert {t for t, w in book.items() if w < 0} == set(ranked[:2])
    assert sorted(book.values()) == [-0.5, -0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    ("mode", "expected"), [("long_flat", [0.0, 0.0, 1.0]), ("long_short", [0.0, -1.0, 1.0])]
)
def test_single_series_threshold(mode, expected):
    prices = long_frame({"A": CLOSES["A"]}, "close")
    forecasts = long_frame({"A": [0.01, -0.02, 0.015]}, "forecast")  # 0.01: on the line
    config = BacktestConfig(mode=mode, threshold=0.01)
    result = run_backtest(forecasts=forecasts, prices=prices, config=config)
    np.testing.assert_allclose(result.daily["net_exposure"], expected)
    np.testing.assert_allclose(result.daily["gross_return"], np.multiply(expected, [0.1, -0.1, 0]))
    np.testing.assert_allclose(result.daily["benchmark_return"], [0.1, -0.1, 0.0], atol=1e-12)


def test_single_series_sign_and_horizon_forecasts_earn_daily_returns_from_prices():
    prices = long_frame({"A": CLOSES["A"]}, "close")
    # a 2-day-horizon model's predictions; its actual_log_return is the 2-day move, unused
    predictions = prices.head(3).with_columns(
        pl.lit(9.9).alias("actual_log_return"),
        pl.Series("lstm_log_return", [0.01, -0.01, 0.02]),
        pl.Series("lstm_price", [1.0, 1.0, 1.0]),
    )
    forecasts = forecasts_from_predictions(predictions, model="lstm")
    result = run_backtest(
        forecasts=forecasts, prices=prices, config=BacktestConfig(rebalance_every=2)
    )
    # long on day 1, held (no rebalance) on day 2, rebalanced to long on day 3
    np.testing.assert_allclose(result.daily["gross_return"], [0.1, -0.1, 0.0], atol=1e-12)
    with pytest.raises(DataError, match="models there: \\['lstm'\\]"):
        forecasts_from_predictions(predictions, model="gru")


def test_forecast_gaps_hold_the_book_and_final_date_forecast_is_dropped():
    prices = long_frame({"A": CLOSES["A"]}, "close")
    forecasts = pl.DataFrame(
        {"date": [DATES[0], DATES[3]], "ticker": ["A", "A"], "forecast": [1.0, -1.0]}
    )
    result = run_backtest(forecasts=forecasts, prices=prices)
    assert result.daily["decision_date"].to_list() == DATES[:3]
    np.testing.assert_allclose(result.daily["net_exposure"], [1.0, 1.0, 1.0])


def test_late_listings_and_gaps_in_the_panel():
    prices = pl.concat(
        [
            long_frame({"A": CLOSES["A"]}, "close"),
            long_frame({"B": [50.0, 55.0, 44.0]}, "close", [DATES[0], DATES[2], DATES[3]]),
            long_frame({"C": [20.0, 22.0, 22.0]}, "close", DATES[1:]),
        ]
    )
    forecasts = pl.concat(
        [
            long_frame({"A": [0.0, 0.0, 0.1]}, "forecast"),
            long_frame({"B": [0.1, 0.0]}, "forecast", [DATES[0], DATES[2]]),
            long_frame({"C": [0.1, 0.0]}, "forecast", DATES[1:]),
        ]
    )
    result = run_backtest(forecasts=forecasts, prices=prices, config=BacktestConfig(top_k=1))
    # B is held over its missing close (earns 0), then C (listed on day 2), then A
    assert [weights_on(result, d) for d in DATES[:3]] == [{"B": 1.0}, {"C": 1.0}, {"A": 1.0}]
    np.testing.assert_allclose(result.daily["gross_return"], [0.0, 0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose(result.daily["turnover"], [1.0, 2.0, 2.0])
    # the benchmark holds the names quoted on each decision date: AB, AC, ABC
    np.testing.assert_allclose(result.daily["benchmark_return"], [0.05, 0.0, -0.2 / 3], atol=1e-12)


# ----------------------------------------------------------------- performance_stats
def test_performance_stats_match_empyrical():
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0004, 0.012, 600)
    dates = pl.date_range(dt.date(2020, 1, 1), dt.date(2020, 1, 1) + dt.timedelta(599), eager=True)
    for annual_rf in (0.0, 0.03):
        stats = performance_stats(returns, dates, risk_free_rate=annual_rf)
        rf = (1 + annual_rf) ** (1 / 252) - 1  # empyrical takes a per-period rate
        assert stats["annual_return"] == pytest.approx(empyrical.annual_return(returns))
        assert stats["annual_volatility"] == pytest.approx(empyrical.annual_volatility(returns))
        assert stats["sharpe"] == pytest.approx(empyrical.sharpe_ratio(returns, risk_free=rf))
        assert stats["sortino"] == pytest.approx(
            empyrical.sortino_ratio(returns, required_return=rf)
        )
        assert stats["calmar"] == pytest.approx(empyrical.calmar_ratio(returns))
        assert stats["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns))
    weekly = performance_stats(returns[:100], dates[:100], periods_per_year=52)
    assert weekly["annual_return"] == pytest.approx(
        empyrical.annual_return(returns[:100], annualization=52)
    )
    assert weekly["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(returns[:100], annualization=52)
    )


def test_drawdown_dates_and_hit_rate():
    dates = [dt.date(2024, 3, day) for day in range(1, 6)]
    # equity 1.1, 0.88, 0.924, 1.1088, 1.0977: peak day 1, trough day 2, back above on day 4
    stats = performance_stats([0.1, -0.2, 0.05, 0.2, -0.01], dates)
    assert stats["max_drawdown"] == pytest.approx(-0.2)
    assert (stats["drawdown_peak_date"], stats["drawdown_trough_date"]) == (
        "2024-03-01",
        "2024-03-02",
    )
    assert stats["drawdown_recovery_date"] == "2024-03-04"
    assert stats["hit_rate"] == pytest.approx(3 / 5)
    assert stats["n_days"] == 5
    # the worst drawdown starts from the starting capital and never recovers
    from_start = performance_stats(
        [-0.1, 0.0, 0.05], dates[1:4], start_date=dates[0], active=[True, False, True]
    )
    assert from_start["drawdown_peak_date"] == "2024-03-01"
    assert from_start["drawdown_trough_date"] == "2024-03-02"
    assert from_start["drawdown_recovery_date"] is None
    assert from_start["hit_rate"] == pytest.approx(0.5)
    rising = performance_stats([0.01, 0.02], dates[:2])
    assert rising["max_drawdown"] == 0.0
    assert rising["calmar"] is None and rising["sortino"] is None
    assert rising["drawdown_peak_date"] is None


def test_performance_stats_errors():
    with pytest.raises(ValueError, match="non-empty"):
        performance_stats([], [])
    with pytest.raises(ValueError, match="2 dates for 3 returns"):
        performance_stats([0.1, 0.2, 0.3], DATES[:2])
    with pytest.raises(ValueError, match=">= -1"):
        performance_stats([0.1, -1.5], DATES[:2])


# ------------------------------------------------------------------------- properties
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=-1.0, max_value=3.0, allow_nan=False), min_size=1, max_size=60))
def test_max_drawdown_is_between_minus_one_and_zero(returns):
    dates = [dt.date(2020, 1, 1) + dt.timedelta(i) for i in range(len(returns))]
    stats = performance_stats(returns, dates)
    assert -1.0 <= stats["max_drawdown"] <= 0.0


CONFIGS = st.builds(
    BacktestConfig,
    mode=st.sampled_from(["long_flat", "long_short"]),
    top_k=st.integers(1, 3),
    weighting=st.sampled_from(["equal", "signal"]),
    rebalance_every=st.integers(1, 4),
)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), config=CONFIGS, bps=st.floats(0.0, 50.0))
def test_zero_cost_is_gross_and_higher_costs_never_help(seed, config, bps):
    prices, forecasts = random_panel(seed)
    free = run_backtest(forecasts=forecasts, prices=prices, config=config)
    np.testing.assert_array_equal(free.daily["net_return"], free.daily["gross_return"])
    cheap = BacktestConfig(**{**config.__dict__, "cost_bps": bps, "fixed_cost": 1e-4})
    dear = BacktestConfig(**{**cheap.__dict__, "cost_bps": bps + 5.0})
    net_cheap = run_backtest(forecasts=forecasts, prices=prices, config=cheap).daily
    net_dear = run_backtest(forecasts=forecasts, prices=prices, config=dear).daily
    assert (net_dear["net_return"] <= net_cheap["net_return"]).all()
    assert net_dear["net_equity"][-1] < free.daily["net_equity"][-1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), config=CONFIGS, cutoff=st.integers(0, 35))
def test_no_look_ahead(seed, config, cutoff):
    prices, forecasts = random_panel(seed)
    cutoff_date = prices["date"].unique().sort()[cutoff]
    rng = np.random.default_rng(seed + 1)
    after = pl.col("date") > cutoff_date
    noise = pl.Series(rng.uniform(0.9, 1.1, prices.height))
    shocked_prices = prices.with_columns(
        pl.when(after).then(pl.col("close") * noise).otherwise("close").alias("close")
    )
    shocked_forecasts = forecasts.with_columns(
        pl.when(after)
        .then(pl.Series(rng.normal(size=forecasts.height)))
        .otherwise("forecast")
        .alias("forecast")
    )
    base = run_backtest(forecasts=forecasts, prices=prices, config=config)
    shocked = run_backtest(forecasts=shocked_forecasts, prices=shocked_prices, config=config)
    assert not base.daily.equals(shocked.daily)  # the shock does reach the later days
    held = pl.col("date") <= cutoff_date
    assert base.positions.filter(held).equals(shocked.positions.filter(held))
    decided = pl.col("decision_date") <= cutoff_date
    columns = ["turnover", "gross_exposure", "net_exposure", "rebalance"]
    assert (
        base.daily.filter(decided)
        .select(columns)
        .equals(shocked.daily.filter(decided).select(columns))
    )
    # returns are labelled by their end date: those up to the cutoff are already realised
    assert base.daily.filter(held).equals(shocked.daily.filter(held))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), bps=st.floats(0.0, 100.0))
def test_always_long_single_series_is_buy_and_hold_before_costs(seed, bps):
    prices, _ = random_panel(seed, n_tickers=1)
    forecasts = prices.select("date", "ticker", pl.lit(0.5).alias("forecast"))
    config = BacktestConfig(cost_bps=bps, fixed_cost=0.001)
    result = run_backtest(forecasts=forecasts, prices=prices, config=config)
    close = prices["close"].to_numpy()
    np.testing.assert_allclose(result.daily["gross_return"], close[1:] / close[:-1] - 1)
    np.testing.assert_allclose(result.daily["gross_return"], result.daily["benchmark_return"])
    np.testing.assert_allclose(result.daily["turnover"], [1.0] + [0.0] * (len(close) - 2))
    # only the opening trade costs anything; a rebalance that trades nothing is free
    expected_cost = [bps * 1e-4 + 0.001] + [0.0] * (len(close) - 2)
    np.testing.assert_allclose(result.daily["cost"], expected_cost)
    gross, benchmark = result.stats["gross"], result.stats["benchmark"]
    assert gross["annual_return"] == pytest.approx(benchmark["annual_return"])
    assert gross["max_drawdown"] == pytest.approx(benchmark["max_drawdown"])


@pytest.mark.parametrize(
    ("n_tickers", "config"),
    [
        (1, BacktestConfig(mode="long_flat")),
        (1, BacktestConfig(mode="long_short")),
        (8, BacktestConfig(mode="long_short", top_k=2, cost_bps=5)),
        (8, BacktestConfig(top_fraction=0.25, weighting="signal", cost_bps=5)),
    ],
)
def test_perfect_foresight_has_positive_sharpe_and_beats_the_benchmark(n_tickers, config):
    prices, _ = random_panel(5, n_dates=120, n_tickers=n_tickers)
    result = run_backtest(forecasts=perfect_foresight(prices), prices=prices, config=config)
    net, benchmark = result.stats["net"], result.stats["benchmark"]
    assert net["sharpe"] > 1.0
    assert net["annual_return"] > benchmark["annual_return"]
    assert net["hit_rate"] > 0.9


def test_stats_are_json_serialisable_and_daily_has_its_columns():
    prices, forecasts = random_panel(1)
    result = run_backtest(
        forecasts=forecasts, prices=prices, config=BacktestConfig(top_k=2, cost_bps=3)
    )
    decoded = json.loads(json.dumps(result.stats, allow_nan=False))
    assert set(decoded) == {"gross", "net", "benchmark"}
    assert decoded["net"]["drawdown_trough_date"][:4] == "2021"
    for name in ("gross", "net", "benchmark"):
        equity = result.daily[f"{name}_equity"].to_numpy()
        np.testing.assert_allclose(equity, np.cumprod(1 + result.daily[f"{name}_return"]))
        assert (result.daily[f"{name}_drawdown"] <= 0).all()
        assert decoded[name]["n_days"] == result.daily.height


def test_a_large_panel_runs_fast():
    rng = np.random.default_rng(0)
    n_dates, n_tickers = 1250, 500
    start = dt.date(2015, 1, 1)
    dates = pl.date_range(start, start + dt.timedelta(n_dates - 1), eager=True)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((n_dates, n_tickers)), axis=0))
    prices = pl.DataFrame(
        {
            "date": np.repeat(dates.to_numpy(), n_tickers),
            "ticker": [f"T{i:03d}" for i in range(n_tickers)] * n_dates,
            "close": close.ravel(),
        }
    )
    forecasts = prices.select("date", "ticker", pl.Series("forecast", rng.normal(size=close.size)))
    config = BacktestConfig(mode="long_short", top_fraction=0.1, rebalance_every=5, cost_bps=5)
    started = time.perf_counter()
    result = run_backtest(forecasts=forecasts, prices=prices, config=config)
    # well under a second on an idle core; the margin absorbs a busy shared machine
    assert time.perf_counter() - started < 5.0
    assert result.daily.height == n_dates - 1
    assert math.isclose(result.stats["net"]["average_gross_exposure"], 2.0, rel_tol=0.01)


# ----------------------------------------------------------------------------- errors
def test_input_errors():
    prices = long_frame(CLOSES, "close")
    forecasts = long_frame(FORECASTS, "forecast")
    with pytest.raises(DataError, match="forecasts is empty"):
        run_backtest(forecasts=forecasts.clear(), prices=prices)
    with pytest.raises(DataError, match="prices is empty"):
        run_backtest(forecasts=forecasts, prices=prices.clear())
    with pytest.raises(DataError, match=r"lacks column\(s\) \['forecast'\]"):
        run_backtest(forecasts=forecasts.rename({"forecast": "pred"}), prices=prices)
    with pytest.raises(DataError, match="1 non-positive closes"):
        run_backtest(
            forecasts=forecasts, prices=prices.with_columns(pl.col("close").replace(55.0, 0.0))
        )
    with pytest.raises(DataError, match="non-finite"):
        run_backtest(
            forecasts=forecasts.with_columns(pl.col("forecast").replace(0.02, np.nan)),
            prices=prices,
        )
    off_calendar = forecasts.with_columns(pl.col("date").replace(DATES[1], dt.date(2024, 1, 9)))
    with pytest.raises(DataError, match="misaligned"):
        run_backtest(forecasts=off_calendar, prices=prices)
    with pytest.raises(DataError, match=r"e\.g\. B on 2024-01-03"):
        run_backtest(
            forecasts=forecasts,
            prices=prices.filter((pl.col("ticker") != "B") | (pl.col("date") != DATES[1])),
        )
    with pytest.raises(DataError, match="duplicate"):
        run_backtest(forecasts=forecasts, prices=pl.concat([prices, prices.head(1)]))
    with pytest.raises(DataError, match="cast both"):
        run_backtest(
            forecasts=forecasts, prices=prices.with_columns(pl.col("date").cast(pl.Datetime))
        )
    with pytest.raises(DataError, match="needs closes after"):
        run_backtest(forecasts=long_frame({"A": [0.1] * 4}, "forecast").tail(1), prices=prices)


def test_panel_errors():
    prices = long_frame(CLOSES, "close")
    forecasts = long_frame(FORECASTS, "forecast")
    with pytest.raises(ValueError, match="only 2 tickers have a forecast on 2024-01-02"):
        run_backtest(forecasts=forecasts, prices=prices, config=BacktestConfig(top_k=3))
    with pytest.raises(ValueError, match="2 long \\+ 1 short"):
        run_backtest(
            forecasts=forecasts,
            prices=prices,
            config=BacktestConfig(mode="long_short", top_k=2, bottom_k=1),
        )
    with pytest.raises(ValueError, match="top_k or top_fraction"):
        run_backtest(forecasts=forecasts, prices=prices)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "short_only"}, "mode"),
        ({"weighting": "cap"}, "weighting"),
        ({"threshold": -0.1}, "threshold"),
        ({"top_k": 2, "top_fraction": 0.1}, "not both"),
        ({"top_k": 0}, "top_k"),
        ({"bottom_k": 2}, "long_short"),
        ({"mode": "long_short", "top_fraction": 0.6}, "overlap"),
        ({"rebalance_every": 0}, "rebalance_every"),
        ({"cost_bps": -1.0}, "cost_bps"),
        ({"fixed_cost": 1.0}, "fixed_cost"),
    ],
)
def test_config_errors(params, message):
    with pytest.raises(ValueError, match=message):
        BacktestConfig(**params)


def test_a_book_of_every_forecast_stock_earns_the_benchmark_through_a_crash():
    # a planted -50 % crash: the stock must still have a forecast the day before it, so a
    # book holding every name with a forecast is the equal-weight benchmark on every day
    rng = np.random.default_rng(11)
    frames = []
    for index in range(10):
        returns = 0.01 * rng.standard_normal(500)
        if index == 3:
            returns[430] = np.log(0.5)
        frames.append(price_frame(returns, ticker=f"S{index}", start_price=30.0 + index))
    prices = pl.concat(frames)
    split = chronological_split(prices, val_fraction=0.15, test_fraction=0.25, embargo=1)
    crash_day = prices["date"].unique().sort()[430]
    assert split.test["date"].min() < crash_day
    forecaster = Forecaster(model="linear", lookback=10).fit(split.train, split.val)
    metrics = forecaster.evaluate(split.test)
    assert metrics["linear"]["n_excluded"] == 1  # the crash is counted out of the metrics ...
    assert forecaster.predictions_ is not None
    forecasts = forecasts_from_predictions(forecaster.predictions_, model="linear")
    result = run_backtest(
        forecasts=forecasts,
        prices=split.test.select("date", "ticker", "close"),
        config=BacktestConfig(mode="long_flat", top_fraction=1.0),
    )
    daily = result.daily
    assert crash_day in daily["date"].to_list()  # ... but a held book lives through it
    np.testing.assert_allclose(daily["gross_return"], daily["benchmark_return"], atol=1e-12)
    assert daily.filter(pl.col("date") == crash_day)["gross_return"][0] < -0.04
