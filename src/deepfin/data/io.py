"""Read price data from CSV, Parquet, pandas or polars into one validated long frame."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from deepfin.data.columns import COLUMN_ALIASES, NUMERIC_FIELDS, PRICE_FIELDS
from deepfin.data.files import read_table
from deepfin.data.wide import looks_wide, melt_wide
from deepfin.errors import DataError

log = logging.getLogger(__name__)

SINGLE_SERIES_TICKER = "series"
LAYOUTS = ("auto", "long", "wide")


PriceSource = str | Path | pl.DataFrame | Any  # Any: a pandas DataFrame (pandas is optional here)


def read_prices(
    source: PriceSource,
    *,
    columns: Mapping[str, str] | None = None,
    ffill_limit: int = 5,
    layout: str = "auto",
    whole: bool = True,
) -> pl.DataFrame:
    """Read and validate prices; return a long frame sorted by ticker and date.

    `whole=False`: the source is one chunk of a bigger one, which may lose all its tickers to
    unfillable gaps (the caller decides whether anything is left).

    `layout`: "long" (a row per ticker and date), "wide" (a date column and one column of
    closes per ticker, as most vendors export), or "auto" to tell them apart.
    """
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {list(LAYOUTS)}")
    raw = _load_frame(source)
    columns = dict(columns or {})
    if layout == "wide" or (layout == "auto" and looks_wide(raw, columns)):
        raw = melt_wide(raw, columns, strict=layout == "wide")
        columns.pop("date", None)  # the melted frame names it `date`
    frame = _standardise_columns(raw, columns)
    frame = _parse_dates(frame)
    frame = _cast_numeric(frame)
    _check_order(frame)
    if whole:
        _check_not_empty(frame)
    frame = _fill_missing(frame, ffill_limit=ffill_limit, whole=whole)
    _check_values(frame)
    if frame["ticker"].is_sorted():  # with dates increasing per ticker: sorted already
        return frame
    return frame.sort("ticker", "date", maintain_order=True)


def _load_frame(source: PriceSource) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        frame = source
    elif isinstance(source, str | Path):
        frame = _read_file(Path(source))
    elif type(source).__module__.startswith("pandas"):
        pandas_frame = source
        if _has_named_index(source):
            pandas_frame = source.reset_index()
        elif _has_date_index(source) and "date" not in source.columns:
            pandas_frame = source.reset_index(names="date")
        frame = pl.from_pandas(pandas_frame)
    else:
        raise DataError(
            f"cannot read prices from a {type(source).__name__}; "
            "pass a CSV or Parquet path, a polars DataFrame or a pandas DataFrame"
        )
    if frame.height == 0:
        raise DataError("the price data is empty (no rows); check the file or the filter")
    return frame


def _has_named_index(frame: Any) -> bool:
    # arch's and yfinance's frames keep the date in the index
    return frame.index.name is not None or "Date" in (frame.index.names or [])


def _has_date_index(frame: Any) -> bool:
    # an unnamed DatetimeIndex (e.g. from pd.date_range) still holds the dates
    return str(frame.index.dtype).startswith("datetime")


def _read_file(path: Path) -> pl.DataFrame:
    return read_table(path, "prices")


def _standardise_columns(frame: pl.DataFrame, columns: Mapping[str, str]) -> pl.DataFrame:
    unknown = set(columns) - set(PRICE_FIELDS)
    if unknown:
        raise DataError(
            f"unknown column role(s) {sorted(unknown)}; the roles are {list(PRICE_FIELDS)}"
        )
    missing_named = [name for name in columns.values() if name not in frame.columns]
    if missing_named:
        raise DataError(
            f"column(s) {missing_named} named in columns= are not in the data; "
            f"it has {frame.columns}"
        )
    lower = {name.lower().strip(): name for name in frame.columns}
    chosen: dict[str, str] = dict(columns)
    for field in PRICE_FIELDS:
        if field in chosen:
            continue
        for alias in COLUMN_ALIASES[field]:
            if alias in lower and lower[alias] not in chosen.values():
                chosen[field] = lower[alias]
                break
    if "close" not in chosen:
        raise DataError(
            f"no close price column among {frame.columns}; name it with "
            "columns={'close': 'YourColumn'} (CLI: --column close=YourColumn), or, if each "
            "column holds one ticker's closes, read it with layout='wide' (CLI: --layout wide)"
        )
    if "date" not in chosen:
        raise DataError(
            f"no date column among {frame.columns}; name it with "
            "columns={'date': 'YourColumn'} (CLI: --column date=YourColumn)"
        )
    out = frame.select([pl.col(source).alias(field) for field, source in chosen.items()])
    unused = [
        name
        for name in frame.columns
        if name not in chosen.values() and frame.schema[name].is_numeric()
    ]
    if "ticker" not in chosen and len(unused) >= 2:
        log.warning(
            "reading one series from %r and ignoring %d other numeric column(s) (%s); if each "
            "column holds one ticker's closes, read the file with --layout wide",
            chosen["close"],
            len(unused),
            ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else ""),
        )
    if "ticker" not in chosen:
        out = out.with_columns(pl.lit(SINGLE_SERIES_TICKER).alias("ticker"))
    ordered = [field for field in PRICE_FIELDS if field in out.columns]
    return out.select(ordered).with_columns(pl.col("ticker").cast(pl.String))


def _parse_dates(frame: pl.DataFrame) -> pl.DataFrame:
    dtype = frame.schema["date"]
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        parsed = frame["date"]
    elif dtype == pl.String:
        try:
            parsed = frame["date"].str.to_datetime(strict=False)
        except pl.exceptions.ComputeError as error:  # no format fits even the first date
            raise DataError(
                f"dates such as {frame['date'].drop_nulls().head(1).to_list()} could not be "
                "parsed; use ISO dates such as 2018-02-07"
            ) from error
        bad = frame.filter(parsed.is_null() & frame["date"].is_not_null())
        if bad.height:
            raise DataError(
                f"{bad.height} date(s) could not be parsed, e.g. {bad['date'][0]!r}; "
                "use ISO dates such as 2018-02-07"
            )
    else:
        raise DataError(f"the date column has type {dtype}; it must hold dates or ISO strings")
    if parsed.null_count():
        raise DataError(f"{parsed.null_count()} row(s) have no date; remove them")
    if isinstance(parsed.dtype, pl.Datetime) and (parsed.dt.truncate("1d") == parsed).all():
        parsed = parsed.dt.date()  # daily data stays calendar dates
    if dtype == pl.Date:
        return frame  # dates already
    return frame.with_columns(parsed.alias("date"))


def _cast_numeric(frame: pl.DataFrame) -> pl.DataFrame:
    casts = []
    for field in NUMERIC_FIELDS:
        if field not in frame.columns or frame.schema[field] == pl.Float64:
            continue
        column = frame[field]
        if column.dtype.is_numeric():
            casts.append(column.cast(pl.Float64))
            continue
        as_number = column.cast(pl.Float64, strict=False)
        bad = frame.filter(as_number.is_null() & column.is_not_null())
        if bad.height:
            example = str(bad[field][0])
            hint = (
                "; it looks like a decimal comma inside a comma-separated file: export the file "
                "with decimal points, or with ';' as the separator"
                if re.fullmatch(r"\s*-?\d+,\d+\s*", example)
                else ""
            )
            raise DataError(
                f"column '{field}' is not numeric: {bad.height} value(s) such as "
                f"{example!r} ({bad['ticker'][0]}, {bad['date'][0]}); fix or remove them{hint}"
            )
        casts.append(as_number)
    return frame.with_columns(casts) if casts else frame


def _check_not_empty(frame: pl.DataFrame) -> None:
    """Every price column holds numbers (an all-empty one is the wrong column)."""
    fields = [field for field in NUMERIC_FIELDS if field in frame.columns]
    empty = frame.select(pl.col(fields).fill_nan(None).null_count()).row(0)  # one pass
    for field, count in zip(fields, empty, strict=True):
        if count == frame.height:
            raise DataError(
                f"the {field} column holds no numbers (all {frame.height} values are empty or "
                f"NaN); name the right column with --column {field}=NAME"
            )


def _check_order(frame: pl.DataFrame) -> None:
    increasing = pl.col("date").diff().over("ticker") > pl.duration(days=0)
    if frame.select(increasing.all()).item():
        return  # in order, the usual case: skip finding and describing the first offender
    step = frame.select(
        "ticker",
        "date",
        pl.col("date").diff().over("ticker").alias("step"),
        pl.col("date").shift(1).over("ticker").alias("previous"),
    ).with_row_index("row")
    duplicated = step.filter(pl.col("step") == pl.duration(days=0))
    if duplicated.height:
        first = duplicated.row(0, named=True)
        raise DataError(
            f"{duplicated.height} duplicate date(s) within a ticker, first {first['ticker']} "
            f"on {first['date']}; keep one row per ticker and date"
        )
    backwards = step.filter(pl.col("step") < pl.duration(days=0))
    if backwards.height:
        first = backwards.row(0, named=True)
        raise DataError(
            f"dates of {first['ticker']} are not increasing: {first['date']} follows "
            f"{first['previous']} (row {first['row'] + 1}); sort the data by ticker and date"
        )


def _fill_missing(frame: pl.DataFrame, *, ffill_limit: int, whole: bool) -> pl.DataFrame:
    """Forward-fill gaps of up to `ffill_limit` rows per ticker; drop tickers with more.

    Leading rows that precede a ticker's first complete row cannot be filled and are dropped.
    """
    fields = [field for field in NUMERIC_FIELDS if field in frame.columns]
    missing = pl.any_horizontal(pl.col(fields).fill_nan(None).is_null()).any()
    if not frame.select(missing).item():
        return frame  # nothing missing, the usual case: skip the per-ticker passes below
    frame = frame.with_columns(pl.col(field).fill_nan(None) for field in fields)
    filled = frame.with_columns(
        pl.col(field).forward_fill(limit=ffill_limit).over("ticker") for field in fields
    )
    # rows before a ticker's first complete row have nothing to fill from: they go, the ticker stays
    complete = pl.all_horizontal(pl.col(fields).is_not_null())
    started = complete.cast(pl.Int32).cum_max().over("ticker").cast(pl.Boolean)
    leading = filled.filter(~started)
    if leading.height:
        log.info(
            "dropping %d leading row(s) with missing values in %d ticker(s)",
            leading.height,
            leading["ticker"].n_unique(),
        )
        filled = filled.filter(started)
    still_missing = filled.filter(pl.any_horizontal(pl.col(fields).is_null()))
    if still_missing.height:
        dropped = still_missing["ticker"].unique(maintain_order=True).to_list()
        log.warning(
            "dropping %d ticker(s) with missing values that forward-fill (limit %d rows) "
            "cannot fill: %s",
            len(dropped),
            ffill_limit,
            ", ".join(dropped[:20]) + (" ..." if len(dropped) > 20 else ""),
        )
        filled = filled.filter(~pl.col("ticker").is_in(dropped))
        if filled.height == 0 and whole:
            raise DataError(
                "every ticker has missing values that forward-fill cannot fill; "
                f"raise ffill_limit (now {ffill_limit}) or clean the data"
            )
    return filled


MAX_VALUE = 1e15  # no real price or volume comes near it: a unit or parsing error does


def _check_values(frame: pl.DataFrame) -> None:
    """Prices positive and volumes non-negative, all finite and of a believable size."""
    fields = [field for field in NUMERIC_FIELDS if field in frame.columns]
    checks: dict[tuple[str, str], pl.Expr] = {}
    for field in fields:
        column = pl.col(field)
        low = column < 0 if field == "volume" else column <= 0
        checks[(field, "infinite")] = column.is_infinite()
        checks[(field, f"above {MAX_VALUE:g}")] = column.is_finite() & (column.abs() > MAX_VALUE)
        checks[(field, "negative" if field == "volume" else "non-positive")] = low
    # every count in one pass; the rows are looked at only when one is not zero
    counts = frame.select(
        [condition.sum().alias(str(i)) for i, condition in enumerate(checks.values())]
    ).row(0)
    for ((field, what), condition), count in zip(checks.items(), counts, strict=True):
        if count:
            first = frame.filter(condition).row(0, named=True)
            raise DataError(
                f"{count} {what} {field} value(s), first {first['ticker']} on "
                f"{first['date']} ({first[field]}); "
                + (
                    "log returns need prices > 0"
                    if what == "non-positive"
                    else "fix or remove those rows (a unit or parsing error?)"
                )
            )
