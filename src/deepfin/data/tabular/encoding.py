"""Loan tables: read, map the target, infer column kinds, encode with statistics of train only."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepfin.data.files import frame_from, read_table
from deepfin.data.io import MAX_VALUE
from deepfin.errors import ConfigError, DataError

log = logging.getLogger(__name__)

LoanSource = str | Path | pl.DataFrame | Any  # Any: a pandas DataFrame
OTHER, MISSING = "(other)", "(missing)"
UNKNOWN_POLICIES = ("error", "other")
# a string column is meant as numbers when this share of its values parse as numbers
NUMERIC_LOOKING = 0.95


def read_loans(source: LoanSource) -> pl.DataFrame:
    """A loan table from a CSV or Parquet path, a polars or a pandas DataFrame."""
    return frame_from(
        source, what="loans", read=lambda path: read_table(path, "loans"), files="CSV or Parquet"
    )


def category_text(column: pl.Series) -> pl.Series:
    """Values as strings; whole floats print as integers so 2.0 and 2 are one category."""
    if column.dtype.is_float():
        finite = column.drop_nulls().drop_nans()
        if finite.len() and (finite == finite.round(0)).all():
            column = column.fill_nan(None).cast(pl.Int64)
    return column.cast(pl.String)


def binary_target(
    frame: pl.DataFrame, target: str, *, default_value: str | None = None
) -> np.ndarray:
    """The target as 0/1 (1 = default); `default_value` names the value that means default."""
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} is not in the data; its columns are {frame.columns}"
        )
    text = category_text(frame[target])  # NaN becomes missing here too
    if text.null_count():
        raise DataError(
            f"target {target!r} is missing in {text.null_count()} row(s); drop those rows "
            "(outcome not yet known) or fill them"
        )
    values = sorted(text.unique().to_list())
    if len(values) > 2:
        raise DataError(
            f"target {target!r} is not binary: it has {len(values)} values such as {values[:5]}"
        )
    if default_value is not None:
        if str(default_value) not in values:
            raise DataError(
                f"default_value {default_value!r} does not occur in target {target!r}, "
                f"whose values are {values}"
            )
        labels = (text == str(default_value)).to_numpy()
    elif set(values) <= {"0", "1"} or set(values) <= {"false", "true"}:
        labels = text.is_in(["1", "true"]).to_numpy()
    else:
        raise DataError(
            f"target {target!r} has values {values}; say which one means default with "
            "default_value= (CLI: --default-value), e.g. default_value='bad'"
        )
    if len(values) < 2 or labels.all() or not labels.any():
        raise DataError(
            f"target {target!r} has a single class ({values[0]!r} in all {len(labels)} rows); "
            "a default model needs both defaulted and repaid loans"
        )
    return labels.astype(np.int64)


def numeric_values(frame: pl.DataFrame, column: str) -> np.ndarray:
    """A column as float64 (missing as NaN); strings must parse as numbers."""
    series = frame[column]
    if series.dtype == pl.Boolean:
        series = series.cast(pl.Int8)
    if not series.dtype.is_numeric():
        parsed = series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        bad = (parsed.is_null() & series.is_not_null()).to_numpy()
        if bad.any():
            raise DataError(
                f"column {column!r} must be numeric but {int(bad.sum())} value(s) are not "
                f"numbers ({rows_at(bad)}); fix them or declare it categorical"
            )
        series = parsed
    values = series.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
    # an infinite amount is a broken export, not a missing value; none is a real figure
    absurd = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAX_VALUE)
    if absurd.any():
        raise DataError(
            f"column {column!r} has {int(absurd.sum())} infinite or absurd (beyond "
            f"{MAX_VALUE:g}) value(s) ({rows_at(absurd)}); fix them, or leave them empty "
            "to be treated as missing"
        )
    return values


def rows_at(mask: np.ndarray) -> str:
    """Where the marked rows are, by data row number: the values may be a person's."""
    rows = np.flatnonzero(mask)[:5] + 1
    return "data row(s) " + ", ".join(map(str, rows)) + (" ..." if mask.sum() > 5 else "")


