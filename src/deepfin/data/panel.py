"""Big panels in bounded memory: rows read once, split by date, scaled in place, windows indexed.

Features are computed over each ticker's whole history (they are causal), then each row is
assigned to train, validation or test by its date, with an embargo between the parts. A window
belongs to the part of its forecast origin and its outcome; its inputs may reach back into the
part before, so validation and test windows need no warm-up of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

from deepfin.data.chunks import collect_rows
from deepfin.data.features import DEFAULT_FEATURES
from deepfin.data.io import PriceSource
from deepfin.data.rows import CHUNK_ROWS, PriceRows
from deepfin.data.scaling import Scaler
from deepfin.data.splits import chronological_split
from deepfin.data.windows import WindowDataset

TRAIN, VAL, TEST, HISTORY = 0, 1, 2, -1  # HISTORY: embargo rows, inputs only
PARTS = {"train": TRAIN, "val": VAL, "test": TEST}


@dataclass
class Panel:
    """A panel's rows (scaled with statistics of training rows only) and each part's windows."""

    rows: PriceRows
    part: np.ndarray  # (rows,) int8: TRAIN, VAL, TEST or HISTORY
    ends: dict[int, np.ndarray]  # per part: window ends (train and val: trustworthy outcomes)
    feature_scaler: Scaler
    target_scaler: Scaler
    lookback: int

    @property
    def features(self) -> torch.Tensor:
        """(rows, F) float32 scaled inputs."""
        return torch.from_numpy(self.rows.features)

    @property
    def targets(self) -> torch.Tensor:
        """(rows, 1) float32 scaled targets."""
        return torch.from_numpy(self.rows.targets)

    @property
    def tickers(self) -> list[str]:
        """Tickers in row order."""
        return self.rows.tickers

    @property
    def row_starts(self) -> np.ndarray:
        """First row of each ticker, then the row count."""
        return self.rows.row_starts

    @property
    def days(self) -> np.ndarray:
        """Each row's date as its physical value (days since 1970-01-01 for daily data)."""
        return self.rows.stamps

    def windows(self, name: str) -> WindowDataset | None:
        """The windows of part `name` (train, val or test); None for an empty validation part."""
        ends = self.ends[PARTS[name]]
        if name == "val" and not (self.part == VAL).any():
            return None
        return self.rows.windows(ends, lookback=self.lookback)

    @property
    def train(self) -> WindowDataset:
        """Training windows."""
        data = self.windows("train")
        assert data is not None
        return data

    @property
    def val(self) -> WindowDataset | None:
        """Validation windows, or None without a validation period."""
        return self.windows("val")

    @property
    def test(self) -> WindowDataset:
        """Test windows: every one whose outcome is known, suspect ones included."""
        data = self.windows("test")
        assert data is not None
        return data

    def test_panel(self, history: int = 0) -> Panel:
        """The test windows with only the rows they read, and `history` rows more before each
        ticker's first one (for factors of earlier closes); the rest of this panel can go."""
        ends = self.ends[TEST]
        first = np.full(len(self.tickers), self.rows.n_rows, dtype=np.int64)
        codes, position = np.unique(self.rows.codes(ends), return_index=True)
        first[codes] = ends[position].astype(np.int64) - (self.lookback - 1) - history
        rows, index = self.rows.tails(first)
        empty = np.zeros(0, dtype=ends.dtype)
        return Panel(
            rows=rows,
            part=self.part[index],
            ends={TRAIN: empty, VAL: empty, TEST: np.searchsorted(index, ends).astype(ends.dtype)},
            feature_scaler=self.feature_scaler,
            target_scaler=self.target_scaler,
            lookback=self.lookback,
        )

    def describe(self) -> dict[str, str]:
        """First and last date of each part, for logs and reports."""
        described = {}
        for name, code in PARTS.items():
            inside = np.flatnonzero(self.part == code)
            if len(inside):
                described[name] = self.rows.describe(inside)
        return described


def split_parts(
    rows: PriceRows, *, val_fraction: float, test_fraction: float, embargo: int
) -> np.ndarray:
    """Each row's part by the calendar of all dates, as `chronological_split` cuts a frame."""
    calendar = pl.DataFrame({"date": rows.as_dates(np.unique(rows.stamps))})
    parts = chronological_split(
        calendar, val_fraction=val_fraction, test_fraction=test_fraction, embargo=embargo
    )

    def stamps(frame: pl.DataFrame) -> pl.Series:
        return frame["date"].to_physical()

    part = np.full(rows.n_rows, HISTORY, dtype=np.int8)
    part[rows.stamps <= stamps(parts.train).max()] = TRAIN
    if parts.val is not None:
        val = stamps(parts.val)
        part[(rows.stamps >= val.min()) & (rows.stamps <= val.max())] = VAL
    part[rows.stamps >= stamps(parts.test).min()] = TEST
    return part


def split_panel(
    rows: PriceRows,
    *,
    lookback: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    embargo: int | None = None,
    scaler: str = "standard",
    per_ticker: bool = False,
) -> Panel:
    """Split `rows` by date, fit scalers on the training part, scale in place, index windows."""
    part = split_parts(
        rows,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        embargo=rows.horizon if embargo is None else embargo,
    )
    inside = rows.target_in(part)  # the outcome lies in the origin's part
    train = (part == TRAIN) & inside
    scalers = rows.fit_scalers(
        part == TRAIN, train, kind=scaler, per_ticker=per_ticker, lookback=lookback
    )
    rows.scale(*scalers)
    labelled, known = rows.labelled & inside, rows.known & inside
    ends = {
        TRAIN: rows.window_ends(labelled & (part == TRAIN), lookback=lookback),
        VAL: rows.window_ends(labelled & (part == VAL), lookback=lookback),
        TEST: rows.window_ends(known & (part == TEST), lookback=lookback),
    }
    return Panel(rows, part, ends, scalers[0], scalers[1], lookback)


def load_panel(
    source: PriceSource,
    *,
    features: tuple[str, ...] = DEFAULT_FEATURES,
    lookback: int = 30,
    horizon: int = 1,
    target: str = "log_return",
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
    rows = collect_rows(
        source,
        features=features,
        horizon=horizon,
        target=target,
        max_abs_log_return=max_abs_log_return,
        columns=columns,
        chunk_rows=chunk_rows,
    )
    return split_panel(
        rows,
        lookback=lookback,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        embargo=embargo,
        scaler=scaler,
        per_ticker=per_ticker,
    )
