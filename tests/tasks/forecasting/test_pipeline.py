"""Runs from a config: the data section reaches the reader, for files read whole or streamed."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepfin.config import DataConfig, ForecastConfig, RunConfig
from deepfin.errors import DataError
from deepfin.tasks.forecasting.pipeline import prepare_run
from tests.conftest import price_frame


def run_on(source: str, **data: object) -> RunConfig:
    forecast = ForecastConfig(model="linear", lookback=5, features=("log_return",))
    return RunConfig(data=DataConfig(source=source, **data), forecast=forecast)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_forward_fill_limit_of_the_config_is_the_one_applied(tmp_path, suffix):
    rng = np.random.default_rng(0)
    gappy = price_frame(0.01 * rng.standard_normal(60), ticker="GAP")
    gappy = gappy.with_columns(
        pl.when(pl.int_range(pl.len()).is_between(20, 22)).then(None).otherwise(pl.col("close"))
        .alias("close")
    )  # fmt: skip
    steady = price_frame(0.01 * rng.standard_normal(60), ticker="OK")
    path = tmp_path / f"prices{suffix}"
    prices = pl.concat([gappy, steady])
    prices.write_csv(path) if suffix == ".csv" else prices.write_parquet(path)
    _, loose = prepare_run(run_on(str(path), ffill_limit=5))
    _, strict = prepare_run(run_on(str(path), ffill_limit=2))
    assert loose.tickers == ["GAP", "OK"]
    assert strict.tickers == ["OK"]  # a 3-row gap is longer than 2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tickers_and_max_tickers_narrow_the_panel(tmp_path, suffix):
    rng = np.random.default_rng(1)
    names = ["AAA", "BBB", "CCC", "DDD"]
    prices = pl.concat(price_frame(0.01 * rng.standard_normal(80), ticker=n) for n in names)
    path = tmp_path / f"prices{suffix}"
    prices.write_csv(path) if suffix == ".csv" else prices.write_parquet(path)
    assert prepare_run(run_on(str(path), max_tickers=2))[1].tickers == ["AAA", "BBB"]
    assert prepare_run(run_on(str(path), tickers=("DDD", "BBB")))[1].tickers == ["BBB", "DDD"]
    with pytest.raises(DataError, match=r"ticker\(s\) \['ZZZ'\] are not in the data"):
        prepare_run(run_on(str(path), tickers=("ZZZ", "AAA")))


def test_default_features_follow_the_columns_a_streamed_file_has(tmp_path):
    rng = np.random.default_rng(2)
    closes = pl.concat(
        price_frame(0.01 * rng.standard_normal(80), ticker=n).select("date", "ticker", "close")
        for n in ("AAA", "BBB")
    ).rename({"close": "Adj Close", "ticker": "Symbol"})
    path = tmp_path / "closes.parquet"
    closes.write_parquet(path)
    config = RunConfig(data=DataConfig(source=str(path)))
    used, panel = prepare_run(config)
    assert used.forecast.features == ("log_return", "volatility_20", "rsi_14")  # no volume
    assert panel.tickers == ["AAA", "BBB"]