def infer_columns(
    frame: pl.DataFrame,
    *,
    exclude: Sequence[str],
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Feature columns split into numeric and categorical; named lists override the guess."""
    named = [*(numeric or []), *(categorical or [])]
    unknown = sorted(set(named) - set(frame.columns))
    if unknown:
        raise DataError(f"column(s) {unknown} named as features are not in the data")
    numeric_out, categorical_out = list(numeric or []), list(categorical or [])
    for column in frame.columns:
        if column in exclude or column in named:
            continue
        series = frame[column]
        if series.dtype.is_numeric() or series.dtype == pl.Boolean:
            numeric_out.append(column)
        elif series.dtype in (pl.String, pl.Categorical) or isinstance(series.dtype, pl.Enum):
            present = series.drop_nulls().cast(pl.String).str.strip_chars()
            parsed = present.cast(pl.Float64, strict=False)
            share = float(parsed.is_not_null().sum()) / max(present.len(), 1)
            if present.len() and share == 1.0:
                numeric_out.append(column)
            elif share >= NUMERIC_LOOKING:
                text = series.cast(pl.String).str.strip_chars()
                bad = text.cast(pl.Float64, strict=False).is_null() & text.is_not_null()
                raise DataError(
                    f"column {column!r} looks numeric but {int(bad.sum())} value(s) are not "
                    f"numbers ({rows_at(bad.to_numpy())}); fix them, or declare the column "
                    "categorical"
                )
            else:
                categorical_out.append(column)
        else:
            log.info(
                "skipping column %r of type %s: neither numeric nor text", column, series.dtype
            )
    if not numeric_out and not categorical_out:
        raise DataError("no feature columns are left; the table has only target and excluded ones")
    return numeric_out, categorical_out


def imputation_value(present: np.ndarray, *, min_rows: int) -> float:
    """The fill for missing numbers: the mean of the `min_rows` middle values, no one's value.

    A median of an odd count is one applicant's value (an exact income, a phone number). The
    mean of the k middle values (k: the rows a category level needs to be saved) describes k
    rows; when it still equals a value fewer than k rows hold (the middle of 4, 5, 6 is 5), it
    moves halfway to the next distinct value, where no row lies. A value k rows share stays.
    """
    ordered = np.sort(present)
    start = max((ordered.size - min_rows) // 2, 0)
    fill = float(ordered[start : start + min_rows].mean())
    values, counts = np.unique(ordered, return_counts=True)
    at = int(np.searchsorted(values, fill))
    if at < values.size and values[at] == fill and counts[at] < min_rows:
        neighbour = values[at + 1] if at + 1 < values.size else values[at - 1]
        fill = float((fill + neighbour) / 2)
    return fill


class TabularEncoder:
    """Imputation plus missing flags, standardisation and one-hot categories.

    Nothing saved is one applicant's value: a category level is kept only when at least
    `min_category_count` training rows hold it (rarer ones are pooled as "(other)"), and the
    fill for missing numbers is a statistic of that many rows (see `imputation_value`).
    """

    def __init__(self, *, min_category_count: int = 10, clip: float = 5.0) -> None:
        self.min_category_count = min_category_count
        self.clip = clip  # standardised values are clipped so one outlier cannot dominate

    def fit(
        self, frame: pl.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str]
    ) -> TabularEncoder:
        """Learn fills, means, scales and category levels from the training rows."""
        self.numeric_: dict[str, dict[str, Any]] = {}
        constant: list[str] = []
        for column in numeric:
            values = numeric_values(frame, column)
            present = values[np.isfinite(values)]
            if present.size < self.min_category_count:
                raise DataError(
                    f"numeric column {column!r} has {present.size} value(s) in the training rows, "
                    f"under min_category_count={self.min_category_count}: its statistics would "
                    "describe a handful of people; drop it or lower min_category_count"
                )
            fill = imputation_value(present, min_rows=self.min_category_count)
            filled = np.where(np.isfinite(values), values, fill)
            scale = float(filled.std())
            constant += [column] if scale == 0 else []
            self.numeric_[column] = {
                "fill": fill,
                "mean": float(filled.mean()),
                "scale": scale if scale > 0 else 1.0,
                "missing_flag": bool(present.size < values.size),
            }
        self.categorical_: dict[str, list[str]] = {}
        for column in categorical:
            text = category_text(frame[column])
            counts = text.drop_nulls().value_counts()
            keep = counts.filter(pl.col("count") >= self.min_category_count)[column]
            # rare levels are pooled: they overfit, and a level held by a handful of rows
            # can single a person out in the saved encoder
            levels = sorted(keep.to_list())
            if keep.len() < counts.height:
                levels.append(OTHER)
            if text.null_count():
                levels.append(MISSING)
            self.categorical_[column] = levels
        constant += [name for name, levels in self.categorical_.items() if len(levels) < 2]
        self._check_varies(constant)
        return self

    def _check_varies(self, constant: list[str]) -> None:
        """Warn of columns constant in the training rows; refuse when no column varies."""
        if not constant:
            return
        if len(constant) == len(self.numeric_) + len(self.categorical_):
            raise DataError(
                f"no feature varies in the training rows ({', '.join(constant)} each hold one "
                "value): there is nothing to learn a default from; check the data"
            )
        log.warning(
            "constant in the training rows, so of no use to the model: %s", ", ".join(constant)
        )

    @property
    def feature_names_(self) -> list[str]:
        """Names of the encoded columns, in order."""
        names = []
        for column, stats in self.numeric_.items():
            names += [column, f"{column} {MISSING}"] if stats["missing_flag"] else [column]
        for column, levels in self.categorical_.items():
            names += [
                f"{column} {level}" if level in (OTHER, MISSING) else f"{column}={level}"
                for level in levels
            ]
        return names

    @property
    def feature_sources_(self) -> list[str]:
        """For each encoded column, the input column it came from."""
        sources = []
        for column, stats in self.numeric_.items():
            sources += [column] * (2 if stats["missing_flag"] else 1)
        for column, levels in self.categorical_.items():
            sources += [column] * len(levels)
        return sources

    @property
    def columns_(self) -> list[str]:
        """The input columns the encoder needs."""
        return [*self.numeric_, *self.categorical_]

    def transform(self, frame: pl.DataFrame, *, unknown: str = "error") -> np.ndarray:
        """Encode rows into a float32 (N, F) matrix; `unknown` says what unseen categories do."""
        if unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"unknown={unknown!r}; choose one of {list(UNKNOWN_POLICIES)}")
        absent = [column for column in self.columns_ if column not in frame.columns]
        if absent:
            raise DataError(f"column(s) {absent} used in training are missing from the data")
        blocks: list[np.ndarray] = []
        for column, stats in self.numeric_.items():
            values = numeric_values(frame, column)
            missing = ~np.isfinite(values)
            fill = stats["fill"] if "fill" in stats else stats["median"]  # earlier run folders
            filled = np.where(missing, fill, values)
            scaled = np.clip((filled - stats["mean"]) / stats["scale"], -self.clip, self.clip)
            blocks.append(scaled[:, None])
            if stats["missing_flag"]:
                blocks.append(missing[:, None].astype(np.float64))
        for column, levels in self.categorical_.items():
            blocks.append(self._one_hot(frame, column, levels, unknown))
        if not blocks:
            return np.zeros((frame.height, 0), dtype=np.float32)
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)

    def _one_hot(self, frame: pl.DataFrame, column: str, levels: list[str], unknown: str) -> Any:
        text = category_text(frame[column]).to_numpy().astype(object)
        index = {level: position for position, level in enumerate(levels)}
        is_missing = np.array([value is None for value in text])
        known = np.array([value in index for value in text]) & ~is_missing
        unseen = ~known & ~is_missing
        # with a rare level, an unlisted value may be one pooled in training: it is "(other)"
        if unseen.any() and unknown == "error" and OTHER not in index:
            raise DataError(
                f"column {column!r} has {int(unseen.sum())} value(s) never seen in training "
                f"({rows_at(unseen)}); fix them, retrain, or score with unknown='other' "
                "(CLI: --unknown-categories other) to treat them as a rare category"
            )
        codes = np.full(len(text), -1)
        codes[known] = [index[value] for value in text[known]]
        codes[unseen] = index.get(OTHER, -1)  # no rare level in training: all zeros
        codes[is_missing] = index.get(MISSING, -1)
        out = np.zeros((len(text), len(levels)))
        rows = np.flatnonzero(codes >= 0)
        out[rows, codes[rows]] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for preprocess.json."""
        return {
            "min_category_count": self.min_category_count,
            "clip": self.clip,
            "numeric": self.numeric_,
            "categorical": self.categorical_,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TabularEncoder:
        """Rebuild a fitted encoder from `to_dict` output."""
        encoder = cls(min_category_count=payload["min_category_count"], clip=payload["clip"])
        encoder.numeric_ = dict(payload["numeric"])
        encoder.categorical_ = {k: list(v) for k, v in payload["categorical"].items()}
        return encoder
