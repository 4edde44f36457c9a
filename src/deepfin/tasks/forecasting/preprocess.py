"""Preprocessing a forecaster applies to every frame: causal features, the target, factors."""

from __future__ import annotations

import logging

import polars as pl

from deepfin.config import ForecastConfig
from deepfin.data.features import add_factors, add_features, add_target, feature_warmup
from deepfin.errors import DataError

log = logging.getLogger(__name__)


def featurize(frame: pl.DataFrame, config: ForecastConfig) -> pl.DataFrame:
    """Features, the target and its suspect-jump flags, the future close and factor signals."""
    frame = add_features(frame, config.features)
    frame = add_target(
        frame,
        horizon=config.horizon,
        target=config.target,
        max_abs_log_return=config.max_abs_log_return,
    )
    future = pl.col("close").shift(-config.horizon).over("ticker").alias("future_close")
    return add_factors(frame.with_columns(future))


def min_rows(config: ForecastConfig) -> int:
    """Rows a ticker needs for one labelled window."""
    return config.lookback + config.horizon + feature_warmup(config.features)


def drop_short_tickers(frame: pl.DataFrame, config: ForecastConfig) -> pl.DataFrame:
    """The frame without tickers too short for one labelled window, each named in a warning."""
    needed = min_rows(config)
    counts = frame.group_by("ticker", maintain_order=True).len()
    short = counts.filter(pl.col("len") < needed)
    requirement = (
        f"need at least {needed} rows per ticker for lookback={config.lookback}, "
        f"horizon={config.horizon} and {feature_warmup(config.features)} warm-up rows of features"
    )
    if short.height == counts.height:
        name, rows = short.row(0)
        raise DataError(f"{requirement}; {name} has {rows}")
    if short.height:
        log.warning(
            "%s; dropping %d ticker(s): %s",
            requirement,
            short.height,
            ", ".join(f"{n} ({r})" for n, r in short.iter_rows()),
        )
    return frame.filter(~pl.col("ticker").is_in(short["ticker"].implode()))
