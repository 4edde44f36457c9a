"""`deepfin risk volatility` end to end: walk-forward forecasts of the risk desk's models and a
network on a simulated GARCH series and on the built-in S&P 500, their scores and bad input."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from deepfin.cli import app
from deepfin.data.volatility import forward_mean
from deepfin.errors import RunFolderError
from deepfin.runs.load import load_run
from deepfin.tasks.risk.config import load_volatility_config
from deepfin.tasks.risk.volatility import read_series, volatility_walk_forward

runner = CliRunner()
SMALL = (
    "--refit-every", "250", "--val-days", "150", "--lookback", "10", "--epochs", "2",
    "--warm-start-epochs", "1", "--no-progress",
)  # fmt: skip


def invoke(*args: str):
    return runner.invoke(app, ["risk", "volatility", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def garch_csv(tmp_path_factory: pytest.TempPathFactory):
    """Closes of a GJR-GARCH-t path, 2000 business days from 2010 (a known volatility process)."""
    from arch import arch_model
    from arch.univariate import StudentsT

    model = arch_model(None, mean="Zero", vol="GARCH", p=1, o=1, q=1, dist="studentst")
    model.distribution = StudentsT(seed=4)  # arch's draws, seeded
    simulated = model.simulate([0.02, 0.03, 0.09, 0.9, 7.0], 2000, burn=500)
    returns = simulated["data"].to_numpy() / 100
    dates = pl.date_range(dt.date(2010, 1, 1), dt.date(2020, 1, 1), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)[:2000]
    path = tmp_path_factory.mktemp("risk") / "garch.csv"
    pl.DataFrame({"date": dates, "close": 100 * np.exp(np.cumsum(returns))}).write_csv(path)
    TRUE_VARIANCE[path] = simulated["volatility"].to_numpy()[1:] ** 2 / 1e4  # of return 1..
    return path


TRUE_VARIANCE: dict[object, np.ndarray] = {}


def test_walk_forward_forecasts_line_up_with_their_outcomes(garch_csv) -> None:
    config = load_volatility_config(
        None,
        {
            "volatility.models": ("har", "gjr_garch", "ewma"),
            "volatility.horizon": 5,
            "walk_forward.test_start": "2015-01-01",
            "walk_forward.refit_every": 100,
        },
    )
    series = read_series(str(garch_csv), ticker="", estimator="close")
    result = volatility_walk_forward(series, config, progress=False)
    frame = result.predictions
    # each origin's realised value is the mean squared return of the next 5 days
    returns = np.diff(np.log(pl.read_csv(garch_csv)["close"].to_numpy()))
    position = {date: i for i, date in enumerate(series.dates)}
    rows = [position[date] for date in frame["date"].to_list()]
    expected = forward_mean(np.maximum(returns**2, series.history.floor), 5)[rows]
    assert frame["realised"].to_numpy() == pytest.approx(expected)
    assert frame["date"].min() >= dt.date(2015, 1, 1)
    assert frame["date"].is_sorted() and frame["date"].n_unique() == frame.height
    assert len(result.folds) == frame["fold"].n_unique()
    rows_ = result.metrics["models"]
    assert {"qlike_ratio_har", "dm_p_qlike_har", "mcs_p_value", "in_mcs"} <= set(rows_["ewma"])
    assert rows_["gjr_garch"]["qlike_ratio_har"] == pytest.approx(
        rows_["gjr_garch"]["qlike"] / rows_["har"]["qlike"]
    )


def test_gjr_garch_tracks_the_true_variance_of_its_own_process(garch_csv) -> None:
    config = load_volatility_config(
        None,
        {
            "volatility.models": ("gjr_garch", "har"),
            "walk_forward.test_start": "2015-01-01",
            "walk_forward.refit_every": 100,
        },
    )
    series = read_series(str(garch_csv), ticker="", estimator="close")
    frame = volatility_walk_forward(series, config, progress=False).predictions
    position = {date: i for i, date in enumerate(series.dates)}
    rows = np.array([position[date] for date in frame["date"].to_list()])
    truth = TRUE_VARIANCE[garch_csv][rows + 1]  # the variance of the day after each origin
    assert np.corrcoef(frame["gjr_garch"].to_numpy(), truth)[0, 1] > 0.95
    assert np.corrcoef(frame["har"].to_numpy(), truth)[0, 1] < 0.95


def test_cli_run_with_a_network_first(garch_csv, tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = invoke(
        "--data", str(garch_csv), "--models", "gru,har,gjr_garch", "--test-start", "2016-06-01",
        *SMALL, "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "QLIKE / HAR" in result.output
    assert re.search(r"gru (beats|does not beat) HAR", result.output)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == {"gru", "har", "gjr_garch"}
    assert metrics["verdict"].startswith("gru")
    predictions = pl.read_parquet(run_dir / "predictions.parquet")
    assert (predictions["gru"] > 0).all() and predictions["gru"].is_finite().all()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["task"] == "risk"
    with pytest.raises(RunFolderError, match="volatility backtest"):
        load_run(run_dir)


def test_built_in_sp500_with_range_estimator(tmp_path) -> None:
    result = invoke(
        "--models", "har,egarch,ewma", "--estimator", "parkinson", "--horizon", "22",
        "--test-start", "2018-01-02", "--refit-every", "63", "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["estimator"] == "parkinson"
    assert metrics["test"][0] >= "2018-01-02"
    assert metrics["models"]["har"]["n"] > 150


def test_close_only_data_falls_back_to_close_to_close(garch_csv, tmp_path) -> None:
    result = invoke(
        "--data", str(garch_csv), "--models", "har,ewma", "--estimator", "garman_klass",
        "--test-start", "2017-01-02", "--refit-every", "200", "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "close-to-close" in result.output
    assert "variance estimator used: close" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--models", "har,prophet"), "unknown volatility model"),
        (("--models", "har,har"), "named twice"),
        (("--horizon", "0"), "horizon must be 1 to 252"),
        (("--estimator", "yang_zhang"), "unknown variance estimator"),
        (("--test-start", "2030-01-01", "--models", "har"), "leaves no test day"),
        (("--test-start", "1999-02-01", "--models", "har"), "choose a test_start of 2000-03-13"),
        (("--window", "rolling"), "No such option"),
        (
            (
                "--test-start",
                "last year",
            ),
            "ISO date",
        ),
        (("--loss", "mae"), "unknown loss"),
    ],
)
def test_bad_settings_are_one_clear_error(args: tuple[str, ...], message: str, tmp_path) -> None:
    result = invoke(*args, "--run-dir", str(tmp_path / "r"))
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r" / "config.json").exists()


def test_a_panel_needs_a_ticker(tmp_path) -> None:
    dates = pl.date_range(dt.date(2020, 1, 1), dt.date(2020, 3, 1), "1d", eager=True)
    frame = pl.concat(
        [
            pl.DataFrame({"date": dates, "ticker": name, "close": np.linspace(10, 12, dates.len())})
            for name in ("AAA", "BBB")
        ]
    )
    path = tmp_path / "panel.csv"
    frame.write_csv(path)
    result = invoke("--data", str(path), "--models", "har", "--run-dir", str(tmp_path / "r"))
    assert result.exit_code != 0 and "name it with --ticker" in result.output
    result = invoke("--data", str(path), "--ticker", "CCC", "--run-dir", str(tmp_path / "r"))
    assert result.exit_code != 0 and "no ticker 'CCC'" in result.output


@pytest.mark.parametrize("loader", ["load_volatility_config", "load_var_config"])
def test_a_rolling_window_in_a_config_file_is_refused(loader: str, tmp_path) -> None:
    import deepfin.tasks.risk.config as risk_config
    from deepfin.errors import ConfigError

    path = tmp_path / "run.toml"
    path.write_text('[walk_forward]\nwindow = "rolling"\n')
    with pytest.raises(ConfigError, match="expanding"):
        getattr(risk_config, loader)(path)
