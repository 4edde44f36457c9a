"""A panel as a portfolio: returns on shared dates, weights checked by name, Euler contributions
that sum to the VaR, covariance forecasts by hand, stress windows, and the CLI end to end."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from deepfin.cli import app
from deepfin.data.portfolio import (
    asset_returns,
    check_weighted,
    portfolio_log_returns,
    read_portfolio_weights,
)
from deepfin.errors import ConfigError, DataError
from deepfin.tasks.risk.portfolio import (
    euler_contributions,
    ewma_covariance,
    shrunk_covariance,
    stress_scenarios,
)

PANEL_5YR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "sp500_5yr"


def panel(days: int = 900, tickers: tuple[str, ...] = ("AAA", "BBB", "CCC")) -> pl.DataFrame:
    generator = np.random.default_rng(5)
    dates = pl.date_range(dt.date(2012, 1, 2), dt.date(2020, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:days]
    market = generator.standard_t(5, days) * 0.01
    frames = [
        pl.DataFrame(
            {
                "date": dates,
                "ticker": name,
                "close": 50 * np.exp(np.cumsum(market * (1 + i) + generator.normal(0, 0.01, days))),
            }
        )
        for i, name in enumerate(tickers)
    ]
    return pl.concat(frames)


def test_asset_returns_on_shared_dates_and_sparse_tickers_left_out(caplog) -> None:
    frame = pl.concat([panel(), panel(100, ("SHORT",))])
    with caplog.at_level(logging.WARNING):
        assets = asset_returns(frame)
    assert assets.tickers == ["AAA", "BBB", "CCC"]
    assert "SHORT (11%)" in caplog.text
    closes = frame.filter(pl.col("ticker") == "BBB")["close"].to_numpy()
    assert assets.returns[:, 1] == pytest.approx(closes[1:] / closes[:-1] - 1)
    weights = np.array([0.5, 0.3, 0.2])
    expected = np.log1p(assets.returns @ weights)
    assert portfolio_log_returns(assets, weights) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("ticker,weight\nAAA,0.5\nBBB,0.4\n", "sum to 0.9"),
        ("ticker,weight\nAAA,0.5\nAAA,0.5\n", "twice"),
        ("name,share\nAAA,1\n", "needs a ticker and a weight column"),
        ("ticker,weight\nAAA,half\nBBB,0.5\n", "not numbers"),
    ],
)
def test_bad_weights_say_what_is_wrong(table: str, message: str, tmp_path) -> None:
    path = tmp_path / "w.csv"
    path.write_text(table)
    with pytest.raises(DataError, match=message):
        read_portfolio_weights(path)


def test_weights_of_tickers_the_data_lacks_are_named(tmp_path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("ticker,weight\nCCC,0.25\nZZZ,0.75\n")
    weights = read_portfolio_weights(path)
    assert weights == {"CCC": 0.25, "ZZZ": 0.75}
    with pytest.raises(DataError, match="1 ticker\\(s\\) the data lacks: ZZZ"):
        check_weighted(weights, ["AAA", "BBB", "CCC"], why="the data lacks")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    assets=st.integers(2, 12),
    level=st.sampled_from([0.95, 0.975, 0.99]),
)
def test_euler_contributions_sum_to_the_var(seed: int, assets: int, level: float) -> None:
    generator = np.random.default_rng(seed)
    factors = generator.normal(size=(assets, assets))
    covariance = factors @ factors.T * 1e-4 + np.eye(assets) * 1e-6
    weights = generator.dirichlet(np.ones(assets))
    result = euler_contributions(weights, covariance, level)
    sigma = np.sqrt(weights @ covariance @ weights)
    assert result["var"] == pytest.approx(stats.norm.ppf(level) * sigma)
    assert result["component"].sum() == pytest.approx(result["var"])
    assert result["share"].sum() == pytest.approx(1.0)
    # component = weight x marginal VaR (a finite difference of the VaR in each weight)
    step = 1e-6
    up, down = weights.copy(), weights.copy()
    up[0] += step
    down[0] -= step
    var_up = euler_contributions(up, covariance, level)["var"]
    marginal = (var_up - euler_contributions(down, covariance, level)["var"]) / (2 * step)
    assert result["component"][0] == pytest.approx(weights[0] * marginal, rel=1e-5, abs=1e-12)


def test_covariance_forecasts() -> None:
    returns = np.random.default_rng(1).normal(0, 0.01, (300, 3))
    expected = np.zeros((3, 3))
    for row in returns:  # the recursion, from zero; its weights are normalised over the sample
        expected = 0.94 * expected + 0.06 * np.outer(row, row)
    expected /= 1 - 0.94**300
    assert ewma_covariance(returns) == pytest.approx(expected)
    from sklearn.covariance import LedoitWolf

    reference = LedoitWolf(assume_centered=True).fit(returns).covariance_
    assert shrunk_covariance(returns) == pytest.approx(reference)


def test_stress_scenarios_by_hand() -> None:
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(30)]
    log_returns = np.full(30, 0.001)
    log_returns[5] = -0.05
    log_returns[20:25] = -0.02
    rows = stress_scenarios(dates, log_returns, {"spring": "2020-01-21:2020-01-25"})
    worst_day, worst_ten, named = rows
    assert worst_day["start"] == "2020-01-06" and worst_day["return"] == pytest.approx(
        np.expm1(-0.05)
    )
    assert worst_ten["end"] >= "2020-01-25"
    assert named["return"] == pytest.approx(np.expm1(-0.1))
    with pytest.raises(ConfigError, match="start:end"):
        stress_scenarios(dates, log_returns, {"bad": "2020-01-21"})
    with pytest.raises(DataError, match="holds no day"):
        stress_scenarios(dates, log_returns, {"later": "2021-01-01:2021-02-01"})


def test_cli_portfolio_var_with_weights(tmp_path) -> None:
    data = tmp_path / "panel.csv"
    panel().write_csv(data)
    weights = tmp_path / "w.csv"
    weights.write_text("ticker,weight\nAAA,0.5\nBBB,0.3\nCCC,0.2\n")
    gappy = panel(900, ("GAP",)).filter(pl.col("date").dt.day() != 15)  # not held: no matter
    pl.concat([panel(), gappy]).write_csv(data)
    result = CliRunner().invoke(
        app,
        ["risk", "var", "--data", str(data), "--weights", str(weights), "--test-start",
         "2014-01-02", "--refit-every", "126", "--stress", "q1=2014-01-02:2014-03-31",
         "--run-dir", str(tmp_path / "r")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "risk contributions" in result.output and "worst 10-day" in result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    rows = metrics["portfolio"]["risk_by_asset"]
    assert sum(row["share_ewma"] for row in rows) == pytest.approx(1.0)
    assert [row["weight"] for row in rows] == [0.5, 0.3, 0.2]
    assert metrics["series"] == "portfolio of 3 tickers"
    # the unweighted ticker's missing days cost the portfolio none of its own
    dates = pl.read_parquet(tmp_path / "r" / "predictions.parquet")["date"]
    assert (dates.dt.day() == 15).any()


@pytest.mark.skipif(not PANEL_5YR.exists(), reason="../shared/data/sp500_5yr is not here")
def test_fifty_ticker_equal_weight_portfolio_of_the_sp500_panel(tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        ["risk", "var", "--data", str(PANEL_5YR / "all_stocks_5yr.csv.gz"), "--max-tickers",
         "52", "--test-start", "2016-01-04", "--refit-every", "126", "--methods", "fhs",
         "--run-dir", str(tmp_path / "r")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["series"] == "portfolio of 50 tickers"
    assert metrics["backtests"][0]["kupiec_p"] > 0.01


def test_which_tickers_are_held_is_judged_before_the_test_days(caplog) -> None:
    late = panel(900, ("LATE",)).filter(pl.col("date") >= dt.date(2014, 6, 2))  # lists later
    frame = pl.concat([panel(), late])
    judged = asset_returns(frame, judged_before=dt.date(2014, 1, 2))
    assert judged.tickers == ["AAA", "BBB", "CCC"]  # it had no price before the test
    with pytest.raises(DataError, match="no day of the data lies before"):
        asset_returns(frame, judged_before=dt.date(2000, 1, 3))
