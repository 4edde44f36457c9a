"""The model a VaR run keeps: from the returns up to day t it forecasts what the walk-forward did
at origin t with the same parameters; its run folder opens with load_run, and bad returns or a
tampered folder are refused with the reason."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from deepfin import load_run
from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import DataError, RunFolderError
from deepfin.models.risk.garch import GARCHVolatility, GJRGARCHConfig
from deepfin.tasks.risk.config import load_var_config
from deepfin.tasks.risk.pipeline import run_var
from deepfin.tasks.risk.var import var_walk_forward
from deepfin.tasks.risk.var_model import MIN_RETURNS, VarModel, returns_of_closes
from tests.tasks.risk.test_var import path  # noqa: F401  (the simulated GJR-GARCH-t path)

LEVELS = (0.99, 0.975)
METHODS = ("historical", "garch_t", "garch_normal", "fhs")


def test_the_kept_model_forecasts_what_the_walk_forward_did(path) -> None:  # noqa: F811
    history, _ = path
    start, stop = 3000, 3010
    walked = var_walk_forward(history, [start], stop, levels=LEVELS, methods=METHODS)
    coefficients = {}
    for errors in ("t", "normal"):
        model = GARCHVolatility(GJRGARCHConfig(distribution=errors))
        model.fit(history, end=start - 1, horizon=1)
        coefficients[errors] = model.coefficients_.tolist()
    kept = VarModel(METHODS, LEVELS, 1, coefficients)
    for origin in (start, start + 5, stop):
        # the series up to the origin only, as a caller of the service would send it
        served = kept.forecast(history.returns[: origin + 1])
        for method in METHODS:
            for level in LEVELS:
                row = served.filter((pl.col("method") == method) & (pl.col("level") == level))
                tail = walked[method][level]
                # FHS's residual tail reads up to the origin here, up to the fold's start there
                tolerance = 2e-2 if method == "fhs" else 1e-9
                np.testing.assert_allclose(row["var"][0], tail.var[origin - start], rtol=tolerance)
                np.testing.assert_allclose(row["es"][0], tail.es[origin - start], rtol=tolerance)
    # a year of returns is enough: the filter forgets its start within it
    recent = kept.forecast(history.returns[stop + 1 - MIN_RETURNS : stop + 1])
    garch = recent.filter(pl.col("method") == "garch_t")["var"].to_numpy()
    assert np.allclose(garch, [walked["garch_t"][lv].var[-1] for lv in LEVELS], rtol=1e-3)


def test_ten_day_tails_grow_with_the_horizon(path) -> None:  # noqa: F811
    history, _ = path
    one = VarModel.fit(history, methods=METHODS, levels=(0.99,), horizon=1)
    ten = VarModel(one.methods, one.levels, 10, one.coefficients)
    returns = history.returns[-600:]
    daily, tenfold = one.forecast(returns), ten.forecast(returns)
    ratio = tenfold["var"].to_numpy() / daily["var"].to_numpy()
    assert ((ratio > 1.5) & (ratio < 5)).all(), ratio  # near sqrt(10): 3.16
    assert (tenfold["es"] >= tenfold["var"]).all()


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        (np.full(100, 0.01), f"at least {MIN_RETURNS} daily returns"),
        (np.r_[np.full(300, 0.01), np.nan], "finite"),
        (np.r_[np.full(300, 0.01), 2.5], "not percent"),
        (np.zeros(300), "never moves"),
    ],
)
def test_unusable_returns_are_refused(returns, message) -> None:
    model = VarModel(("historical",), (0.99,), 1, {})
    with pytest.raises(DataError, match=message):
        model.forecast(returns)
    with pytest.raises(DataError, match="positive"):
        returns_of_closes([100.0, 101.0, -1.0])
    np.testing.assert_allclose(returns_of_closes([100.0, 110.0]), [np.log(1.1)])


def short_var_run(folder):
    """A VaR run of the built-in S&P 500 over its last half year, by three methods (seconds)."""
    config = load_var_config(
        overrides={
            "walk_forward.test_start": "2018-06-01",
            "walk_forward.refit_every": 126,
            "var.methods": ["historical", "garch_t", "fhs"],
            "training.progress": False,
        }
    )
    run_var(config, run_dir=folder)
    return folder


@pytest.fixture(scope="module")
def var_run(tmp_path_factory):
    return short_var_run(tmp_path_factory.mktemp("var") / "run")


def test_a_var_run_folder_opens_with_load_run(var_run) -> None:
    model = load_run(var_run)
    assert isinstance(model, VarModel)
    assert model.methods == ("historical", "garch_t", "fhs")
    assert model.fitted_through == "2018-12-31" and model.series == "sp500"
    assert model.metrics_["backtests"]
    from deepfin.data.samples import load_prices

    closes = load_prices("sp500")["close"].to_numpy()
    tails = model.forecast(returns_of_closes(closes[-400:]))
    assert tails.height == 6 and (tails["es"] >= tails["var"]).all()
    # the last day's forecast in the predictions is of the same order (a year's refit apart)
    last = pl.read_parquet(var_run / "predictions.parquet").tail(1)
    garch = tails.filter((pl.col("method") == "garch_t") & (pl.col("level") == 0.99))["var"][0]
    assert 0.5 < garch / last["garch_t_var_0.99"][0] < 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda kept: kept["coefficients"]["t"].pop(), "6 finite numbers"),
        (lambda kept: kept.update(methods=["montecarlo"]), "unknown methods"),
        (lambda kept: kept.update(levels=[99.0]), "confidences"),
        (lambda kept: kept.update(horizon="ten"), "horizon"),
    ],
)
def test_a_tampered_model_is_refused(var_run, tmp_path, change, message) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(var_run, copy)
    saved = json.loads((copy / "config.json").read_text())
    change(saved["model"])
    (copy / "config.json").write_text(json.dumps(saved))
    with pytest.raises(RunFolderError, match=message):
        load_run(copy)


def test_runs_without_a_model_say_why(var_run, tmp_path) -> None:
    import shutil

    copy = tmp_path / "nets"
    shutil.copytree(var_run, copy)
    saved = json.loads((copy / "config.json").read_text())
    del saved["model"]
    (copy / "config.json").write_text(json.dumps(saved))
    with pytest.raises(RunFolderError, match="keeps no model"):
        load_run(copy)
    del saved["var"]
    (copy / "config.json").write_text(json.dumps(saved))
    with pytest.raises(RunFolderError, match="volatility backtest"):
        load_run(copy)
    assert VarModel.fit(VolatilityHistory(np.ones(10), np.ones(10)), methods=("fz0",),
                        levels=(0.99,), horizon=1) is None  # fmt: skip
