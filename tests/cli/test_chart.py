"""`deepfin chart train|predict` end to end on generated prices, and their bad inputs."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from deepfin.cli import app
from tests.conftest import SHARED_DATA
from tests.tasks.charts.test_estimator import candle_panel

runner = CliRunner()
SMALL = ("--param", "channels=8", "--epochs", "2", "--learning-rate", "0.001")


def invoke(*args: str):
    return runner.invoke(app, ["chart", *args], catch_exceptions=False)


def test_train_report_and_predict(tmp_path) -> None:
    candle_panel(30, 140, signal=1.0).write_csv(tmp_path / "prices.csv")
    result = invoke(
        "train", "--data", str(tmp_path / "prices.csv"), "--window", "5", "--horizon", "1",
        "--ensemble", "2", "--run-dir", str(tmp_path / "run"), *SMALL,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("chart_cnn", "logistic", "reversal_1w", "momentum_20d", "H-L Sharpe"):
        assert name in result.output
    page = (tmp_path / "run" / "report.html").read_text()
    assert "AUC by year" in page and "Grad-CAM" in page and "Decile portfolios" in page
    (tmp_path / "run" / "report.html").unlink()
    again = runner.invoke(app, ["report", str(tmp_path / "run")], catch_exceptions=False)
    assert again.exit_code == 0 and (tmp_path / "run" / "report.html").exists()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["models"]["chart_cnn"]["auc"] > 0.55
    predictions = pl.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert predictions.columns[:4] == ["date", "ticker", "log_return", "up"]
    result = invoke(
        "predict", "--run", str(tmp_path / "run"), "--data", str(tmp_path / "prices.csv")
    )
    assert result.exit_code == 0, result.output
    latest = pl.read_csv(tmp_path / "prices_up.csv")
    assert latest.height == 30 and latest["up_probability"].is_between(0, 1).all()


def test_close_only_prices_are_drawn_as_lines_when_asked(tmp_path) -> None:
    candle_panel(20, 100, signal=0.0).select("date", "ticker", "close").write_csv(
        tmp_path / "closes.csv"
    )
    common = ("--data", str(tmp_path / "closes.csv"), "--window", "5", "--horizon", "5", *SMALL)
    result = invoke("train", *common, "--run-dir", str(tmp_path / "bars"))
    assert result.exit_code == 2
    assert "lacks open, high, low" in result.output and "--style line" in result.output
    assert not (tmp_path / "bars" / "config.json").exists()
    result = invoke("train", *common, "--style", "line", "--run-dir", str(tmp_path / "lines"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lines" / "config.json").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (pl.col("close") * 0, "non-positive close"),
        (pl.col("close") * -1, "non-positive close"),
    ],
)
def test_bad_prices_are_one_error_line(tmp_path, change, message) -> None:
    frame = candle_panel(5, 60, signal=0.0)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(change).otherwise(pl.col("close")).alias("close")
    ).write_csv(tmp_path / "bad.csv")
    result = invoke("train", "--data", str(tmp_path / "bad.csv"), "--run-dir", str(tmp_path / "r"))
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_too_short_a_history_says_so(tmp_path) -> None:
    candle_panel(3, 30, signal=0.0).write_csv(tmp_path / "short.csv")
    result = invoke(
        "train", "--data", str(tmp_path / "short.csv"), "--window", "20", "--horizon", "20",
        "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.exit_code == 2 and "too short" in result.output, result.output
    result = invoke("train", "--data", str(tmp_path / "short.csv"), "--window", "1")
    assert result.exit_code == 2 and "window of at least 2 days" in result.output


@pytest.mark.skipif(not (SHARED_DATA / "sp500_5yr").exists(), reason="../shared/data is absent")
def test_real_sp500_tickers_train_and_score(tmp_path) -> None:
    frame = pl.read_csv(SHARED_DATA / "sp500_5yr" / "all_stocks_5yr.csv.gz")
    names = frame["Name"].unique().sort()[:25].implode()
    frame.filter(pl.col("Name").is_in(names)).write_csv(tmp_path / "sp25.csv")
    result = invoke(
        "train", "--data", str(tmp_path / "sp25.csv"), "--window", "20", "--horizon", "20",
        "--run-dir", str(tmp_path / "run"), "--epochs", "1", "--param", "channels=8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["tickers"] == 25
    assert metrics["test"]["first"] >= "2016-08"
    assert 0.3 < metrics["models"]["chart_cnn"]["auc"] < 0.7
