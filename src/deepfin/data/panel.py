"""Big panels in bounded memory: prices read in ticker chunks into float32 arrays held once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch

from deepfin.data.features import DEFAULT_FEATURES, add_features, add_target
from deepfin.data.io import COLUMN_ALIASES, PriceSource, read_prices
from deepfin.data.scaling import SCALERS, RunningMoments, Scaler
from deepfin.data.splits import chronological_split
from deepfin.data.windows import WindowDataset, window_ends
from deepfin.errors import DataError

CHUNK_ROWS = 250_000  # rows read, validated and featurized at a time: bounds the working memory
TRAIN, VAL, TEST, EMBARGO = 0, 1, 2, -1


@dataclass
class Panel:
    """A panel's scaled features and targets, held once, and the windows of each split."""

    features: torch.Tensor  # (rows, F) float32, scaled with statistics of training rows only
    targets: torch.Tensor  # (rows, 1) float32, the forward log return, scaled likewise
    tickers: list[str]
    row_starts: np.ndarray  # (tickers + 1,): first row of each ticker, then the row count
    days: np.ndarray  # (rows,) int32 days since 1970-01-01: the date of each row
    train: WindowDataset
    val: WindowDataset | None
    test: WindowDataset
    feature_scaler: Scaler
    target_scaler: Scaler


