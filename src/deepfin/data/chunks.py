"""Price sources read in chunks of whole tickers (Parquet streamed, anything else loaded once)
and collected into one PriceRows."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from deepfin.data.columns import find_alias
from deepfin.data.features import add_features, add_target
from deepfin.data.io import PriceSource, read_prices
from deepfin.data.rows import CHUNK_ROWS, PriceRows
from deepfin.errors import DataError, FormatError

T = TypeVar("T")


def streams(source: PriceSource, layout: str = "auto") -> bool:
    """Whether `source` is a long Parquet file, read batch by batch rather than whole."""
    if layout == "wide" or not isinstance(source, str | Path):
        return False
    path = Path(source)
    if not str(path).lower().endswith((".parquet", ".pq")) or not path.is_file():
        return False
    return find_alias(parquet_columns(path), "ticker") is not None


def parquet_columns(path: Path | str) -> list[str]:
    """The column names of a Parquet file, from its footer."""
    return _parquet_footer(path, lambda: pq.read_schema(path).names)


def count_rows(path: Path | str) -> int:
    """Rows of a Parquet file, from its metadata alone."""
    return _parquet_footer(path, lambda: int(pq.ParquetFile(path).metadata.num_rows))


def _parquet_footer(path: Path | str, read: Callable[[], T]) -> T:
    try:
        return read()
    except pa.ArrowException as error:
        raise FormatError(
            f"could not read {path} as Parquet ({error}); the file is truncated or is not "
            "Parquet: write or copy it again"
        ) from error


def read_chunks(
    source: PriceSource,
    *,
    columns: Mapping[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    layout: str = "auto",
    ffill_limit: int = 5,
) -> Iterator[pl.DataFrame]:
    """Validated frames of whole tickers, about `chunk_rows` rows each.

    A long Parquet file is streamed; CSV, wide files and in-memory frames are read whole, then
    cut at ticker boundaries.
    """
    if streams(source, layout):
        assert isinstance(source, str | Path)
        for chunk in _parquet_chunks(Path(source), columns or {}, chunk_rows):
            yield read_prices(
                chunk, columns=columns, ffill_limit=ffill_limit, layout="long", whole=False
            )
        return
    yield from cut_tickers(
        read_prices(source, columns=columns, layout=layout, ffill_limit=ffill_limit), chunk_rows
    )


def cut_tickers(frame: pl.DataFrame, chunk_rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """A validated frame in pieces of whole tickers, about `chunk_rows` rows each."""
    codes = frame["ticker"].rle_id().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    tickers_per_chunk = max(1, round(len(starts) * chunk_rows / max(frame.height, 1)))
    edges = [*starts[::tickers_per_chunk].tolist(), frame.height]
    for first, stop in itertools.pairwise(edges):
        yield frame[first:stop]


def _parquet_chunks(
    path: Path, columns: Mapping[str, str], chunk_rows: int
) -> Iterator[pl.DataFrame]:
    ticker = columns.get("ticker") or find_alias(parquet_columns(path), "ticker")
    assert ticker is not None  # streams() read it from the schema
    carry: pl.DataFrame | None = None
    for batch in _parquet_batches(path, chunk_rows):
        frame = batch if carry is None else pl.concat([carry, batch], how="vertical_relaxed")
        # the last ticker's rows may go on in the next batch: hold them back
        from_end = (frame[ticker] == frame[ticker][-1]).to_numpy()[::-1]
        cut = 0 if from_end.all() else frame.height - int(np.argmin(from_end))
        if cut == 0:  # one ticker fills the whole buffer: keep reading
            carry = frame
            continue
        carry = frame[cut:]
        yield frame[:cut]
    if carry is not None and carry.height:
        yield carry


def _parquet_batches(path: Path, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Row batches of a Parquet file in file order, without reading it whole.

    One slice at a time: polars' streaming `collect_batches` reads ahead of its consumer (225 MB
    held for a 5 M-row file) and pyarrow's `iter_batches` is 4x slower; a slice reads only the
    pages it needs (74 MB at most, as fast).
    """
    scan = pl.scan_parquet(path, glob=False)
    for offset in range(0, count_rows(path), chunk_rows):
        try:
            yield scan.slice(offset, chunk_rows).collect()
        except pl.exceptions.PolarsError as error:
            raise FormatError(
                f"could not read rows {offset:,}.. of {path} ({error}); the file is damaged: "
                "write or copy it again"
            ) from error


