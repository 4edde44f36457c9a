"""Checks a forecaster makes on its rows: tickers too short to learn from, suspect outcomes, and
panels prepared with other settings."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfin.config import ForecastConfig
from deepfin.data.chunks import collect_rows
from deepfin.data.cross_section import normalise_by_date
from deepfin.data.features import feature_warmup
from deepfin.data.io import PriceSource
from deepfin.data.panel import Panel
from deepfin.data.rows import PriceRows
from deepfin.data.scaling import Scaler
from deepfin.errors import ConfigError, DataError, TrainingError

log = logging.getLogger(__name__)


def min_rows(config: ForecastConfig) -> int:
    """Rows a ticker needs for one labelled window."""
    return config.lookback + config.horizon + feature_warmup(config.features)


def short_tickers(rows: PriceRows, in_part: np.ndarray, config: ForecastConfig) -> np.ndarray:
    """Per row: its ticker has too few rows in the part for one window (named in a warning)."""
    needed = min_rows(config)
    counts = np.add.reduceat(in_part.astype(np.int64), rows.row_starts[:-1])
    short = np.flatnonzero(counts < needed)
    requirement = (
        f"need at least {needed} rows per ticker for lookback={config.lookback}, "
        f"horizon={config.horizon} and {feature_warmup(config.features)} warm-up rows of features"
    )
    if len(short) == len(counts):
        raise DataError(f"{requirement}; {rows.tickers[0]} has {counts[0]} training rows")
    if len(short):
        named = ", ".join(f"{rows.tickers[i]} ({counts[i]})" for i in short[:20])
        more = f" and {len(short) - 20} more" if len(short) > 20 else ""
        log.warning("%s; not training on %d ticker(s): %s%s", requirement, len(short), named, more)
    return np.repeat(counts < needed, np.diff(rows.row_starts))


def check_suspects(rows: PriceRows, known: np.ndarray, *, part: str, bound: float) -> None:
    """Fail when most of the `known` outcomes (a row mask) of `part` span suspect jumps."""
    n_known, n_suspect = int(known.sum()), int((known & rows.suspect).sum())
    if n_known and n_suspect > n_known / 2:
        raise DataError(
            f"{n_suspect} of the {n_known} outcomes in the {part} period span a one-day "
            f"move beyond max_abs_log_return={bound:g}, so most of it could not be scored. "
            "If such moves are real in this data (intraday bars, crypto, penny stocks), raise "
            "the bound (CLI: --max-abs-log-return)"
        )


def check_panel(panel: Panel, config: ForecastConfig) -> None:
    """A Panel must have been prepared with the forecaster's settings."""
    rows = panel.rows
    expected = {
        "lookback": config.lookback,
        "horizon": config.horizon,
        "inputs": len(config.features) + int(config.target == "price"),
        "scaler": (config.scaler, config.scale_per_ticker),
    }
    got = {
        "lookback": panel.lookback,
        "horizon": rows.horizon,
        "inputs": rows.features.shape[1],
        "scaler": (panel.feature_scaler.kind, panel.feature_scaler.per_ticker),
    }
    if got != expected:
        raise ConfigError(
            f"this panel was prepared with {got}, the forecaster expects {expected}; "
            "build it with forecaster.prepare(source)"
        )


def collect_for(
    config: ForecastConfig, source: PriceSource | PriceRows, *, labels: bool = True, **read: Any
) -> PriceRows:
    """The rows of `source` featurized for `config`; rows collected before are checked, copied.

    `labels`: normalise the labels as the config says (forecasts need only the inputs).
    """
    cfg = config
    wanted = (cfg.cross_section_norm, cfg.label_norm if labels else "none")
    if isinstance(source, PriceRows):
        expected = (*cfg.features, "close") if cfg.target == "price" else cfg.features
        if (source.names, source.horizon) != (expected, cfg.horizon):
            raise ConfigError(
                f"these rows hold {source.names} at horizon {source.horizon}; the "
                f"forecaster needs {expected} at horizon {cfg.horizon}"
            )
        done_features, done_labels = source.cross_section
        if done_features not in ("none", wanted[0]) or done_labels not in ("none", cfg.label_norm):
            raise ConfigError(
                f"these rows are normalised per date as {source.cross_section} (features, "
                f"labels); the forecaster needs {wanted}: collect them with its settings"
            )
        rows = source.copy()
    else:
        rows = collect_rows(
            source,
            features=cfg.features,
            horizon=cfg.horizon,
            target=cfg.target,
            max_abs_log_return=cfg.max_abs_log_return,
            **read,
        )
    # what is not normalised yet (rows of a walk-forward fold were, once, for every fold)
    features, labels_norm = (
        norm if done == "none" else "none"
        for norm, done in zip(wanted, rows.cross_section, strict=True)
    )
    return normalise_by_date(rows, features=features, labels=labels_norm)


def periods(
    config: ForecastConfig,
    train: PriceSource | PriceRows,
    val: PriceSource | PriceRows | None,
    val_origins: tuple[dt.date, dt.date] | None,
) -> tuple[tuple[Scaler, Scaler], PriceRows, np.ndarray, PriceRows | None, np.ndarray]:
    """Scalers fitted on a training period's rows; its rows and windows, and validation's.

    Windows of `val` made before `val_origins` are history: their inputs only.
    """
    rows = collect_for(config, train)
    usable = ~short_tickers(rows, np.ones(rows.n_rows, dtype=bool), config)
    scalers = rows.fit_scalers(
        usable,
        usable,
        kind=config.scaler,
        per_ticker=config.scale_per_ticker,
        lookback=config.lookback,
    )
    rows.scale(*scalers)
    ends = rows.window_ends(rows.labelled & usable, lookback=config.lookback)
    if val is None:
        return scalers, rows, ends, None, np.zeros(0, dtype=np.int64)
    val_rows = collect_for(config, val)
    val_rows.scale(*scalers)
    origins = val_rows.labelled & val_rows.made_between(val_origins)
    return scalers, rows, ends, val_rows, val_rows.window_ends(origins, lookback=config.lookback)


def check_forecasts(forecasts: np.ndarray, model: nn.Module) -> None:
    """Every forecast a finite number: a NaN is never written or scored as if it were one."""
    bad = int((~np.isfinite(forecasts)).sum())
    if not bad:
        return
    broken = any(not torch.isfinite(value).all() for value in model.state_dict().values())
    cause = (
        "the model's weights hold NaN or infinite values: the training diverged (lower "
        "--learning-rate, keep --grad-clip on) or the run's model.safetensors was altered"
        if broken
        else "some inputs are extreme enough to overflow the model; look for outliers in the data"
    )
    raise TrainingError(f"{bad} of {len(forecasts)} forecasts are NaN or infinite: {cause}")
