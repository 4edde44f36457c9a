"""Real data: the S&P 500 five-year panel in ../shared/data (skipped when absent)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from deepfin.config import load_config
from deepfin.data.features import add_target, jump_report
from deepfin.data.io import read_prices
from deepfin.tasks.forecasting.compare import run_compare
from deepfin.tasks.forecasting.evaluation import REFERENCES

pytestmark = pytest.mark.data


def test_panel_reads_with_its_spellings_and_flags_corporate_actions(sp500_panel_path):
    frame = read_prices(sp500_panel_path)
    # FTV and UA start with a row lacking open/high/low: that row goes, the tickers stay
    assert frame["ticker"].n_unique() == 505
    assert {"date", "ticker", "open", "high", "low", "close", "volume"} == set(frame.columns)
    flagged = jump_report(add_target(frame, horizon=1, target="log_return", max_abs_log_return=0.4))
    by_ticker = {ticker: group for (ticker,), group in flagged.group_by("ticker")}
    # Discovery's share dividend of 2014-08-07 is not adjusted in this file: a -0.71 "return"
    assert by_ticker["DISCA"]["date"].to_list() == [dt.date(2014, 8, 7)]
    assert by_ticker["DISCA"]["one_day_log_return"][0] == pytest.approx(-0.706, abs=0.01)
    # Alliant Energy has a bad print that falls and recovers the next day
    assert by_ticker["LNT"]["date"].to_list() == [dt.date(2016, 5, 19), dt.date(2016, 5, 20)]
    assert len(flagged) < 30  # a handful of events among 600,000 rows, not noise


@pytest.mark.slow
def test_compare_on_a_panel_subset_reports_every_model(sp500_panel_path, tmp_path):
    models = ["lstm", "gru", "hybrid", "transformer", "cnn", "rnn", "linear", "naive"]
    config = load_config(
        None,
        {
            "data.source": str(sp500_panel_path),
            "data.max_tickers": 8,
            "forecast.lookback": 10,
            "training.epochs": 1,
            "training.batch_size": 256,
            "training.progress": False,
        },
    )
    board = run_compare(config, models=models, run_dir=tmp_path)
    # the models best first by Rank IC (a panel ranks), the naive one without a ranking last;
    # then the references: always-up's hit rate and the one-line factors
    ranked = [name for name in models if name != "naive"]
    assert board["model"].to_list()[: len(models)] == [
        *sorted(ranked, key=lambda name: -board.filter(pl.col("model") == name)["rank_ic_mean"][0]),
        "naive",
    ]
    assert board["model"].to_list()[len(models) :] == list(REFERENCES)
    fitted = board.filter(pl.col("model").is_in(models))
    for column in ("return_rmse", "return_mae", "price_rmse", "r2_oos"):
        assert fitted[column].is_finite().all(), column
    # a panel of 8 tickers gets the cross-sectional IC for every model but the naive one
    judged = board.filter(~pl.col("model").is_in(["naive", "always_up"]))
    assert judged["ic_mean"].is_finite().all()
    assert judged.filter(pl.col("model").is_in(models))["dm_p_value"].is_finite().all()
    assert (tmp_path / "leaderboard.csv").exists()
