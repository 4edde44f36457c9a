"""Price rows held once: float32 features and targets, closes, dates and flags of every ticker.

A source is read in chunks of whole tickers; each chunk is featurized (causal features over the
ticker's whole history, and the forward target) and copied into preallocated arrays, so the
frames of the whole panel never exist at once. Scaling is in place; windows are index arithmetic
over the rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from deepfin.data.features import add_factors, relative_anchors
from deepfin.data.scaling import SCALERS, RunningMoments, Scaler, window_spread
from deepfin.data.windows import WindowDataset, window_ends
from deepfin.errors import DataError, RunFolderError

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000  # rows read, validated, featurized or scaled at a time: bounds the memory


@dataclass
class PriceRows:
    """Every row of a price source, ticker after ticker, dates increasing within each."""

    features: np.ndarray  # (rows, F) float32; raw until `scale`, then scaled in place
    targets: np.ndarray  # (rows, 1) float32: the target `horizon` rows ahead, NaN when unknown
    close: np.ndarray  # (rows,) float64
    stamps: np.ndarray  # (rows,) the physical value of each row's date (days or time units)
    date_type: pl.DataType
    suspect: np.ndarray  # (rows,) bool: the outcome spans a one-day move beyond the bound
    tickers: list[str]
    row_starts: np.ndarray  # (tickers + 1,): first row of each ticker, then the row count
    horizon: int
    names: tuple[str, ...]  # the feature columns, in order
    price_input: bool = False  # the last feature column is the close, scaled like the target
    # per-date normalisation applied to (features, labels); see data/cross_section.py
    cross_section: tuple[str, str] = ("none", "none")

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.close)

    @property
    def known(self) -> np.ndarray:
        """Per row: its outcome is in the data."""
        return np.isfinite(self.targets[:, 0])

    @property
    def labelled(self) -> np.ndarray:
        """Per row: its outcome is known and trustworthy, so it can be learned from."""
        return self.known & ~self.suspect

    def dates(self, positions: np.ndarray | slice) -> pl.Series:
        """The dates of the rows at `positions`."""
        return self.as_dates(self.stamps[positions])

    def as_dates(self, stamps: np.ndarray) -> pl.Series:
        """Physical date values as dates of this source's type."""
        return pl.Series("date", stamps).cast(self.date_type)

    def stamp(self, date: dt.date | dt.datetime) -> int:
        """The physical value of `date` in this source's date type."""
        return int(pl.Series([date]).cast(self.date_type).to_physical()[0])

    def made_between(self, origins: tuple[dt.date, dt.date] | None) -> np.ndarray:
        """Per row: its date lies within `origins` (first, last); every row when None."""
        if origins is None:
            return np.ones(self.n_rows, dtype=bool)
        first, last = self.stamp(origins[0]), self.stamp(origins[1])
        return (self.stamps >= first) & (self.stamps <= last)

    def codes(self, positions: np.ndarray) -> np.ndarray:
        """The ticker code of each row position."""
        return np.searchsorted(self.row_starts, positions, side="right") - 1

    def lengths(self) -> dict[str, int]:
        """Rows per ticker."""
        return dict(zip(self.tickers, np.diff(self.row_starts).tolist(), strict=True))

    def slices(self, rows: int = CHUNK_ROWS) -> Iterator[tuple[int, int, np.ndarray]]:
        """(first row, stop row, ticker code per row) over groups of whole tickers."""
        starts = self.row_starts
        group_first = 0
        while group_first < len(self.tickers):
            group_stop = int(np.searchsorted(starts, starts[group_first] + rows, side="right"))
            group_stop = min(max(group_stop - 1, group_first + 1), len(self.tickers))
            lengths = np.diff(starts[group_first : group_stop + 1])
            codes = np.repeat(np.arange(group_first, group_stop), lengths)
            yield int(starts[group_first]), int(starts[group_stop]), codes
            group_first = group_stop

    def usable(self) -> np.ndarray:
        """Per row: every input is finite (column by column: no (rows, F) temporary)."""
        usable = np.isfinite(self.features[:, 0])
        for column in range(1, self.features.shape[1]):
            usable &= np.isfinite(self.features[:, column])
        return usable

    def target_in(self, part: np.ndarray) -> np.ndarray:
        """Per row: its target row (horizon ahead) is the same ticker and the same part."""
        ahead = np.zeros(self.n_rows, dtype=bool)
        ahead[: -self.horizon] = part[: -self.horizon] == part[self.horizon :]
        for stop in self.row_starts[1:]:  # a ticker's last rows would look into the next one
            ahead[max(0, stop - self.horizon) : stop] = False
        return ahead

    def prices(self, positions: np.ndarray) -> pl.DataFrame:
        """Date, ticker and close of the rows at `positions`."""
        return pl.DataFrame(
            {
                "date": self.dates(positions),
                "ticker": pl.Series(self.tickers)[self.codes(positions)],
                "close": self.close[positions],
            }
        )

    def between(self, first: int, last: int) -> PriceRows:
        """A copy of the rows dated `first`..`last` (physical date values).

        An outcome that lies after `last` is unknown to the copy, as if the data ended there.
        """
        keep = (self.stamps >= first) & (self.stamps <= last)
        index = np.flatnonzero(keep)
        counts = np.add.reduceat(keep.astype(np.int64), self.row_starts[:-1])
        ahead = index + self.horizon
        inside = ahead < self.n_rows
        inside[inside] = keep[ahead[inside]] & (
            self.codes(ahead[inside]) == self.codes(index[inside])
        )
        targets = self.targets[index]
        targets[~inside] = np.nan
        return PriceRows(
            features=self.features[index],
            targets=targets,
            close=self.close[index],
            stamps=self.stamps[index],
            date_type=self.date_type,
            suspect=self.suspect[index] & inside,
            tickers=[name for name, count in zip(self.tickers, counts, strict=True) if count],
            row_starts=np.r_[0, np.cumsum(counts[counts > 0])],
            horizon=self.horizon,
            names=self.names,
            price_input=self.price_input,
            cross_section=self.cross_section,
        )

    def tails(self, first: np.ndarray) -> tuple[PriceRows, np.ndarray]:
        """A copy of each ticker's rows from position `first[t]` to its last, and their positions.

        Inputs, outcomes and flags are unchanged (a tail runs to the ticker's end, so every
        outcome it knew is still in it); a ticker left with no row is dropped.
        """
        stops = self.row_starts[1:]
        first = np.clip(first, self.row_starts[:-1], stops)
        counts = stops - first
        index = np.repeat(first - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(
            int(counts.sum())
        )
        rows = dataclasses.replace(
            self,
            features=self.features[index],
            targets=self.targets[index],
            close=self.close[index],
            stamps=self.stamps[index],
            suspect=self.suspect[index],
            tickers=[name for name, count in zip(self.tickers, counts, strict=True) if count],
            row_starts=np.r_[0, np.cumsum(counts[counts > 0])],
        )
        return rows, index

    def copy(self) -> PriceRows:
        """The same rows with their own features and targets, free to be scaled."""
        return dataclasses.replace(self, features=self.features.copy(), targets=self.targets.copy())

    # ---------------------------------------------------------------------- scaling
    def fit_scalers(
        self,
        feature_rows: np.ndarray,
        target_rows: np.ndarray,
        *,
        kind: str,
        per_ticker: bool,
        lookback: int,
    ) -> tuple[Scaler, Scaler]:
        """Feature and target scalers fitted on the marked rows (usable and known ones only);
        a window-relative column is not centred but divided by its anchor's `window_spread`."""
        if kind not in SCALERS:
            raise DataError(f"unknown scaler '{kind}'; choose one of {list(SCALERS)}")
        n_features = self.features.shape[1] - int(self.price_input)
        usable = feature_rows & self.usable()
        feature_scaler = self._fit(self.features[:, :n_features], usable, kind, per_ticker)
        anchors = relative_anchors(self.names)[:n_features]
        codes = np.repeat(np.arange(len(self.tickers)), np.diff(self.row_starts))
        spreads = {
            anchor: window_spread(self.features[:, anchor], codes, usable, lookback)
            for anchor in set(anchors) - {-1}
        }
        for column, anchor in enumerate(anchors):
            if anchor >= 0:
                feature_scaler.center_[:, column] = 0.0
                feature_scaler.scale_[:, column] = spreads[anchor]
        target_scaler = self._fit(self.targets, target_rows & self.labelled, kind, per_ticker)
        return feature_scaler, target_scaler

    def scale(self, feature_scaler: Scaler, target_scaler: Scaler) -> None:
        """Scale features and targets in place, a group of tickers at a time."""
        n_features = self.features.shape[1] - int(self.price_input)
        sizes = (feature_scaler.scale_.shape[-1], target_scaler.scale_.shape[-1])
        if sizes != (n_features, 1):
            raise RunFolderError(
                f"the scalers are for {sizes[0]} feature(s) and {sizes[1]} target(s), but these "
                f"rows have {n_features} feature(s) ({', '.join(self.names)}) and 1 target; the "
                "scalers come from another run, or the run's settings were edited"
            )
        for first, stop, codes in self.slices():
            rows = slice(first, stop)
            self.features[rows, :n_features] = feature_scaler.transform(
                self.features[rows, :n_features], codes, self.tickers
            )
            if self.price_input:  # the price level, on the target's scale
                self.features[rows, n_features:] = target_scaler.transform(
                    self.close[rows, None], codes, self.tickers
                )
            self.targets[rows] = target_scaler.transform(self.targets[rows], codes, self.tickers)

    def _fit(self, values: np.ndarray, mask: np.ndarray, kind: str, per_ticker: bool) -> Scaler:
        moments = RunningMoments(len(self.tickers) if per_ticker else 1, values.shape[1])
        for first, stop, codes in self.slices():
            keep = mask[first:stop]
            if per_ticker:  # slices hold whole tickers: a slice's groups are its tickers
                first_group, n_groups = int(codes[0]), int(codes[-1] - codes[0]) + 1
                groups = codes[keep] - first_group
            else:
                first_group, n_groups, groups = 0, 1, np.zeros(int(keep.sum()), dtype=np.int64)
            moments.update(
                values[first:stop][keep], groups, first_group=first_group, n_groups=n_groups
            )
        constant = (moments.high == moments.low).all(axis=0)  # in every group
        if constant.any() and values.shape[1] == len(self.names):
            log.warning(
                "feature(s) %s are constant in the training rows and carry nothing to learn "
                "from; check the data (e.g. a volume column that never changes) or leave them out",
                ", ".join(np.asarray(self.names)[constant]),
            )
        return moments.scaler(kind=kind, per_ticker=per_ticker, tickers=self.tickers)

    # ---------------------------------------------------------------------- windows
    def window_ends(self, origins: np.ndarray, *, lookback: int) -> np.ndarray:
        """Rows marked in `origins` whose window of `lookback` usable rows lies in one ticker.

        A window may reach back before the part its origin belongs to: earlier rows are input
        history, never an outcome.
        """
        usable = self.usable()
        found: list[np.ndarray] = []
        # int32 positions halve the largest array after the features; torch indexes with them
        index_type = np.int32 if self.n_rows < 2**31 else np.int64
        for first, stop, codes in self.slices():
            local = window_ends(codes, usable[first:stop], lookback=lookback)
            local = local[origins[first:stop][local]]
            found.append((first + local).astype(index_type))
        return np.concatenate(found) if found else np.zeros(0, dtype=index_type)

    def windows(self, ends: np.ndarray, *, lookback: int) -> WindowDataset:
        """Windows ending at `ends`; the tensors share memory with these rows."""
        anchors = relative_anchors(self.names)
        return WindowDataset(
            torch.from_numpy(self.features),
            torch.from_numpy(self.targets),
            torch.from_numpy(ends),
            lookback=lookback,
            anchors=torch.tensor(anchors) if max(anchors, default=-1) >= 0 else None,
        )

    def table(self, ends: np.ndarray) -> pl.DataFrame:
        """Per window end (in increasing order): date, ticker, close, the close `horizon` ahead,
        the suspect flag and each one-line factor's signal (from the ticker's earlier closes)."""
        ends = ends.astype(np.int64)
        if (np.diff(ends) < 0).any():
            raise ValueError("window ends must be in increasing order")
        pieces: list[pl.DataFrame] = []
        for first, stop, codes in self.slices():
            inside = ends[(ends >= first) & (ends < stop)]
            if not len(inside):
                continue
            closes = pl.DataFrame({"ticker": codes, "close": self.close[first:stop]})
            signals = add_factors(closes).drop("ticker", "close")[inside - first]
            pieces.append(signals)
        ahead = np.minimum(ends + self.horizon, self.n_rows - 1)
        future = np.where(self.codes(ahead) == self.codes(ends), self.close[ahead], np.nan)
        base = pl.DataFrame(
            {
                "date": self.dates(ends),
                "ticker": pl.Series(self.tickers)[self.codes(ends)],
                "close": self.close[ends],
                "future_close": future,
                "jump_ahead": self.suspect[ends],
            }
        )
        if not pieces:  # no window: the factor columns, empty
            return add_factors(base)
        return pl.concat([base, pl.concat(pieces)], how="horizontal")

    def describe(self, ends: np.ndarray) -> str:
        """First and last date among `ends`, and how many dates."""
        dates = self.dates(ends)
        return f"{dates.min()!s} .. {dates.max()!s} ({dates.n_unique()} days)"
