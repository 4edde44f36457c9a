"""Wide price files: a date column and one column of closes per ticker, as vendors export."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import polars as pl

from deepfin.data.columns import PRICE_FIELDS, find_alias
from deepfin.errors import DataError

log = logging.getLogger(__name__)


def looks_wide(frame: pl.DataFrame, columns: Mapping[str, str]) -> bool:
    """A date column and only numeric columns that name no price field: one per ticker."""
    if set(columns) - {"date"}:
        return False  # the user named long-format roles
    date = columns.get("date") or find_alias(frame.columns, "date")
    others = [name for name in frame.columns if name != date]
    if date is None or len(others) < 2:
        return False  # one unnamed value column may be a close or a ticker: not guessed
    if find_alias(others, "close") or find_alias(others, "ticker"):
        return False  # a long file's columns
    # tickers such as LOW or DAY spell a price field; several such columns spell a long file
    # (date, open, high, low, volume) that lacks its close
    spelled = sum(any(find_alias([name], f) for f in PRICE_FIELDS) for name in others)
    if spelled >= 2 and 2 * spelled >= len(others):
        return False
    return all(frame.schema[name].is_numeric() for name in others)


def melt_wide(frame: pl.DataFrame, columns: Mapping[str, str], *, strict: bool) -> pl.DataFrame:
    """A date column and one column of closes per ticker, as a long (date, ticker, close) frame."""
    date = columns.get("date") or find_alias(frame.columns, "date")
    if date is None or date not in frame.columns:
        raise DataError(
            f"a wide price file needs a date column; none among {frame.columns[:10]}; "
            "name it with --column date=YourColumn"
        )
    tickers = [name for name in frame.columns if name != date]
    if not tickers:
        raise DataError("the wide price file has a date column but no ticker columns")
    clashing = [name for name in tickers if name.lower().strip() in ("ticker", "close", "date")]
    if clashing:
        raise DataError(
            f"a wide file has one column of closes per ticker, but this one has column(s) "
            f"{clashing}: it looks like a long file (a row per ticker and date); "
            "read it with --layout long (layout='long')"
        )
    log.info("wide layout: %d ticker column(s) of closes beside %r", len(tickers), date)
    # string values under an explicit layout, so a non-numeric cell is reported by name later
    value_type = pl.String if strict else pl.Float64
    long = (
        frame.with_columns(pl.col(tickers).cast(value_type))
        .unpivot(index=date, on=tickers, variable_name="ticker", value_name="close")
        .rename({date: "date"})
        .with_row_index("row")
    )
    # empty cells after a ticker's last close mean it stopped trading (delisted, merged):
    # no rows, rather than a gap that would drop the ticker and bias the panel to survivors
    last = pl.col("row").filter(pl.col("close").is_not_null()).max().over("ticker")
    return long.filter(pl.col("row") <= last).drop("row")
