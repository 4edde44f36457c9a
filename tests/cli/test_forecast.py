"""End-to-end: the `deepfin` command on the built-in data and on files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from deepfin.cli import app
from deepfin.config import load_config
from deepfin.data.features import FACTORS
from deepfin.data.samples import load_prices
from deepfin.data.splits import chronological_split
from deepfin.errors import TrainingError
from deepfin.tasks.forecasting.estimator import Forecaster

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


def test_data_list_shows_the_built_in_sets():
    result = invoke("data", "list")
    assert result.exit_code == 0
    assert "sp500" in result.output and "arch" in result.output


@pytest.mark.slow
def test_forecast_on_built_in_data_then_predict_reproduces_the_run(tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(
        "forecast", "--model", "lstm", "--epochs", "1", "--no-progress", "--run-dir", str(run_dir)
    )
    assert result.exit_code == 0, result.output
    for name in ("lstm", "linear", "naive", "DM p", "Diebold-Mariano", "run folder"):
        assert name in result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"lstm", "linear", "naive", "always_up"}
    saved = pl.read_parquet(run_dir / "predictions.parquet")
    # naive has no hit rate or test of its own: shown as "-", not as a 0.0000 and a 1.0000
    naive_line = next(line for line in result.output.splitlines() if "│ naive" in line)
    assert naive_line.count(" - ") >= 2 and "0.0000 │ 1.0000" not in naive_line
    assert "for always up" in result.output
    # every test date is scored, its warm-up taken from the history before it; only the last
    # date, whose outcome is not in the data, has no score
    run = json.loads((run_dir / "run.json").read_text())
    test_days = int(run["split"]["test"].rsplit("(", 1)[1].split()[0])
    assert saved["date"].min() == split_start(run["split"]["test"])
    assert saved["date"].n_unique() == test_days - 1
    assert run["scored"]["test"].startswith(str(saved["date"].min()))

    # the test period with its history, as the run saw it: a CSV a user would hand to predict
    config = load_config(None, {"forecast.model": "lstm"})
    split = chronological_split(
        load_prices(config.data.source),
        val_fraction=config.split.val_fraction,
        test_fraction=config.split.test_fraction,
        embargo=config.forecast.horizon,
    )
    test, _ = split.with_history("test", Forecaster.load(run_dir).context_rows)
    test.write_csv(tmp_path / "test.csv")
    out = tmp_path / "forecasts.parquet"
    result = invoke(
        "predict", "--run", str(run_dir), "--data", str(tmp_path / "test.csv"), "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    joined = saved.join(pl.read_parquet(out), on=["date", "ticker"])
    assert joined.height == saved.height
    np.testing.assert_allclose(
        joined["lstm_log_return"], joined["forecast_log_return"], rtol=0, atol=1e-7
    )


def split_start(description: str):
    """The first date of a part described as "first .. last (N days)"."""
    return dt.date.fromisoformat(description.split(" .. ")[0])


def wide_closes(path: Path, *, n_days: int = 400, n_tickers: int = 6, scale: float = 0.01):
    """A closes-only file with one column per ticker, as vendors export it."""
    rng = np.random.default_rng(5)
    dates = [dt.date(2015, 1, 1) + dt.timedelta(days=i) for i in range(n_days)]
    columns: dict[str, list] = {"Date": dates}
    for index in range(n_tickers):
        steps = scale * rng.standard_normal(n_days)
        # a wild series jumps about a level instead of compounding to prices no market has
        levels = np.cumsum(steps) if scale <= 0.05 else steps
        columns[f"TK{index}.L"] = list(30 * np.exp(levels))
    pl.DataFrame(columns).write_csv(path)
    return path


def test_a_wide_closes_file_runs_with_the_default_command(tmp_path):
    data = wide_closes(tmp_path / "closes.csv", n_days=800)
    result = invoke(
        "forecast", "--data", str(data), "--model", "linear", "--no-progress", "--no-report",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("leaving out feature(s) volume_z_20") == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"linear", "naive", "always_up", "reversal", "momentum_20"} <= set(metrics)
    saved = pl.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert saved["ticker"].n_unique() == 6  # every ticker, not the first one only
    result = invoke(
        "compare", "--data", str(data), "--models", "linear,naive", "--features",
        "log_return,volatility_5", "--no-progress", "--no-report", "--run-dir",
        str(tmp_path / "compare"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "compare" / "linear" / "config.json").read_text())
    assert config["features"] == ["log_return", "volatility_5"]
    assert "reversal" in result.output and "Rank IC" in result.output
    # a panel's table shows what a ranking is judged by; the price view stays in the CSV
    for heading in ("Rank ICIR", "LS Sharpe net", "ICIR"):
        assert heading in result.output, heading
    assert "price MAPE" not in result.output
    assert "price_mape" in (tmp_path / "compare" / "leaderboard.csv").read_text()


def test_mostly_suspect_outcomes_fail_before_training_and_name_the_flag(tmp_path):
    data = wide_closes(tmp_path / "wild.csv", scale=1.0)  # most days move beyond 0.4
    run_dir = tmp_path / "run"
    result = invoke(
        "forecast", "--data", str(data), "--model", "lstm", "--no-progress", "--run-dir",
        str(run_dir),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--max-abs-log-return" in result.output and "test period" in result.output
    assert not (run_dir / "checkpoint").exists()  # nothing was trained
    result = invoke(
        "forecast", "--data", str(data), "--model", "linear", "--max-abs-log-return", "5",
        "--no-progress", "--no-report", "--run-dir", str(tmp_path / "run2"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_forecast_resume_continues_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    common = [
        "forecast",
        "--model",
        "gru",
        "--max-tickers",
        "1",
        "--lookback",
        "10",
        "--patience",
        "0",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    ]
    assert invoke(*common, "--epochs", "1").exit_code == 0
    result = invoke(*common, "--epochs", "2", "--resume")
    assert result.exit_code == 0, result.output
    history = pl.read_csv(run_dir / "history.csv")
    assert history["epoch"].to_list() == [1, 2]
    # what the run learns from cannot change on resume, and a finished folder is not reused
    result = invoke(*common, "--epochs", "3", "--resume", "--lookback", "12")
    assert result.exit_code == 2 and "forecast.lookback: 10 -> 12" in result.output
    result = invoke(*common, "--epochs", "3", "--resume", "--data", "nasdaq")
    assert result.exit_code == 2 and "data.source: 'sp500' -> 'nasdaq'" in result.output
    result = invoke(*common, "--epochs", "1")
    assert result.exit_code == 2 and "already holds files of another run" in result.output
    assert pl.read_csv(run_dir / "history.csv")["epoch"].to_list() == [1, 2]


def test_resume_needs_a_checkpoint_and_a_run_folder_is_a_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("forecast", "--model", "linear", "--resume", "--run-dir", str(empty))
    assert result.exit_code == 2 and "has no checkpoint to resume from" in result.output
    (tmp_path / "file").write_text("x")
    result = invoke("forecast", "--model", "linear", "--run-dir", str(tmp_path / "file"))
    assert result.exit_code == 2 and "is a file" in result.output


def test_compare_prints_one_row_per_model(tmp_path):
    result = invoke(
        "compare",
        "--models",
        "linear,naive,cnn",
        "--epochs",
        "1",
        "--lookback",
        "10",
        "--no-progress",
        "--run-dir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    board = pl.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board["model"].to_list()[:3]) == ["cnn", "linear", "naive"]
    assert board["model"].to_list()[3:] == ["always_up"]  # one series: no factor rows
    assert board["return_rmse"].head(3).is_finite().all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "--data", "nowhere.csv"], "no file at nowhere.csv"),
        (["forecast", "--model", "lstmm"], "unknown model 'lstmm'"),
        (["forecast", "--features", "log_return,magic_7"], "unknown feature 'magic_7'"),
        (["forecast", "--param", "hidden_size"], "needs the form key=value"),
        (["forecast", "--model", "lstm", "--param", "hiden_size=3"], "hiden_size"),
        (["forecast", "--resume"], "--resume needs --run-dir"),
        (["compare", "--models", "lstm,foo"], "unknown model 'foo'"),
        (["predict", "--run", "missing_run", "--data", "sp500"], "is missing"),
    ],
)
def test_bad_input_gets_a_clear_error_and_exit_code_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args, "--no-progress") if args[0] == "forecast" else invoke(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_config_file_drives_a_run(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        '[data]\nsource = "sp500"\n[forecast]\nmodel = "linear"\nlookback = 5\n'
        "[training]\nprogress = false\n"
    )
    result = invoke("forecast", "--config", str(config), "--run-dir", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model"] == "linear" and saved["lookback"] == 5
    assert dataclasses.is_dataclass(load_config(config).forecast)


def test_backtest_walks_forward_trades_with_costs_and_reports(tmp_path):
    run_dir = tmp_path / "bt"
    result = invoke(
        "backtest",
        "--models",
        "linear",
        "--refit-every",
        "252",
        "--test-fraction",
        "0.2",
        "--strategy",
        "long_flat",
        "--cost-bps",
        "10",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    )
    assert result.exit_code == 0, result.output
    assert "strategy statistics" in result.output
    stats = json.loads((run_dir / "backtest.json").read_text())["stats"]
    assert set(stats) == {"linear", "benchmark"}
    linear = stats["linear"]
    # 10 bps on a strategy that trades: the net return is below the gross one
    assert linear["net"]["total_cost"] > 0
    assert linear["net"]["annual_return"] < linear["gross"]["annual_return"]
    folds = pl.read_csv(run_dir / "folds.csv")
    assert folds["fold"].n_unique() >= 3 and set(folds["model"]) == {"linear", "naive"}
    predictions = pl.read_parquet(run_dir / "predictions.parquet")
    assert predictions.select("date", "ticker").is_unique().all()
    page = (run_dir / "report.html").read_text()
    assert "Strategy backtest" in page and "Walk-forward folds" in page
    assert (run_dir / "last_fold_linear" / "model.safetensors").exists()


def test_report_command_rewrites_a_runs_report(tmp_path):
    run_dir = tmp_path / "r"
    assert (
        invoke(
            "forecast",
            "--model",
            "linear",
            "--no-progress",
            "--no-report",
            "--run-dir",
            str(run_dir),
        ).exit_code
        == 0
    )
    assert not (run_dir / "report.html").exists()
    result = invoke("report", str(run_dir))
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").stat().st_size > 100_000  # plotly embedded


@pytest.mark.slow
def test_forecast_with_two_processes_writes_one_run_folder(tmp_path):
    deepfin = Path(sys.executable).parent / "deepfin"
    run_dir = tmp_path / "ddp"
    completed = subprocess.run(
        [
            str(deepfin),
            "forecast",
            "--model",
            "gru",
            "--epochs",
            "1",
            "--lookback",
            "10",
            "--nproc",
            "2",
            "--no-progress",
            "--no-report",
            "--run-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("test period: model vs baselines") == 1  # rank 0 speaks
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"gru", "linear", "naive", "always_up"}


def test_a_long_short_panel_book_is_judged_against_cash_and_factors_trade_too(tmp_path):
    data = wide_closes(tmp_path / "closes.csv", n_days=360)
    run_dir = tmp_path / "bt"
    result = invoke(
        "backtest", "--data", str(data), "--models", "linear", "--refit-every", "40",
        "--test-fraction", "0.3", "--strategy", "long_short", "--top-k", "2", "--no-progress",
        "--no-report", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    backtest = json.loads((run_dir / "backtest.json").read_text())
    assert "judged against cash" in backtest["description"]
    assert "context only" in backtest["description"]
    assert {"linear", *FACTORS, "benchmark"} == set(backtest["stats"])


def test_compare_without_baselines_still_shows_them_and_a_verdict(tmp_path):
    data = wide_closes(tmp_path / "closes.csv", n_days=500)
    result = invoke(
        "compare", "--data", str(data), "--models", "linear", "--no-progress", "--no-report",
        "--run-dir", str(tmp_path / "cmp"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    board = pl.read_csv(tmp_path / "cmp" / "leaderboard.csv")
    assert {"linear", "naive", "always_up", "reversal"} <= set(board["model"])
    assert "linear does not beat" in result.output or "linear has a lower" in result.output
    assert (board.filter(pl.col("model") == "linear")["n_tickers"] == 6).all()


def test_a_crash_is_counted_out_loud_and_predict_reads_a_wide_file(tmp_path):
    path = wide_closes(tmp_path / "closes.csv", n_days=500)
    frame = pl.read_csv(path)
    crashed = frame["TK0.L"].to_numpy().copy()
    crashed[490:] *= 0.4  # a -60 % day inside the scored test period
    frame.with_columns(pl.Series("TK0.L", crashed)).write_csv(path)
    run_dir = tmp_path / "run"
    result = invoke(
        "forecast", "--data", str(path), "--model", "linear", "--no-progress", "--no-report",
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 test forecast(s) whose outcome spans a one-day move" in result.output
    result = invoke("predict", "--run", str(run_dir), "--data", str(path), "--layout", "wide")
    assert result.exit_code == 0, result.output
    assert pl.read_csv(run_dir / "forecasts.csv")["ticker"].n_unique() == 6


def test_backtest_checks_outcomes_before_training_and_takes_the_bound(tmp_path):
    data = wide_closes(tmp_path / "wild.csv", scale=1.0)
    args = ["backtest", "--data", str(data), "--models", "linear", "--top-k", "2",
            "--strategy", "long_flat", "--no-progress", "--no-report"]  # fmt: skip
    result = invoke(*args, "--run-dir", str(tmp_path / "a"))
    assert result.exit_code == 2 and "--max-abs-log-return" in result.output
    assert not (tmp_path / "a" / "predictions.parquet").exists()
    result = invoke(*args, "--max-abs-log-return", "9", "--run-dir", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output


def test_doctor_says_what_is_installed_and_whether_the_kernels_are_built(monkeypatch):
    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    for text in ("torch", "polars", "fused LSTM/GRU kernels", "compiler", "device", "threads"):
        assert text in result.output
    monkeypatch.setenv("DEEPFIN_FUSED_RNN", "0")
    assert "switched off" in invoke("doctor").output


def test_a_path_with_brackets_and_spaces_is_read_and_printed_as_written(tmp_path):
    folder = tmp_path / "[draft] my data"
    folder.mkdir()
    data = wide_closes(folder / "closes [v2].csv")
    run_dir = folder / "run [1]"
    result = invoke(
        "forecast", "--data", str(data), "--model", "linear", "--no-progress", "--no-report",
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"on {data}" in result.output and f"run folder: {run_dir}" in result.output
    assert (run_dir / "metrics.json").exists()
    assert invoke("report", str(run_dir)).exit_code == 0


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--max-tickers", "-2", "max_tickers must be >= 0"),
        ("--embargo", "-7", "embargo must be >= 0 days, or -1"),
        ("--max-abs-log-return", "nan", "max_abs_log_return must be a number > 0"),
        ("--learning-rate", "inf", "invalid training settings ['learning_rate=inf']"),
        ("--device", "tpu", "unknown device 'tpu'"),
    ],
)
def test_values_that_would_be_silently_reinterpreted_are_refused(tmp_path, flag, value, says):
    # a linear model never touches the device or the learning rate: they are checked anyway
    for command in ("forecast", "backtest"):
        run_dir = tmp_path / command
        result = invoke(
            command, "--model", "linear", flag, value, "--no-progress", "--run-dir", str(run_dir)
        )
        assert result.exit_code == 2, result.output
        assert says in result.output and "Traceback" not in result.output
        assert not run_dir.exists()  # refused before anything was written


def test_compare_without_a_model_name_is_refused(tmp_path):
    result = invoke("compare", "--models", ",", "--run-dir", str(tmp_path / "board"))
    assert result.exit_code == 2, result.output
    assert "--models ',' names no model" in result.output
    assert not (tmp_path / "board").exists()


def test_a_training_that_diverges_is_one_error_line(tmp_path, monkeypatch):
    def diverge(*args, **kwargs):
        raise TrainingError("loss became non-finite at epoch 1; lower the learning_rate")

    monkeypatch.setattr("deepfin.cli.forecast.run_forecast", diverge)
    result = invoke("forecast", "--model", "lstm", "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert "error: loss became non-finite" in result.output
    assert "Traceback" not in result.output


def test_a_fault_shows_its_traceback_and_asks_to_be_reported(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("naive")  # not an error of the user's: deepfin's own

    monkeypatch.setattr("deepfin.cli.forecast.run_forecast", broken)
    result = invoke("forecast", "--model", "lstm", "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert "KeyError" in result.output and "please report it" in result.output


def test_ctrl_c_exits_130(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("deepfin.cli.forecast.run_forecast", interrupted)
    result = invoke("forecast", "--model", "lstm", "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 130
    assert "interrupted" in result.output


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (OSError(28, "No space left on device", "/runs/a/report.html"), "free some disk space"),
        (PermissionError(13, "Permission denied", "/runs/a/forecasts.csv"), "permissions"),
        (OSError(30, "Read-only file system", "/runs/a/run.json"), "read-only"),
    ],
)
def test_a_full_disk_or_a_read_only_folder_is_one_error_line(monkeypatch, error, advice):
    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr("deepfin.cli.forecast.build_report", fails)
    monkeypatch.setattr("deepfin.cli.forecast.read_task", lambda run_dir: "forecast")
    result = invoke("report", "/runs/a")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: {error.strerror}: {error.filename}" in result.output and advice in result.output
