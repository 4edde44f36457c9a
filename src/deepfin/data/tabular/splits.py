"""Splits of a loan table: out-of-time by application date, else stratified; k folds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from deepfin.data.tabular.encoding import rows_at
from deepfin.errors import DataError


@dataclass(frozen=True)
class LoanSplit:
    """Train, optional validation and test rows, and how they were cut."""

    train: pl.DataFrame
    val: pl.DataFrame | None
    test: pl.DataFrame
    kind: str  # out_of_time | stratified
    seed: int
    date_col: str | None = None

    def describe(self) -> dict[str, Any]:
        """Rows (and dates, out of time) of each part, for run.json and reports."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        out: dict[str, Any] = {"kind": self.kind, "seed": self.seed}
        for name, part in parts.items():
            if part is None:
                continue
            out[name] = {"rows": part.height}
            if self.date_col is not None:
                dates = parse_dates(part, self.date_col)
                out[name]["dates"] = f"{dates.min()!s} .. {dates.max()!s}"
        return out


def parse_dates(frame: pl.DataFrame, date_col: str) -> pl.Series:
    """The date column as dates; ISO strings are parsed."""
    if date_col not in frame.columns:
        raise DataError(
            f"date column {date_col!r} is not in the data; its columns are {frame.columns}"
        )
    column = frame[date_col]
    if column.dtype == pl.String:
        parsed = column.str.to_date(strict=False)
        if parsed.null_count() > column.null_count():
            bad = (parsed.is_null() & column.is_not_null()).to_numpy()
            raise DataError(
                f"{int(bad.sum())} value(s) of date column {date_col!r} are not dates "
                f"({rows_at(bad)}); use ISO dates such as 2021-03-31"
            )
        column = parsed
    elif not (column.dtype == pl.Date or isinstance(column.dtype, pl.Datetime)):
        raise DataError(
            f"date column {date_col!r} has type {column.dtype}; it must hold dates or ISO strings"
        )
    if column.null_count():
        raise DataError(f"{column.null_count()} row(s) have no {date_col!r}; drop or fill them")
    return column


def split_loans(
    frame: pl.DataFrame,
    *,
    labels: np.ndarray,
    date_col: str | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> LoanSplit:
    """Latest applications to test (out of time) when dated, else a stratified random split."""
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or test_fraction + val_fraction >= 1:
        raise DataError(
            f"test_fraction={test_fraction} and val_fraction={val_fraction} must be in (0, 1) "
            "and [0, 1) and leave rows for training"
        )
    n_rows = frame.height
    if date_col is not None:
        # the norm in credit scoring: the model is judged on loans granted after its data
        dates = parse_dates(frame, date_col).to_numpy()
        order = np.argsort(dates, kind="stable")
        sorted_dates = dates[order]
        test_start = sorted_dates[int(n_rows * (1 - test_fraction))]
        val_start = sorted_dates[int(n_rows * (1 - test_fraction - val_fraction))]
        test = dates >= test_start
        val = (dates >= val_start) & ~test if val_fraction else np.zeros(n_rows, dtype=bool)
        kind = "out_of_time"
    else:
        rng = np.random.default_rng(seed)
        test, val = np.zeros(n_rows, dtype=bool), np.zeros(n_rows, dtype=bool)
        for label in (0, 1):
            rows = rng.permutation(np.flatnonzero(labels == label))
            n_test = round(len(rows) * test_fraction)
            n_val = round(len(rows) * val_fraction)
            test[rows[:n_test]] = True
            val[rows[n_test : n_test + n_val]] = True
        kind = "stratified"
    train = ~test & ~val
    for name, mask in (("train", train), ("test", test)) + (
        (("val", val),) if val_fraction else ()
    ):
        classes = np.unique(labels[mask])
        if len(classes) < 2:
            raise DataError(
                f"the {name} part has {int(mask.sum())} row(s) of a single class; "
                "it needs defaults and repaid loans: use more data or other fractions"
            )
    return LoanSplit(
        train=frame.filter(pl.Series(train)),
        val=frame.filter(pl.Series(val)) if val_fraction else None,
        test=frame.filter(pl.Series(test)),
        kind=kind,
        seed=seed,
        date_col=date_col,
    )


def stratified_folds(labels: np.ndarray, *, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of each of `folds` test folds, every fold with the same default rate."""
    if folds < 2:
        raise DataError(f"folds={folds}; cross-validation needs at least 2 folds")
    smallest = int(min(labels.sum(), len(labels) - labels.sum()))
    if smallest < folds:
        raise DataError(
            f"only {smallest} row(s) of the rarer class for {folds} folds; use fewer folds"
        )
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=np.int64)
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(labels == label))
        assignment[rows] = np.arange(len(rows)) % folds
    return [np.flatnonzero(assignment == fold) for fold in range(folds)]
