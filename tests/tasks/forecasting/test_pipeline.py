"""Runs from a config: the data section reaches the reader."""

from __future__ import annotations

import numpy as np
import polars as pl

from deepfin.config import DataConfig
from deepfin.tasks.forecasting.pipeline import load_run_data
from tests.conftest import price_frame


def test_the_forward_fill_limit_of_the_config_is_the_one_applied(tmp_path):
    rng = np.random.default_rng(0)
    gappy = price_frame(0.01 * rng.standard_normal(60), ticker="GAP")
    gappy = gappy.with_columns(
        pl.when(pl.int_range(pl.len()).is_between(20, 22)).then(None).otherwise(pl.col("close"))
        .alias("close")
    )  # fmt: skip
    steady = price_frame(0.01 * rng.standard_normal(60), ticker="OK")
    path = tmp_path / "prices.csv"
    pl.concat([gappy, steady]).write_csv(path)
    loose = load_run_data(DataConfig(source=str(path), ffill_limit=5))
    strict = load_run_data(DataConfig(source=str(path), ffill_limit=2))
    assert loose["ticker"].unique().sort().to_list() == ["GAP", "OK"]
    assert strict["ticker"].unique().to_list() == ["OK"]  # a 3-row gap is longer than 2
