"""Chronological train / validation / test splits by date, with an embargo between them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from deepfin.errors import ConfigError, DataError


@dataclass(frozen=True)
class Split:
    """Three date-disjoint frames; `val` is None when no validation period was asked for."""

    train: pl.DataFrame
    val: pl.DataFrame | None
    test: pl.DataFrame
    source: pl.DataFrame | None = None  # the frame that was split: history before each part

    def with_history(self, name: str, rows: int) -> tuple[pl.DataFrame, tuple[dt.date, dt.date]]:
        """Part `name` preceded by the `rows` dates before it, and the part's first and last date.

        The earlier dates are input history only (feature warm-up and the first lookback), so
        a part's first windows are scored too; their outcomes all lie inside the part.
        """
        part = {"train": self.train, "val": self.val, "test": self.test}[name]
        if part is None:
            raise ConfigError(f"this split has no {name} part")
        first, last = part["date"].min(), part["date"].max()
        if self.source is None or rows <= 0:
            return part, (first, last)  # type: ignore[return-value]
        calendar = self.source["date"].unique().sort()
        start = calendar[max(0, int((calendar < first).sum()) - rows)]
        extended = self.source.filter(pl.col("date").is_between(start, last))
        return extended, (first, last)  # type: ignore[return-value]

    def describe(self) -> dict[str, str]:
        """First and last date of each part, for logs and reports."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        return {
            name: f"{part['date'].min()!s} .. {part['date'].max()!s} "
            f"({part['date'].n_unique()} days)"
            for name, part in parts.items()
            if part is not None
        }


def chronological_split(
    frame: pl.DataFrame,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    embargo: int = 1,
    test_start: dt.date | None = None,
) -> Split:
    """Split by position in the calendar of all dates, dropping `embargo` days between parts."""
    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1:
        raise DataError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must lie in [0, 1) "
            "and (0, 1)"
        )
    if embargo < 0:
        raise DataError(f"embargo must be >= 0 days, got {embargo}")
    calendar = frame["date"].unique().sort()
    n_dates = calendar.len()
    if test_start is not None:
        n_test = int((calendar >= test_start).sum())
        if n_test == 0:
            raise DataError(f"test_start {test_start} is after the last date {calendar[-1]}")
    else:
        n_test = round(n_dates * test_fraction)
    n_val = round(n_dates * val_fraction)
    n_gaps = 2 if n_val else 1
    n_train = n_dates - n_test - n_val - n_gaps * embargo
    if n_train < 1 or n_test < 1:
        raise DataError(
            f"{n_dates} dates are too few to split into train, {n_val} validation and "
            f"{n_test} test days with an embargo of {embargo} (the forecast horizon, unless set); "
            "use more data, smaller fractions, a shorter --horizon or --embargo"
        )
    train_end = calendar[n_train - 1]
    val_dates = calendar[n_train + embargo : n_train + embargo + n_val]
    test_first = calendar[n_dates - n_test]
    train = frame.filter(pl.col("date") <= train_end)
    val = None
    if n_val:
        val = frame.filter(pl.col("date").is_between(val_dates[0], val_dates[-1]))
    test = frame.filter(pl.col("date") >= test_first)
    return Split(train=train, val=val, test=test, source=frame)
