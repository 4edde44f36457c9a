"""Walk-forward evaluation: re-fit on a moving training window, forecast the next block, stitch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from rich.progress import Progress

from deepfin.config import ForecastConfig, WalkForwardConfig
from deepfin.data.features import feature_warmup
from deepfin.data.io import PriceSource
from deepfin.data.rows import PriceRows
from deepfin.errors import DataError
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.evaluation import score_predictions
from deepfin.training import TrainingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """Date ranges of one fold (inclusive)."""

    index: int
    train: tuple[dt.date, dt.date]
    val: tuple[dt.date, dt.date]
    test: tuple[dt.date, dt.date]


@dataclass
class WalkForwardResult:
    """Stitched out-of-sample forecasts, metrics overall and per fold, fitted state per fold."""

    folds: list[Fold]
    predictions: pl.DataFrame  # one row per forecast origin, with its fold
    metrics: dict[str, Any]  # per model, over all folds
    fold_metrics: pl.DataFrame  # per fold and model
    scaler_states: list[dict[str, Any]] = field(default_factory=list)  # per fold
    last: dict[str, Forecaster] = field(default_factory=dict)  # last fold's model per name


def make_folds(
    dates: list[dt.date], config: WalkForwardConfig, *, horizon: int, warmup: int = 0
) -> list[Fold]:
    """Folds over a sorted calendar; each test block follows its validation block.

    A validation block is `warmup + val_days` dates: its first `warmup` dates (feature warm-up
    and the first lookback) only feed inputs, so `val_days` dates of windows remain to score.
    """
    embargo = config.embargo if config.embargo >= 0 else horizon
    n_dates = len(dates)
    first_test = int(n_dates * (1 - config.test_fraction))
    if config.test_start:
        start = dt.date.fromisoformat(config.test_start)
        first_test = next((i for i, date in enumerate(dates) if date >= start), n_dates)
        if first_test >= n_dates - horizon:
            raise DataError(
                f"test_start {start} leaves no test day with a {horizon}-day outcome: the data "
                f"ends {dates[-1]}; choose an earlier test_start"
            )
    folds: list[Fold] = []
    # the last `horizon` dates have no outcome yet, so no forecast made on them can be scored
    last_origin = n_dates - 1 - horizon
    for test_start in range(first_test, last_origin + 1, config.refit_every):
        test_end = min(test_start + config.refit_every - 1, last_origin)
        val_end = test_start - embargo - 1
        val_start = val_end - (warmup + config.val_days) + 1
        train_end = val_start - embargo - 1
        train_start = 0 if config.window == "expanding" else train_end - config.train_days + 1
        if train_start < 0 or train_end - train_start < 1:
            raise DataError(
                f"fold {len(folds)} has no room for training: {n_dates} dates, test blocks "
                f"from date {first_test}, {warmup} + {config.val_days} validation days, embargo "
                f"{embargo}; "
                + (
                    _later_start(
                        dates,
                        config.test_start,
                        earliest=warmup + config.val_days + 2 * embargo + 2,
                    )
                    if config.test_start
                    else "lower test_fraction, val_days or train_days"
                )
            )
        folds.append(
            Fold(
                index=len(folds),
                train=(dates[train_start], dates[train_end]),
                val=(dates[val_start], dates[val_end]),
                test=(dates[test_start], dates[test_end]),
            )
        )
    return folds


def _later_start(dates: list[dt.date], test_start: str, *, earliest: int) -> str:
    """What to do when test_start leaves too few days before it: a start that works, if any."""
    if earliest < len(dates) - 1:
        return f"choose a test_start of {dates[earliest]} or later (or fewer val_days)"
    return (
        f"the data holds {len(dates)} days, too few for {earliest} days of history before the "
        "first test day: give a longer series or fewer val_days"
    )


def walk_forward(
    prices: PriceSource | PriceRows,
    *,
    forecast: ForecastConfig,
    training: TrainingConfig,
    config: WalkForwardConfig,
    models: list[str],
    progress: bool = True,
) -> WalkForwardResult:
    """Re-fit every model on each fold's training rows and forecast its test block.

    `prices`: a price source, or the unscaled rows a forecaster collected from one. Features
    are computed once over each ticker's whole history; each fold copies out its dates.
    """
    rows = (
        prices
        if isinstance(prices, PriceRows)
        else Forecaster.from_config(forecast, training).collect(prices)
    )
    dates = rows.as_dates(np.unique(rows.stamps)).to_list()
    # input history a block needs before its first forecast origin
    context = forecast.lookback + feature_warmup(forecast.features) + 1
    folds = make_folds(dates, config, horizon=forecast.horizon, warmup=context)
    quiet = dataclasses.replace(training, progress=False)  # one progress display at a time
    tables: list[pl.DataFrame] = []
    fold_rows: list[dict[str, Any]] = []
    scaler_states: list[dict[str, Any]] = []
    previous: dict[str, Forecaster] = {}
    with Progress(disable=not progress) as bar:
        task = bar.add_task("walk-forward folds", total=len(folds) * len(models))
        for fold in folds:
            first = dates[max(0, dates.index(fold.test[0]) - context)]
            beyond = dates[min(len(dates) - 1, dates.index(fold.test[1]) + forecast.horizon)]
            train = rows.between(*map(rows.stamp, fold.train))
            val = rows.between(*map(rows.stamp, fold.val))
            test = rows.between(rows.stamp(first), rows.stamp(beyond))
            fold_table: pl.DataFrame | None = None
            for name in models:
                forecaster, table = _fit_fold(
                    name, fold, train, val, test, forecast, quiet, config, previous.get(name)
                )
                previous[name] = forecaster
                fold_table = (
                    table
                    if fold_table is None
                    else fold_table.join(
                        table.select("date", "ticker", f"{name}_log_return", f"{name}_price"),
                        on=["date", "ticker"],
                        how="left",
                    )
                )
                bar.advance(task)
            assert fold_table is not None
            scaler_states.append(previous[models[0]].feature_scaler_.to_dict())
            names = [*dict.fromkeys([*models, "linear", "naive"])]
            scores = score_predictions(fold_table, names, horizon=forecast.horizon)
            fold_rows += [_fold_row(fold, name, scores[name]) for name in names]
            tables.append(fold_table.with_columns(pl.lit(fold.index).alias("fold")))
    predictions = pl.concat(tables)
    names = [*dict.fromkeys([*models, "linear", "naive"])]
    return WalkForwardResult(
        folds=folds,
        predictions=predictions,
        metrics=score_predictions(predictions, names, horizon=forecast.horizon),
        fold_metrics=pl.DataFrame(fold_rows),
        scaler_states=scaler_states,
        last=previous,
    )


def _fit_fold(
    name: str,
    fold: Fold,
    train: PriceRows,
    val: PriceRows,
    test: PriceRows,
    forecast: ForecastConfig,
    training: TrainingConfig,
    config: WalkForwardConfig,
    previous: Forecaster | None,
) -> tuple[Forecaster, pl.DataFrame]:
    warm = config.warm_start and previous is not None
    if warm and config.warm_start_epochs:
        training = dataclasses.replace(training, epochs=config.warm_start_epochs)
    forecaster = Forecaster.from_config(forecast.for_model(name), training)
    forecaster.fit(train, val, warm_start=previous.model_ if warm and previous else None)
    forecaster.evaluate(test, origins=fold.test)
    assert forecaster.predictions_ is not None
    log.info("fold %d %s: %s", fold.index, name, forecaster.metrics_)
    return forecaster, forecaster.predictions_


def _fold_row(fold: Fold, name: str, scores: dict[str, Any]) -> dict[str, Any]:
    return {
        "fold": fold.index,
        "model": name,
        "train_start": str(fold.train[0]),
        "train_end": str(fold.train[1]),
        "test_start": str(fold.test[0]),
        "test_end": str(fold.test[1]),
        "n": scores["n"],
        "return_rmse": scores["return_rmse"],
        "return_mae": scores["return_mae"],
        "directional_accuracy": scores["directional_accuracy"],
        "r2_oos": scores["r2_oos"],
        "ic_mean": scores.get("ic_mean"),
        "price_rmse": scores["price_rmse"],
    }
