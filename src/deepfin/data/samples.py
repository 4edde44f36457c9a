"""Built-in real data sets that install with the package, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import polars as pl

from deepfin.data.io import read_prices
from deepfin.errors import DataError


@dataclass(frozen=True)
class Sample:
    """A built-in data set: where it comes from and how to load it."""

    name: str
    description: str
    source: str
    load_pandas: Callable[[], pd.DataFrame]


def _arch_loader(module_name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from arch.data import nasdaq, sp500

        module = {"sp500": sp500, "nasdaq": nasdaq}[module_name]
        return module.load()

    return load


SAMPLES: dict[str, Sample] = {
    "sp500": Sample(
        name="sp500",
        description="S&P 500 index, daily OHLCV and adjusted close, 1999-01-04 to 2018-12-31",
        source="arch package, arch.data.sp500 (Yahoo Finance ^GSPC)",
        load_pandas=_arch_loader("sp500"),
    ),
    "nasdaq": Sample(
        name="nasdaq",
        description="NASDAQ Composite, daily OHLCV and adjusted close, 1999-01-04 to 2018-12-31",
        source="arch package, arch.data.nasdaq (Yahoo Finance ^IXIC)",
        load_pandas=_arch_loader("nasdaq"),
    ),
}


def load_sample(name: str) -> pl.DataFrame:
    """Load a built-in data set as a validated long price frame."""
    if name not in SAMPLES:
        raise DataError(f"no built-in data set '{name}'; choose one of {sorted(SAMPLES)}")
    frame = SAMPLES[name].load_pandas()
    return read_prices(frame).with_columns(pl.lit(name).alias("ticker"))


def load_prices(
    source: str,
    *,
    columns: dict[str, str] | None = None,
    layout: str = "auto",
    ffill_limit: int = 5,
) -> pl.DataFrame:
    """Load a built-in data set by name, or a file by path."""
    if source in SAMPLES:
        return load_sample(source)
    return read_prices(source, columns=columns, layout=layout, ffill_limit=ffill_limit)