def read_chunks(
    source: PriceSource, *, columns: Mapping[str, str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """Raw frames of whole tickers, about `chunk_rows` rows each; Parquet is streamed."""
    if isinstance(source, str | Path) and str(source).lower().endswith((".parquet", ".pq")):
        yield from _parquet_chunks(Path(source), columns or {}, chunk_rows)
        return
    # CSV and in-memory frames are loaded whole, then cut at ticker boundaries
    frame = read_prices(source, columns=columns)
    codes = frame["ticker"].rle_id().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    tickers_per_chunk = max(1, round(len(starts) * chunk_rows / frame.height))
    edges = [*starts[::tickers_per_chunk].tolist(), frame.height]
    for first, stop in itertools.pairwise(edges):
        yield frame[first:stop]


def featurize(
    frame: pl.DataFrame, *, features: tuple[str, ...], horizon: int, max_abs_log_return: float
) -> pl.DataFrame:
    """Causal features and the forward log-return target of a validated frame."""
    frame = add_features(frame, features)
    return add_target(
        frame, horizon=horizon, target="log_return", max_abs_log_return=max_abs_log_return
    )


class PanelBuilder:
    """Collects featurized chunks into preallocated float32 arrays, then splits, scales, windows.

    Memory is the arrays (rows x (features + 1) float32, plus a date and a flag per row) and one
    chunk's frames; the frames of the whole panel never exist at once.
    """

    def __init__(self, *, features: tuple[str, ...], horizon: int, max_rows: int) -> None:
        self.features_names, self.horizon = features, horizon
        self.inputs = np.empty((max_rows, len(features)), dtype=np.float32)
        self.targets = np.empty((max_rows, 1), dtype=np.float32)
        self.days = np.empty(max_rows, dtype=np.int32)  # days since 1970-01-01
        self.labelled = np.empty(max_rows, dtype=bool)
        self.tickers: list[str] = []
        self._seen: set[str] = set()
        self.row_starts = [0]
        self.calendar = np.empty(0, dtype=np.int32)

    @property
    def n_rows(self) -> int:
        """Rows collected so far."""
        return self.row_starts[-1]

    def add(self, frame: pl.DataFrame) -> None:
        """Append a featurized frame of whole tickers (sorted by ticker and date)."""
        first, stop = self.n_rows, self.n_rows + frame.height
        if stop > len(self.inputs):
            raise DataError(f"more rows than the {len(self.inputs)} announced; raise max_rows")
        runs = frame["ticker"].rle().struct.unnest()  # one row per run of equal tickers
        names = runs["value"].to_list()
        repeated = set(names) & self._seen if len(set(names)) == len(names) else set(names)
        if repeated:
            raise DataError(
                f"rows of ticker(s) {sorted(repeated)[:5]} are not contiguous; sort the data by "
                "ticker and date so that each ticker's rows come together"
            )
        self.inputs[first:stop] = frame.select(self.features_names).to_numpy(order="c")
        target = frame["target"].to_numpy()  # nulls (no future price) come out as NaN
        self.targets[first:stop, 0] = target
        self.days[first:stop] = frame["date"].cast(pl.Date).to_physical().to_numpy()
        self.labelled[first:stop] = np.isfinite(target) & ~frame["jump_ahead"].to_numpy()
        self.tickers += names
        self._seen |= set(names)
        self.row_starts += (first + np.cumsum(runs["len"].to_numpy())).tolist()
        new_days = frame["date"].unique().cast(pl.Date).to_physical().to_numpy()
        self.calendar = np.union1d(self.calendar, new_days)

    def split(self, *, val_fraction: float, test_fraction: float, embargo: int) -> np.ndarray:
        """Each row's part (TRAIN, VAL, TEST or EMBARGO) by the calendar of all dates."""
        # splitting the calendar alone gives the same boundaries as splitting the whole panel
        calendar = pl.DataFrame({"date": self.calendar}).cast(pl.Date)
        parts = chronological_split(
            calendar, val_fraction=val_fraction, test_fraction=test_fraction, embargo=embargo
        )
        days = self.days[: self.n_rows]
        part = np.full(self.n_rows, EMBARGO, dtype=np.int8)
        part[days <= _days(parts.train).max()] = TRAIN
        if parts.val is not None:
            val_days = _days(parts.val)
            part[(days >= val_days.min()) & (days <= val_days.max())] = VAL
        part[days >= _days(parts.test).min()] = TEST
        return part

    def scale(self, part: np.ndarray, *, kind: str, per_ticker: bool) -> tuple[Scaler, Scaler]:
        """Fit feature and target scalers on training rows only; scale every row in place."""
        if kind not in SCALERS:
            raise DataError(f"unknown scaler '{kind}'; choose one of {list(SCALERS)}")
        rows = slice(0, self.n_rows)
        inputs, targets = self.inputs[rows], self.targets[rows]
        train_rows = part == TRAIN
        usable = train_rows & self._usable_rows()
        known = train_rows & self.labelled[rows] & self._target_in_part(part)
        feature_scaler = self._fit(inputs, usable, kind=kind, per_ticker=per_ticker)
        target_scaler = self._fit(targets, known, kind=kind, per_ticker=per_ticker)
        for first, stop, codes in self._ticker_slices():
            inputs[first:stop] = feature_scaler.transform(inputs[first:stop], codes, self.tickers)
            targets[first:stop] = target_scaler.transform(targets[first:stop], codes, self.tickers)
        return feature_scaler, target_scaler

    def windows(self, part: np.ndarray, *, lookback: int) -> dict[int, np.ndarray]:
        """Window ends per part: whole windows of usable rows of one ticker and one part."""
        usable = self._usable_rows() & (part != EMBARGO)
        labelled = self.labelled[: self.n_rows] & self._target_in_part(part)
        ends: dict[int, list[np.ndarray]] = {TRAIN: [], VAL: [], TEST: []}
        # int32 positions halve the largest array after the features; torch indexes with them
        index_type = np.int32 if self.n_rows < 2**31 else np.int64
        for first, stop, codes in self._ticker_slices():
            local_part = part[first:stop]
            # a ticker's parts follow each other in time, so a window that starts and ends in
            # one (ticker, part) segment lies wholly inside it: one pass finds every part's ends
            segments = codes * 4 + local_part
            found = window_ends(segments, usable[first:stop], lookback=lookback)
            found = found[labelled[first:stop][found]]
            for name, collected in ends.items():
                collected.append((first + found[local_part[found] == name]).astype(index_type))
        return {name: np.concatenate(found) for name, found in ends.items()}

    def _usable_rows(self) -> np.ndarray:
        """Per row: every feature is finite (column by column: no (rows, F) temporary)."""
        inputs = self.inputs[: self.n_rows]
        usable = np.isfinite(inputs[:, 0])
        for column in range(1, inputs.shape[1]):
            usable &= np.isfinite(inputs[:, column])
        return usable

    def _target_in_part(self, part: np.ndarray) -> np.ndarray:
        """Per row: the target row (horizon ahead) is the same ticker and the same part."""
        ahead = np.full(self.n_rows, False)
        ahead[: -self.horizon] = part[: -self.horizon] == part[self.horizon :]
        for stop in self.row_starts[1:]:  # the last rows of a ticker look into the next one
            ahead[max(0, stop - self.horizon) : stop] = False
        return ahead

    def _ticker_slices(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, int, np.ndarray]]:
        """(first row, stop row, ticker code per row) over groups of whole tickers."""
        starts = np.asarray(self.row_starts)
        group_first = 0
        while group_first < len(self.tickers):
            group_stop = int(np.searchsorted(starts, starts[group_first] + rows, side="right"))
            group_stop = min(max(group_stop - 1, group_first + 1), len(self.tickers))
            lengths = np.diff(starts[group_first : group_stop + 1])
            codes = np.repeat(np.arange(group_first, group_stop), lengths)
            yield int(starts[group_first]), int(starts[group_stop]), codes
            group_first = group_stop

    def _fit(self, values: np.ndarray, mask: np.ndarray, *, kind: str, per_ticker: bool) -> Scaler:
        """A Scaler fitted on the masked rows, gathered slice by slice."""
        moments = RunningMoments(len(self.tickers) if per_ticker else 1, values.shape[1])
        for first, stop, codes in self._ticker_slices():
            keep = mask[first:stop]
            if per_ticker:  # slices hold whole tickers: a slice's groups are its tickers
                first_group, n_groups = int(codes[0]), int(codes[-1] - codes[0]) + 1
                groups = codes[keep] - first_group
            else:
                first_group, n_groups, groups = 0, 1, np.zeros(int(keep.sum()), dtype=np.int64)
            rows = values[first:stop][keep]
            moments.update(rows, groups, first_group=first_group, n_groups=n_groups)
        return moments.scaler(kind=kind, per_ticker=per_ticker, tickers=self.tickers)

    def panel(
        self,
        part: np.ndarray,
        ends: dict[int, np.ndarray],
        scalers: tuple[Scaler, Scaler],
        *,
        lookback: int,
    ) -> Panel:
        """The finished panel: tensors share memory with the builder's arrays."""
        features = torch.from_numpy(self.inputs[: self.n_rows])
        targets = torch.from_numpy(self.targets[: self.n_rows])

        def windows(name: int) -> WindowDataset:
            return WindowDataset(features, targets, torch.from_numpy(ends[name]), lookback=lookback)

        return Panel(
            features=features,
            targets=targets,
            tickers=self.tickers,
            row_starts=np.asarray(self.row_starts),
            days=self.days[: self.n_rows],
            train=windows(TRAIN),
            val=windows(VAL) if (part == VAL).any() else None,
            test=windows(TEST),
            feature_scaler=scalers[0],
            target_scaler=scalers[1],
        )


def load_panel(
    source: PriceSource,
    *,
    features: tuple[str, ...] = DEFAULT_FEATURES,
    lookback: int = 30,
    horizon: int = 1,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    embargo: int | None = None,
    scaler: str = "standard",
    per_ticker: bool = False,
    max_abs_log_return: float = 0.4,
    columns: Mapping[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Panel:
    """Read, validate, featurize, split and scale a panel chunk by chunk; index its windows."""
    builder = PanelBuilder(features=features, horizon=horizon, max_rows=count_rows(source))
    for chunk in read_chunks(source, columns=columns, chunk_rows=chunk_rows):
        valid = read_prices(chunk)
        builder.add(
            featurize(
                valid, features=features, horizon=horizon, max_abs_log_return=max_abs_log_return
            )
        )
    part = builder.split(
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        embargo=horizon if embargo is None else embargo,
    )
    scalers = builder.scale(part, kind=scaler, per_ticker=per_ticker)
    ends = builder.windows(part, lookback=lookback)
    return builder.panel(part, ends, scalers, lookback=lookback)


def count_rows(source: PriceSource) -> int:
    """Rows in `source`, from Parquet metadata when it is a Parquet file (nothing is read)."""
    if isinstance(source, str | Path) and str(source).lower().endswith((".parquet", ".pq")):
        return int(pq.ParquetFile(source).metadata.num_rows)
    if isinstance(source, str | Path):
        return pl.scan_csv(source, glob=False).select(pl.len()).collect().item()
    return len(source)


def _parquet_chunks(
    path: Path, columns: Mapping[str, str], chunk_rows: int
) -> Iterator[pl.DataFrame]:
    if not path.exists():
        raise DataError(f"no file at {path}; pass the path of a Parquet file of prices")
    ticker = columns.get("ticker") or _find_column(pq.read_schema(path).names, "ticker")
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
    """Row batches of a Parquet file in file order, without reading it whole."""
    scan = pl.scan_parquet(path, glob=False)
    if hasattr(scan, "collect_batches"):  # polars' streaming engine: 5x faster than pyarrow
        yield from scan.collect_batches(chunk_size=chunk_rows)
        return
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame


def _days(frame: pl.DataFrame) -> np.ndarray:
    return frame["date"].cast(pl.Date).to_physical().to_numpy()


def _find_column(names: list[str], role: str) -> str:
    lower = {name.lower().strip(): name for name in names}
    for alias in COLUMN_ALIASES[role]:
        if alias in lower:
            return lower[alias]
    raise DataError(
        f"no {role} column among {names}; name it with columns={{'{role}': 'YourColumn'}}"
    )
