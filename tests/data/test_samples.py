"""Built-in samples: the real S&P 500 series loads as a validated frame; names are checked."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from deepfin.data.samples import SAMPLES, load_prices, load_sample
from deepfin.errors import DataError, InputFileError


def test_sp500_is_twenty_years_of_daily_prices() -> None:
    frame = load_sample("sp500")
    assert frame.height == 5031
    assert frame["date"].min() == dt.date(1999, 1, 4)
    assert frame["date"].max() == dt.date(2018, 12, 31)
    assert frame.schema["date"] == pl.Date
    assert frame["ticker"].unique().to_list() == ["sp500"]
    assert (frame["close"] > 0).all()
    assert frame["date"].is_sorted() and frame["date"].n_unique() == frame.height
    assert {"open", "high", "low", "close", "volume"} <= set(frame.columns)
    assert frame.null_count().sum_horizontal().item() == 0


def test_close_is_the_adjusted_close() -> None:
    raw = SAMPLES["sp500"].load_pandas()
    frame = load_sample("sp500")
    assert frame["close"].to_list() == raw["Adj Close"].astype(float).tolist()


def test_unknown_sample_lists_the_choices() -> None:
    with pytest.raises(
        DataError, match=r"no built-in data set 'ftse'; choose one of \['nasdaq', 'sp500'\]"
    ):
        load_sample("ftse")


def test_load_prices_takes_a_sample_name_or_a_path() -> None:
    assert load_prices("sp500").equals(load_sample("sp500"))
    with pytest.raises(InputFileError, match=r"no file at .*ftse"):
        load_prices("ftse")
