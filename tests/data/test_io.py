"""read_prices: every input kind gives the same validated frame; bad input fails by name."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from deepfin.data.io import SINGLE_SERIES_TICKER, read_prices
from deepfin.errors import DataError, FormatError, InputFileError

DATES = [dt.date(2021, 3, day) for day in (1, 2, 3, 4, 5, 8)]


def expected_panel() -> pl.DataFrame:
    """The validated frame every source below should produce: sorted by ticker and date."""
    n_days = len(DATES)
    return pl.DataFrame(
        {
            "date": DATES * 2,
            "ticker": ["AAA"] * n_days + ["BBB"] * n_days,
            "open": [10.0 + i for i in range(n_days)] + [50.0 - i for i in range(n_days)],
            "high": [11.0 + i for i in range(n_days)] + [51.0 - i for i in range(n_days)],
            "low": [9.0 + i for i in range(n_days)] + [49.0 - i for i in range(n_days)],
            "close": [10.5 + i for i in range(n_days)] + [50.5 - i for i in range(n_days)],
            "volume": [1000.0 * (i + 1) for i in range(n_days)] + [7.0] * n_days,
        }
    )


def raw_panel() -> pl.DataFrame:
    """The same prices as a user might hand them over: sorted by date then ticker, int volume."""
    return expected_panel().sort("date", "ticker").with_columns(pl.col("volume").cast(pl.Int64))


def write_csv(path: Path, text: str) -> Path:
    """Write `text` to `path` and return the path."""
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- sources
def as_source(kind: str, raw: pl.DataFrame, folder: Path) -> object:
    """`raw` handed over as the given kind of source."""
    if kind in ("csv path", "csv str"):
        raw.write_csv(folder / "prices.csv")
        return folder / "prices.csv" if kind == "csv path" else str(folder / "prices.csv")
    if kind == "parquet":
        raw.write_parquet(folder / "prices.parquet")
        return folder / "prices.parquet"
    if kind == "polars string dates":
        return raw.with_columns(pl.col("date").cast(pl.String))
    return raw.to_pandas() if kind == "pandas" else raw


@pytest.mark.parametrize(
    "kind", ["csv path", "csv str", "parquet", "polars", "polars string dates", "pandas"]
)
def test_every_source_kind_gives_the_same_frame(kind: str, tmp_path: Path) -> None:
    frame = read_prices(as_source(kind, raw_panel(), tmp_path))
    assert frame.schema["date"] == pl.Date
    assert_frame_equal(frame, expected_panel())


def test_pandas_frame_with_a_date_index_like_arch() -> None:
    expected = expected_panel().filter(pl.col("ticker") == "AAA")
    # arch.data.sp500.load(): a 'Date' index and Yahoo column names, Adj Close included
    frame = pd.DataFrame(
        {
            "Open": expected["open"].to_list(),
            "High": expected["high"].to_list(),
            "Low": expected["low"].to_list(),
            "Close": [price * 2 for price in expected["close"].to_list()],  # raw, unadjusted
            "Adj Close": expected["close"].to_list(),
            "Volume": expected["volume"].cast(pl.Int64).to_list(),
        },
        index=pd.DatetimeIndex(pd.to_datetime(DATES), name="Date"),
    )
    result = read_prices(frame)
    assert_frame_equal(result, expected.with_columns(pl.lit(SINGLE_SERIES_TICKER).alias("ticker")))
    # an unnamed DatetimeIndex holds the dates just as well
    unnamed = frame.rename_axis(None)
    assert_frame_equal(read_prices(unnamed), result)


def test_intraday_timestamps_stay_timestamps() -> None:
    stamps = [dt.datetime(2021, 3, 1, 9, 30), dt.datetime(2021, 3, 1, 9, 31)]
    frame = read_prices(pl.DataFrame({"timestamp": stamps, "price": [1.0, 2.0]}))
    assert isinstance(frame.schema["date"], pl.Datetime)
    assert frame["date"].to_list() == stamps


# ---------------------------------------------------------------------------- columns
def test_aliases_prefer_adjusted_close_and_accept_date_name_symbol(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "yahoo.csv",
        "Date,Name,Close,Adj Close,Volume\n"
        "2021-03-01,AAA,20.0,10.0,5\n"
        "2021-03-02,AAA,22.0,11.0,6\n",
    )
    frame = read_prices(path)
    assert frame.columns == ["date", "ticker", "close", "volume"]
    assert frame["close"].to_list() == [10.0, 11.0]  # Adj Close, not Close
    assert frame["ticker"].to_list() == ["AAA", "AAA"]
    symbol = read_prices(pl.DataFrame({"Date": ["2021-03-01"], "symbol": ["X"], "Close": [3.0]}))
    assert symbol["ticker"].to_list() == ["X"]
    assert symbol["close"].to_list() == [3.0]


def test_without_a_ticker_column_the_data_is_one_series() -> None:
    frame = read_prices(pl.DataFrame({"date": ["2021-03-01", "2021-03-02"], "close": [1.0, 2.0]}))
    assert frame["ticker"].to_list() == [SINGLE_SERIES_TICKER] * 2


def test_explicit_columns_mapping_overrides_aliases() -> None:
    source = pl.DataFrame(
        {
            "when": ["2021-03-01", "2021-03-02"],
            "who": ["Z", "Z"],
            "close": [100.0, 101.0],  # an alias the mapping must beat
            "mid": [5.0, 6.0],
        }
    )
    frame = read_prices(source, columns={"date": "when", "ticker": "who", "close": "mid"})
    assert frame.columns == ["date", "ticker", "close"]
    assert frame["close"].to_list() == [5.0, 6.0]
    assert frame["date"].to_list() == DATES[:2]
    assert frame["ticker"].to_list() == ["Z", "Z"]


# ----------------------------------------------------------------------------- errors
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"no file at .*nope\.csv.*pass the path"):
        read_prices(tmp_path / "nope.csv")


def test_empty_file_and_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.csv is empty; it needs a header and .* row"):
        read_prices(write_csv(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match=r"empty \(no rows\); check the file"):
        read_prices(write_csv(tmp_path / "header.csv", "date,ticker,close\n"))


def test_unreadable_source_type() -> None:
    with pytest.raises(DataError, match=r"cannot read prices from a list; pass a CSV"):
        read_prices([1, 2, 3])


def test_missing_close_or_date_column_says_how_to_name_it() -> None:
    no_close = pl.DataFrame({"date": ["2021-03-01"], "bid": [1.0]})
    with pytest.raises(DataError, match=r"no close price column .*columns=\{'close'"):
        read_prices(no_close)
    no_date = pl.DataFrame({"when": ["2021-03-01"], "close": [1.0]})
    with pytest.raises(DataError, match=r"no date column .*'when'.*columns=\{'date'"):
        read_prices(no_date)


def test_columns_mapping_errors_name_the_role_or_column() -> None:
    source = pl.DataFrame({"date": ["2021-03-01"], "close": [1.0]})
    with pytest.raises(DataError, match=r"unknown column role\(s\) \['price'\]; the roles are"):
        read_prices(source, columns={"price": "close"})
    with pytest.raises(DataError, match=r"\['Last'\] named in columns= are not in the data"):
        read_prices(source, columns={"close": "Last"})


def test_non_numeric_close_names_ticker_and_date(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        "date,ticker,close\n2021-03-01,AAA,1.5\n2021-03-02,AAA,n/a?\n2021-03-03,AAA,1.7\n",
    )
    with pytest.raises(DataError, match=r"'close' is not numeric.*'n/a\?' \(AAA, 2021-03-02\)"):
        read_prices(path)


@pytest.mark.parametrize(
    ("dates", "shown"),
    [
        (["2021-03-01", "2021-13-45"], "2021-13-45"),  # one impossible date
        (["2021-03-01", "03/02/2021"], "03/02/2021"),  # a second format
        (["yesterday", "today"], "yesterday"),  # nothing parses at all
    ],
)
def test_unparsable_dates(dates: list[str], shown: str) -> None:
    source = pl.DataFrame({"date": dates, "close": [1.0, 2.0]})
    with pytest.raises(DataError, match=rf"{shown}.*could not be parsed|parsed, e.g. '{shown}'"):
        read_prices(source)
    with pytest.raises(DataError, match=r"use ISO dates"):
        read_prices(source)


def test_missing_dates_and_wrong_date_type() -> None:
    with pytest.raises(DataError, match=r"1 row\(s\) have no date; remove them"):
        read_prices(pl.DataFrame({"date": ["2021-03-01", None], "close": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"date column has type .*dates or ISO strings"):
        read_prices(pl.DataFrame({"date": [1.5, 2.5], "close": [1.0, 2.0]}))


def test_duplicate_dates_within_a_ticker() -> None:
    source = raw_panel().vstack(raw_panel().filter(pl.col("ticker") == "BBB").head(1))
    source = source.sort("ticker", "date")
    with pytest.raises(DataError, match=r"duplicate date.*BBB on 2021-03-01; keep one row"):
        read_prices(source)


def test_unsorted_dates_within_a_ticker() -> None:
    aaa = expected_panel().filter(pl.col("ticker") == "AAA")
    swapped = pl.concat([aaa[[0, 2, 1]], aaa[3:]])
    with pytest.raises(DataError, match=r"AAA are not increasing: 2021-03-02 follows 2021-03-03"):
        read_prices(swapped)
    with pytest.raises(DataError, match=r"sort the data by ticker and date"):
        read_prices(swapped)


def test_long_panel_sorted_by_date_then_ticker_is_fine() -> None:
    assert_frame_equal(read_prices(raw_panel()), expected_panel())


@pytest.mark.parametrize("bad_close", [0.0, -3.0])
def test_non_positive_close(bad_close: float) -> None:
    source = expected_panel().with_columns(
        pl.when((pl.col("ticker") == "BBB") & (pl.col("date") == DATES[2]))
        .then(bad_close)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    with pytest.raises(DataError, match=rf"non-positive close.*BBB on 2021-03-03 \({bad_close}\)"):
        read_prices(source)


# ------------------------------------------------------------------------- NaN policy
def with_missing_close(ticker: str, rows: list[int], *, as_nan: bool = False) -> pl.DataFrame:
    """The panel with `ticker`'s close missing (null, or NaN) at the given row positions."""
    frame = expected_panel().with_columns(pl.int_range(pl.len()).over("ticker").alias("row"))
    hole = (pl.col("ticker") == ticker) & pl.col("row").is_in(rows)
    missing = pl.lit(float("nan")) if as_nan else pl.lit(None, pl.Float64)
    return frame.with_columns(pl.when(hole).then(missing).otherwise(pl.col("close")).alias("close"))


