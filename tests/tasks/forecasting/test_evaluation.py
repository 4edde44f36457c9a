"""Scoring forecasts: judged on returns, references beside every model, suspect rows counted."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from deepfin.data.features import FACTORS
from deepfin.metrics.portfolio import long_short_book
from deepfin.metrics.significance import diebold_mariano, panel_diebold_mariano
from deepfin.report.forecast import metrics_rows, verdict
from deepfin.tasks.forecasting.evaluation import (
    FACTOR_NOTES,
    HEADLINE_METRICS,
    prediction_table,
    score_predictions,
    table_caption,
)


def table_from(
    actual_return: np.ndarray,
    forecasts: dict[str, np.ndarray],
    *,
    close: np.ndarray,
    tickers: list[str],
    n_dates: int,
    suspect: np.ndarray | None = None,
    signals: dict[str, np.ndarray] | None = None,
) -> pl.DataFrame:
    """A prediction table of (date, ticker) rows, date-major."""
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=d) for d in range(n_dates)]
    n_rows = n_dates * len(tickers)
    rows = pl.DataFrame(
        {
            "date": np.repeat(np.array(dates, dtype="datetime64[D]"), len(tickers)),
            "ticker": tickers * n_dates,
            "close": close,
            "future_close": close * np.exp(actual_return),
            "jump_ahead": suspect if suspect is not None else np.zeros(n_rows, dtype=bool),
        }
    ).with_columns(
        pl.Series(f"{name}_signal", (signals or {}).get(name, np.zeros(n_rows))) for name in FACTORS
    )
    return prediction_table(rows, forecasts)


def test_models_are_judged_on_returns_not_on_the_price_errors_of_expensive_stocks():
    # ticker EXP trades at 1,000, the four others at 10: the model is good on EXP only
    rng = np.random.default_rng(0)
    tickers = ["EXP", "A", "B", "C", "D"]
    n_dates = 250
    actual = rng.normal(0, 0.01, (n_dates, 5))
    forecast = 0.6 * actual + rng.normal(0, 0.004, actual.shape)  # skill on EXP ...
    forecast[:, 1:] = rng.normal(0, 0.02, (n_dates, 4))  # ... noise on the rest
    close = np.tile([1000.0, 10.0, 10.0, 10.0, 10.0], n_dates)
    table = table_from(
        actual.ravel(),
        {"model": forecast.ravel(), "naive": np.zeros(actual.size)},
        close=close,
        tickers=tickers,
        n_dates=n_dates,
    )
    metrics = score_predictions(table, ["model", "naive"], horizon=1)
    assert metrics["model"]["price_rmse"] < metrics["naive"]["price_rmse"]  # prices flatter it
    assert metrics["model"]["return_rmse"] > metrics["naive"]["return_rmse"]
    assert metrics["model"]["r2_oos"] < 0
    assert verdict("model", metrics).startswith("model does not beat the naive forecast")


def test_a_panel_is_tested_one_date_at_a_time_and_a_series_row_by_row():
    rng = np.random.default_rng(1)
    actual = rng.normal(0, 0.01, (60, 6))
    forecast = 0.3 * actual + rng.normal(0, 0.01, actual.shape)
    common = {"close": np.full(actual.size, 50.0), "n_dates": 60}
    panel = table_from(actual.ravel(), {"m": forecast.ravel()}, tickers=list("ABCDEF"), **common)
    metrics = score_predictions(panel, ["m"], horizon=1)["m"]
    expected = panel_diebold_mariano(
        panel["date"].to_numpy(), actual.ravel(), forecast.ravel(), np.zeros(actual.size)
    )
    assert metrics["dm_p_value"] == pytest.approx(expected["p_value"])
    series = table_from(
        actual[:, 0],
        {"m": forecast[:, 0]},
        close=np.full(60, 50.0),
        tickers=["A"],
        n_dates=60,
    )
    single = score_predictions(series, ["m"], horizon=1)["m"]
    assert single["dm_p_value"] == pytest.approx(
        diebold_mariano(actual[:, 0], forecast[:, 0], np.zeros(60))["p_value"]
    )


def test_naive_has_no_hit_rate_or_test_and_always_up_is_the_hit_rate_to_beat():
    rng = np.random.default_rng(2)
    actual = rng.normal(0.003, 0.01, 300)  # more up days than down
    table = table_from(
        actual,
        {"m": rng.normal(0, 0.01, 300), "naive": np.zeros(300)},
        close=np.full(300, 20.0),
        tickers=["X"],
        n_dates=300,
    )
    metrics = score_predictions(table, ["m", "naive"], horizon=1)
    assert metrics["naive"]["directional_accuracy"] is None
    assert metrics["naive"]["dm_p_value"] is None
    assert metrics["always_up"]["directional_accuracy"] == pytest.approx((actual > 0).mean())
    assert metrics["always_up"]["directional_accuracy"] > 0.55
    sentence = verdict("m", metrics)
    assert f"against {(actual > 0).mean():.3f} for always up" in sentence


def test_one_line_factors_are_scored_on_a_panel_and_a_planted_reversal_is_found():
    rng = np.random.default_rng(3)
    n_dates, n_names = 200, 20
    last = rng.normal(0, 0.01, (n_dates, n_names))
    actual = -0.3 * last + rng.normal(0, 0.01, last.shape)  # tomorrow reverses today
    table = table_from(
        actual.ravel(),
        {"naive": np.zeros(actual.size)},
        close=np.full(actual.size, 30.0),
        tickers=[f"T{i}" for i in range(n_names)],
        n_dates=n_dates,
        signals={"reversal": -last.ravel(), "momentum_20": rng.normal(size=actual.size)},
    )
    metrics = score_predictions(table, ["naive"], horizon=1)
    assert metrics["reversal"]["rank_ic_mean"] > 0.2
    assert metrics["reversal"]["rank_ic_t_stat"] > 10
    assert abs(metrics["momentum_20"]["rank_ic_t_stat"]) < 4
    assert "return_rmse" not in metrics["reversal"]  # a signal, not a return forecast


def test_suspect_outcomes_are_left_out_of_every_metric_and_counted():
    rng = np.random.default_rng(4)
    actual = rng.normal(0, 0.01, 100)
    actual[50] = -0.7  # a crash, or an unadjusted split
    suspect = np.zeros(100, dtype=bool)
    suspect[50] = True
    table = table_from(
        actual,
        {"m": np.zeros(100) + 0.001, "naive": np.zeros(100)},
        close=np.full(100, 40.0),
        tickers=["X"],
        n_dates=100,
        suspect=suspect,
    )
    metrics = score_predictions(table, ["m", "naive"], horizon=1)
    clean = np.delete(actual, 50)
    assert metrics["naive"]["return_rmse"] == pytest.approx(np.sqrt(np.mean(clean**2)))
    assert metrics["m"]["n"] == 99 and metrics["m"]["n_excluded"] == 1
    assert table["suspect_outcome"].sum() == 1  # still in the table, flagged


def test_two_tickers_are_tested_one_date_at_a_time_and_a_too_short_table_goes_untested():
    rng = np.random.default_rng(5)
    actual = rng.normal(0, 0.01, (40, 2))
    forecast = 0.3 * actual + rng.normal(0, 0.01, actual.shape)
    table = table_from(
        actual.ravel(), {"m": forecast.ravel()}, close=np.full(80, 9.0), tickers=["A", "B"],
        n_dates=40,
    )  # fmt: skip
    metrics = score_predictions(table, ["m"], horizon=1)["m"]
    expected = panel_diebold_mariano(
        table["date"].to_numpy(), actual.ravel(), forecast.ravel(), np.zeros(80)
    )
    assert metrics["dm_p_value"] == pytest.approx(expected["p_value"])
    short = table.head(4)  # two dates: no test, but the errors stand
    metrics = score_predictions(short, ["m"], horizon=1)["m"]
    assert metrics["dm_p_value"] is None and np.isfinite(metrics["return_rmse"])


def test_ic_t_stats_of_overlapping_horizons_use_newey_west():
    from deepfin.metrics.ranking import ic_summary
    from deepfin.metrics.significance import newey_west_variance

    rng = np.random.default_rng(6)
    daily = np.convolve(rng.normal(0.02, 0.1, 304), np.ones(5) / 5, mode="valid")  # overlaps
    plain = ic_summary(daily)
    overlapping = ic_summary(daily, horizon=5)
    assert overlapping["t_stat"] == pytest.approx(
        daily.mean() / np.sqrt(newey_west_variance(daily, lags=4) / daily.size)
    )
    assert overlapping["t_stat"] < 0.7 * plain["t_stat"]  # autocorrelated days count for less
    assert overlapping["icir"] == plain["icir"]


def test_models_and_factors_on_a_panel_get_the_decile_long_short_sharpe():
    rng = np.random.default_rng(7)
    n_dates, n_names = 150, 30
    actual = rng.normal(0, 0.02, (n_dates, n_names))
    skilled = 0.5 * actual + rng.normal(0, 0.02, actual.shape)
    suspect = np.zeros(actual.size, dtype=bool)
    suspect[[5, 400]] = True  # left out of the book as of every other metric
    table = table_from(
        actual.ravel(),
        {"m": skilled.ravel(), "naive": np.zeros(actual.size)},
        close=np.full(actual.size, 25.0),
        tickers=[f"T{i:02d}" for i in range(n_names)],
        n_dates=n_dates,
        suspect=suspect,
        signals={"reversal": -actual.ravel()},  # a factor that reads the outcome: it loses
    )
    metrics = score_predictions(table, ["m", "naive"], horizon=1)
    clean = table.filter(~pl.col("suspect_outcome"))
    expected = long_short_book(
        dates=clean["date"].to_numpy(),
        tickers=clean["ticker"],
        forecast=clean["m_log_return"].to_numpy(),
        actual_return=clean["actual_log_return"].to_numpy(),
    )
    assert metrics["m"]["long_short_sharpe"] == pytest.approx(expected.sharpe)
    assert metrics["m"]["long_short_sharpe_net"] == pytest.approx(expected.sharpe_net)
    assert metrics["m"]["long_short_turnover"] == pytest.approx(expected.mean_turnover)
    assert metrics["m"]["long_short_sharpe"] > metrics["m"]["long_short_sharpe_net"] > 3
    assert "long_short_sharpe" not in metrics["naive"]  # a zero forecast ranks nothing
    assert metrics["reversal"]["long_short_sharpe"] < -10
    for name in FACTORS:
        assert {"long_short_sharpe", "long_short_sharpe_net", "long_short_turnover"} <= set(
            metrics[name]
        )
    shown = metrics_rows(metrics)[0]
    assert list(shown).index("long_short_sharpe") > list(shown).index("rank_icir")
    assert "long_short_sharpe_net" in HEADLINE_METRICS


def test_a_single_series_has_no_long_short_book():
    rng = np.random.default_rng(8)
    actual = rng.normal(0, 0.01, 80)
    table = table_from(actual, {"m": actual}, close=np.full(80, 5.0), tickers=["X"], n_dates=80)
    assert "long_short_sharpe" not in score_predictions(table, ["m"], horizon=1)["m"]


def test_the_caption_names_every_factor_and_the_long_short_book():
    assert set(FACTOR_NOTES) == set(FACTORS)  # every factor is described
    caption = table_caption(True)
    assert all(f"{name} ({note})" in caption for name, note in FACTOR_NOTES.items())
    assert "long the top 10%" in caption and "5 bps per unit of turnover" in caption
    assert "long-short" not in table_caption(False)


def test_low_volatility_is_minus_the_20_day_spread_of_past_returns_and_factors_look_back():
    from deepfin.data.features import FACTOR_HISTORY, add_factors

    rng = np.random.default_rng(9)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, 60)))
    frame = pl.DataFrame({"ticker": ["A"] * 60, "close": close})
    signal = add_factors(frame)["low_volatility_20_signal"]
    returns = np.diff(np.log(close))
    hand = [-returns[t - 20 : t].std(ddof=1) for t in range(20, 60)]  # a calm stock ranks high
    np.testing.assert_allclose(signal.slice(20).to_numpy(), hand, rtol=1e-10)
    assert signal.head(20).null_count() == 20  # 21 closes: this one and the 20 before it
    # every factor is defined once FACTOR_HISTORY earlier closes exist, and reads no later one
    changed = frame.with_columns(pl.Series("close", np.r_[close[:40], close[40:] * 1.5]))
    for name in FACTORS:
        before = add_factors(frame)[f"{name}_signal"]
        assert before.slice(FACTOR_HISTORY).null_count() == 0, name
        assert before.head(40).equals(add_factors(changed)[f"{name}_signal"].head(40)), name
