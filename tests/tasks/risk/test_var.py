"""One-day VaR/ES walking forward: on a GARCH path whose true tail is known the breach rates
are nominal, a forecast paired with the wrong day fails the same tests, and the table is whole."""

from __future__ import annotations

import numpy as np
import pytest

from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import ConfigError, DataError
from deepfin.metrics.risk import breaches, kupiec
from deepfin.tasks.risk.evaluation import backtest_table
from deepfin.tasks.risk.var import empirical_tail, student_t_tail, var_walk_forward

LEVELS = (0.99, 0.975)
CLASSICAL = ("historical", "garch_t", "fhs")


@pytest.fixture(scope="module")
def path() -> tuple[VolatilityHistory, np.ndarray]:
    """A GJR-GARCH-t path of 4000 days (in percent: omega .02, alpha .03, gamma .1, beta .88,
    nu 6) and its true conditional volatility."""
    from arch import arch_model
    from arch.univariate import StudentsT

    model = arch_model(None, mean="Zero", vol="GARCH", p=1, o=1, q=1, dist="studentst")
    model.distribution = StudentsT(seed=7)  # arch's draws, seeded
    simulated = model.simulate([0.02, 0.03, 0.1, 0.88, 6.0], 4000, burn=500)
    returns = simulated["data"].to_numpy() / 100
    return VolatilityHistory(returns, returns**2), simulated["volatility"].to_numpy() / 100


@pytest.fixture(scope="module")
def forecasts(path):
    history, _ = path
    starts = list(range(1500, 3999, 250))
    return var_walk_forward(history, starts, 3998, levels=LEVELS)


def test_tails_by_hand() -> None:
    sample = np.arange(1.0, 101.0) - 50.0  # -49 .. 50
    var, es = empirical_tail(sample, 0.95)
    assert var == pytest.approx(-np.quantile(sample, 0.05))
    assert es == pytest.approx(-sample[sample <= -var].mean())
    var_t, es_t = student_t_tail(0.99, 1e6)  # a t this wide is the normal
    assert var_t == pytest.approx(2.326348, abs=1e-4)
    assert es_t == pytest.approx(2.665214, abs=1e-4)


def test_breach_rates_are_nominal_and_a_misaligned_forecast_fails(path, forecasts) -> None:
    history, _ = path
    next_day = history.returns[1501:4000]  # the day each forecast is for
    for method in ("garch_t", "fhs"):
        for level in LEVELS:
            var = forecasts[method][level].var
            assert kupiec(breaches(next_day, var), level)["p_value"] > 0.01, (method, level)
            # paired with the day it was made on: that day's loss already raised it
            same_day = history.returns[1500:3999]
            assert kupiec(breaches(same_day, var), level)["p_value"] < 0.01, (method, level)


def test_garch_var_follows_the_true_volatility(path, forecasts) -> None:
    _, volatility = path
    truth = volatility[1501:4000]  # sigma of each forecast's day
    var = forecasts["garch_t"][0.99].var
    assert np.corrcoef(var, truth)[0, 1] > 0.97
    # historical simulation reacts slowly: it follows the true volatility far less
    assert np.corrcoef(forecasts["historical"][0.99].var, truth)[0, 1] < 0.8


def test_the_backtest_table_has_a_row_per_method_and_level(path, forecasts) -> None:
    history, _ = path
    table = backtest_table(history.returns[1501:4000], forecasts)
    assert table.height == len(CLASSICAL) * len(LEVELS)
    assert set(table["method"]) == set(CLASSICAL)
    at_99 = table.filter(table["level"] == 0.99)
    assert set(at_99["traffic_light"]) <= {"green", "yellow", "red"}
    assert table.filter(table["method"] == "fhs")["dm_p_fz0_fhs"].null_count() == len(LEVELS)
    garch = table.filter((table["method"] == "garch_t") & (table["level"] == 0.975)).row(
        0, named=True
    )
    assert garch["z2_p"] > 0.01  # the right model of the tail passes the ES test
    historical = table.filter(table["method"] == "historical")
    assert (historical["fz0"] > table.filter(table["method"] == "garch_t")["fz0"]).all()