@pytest.mark.parametrize("as_nan", [False, True])
def test_short_gaps_are_forward_filled(as_nan: bool) -> None:
    source = with_missing_close("AAA", [2, 3], as_nan=as_nan).drop("row")
    frame = read_prices(source, ffill_limit=2)
    aaa = frame.filter(pl.col("ticker") == "AAA")["close"].to_list()
    assert aaa[1:4] == [aaa[1]] * 3  # rows 2 and 3 carry row 1's close
    assert frame.height == expected_panel().height
    assert frame["close"].null_count() == 0 and not frame["close"].is_nan().any()


def test_gap_longer_than_the_limit_drops_that_ticker_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = with_missing_close("AAA", [1, 2, 3]).drop("row")
    with caplog.at_level(logging.WARNING, logger="deepfin.data.io"):
        frame = read_prices(source, ffill_limit=2)
    assert frame["ticker"].unique().to_list() == ["BBB"]
    assert_frame_equal(frame, expected_panel().filter(pl.col("ticker") == "BBB"))
    assert "dropping 1 ticker(s)" in caplog.text
    assert "limit 2 rows" in caplog.text and "AAA" in caplog.text


def test_leading_gap_drops_the_rows_not_the_ticker() -> None:
    source = with_missing_close("BBB", [0, 1]).drop("row")
    frame = read_prices(source)
    assert sorted(frame["ticker"].unique().to_list()) == ["AAA", "BBB"]
    bbb_dates = source.filter(pl.col("ticker") == "BBB")["date"].to_list()
    kept = frame.filter(pl.col("ticker") == "BBB")["date"].to_list()
    assert [str(d) for d in kept] == [str(d) for d in bbb_dates[2:]]


