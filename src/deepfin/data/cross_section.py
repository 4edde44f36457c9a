"""Per-date normalisation across tickers: of labels (what a panel model learns) and of features.

Each date is normalised with the values of that date alone, so nothing crosses time: a
feature's cross-section is known at the date's close, and a label's cross-section is the
label. Ranking a cross-section is what a panel forecast is for; a model that learns
normalised labels is not pulled towards the market's move of the day, which no feature of a
single ticker predicts.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import polars as pl
from scipy import special

from deepfin.data.rows import PriceRows
from deepfin.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# none: raw; excess: minus the date's equal-weight mean; zscore: robust z (median, MAD),
# clipped; rank: rank-gauss (Gaussian quantiles of the date's ranks)
LABEL_NORMS = ("none", "excess", "zscore", "rank")
FEATURE_NORMS = ("none", "zscore", "rank")
MIN_NAMES = 5  # tickers below which a date has no cross-section to normalise over
Z_CLIP = 3.0  # a robust z beyond 3 is an outlier whose size the model should not chase
MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its standard deviation
COLUMNS_AT_ONCE = 16  # feature columns normalised together: bounds the frame's memory


def check_norms(*, features: str, labels: str) -> None:
    """Refuse an unknown normalisation by name."""
    if features not in FEATURE_NORMS:
        raise ConfigError(
            f"unknown cross_section_norm '{features}'; choose one of {list(FEATURE_NORMS)}"
        )
    if labels not in LABEL_NORMS:
        raise ConfigError(f"unknown label_norm '{labels}'; choose one of {list(LABEL_NORMS)}")


def _normalised(values: pl.Expr, how: str) -> pl.Expr:
    """`values` normalised within each date (nulls are left out and stay null)."""
    if how == "excess":
        return values - values.mean().over("date")
    if how == "zscore":
        median = values.median().over("date")
        spread = (values - median).abs().median().over("date") * MAD_TO_STD
        # a date whose values mostly agree has no spread: every value is at the centre
        z = pl.when(spread > 0).then((values - median) / spread).otherwise(0.0)
        return z.clip(-Z_CLIP, Z_CLIP)
    # rank-gauss: (rank - 1/2) / n lies strictly inside (0, 1), so every quantile is finite
    count = values.count().over("date")
    return ((values.rank("average").over("date") - 0.5) / count).map_batches(
        lambda share: pl.Series(special.ndtri(share.to_numpy())), return_dtype=pl.Float64
    )


def _normalise_columns(
    values: np.ndarray, stamps: np.ndarray, keep: np.ndarray, how: str
) -> np.ndarray:
    """Columns of `values` (rows, k) normalised per date over the rows marked in `keep`."""
    columns = {f"c{j}": values[:, j] for j in range(values.shape[1])}
    frame = pl.DataFrame({"date": stamps, **columns})
    masked = [
        pl.when(pl.lit(pl.Series(keep)) & pl.col(name).is_not_nan())
        .then(pl.col(name))
        .otherwise(None)
        .alias(name)
        for name in columns
    ]
    frame = frame.with_columns(masked)
    counts = frame.select(pl.col(name).count().over("date") for name in columns)
    # a date of too few names has no cross-section: its values sit at the centre, 0, rather
    # than keep raw numbers on another scale than every other date's
    out = frame.select(
        pl.when(counts[name] >= MIN_NAMES)
        .then(_normalised(pl.col(name), how))
        .otherwise(pl.when(pl.col(name).is_not_null()).then(0.0))
        .alias(name)
        for name in columns
    )
    # a value left out of its date (masked: a suspect outcome, a warm-up NaN) keeps its own
    result = out.to_numpy().astype(values.dtype)
    return np.where(np.isfinite(result), result, values)


def normalise_by_date(rows: PriceRows, *, features: str, labels: str) -> PriceRows:
    """`rows` with features and labels normalised within each date, as `cross_section` records.

    Labels are normalised over the rows that can be learned from (known, not suspect); a
    suspect outcome keeps its raw value, never trained on. Inputs are normalised over their
    finite values; warm-up NaN stay NaN.
    """
    check_norms(features=features, labels=labels)
    if (features, labels) == ("none", "none"):
        return rows
    done = [
        part
        for part, how in zip(rows.cross_section, (features, labels), strict=True)
        if part != "none" and how != "none"
    ]
    if done:
        raise ConfigError(f"these rows are normalised already ({rows.cross_section})")
    if rows.price_input:
        raise ConfigError(
            "cross-sectional normalisation needs the log_return target: a price level is not "
            "comparable across tickers"
        )
    _, per_date = np.unique(rows.stamps, return_counts=True)
    if len(rows.tickers) < MIN_NAMES or int(per_date.max()) < MIN_NAMES:
        raise DataError(
            f"cross-sectional normalisation needs at least {MIN_NAMES} tickers on a date; this "
            f"data has {len(rows.tickers)} ticker(s) and at most {int(per_date.max())} per date. "
            "Use label_norm=none and cross_section_norm=none for one series or a few"
        )
    if labels != "none":
        rows.targets[:] = _normalise_columns(rows.targets, rows.stamps, rows.labelled, labels)
    if features != "none":
        everything = np.ones(rows.n_rows, dtype=bool)
        for first in range(0, rows.features.shape[1], COLUMNS_AT_ONCE):
            block = slice(first, first + COLUMNS_AT_ONCE)
            rows.features[:, block] = _normalise_columns(
                rows.features[:, block], rows.stamps, everything, features
            )
    thin = int((per_date < MIN_NAMES).sum())
    if thin:
        log.warning(
            "%d date(s) have fewer than %d tickers: their normalised values are 0 (the centre)",
            thin,
            MIN_NAMES,
        )
    merged = tuple(
        how if how != "none" else part
        for part, how in zip(rows.cross_section, (features, labels), strict=True)
    )
    return dataclasses.replace(rows, cross_section=(merged[0], merged[1]))