def collect_rows(
    source: PriceSource,
    *,
    features: tuple[str, ...],
    horizon: int,
    target: str = "log_return",
    max_abs_log_return: float = 0.4,
    columns: Mapping[str, str] | None = None,
    layout: str = "auto",
    ffill_limit: int = 5,
    tickers: tuple[str, ...] = (),
    max_tickers: int = 0,
    chunk_rows: int = CHUNK_ROWS,
) -> PriceRows:
    """Read, validate and featurize `source` chunk by chunk into one PriceRows.

    `tickers` keeps only those names; `max_tickers` the first N in file order (0: all).
    """
    if streams(source, layout):
        assert isinstance(source, str | Path)
        capacity = count_rows(source)
        if capacity == 0:
            raise DataError(f"the price data at {source} has no rows")
        chunks = read_chunks(
            source, columns=columns, chunk_rows=chunk_rows, ffill_limit=ffill_limit
        )
    else:  # loaded whole anyway: validated once, then cut
        frame = read_prices(source, columns=columns, layout=layout, ffill_limit=ffill_limit)
        capacity, chunks = frame.height, cut_tickers(frame, chunk_rows)
    builder = _Builder(features, horizon, capacity, price_input=target == "price")
    wanted, kept = set(tickers), 0
    for chunk in chunks:
        if wanted:
            chunk = chunk.filter(pl.col("ticker").is_in(list(wanted)))
        if max_tickers:
            names = chunk["ticker"].unique(maintain_order=True).head(max_tickers - kept)
            chunk = chunk.filter(pl.col("ticker").is_in(names.implode()))
            kept += len(names)
        if chunk.height:
            frame = add_features(chunk, features)
            builder.add(
                add_target(
                    frame, horizon=horizon, target=target, max_abs_log_return=max_abs_log_return
                )
            )
        if max_tickers and kept >= max_tickers:
            break
    if missing := sorted(wanted - set(builder.tickers)):
        raise DataError(f"ticker(s) {missing[:10]} are not in the data")
    if not builder.tickers:
        raise DataError(
            "no ticker is left: every one has missing values that forward-fill cannot fill; "
            f"raise ffill_limit (now {ffill_limit}) or clean the data"
        )
    return builder.rows()


class _Builder:
    """Appends featurized frames of whole tickers to preallocated arrays."""

    def __init__(
        self, features: tuple[str, ...], horizon: int, capacity: int, *, price_input: bool
    ) -> None:
        self.columns = (*features, "close") if price_input else features
        self.horizon, self.price_input = horizon, price_input
        # np.empty maps memory lazily: rows a filter drops never become resident
        self.features = np.empty((capacity, len(self.columns)), dtype=np.float32)
        self.targets = np.empty((capacity, 1), dtype=np.float32)
        self.close = np.empty(capacity, dtype=np.float64)
        self.suspect = np.empty(capacity, dtype=bool)
        self.stamps: np.ndarray | None = None
        self.date_type: pl.DataType = pl.Date()
        self.tickers: list[str] = []
        self._seen: set[str] = set()
        self.row_starts = [0]

    def add(self, frame: pl.DataFrame) -> None:
        first, stop = self.row_starts[-1], self.row_starts[-1] + frame.height
        if stop > len(self.close):
            raise DataError(f"more rows than the {len(self.close)} announced by the source")
        runs = frame["ticker"].rle().struct.unnest()  # one row per run of equal tickers
        names = runs["value"].to_list()
        repeated = set(names) & self._seen if len(set(names)) == len(names) else set(names)
        if repeated:
            raise DataError(
                f"rows of ticker(s) {sorted(repeated)[:5]} are not contiguous; sort the data by "
                "ticker and date so that each ticker's rows come together"
            )
        if self.stamps is None:
            self.date_type = frame.schema["date"]
            wide = self.date_type != pl.Date
            self.stamps = np.empty(len(self.close), dtype=np.int64 if wide else np.int32)
        elif frame.schema["date"] != self.date_type:
            raise DataError(
                f"dates change type within the data ({self.date_type} then "
                f"{frame.schema['date']}); give every row the same kind of date"
            )
        rows = slice(first, stop)
        self.features[rows] = frame.select(self.columns).to_numpy(order="c")
        self.targets[rows, 0] = frame["target"].to_numpy()  # nulls (no future) come out NaN
        self.close[rows] = frame["close"].to_numpy()
        self.suspect[rows] = frame["jump_ahead"].to_numpy()
        self.stamps[rows] = frame["date"].to_physical().to_numpy()
        self.tickers += [str(name) for name in names]
        self._seen |= set(names)
        self.row_starts += (first + np.cumsum(runs["len"].to_numpy())).tolist()

    def rows(self) -> PriceRows:
        n_rows = self.row_starts[-1]
        assert self.stamps is not None
        return PriceRows(
            features=self.features[:n_rows],
            targets=self.targets[:n_rows],
            close=self.close[:n_rows],
            stamps=self.stamps[:n_rows],
            date_type=self.date_type,
            suspect=self.suspect[:n_rows],
            tickers=self.tickers,
            row_starts=np.asarray(self.row_starts),
            horizon=self.horizon,
            names=self.columns,
            price_input=self.price_input,
        )