def test_every_ticker_unfillable_is_an_error() -> None:
    source = with_missing_close("AAA", [1, 2, 3]).drop("row")
    source = source.with_columns(
        pl.when(pl.col("ticker") == "BBB").then(None).otherwise(pl.col("volume")).alias("volume")
    )
    with pytest.raises(DataError, match=r"every ticker .* raise ffill_limit \(now 2\)"):
        read_prices(source, ffill_limit=2)


def wide_csv(path: Path, n_days: int = 120) -> Path:
    """Closes as most vendors export them: a date column and one column per ticker."""
    rng = np.random.default_rng(0)
    dates = [dt.date(2021, 1, 4) + dt.timedelta(days=i) for i in range(n_days)]
    columns = {"Date": [d.isoformat() for d in dates]}
    for ticker in ("AAL.L", "BP.L", "HSBA.L"):
        columns[ticker] = list(20 * np.exp(np.cumsum(0.01 * rng.standard_normal(n_days))))
    frame = pl.DataFrame(columns)
    # a ticker listed late (leading gap) and a one-day hole
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 10).then(None).otherwise(pl.col("BP.L")).alias("BP.L"),
        pl.when(pl.int_range(pl.len()) == 50)
        .then(None)
        .otherwise(pl.col("HSBA.L"))
        .alias("HSBA.L"),
    )
    frame.write_csv(path)
    return path