def test_bad_settings(path) -> None:
    history, _ = path
    with pytest.raises(ConfigError, match="unknown VaR method"):
        var_walk_forward(history, [1500], 1600, levels=(0.99,), methods=("montecarlo",))
    with pytest.raises(ConfigError, match="confidence level"):
        var_walk_forward(history, [1500], 1600, levels=(99.0,))
    with pytest.raises(DataError, match="needs at least 250 days"):
        var_walk_forward(history, [100], 200, levels=(0.99,), methods=("historical",))


def test_cli_var_on_the_built_in_sp500(tmp_path) -> None:
    import json

    import polars as pl
    from typer.testing import CliRunner

    from deepfin.cli import app

    result = CliRunner().invoke(
        app,
        ["risk", "var", "--test-start", "2017-01-03", "--refit-every", "63",
         "--levels", "0.99,0.95", "--run-dir", str(tmp_path / "r")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Kupiec p" in result.output and "Basel zone" in result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert len(metrics["backtests"]) == 8  # 4 methods at 2 levels
    normal = [row for row in metrics["backtests"] if row["method"] == "garch_normal"]
    t_rows = [row for row in metrics["backtests"] if row["method"] == "garch_t"]
    # at 99% the normal's thinner tail breaches at least as often as the t's
    assert normal[0]["breaches"] >= t_rows[0]["breaches"]
    assert metrics["test"][0] >= "2017-01-03"
    frame = pl.read_parquet(tmp_path / "r" / "predictions.parquet")
    assert {"return", "fhs_var_0.99", "garch_t_es_0.95", "garch_normal_var_0.99"} <= set(
        frame.columns
    )
    assert (frame["garch_t_es_0.99"] >= frame["garch_t_var_0.99"]).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--levels", "1.5"), "confidence level"),
        (("--levels", "0.3"), "at least 0.5"),
        (("--level", "1.2"), "confidence level"),  # the singular spelling works too
        (("--levels", "ninety"), "levels"),
        (("--methods", "montecarlo"), "unknown VaR method"),
        (("--test-start", "2031-01-01"), "leaves no test day"),
    ],
)
def test_cli_var_bad_settings(args: tuple[str, ...], message: str, tmp_path) -> None:
    from typer.testing import CliRunner

    from deepfin.cli import app

    result = CliRunner().invoke(app, ["risk", "var", *args, "--run-dir", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r" / "config.json").exists()


def test_ten_day_tails_cover_ten_day_losses(path) -> None:
    history, _ = path
    starts = list(range(1500, 3989, 500))
    forecasts = var_walk_forward(history, starts, 3989, levels=(0.95,), horizon=10)
    sums = np.concatenate([[0.0], np.cumsum(history.returns)])
    origins = np.arange(1500, 3990)
    outcome = sums[origins + 11] - sums[origins + 1]  # the 10 days after each origin
    table = backtest_table(outcome, forecasts, horizon=10)
    assert set(table["days"]) == {249}  # every 10th origin: outcomes that do not overlap
    for method in ("garch_t", "fhs"):
        row = table.filter(table["method"] == method).row(0, named=True)
        assert row["kupiec_p"] > 0.01, row
    one_day = var_walk_forward(history, starts, 3989, levels=(0.95,), methods=("garch_t",))
    ratio = forecasts["garch_t"][0.95].var / one_day["garch_t"][0.95].var
    assert 2.0 < np.median(ratio) < 4.5  # about the square root of 10, as volatility reverts


def test_the_nets_forecast_one_day_only(path) -> None:
    history, _ = path
    with pytest.raises(ConfigError, match="one day's tail"):
        var_walk_forward(history, [1500], 1600, levels=(0.99,), methods=("fz0",), horizon=10)


def test_cli_ten_day_var(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from deepfin.cli import app

    result = CliRunner().invoke(
        app,
        ["risk", "var", "--horizon", "10", "--test-start", "2016-01-04", "--refit-every", "126",
         "--levels", "0.99", "--no-report", "--run-dir", str(tmp_path / "r")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "10-day VaR/ES" in result.output and "every 10th day" in result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["horizon"] == 10
    assert {row["days"] for row in metrics["backtests"]} == {75}  # 746 origins, every 10th