def test_a_wide_file_of_closes_is_recognised_and_melted(tmp_path: Path) -> None:
    path = wide_csv(tmp_path / "closes.csv")
    frame = read_prices(path)
    assert frame["ticker"].unique().sort().to_list() == ["AAL.L", "BP.L", "HSBA.L"]
    assert set(frame.columns) == {"date", "ticker", "close"}
    counts = dict(frame.group_by("ticker").len().iter_rows())
    assert counts == {"AAL.L": 120, "BP.L": 110, "HSBA.L": 120}  # late listing, hole filled
    original = pl.read_csv(path)
    aal = frame.filter(pl.col("ticker") == "AAL.L")["close"].to_numpy()
    np.testing.assert_allclose(aal, original["AAL.L"].to_numpy())
    assert read_prices(path, layout="wide").equals(frame)


def test_layout_long_keeps_the_old_reading_and_says_how_to_read_a_wide_file(
    tmp_path: Path,
) -> None:
    path = wide_csv(tmp_path / "closes.csv")
    with pytest.raises(DataError, match=r"no close price column.*--layout wide"):
        read_prices(path, layout="long")
    one_column = pl.DataFrame({"date": ["2021-03-01", "2021-03-02"], "SPY": [1.0, 1.1]})
    assert read_prices(one_column, layout="wide")["ticker"].to_list() == ["SPY", "SPY"]
    with pytest.raises(DataError, match="unknown layout 'tall'"):
        read_prices(path, layout="tall")


def test_a_wide_file_with_a_non_numeric_cell_names_it(tmp_path: Path) -> None:
    path = tmp_path / "closes.csv"
    path.write_text("Date,AAA,BBB\n2021-01-04,1.0,2.0\n2021-01-05,n/a,2.1\n")
    assert not _looks_wide_for(path)  # a text column is not taken for closes unasked
    with pytest.raises(DataError, match=r"'close' is not numeric.*'n/a'.*AAA"):
        read_prices(path, layout="wide")


def _looks_wide_for(path: Path) -> bool:
    try:
        read_prices(path)
    except DataError:
        return False
    return True


def test_wide_files_from_pandas_and_with_tickers_spelled_like_price_fields(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dates = pd.date_range("2021-01-04", periods=30, freq="B")
    closes = pd.DataFrame(
        20 * np.exp(np.cumsum(0.01 * rng.standard_normal((30, 5)), axis=0)),
        index=dates,
        columns=["LOW", "DAY", "KO", "PG", "XOM"],  # Lowe's, Dayforce spell price fields
    )
    closes.to_csv(tmp_path / "index.csv")  # the date index gets an empty header
    closes.to_parquet(tmp_path / "index.parquet")  # ... or __index_level_0__
    for name in ("index.csv", "index.parquet"):
        frame = read_prices(tmp_path / name)
        assert frame["ticker"].unique().sort().to_list() == ["DAY", "KO", "LOW", "PG", "XOM"]
    renamed = closes.rename_axis("Dt").reset_index()
    renamed.to_csv(tmp_path / "dt.csv", index=False)
    frame = read_prices(tmp_path / "dt.csv", columns={"date": "Dt"})
    assert frame.height == 150


def test_a_long_file_read_as_wide_is_refused_and_one_series_beside_others_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long = pl.DataFrame({"date": ["2021-01-04"], "close": [1.0], "AAA": [2.0], "BBB": [3.0]})
    with pytest.raises(DataError, match=r"column\(s\) \['close'\].*--layout long"):
        read_prices(long, layout="wide")
    with caplog.at_level(logging.WARNING, logger="deepfin.data.io"):
        read_prices(long)
    assert "ignoring 2 other numeric column(s) (AAA, BBB)" in caplog.text
    assert "--layout wide" in caplog.text


def test_a_delisted_ticker_ends_with_its_last_close_instead_of_being_dropped() -> None:
    frame = pl.DataFrame(
        {
            "Date": [f"2021-01-{day:02d}" for day in range(4, 24)],
            "STAYS": [10.0 + i for i in range(20)],
            "GOES": [5.0 + i for i in range(8)] + [None] * 12,  # delisted after 8 days
        }
    )
    prices = read_prices(frame)
    counts = dict(prices.group_by("ticker").len().iter_rows())
    assert counts == {"STAYS": 20, "GOES": 8}


def test_semicolons_and_decimal_commas_are_detected(tmp_path: Path) -> None:
    european = expected_panel().with_columns(
        pl.col(pl.Float64).cast(pl.String).str.replace(r"\.", ",")
    )
    path = tmp_path / "prices.csv"
    european.write_csv(path, separator=";")
    assert_frame_equal(read_prices(path), expected_panel())
    tabs = tmp_path / "prices.tsv"
    expected_panel().write_csv(tabs, separator="\t")
    assert_frame_equal(read_prices(tabs), expected_panel())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04" + bytes(200), r"is an Excel workbook \(\.xlsx\) or a zip archive"),
        (b"\xd0\xcf\x11\xe0" + bytes(200), r"Excel 97-2003 workbook"),
    ],
)
def test_a_workbook_named_csv_is_named_for_what_it_is(tmp_path, content, message) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message):
        read_prices(path)


@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
def test_a_broken_gzip_file_is_a_format_error(tmp_path, cut) -> None:
    import gzip

    plain = tmp_path / "prices.csv"
    pl.concat([expected_panel()] * 200).with_columns(
        pl.col("date").cast(pl.String) + pl.int_range(pl.len()).cast(pl.String)
    ).write_csv(plain)
    packed = gzip.compress(plain.read_bytes())
    broken = packed[: len(packed) // 2] if cut == "truncated" else packed[:30] + bytes(300)
    path = tmp_path / "prices.csv.gz"
    path.write_bytes(broken)
    with pytest.raises(FormatError, match=r"prices\.csv\.gz.*(truncated or corrupt|CSV)"):
        read_prices(path)


def test_a_folder_or_a_bracketed_path(tmp_path) -> None:
    with pytest.raises(InputFileError, match="is a folder"):
        read_prices(tmp_path)
    draft = tmp_path / "[draft] prices.csv"
    raw_panel().write_csv(draft)
    assert_frame_equal(read_prices(draft), expected_panel())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("close", float("inf"), "1 infinite close"),
        ("close", 1e300, "1 above 1e\\+15 close"),
        ("volume", float("inf"), "1 infinite volume"),
        ("volume", -5.0, "1 negative volume"),
        ("high", 0.0, "1 non-positive high"),
    ],
)
def test_impossible_values_are_refused(field, value, message) -> None:
    frame = expected_panel().with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(value).otherwise(pl.col(field)).alias(field)
    )
    with pytest.raises(DataError, match=message):
        read_prices(frame)


def test_an_empty_close_column_says_so() -> None:
    frame = expected_panel().with_columns(pl.lit(float("nan")).alias("close"))
    with pytest.raises(DataError, match="the close column holds no numbers"):
        read_prices(frame)


def test_a_space_separated_file_without_a_header_is_named(tmp_path) -> None:
    path = tmp_path / "german.data"
    path.write_text("A11 6 A34 A43 1169 1\nA12 48 A32 A43 5951 2\n")
    with pytest.raises(FormatError, match="single column with spaces in its header") as caught:
        read_prices(path)
    assert "1169" not in str(caught.value)  # a first row may be an applicant's: never echoed
