"""Walk-forward volatility forecasts: every model re-fitted per fold on the days before its test
block, forecasting the average variance over the next `horizon` days at each test origin."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.progress import Progress

from deepfin.config import DataConfig
from deepfin.data.samples import load_prices
from deepfin.data.volatility import (
    VolatilityHistory,
    daily_variance,
    forward_mean,
    log_returns,
)
from deepfin.errors import DataError
from deepfin.models import MODELS, build_risk_model
from deepfin.runs.files import CONFIG, run_header, write_frame, write_json
from deepfin.runs.folders import check_fresh_folder
from deepfin.runs.lock import run_lock
from deepfin.tasks.forecasting.walk_forward import Fold, make_folds
from deepfin.tasks.risk.config import VolatilityRunConfig
from deepfin.tasks.risk.evaluation import score_volatility
from deepfin.tasks.risk.networks import WARMUP, NetworkFit, fit_network, forecast_network

log = logging.getLogger(__name__)


@dataclass
class Series:
    """One price series as the risk models read it: dates (N,) and its history."""

    name: str
    dates: list[dt.date]
    history: VolatilityHistory
    estimator: str  # the variance estimator used (close-to-close if the range was missing)


@dataclass
class VolatilityResult:
    """Stitched out-of-sample forecasts, their scores, the folds and the failed GARCH fits."""

    predictions: pl.DataFrame  # date, fold, realised, one column per model
    metrics: dict[str, Any]
    folds: list[Fold]
    failed_fits: dict[str, int] = field(default_factory=dict)


def read_series(data: DataConfig | str, *, ticker: str, estimator: str) -> Series:
    """The one series of `data` (a built-in data set or a file, or a run's data settings) the
    risk models read."""
    data = DataConfig(source=data) if isinstance(data, str) else data
    return series_of(read_frame(data), data.source, ticker=ticker, estimator=estimator)


def read_frame(data: DataConfig) -> pl.DataFrame:
    """The prices a risk run reads, validated, in the long layout."""
    return load_prices(
        data.source,
        columns=dict(data.columns) or None,
        layout=data.layout,
        ffill_limit=data.ffill_limit,
    )


def series_of(frame: pl.DataFrame, source: str, *, ticker: str, estimator: str) -> Series:
    """The series of `ticker` in `frame` (or its only one) as the risk models read it."""
    tickers = frame["ticker"].unique(maintain_order=True).to_list()
    if ticker:
        if ticker not in tickers:
            shown = ", ".join(map(str, tickers[:10]))
            raise DataError(f"no ticker {ticker!r} in {source}; it has {len(tickers)}: {shown} ...")
        frame = frame.filter(pl.col("ticker") == ticker)
    elif len(tickers) > 1:
        shown = ", ".join(map(str, tickers[:5]))
        raise DataError(
            f"{source} holds {len(tickers)} tickers ({shown}, ...); a volatility forecast is of "
            "one series: name it with --ticker"
        )
    variance, used = daily_variance(frame, estimator)
    returns = log_returns(frame)
    dates = frame["date"].cast(pl.Date).to_list()[1:]  # the first day has no return
    return Series(
        name=ticker or str(tickers[0]),
        dates=dates,
        history=VolatilityHistory(returns[1:], variance[1:]),
        estimator=used,
    )


def volatility_walk_forward(
    series: Series, config: VolatilityRunConfig, *, progress: bool = True
) -> VolatilityResult:
    """Every model's forecasts on every fold's test block, and their scores."""
    settings = config.volatility
    horizon, lookback = settings.horizon, settings.lookback
    folds = make_folds(series.dates, config.walk_forward, horizon=horizon, warmup=lookback + WARMUP)
    index = {date: position for position, date in enumerate(series.dates)}
    classical = {
        name: build_risk_model(name) for name in settings.models if MODELS[name].task == "risk"
    }
    networks: dict[str, NetworkFit] = {}
    realised = forward_mean(series.history.variance, horizon)
    quiet = dataclasses.replace(config.training, progress=False)
    tables: list[pl.DataFrame] = []
    with Progress(disable=not progress) as bar:
        task = bar.add_task("volatility folds", total=len(folds) * len(settings.models))
        for fold in folds:
            origins = np.arange(index[fold.test[0]], index[fold.test[1]] + 1)
            columns: dict[str, Any] = {
                "date": [series.dates[i] for i in origins],
                "fold": np.full(origins.size, fold.index),
                "realised": realised[origins],
            }
            for name in settings.models:
                if name in classical:
                    model = classical[name]
                    # the days before the test block; a target past them is never read
                    model.fit(series.history, end=int(origins[0]) - 1, horizon=horizon)
                    forecast = model.forecast(series.history, origins, horizon=horizon)
                else:
                    training = quiet
                    if name in networks and config.walk_forward.warm_start_epochs:
                        epochs = config.walk_forward.warm_start_epochs
                        training = dataclasses.replace(quiet, epochs=epochs)
                    networks[name] = fit_network(
                        name,
                        series.history,
                        train_end=index[fold.train[1]],
                        val=(index[fold.val[0]], index[fold.val[1]]),
                        horizon=horizon,
                        lookback=lookback,
                        loss=settings.loss,
                        params=_params(name, settings.model_params),
                        training=training,
                        previous=networks.get(name) if config.walk_forward.warm_start else None,
                    )
                    forecast = forecast_network(
                        networks[name], series.history, origins, lookback=lookback
                    )
                columns[name] = forecast
                bar.advance(task)
            tables.append(pl.DataFrame(columns))
    predictions = pl.concat(tables)
    failures = {name: getattr(model, "failed_fits_", 0) for name, model in classical.items()}
    failed = {name: count for name, count in failures.items() if count}
    return VolatilityResult(
        predictions=predictions,
        metrics=score_volatility(predictions, list(settings.models), horizon=horizon),
        folds=folds,
        failed_fits=failed,
    )


def _params(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The network settings `name` takes, of those given for every network."""
    fields = {f.name for f in dataclasses.fields(MODELS[name].config)}
    return {key: value for key, value in given.items() if key in fields}


def run_volatility(config: VolatilityRunConfig, *, run_dir: Path) -> VolatilityResult:
    """Read the series, walk forward, and save forecasts and scores into `run_dir`."""
    check_fresh_folder(run_dir)
    with run_lock(run_dir):
        settings = config.volatility
        series = read_series(config.data, ticker=settings.ticker, estimator=settings.estimator)
        result = volatility_walk_forward(series, config, progress=config.training.progress)
        run_dir.mkdir(parents=True, exist_ok=True)
        result.metrics |= {
            "series": series.name,
            "estimator": series.estimator,
            "failed_fits": result.failed_fits,
            "test": [str(result.predictions["date"].min()), str(result.predictions["date"].max())],
            "folds": len(result.folds),
        }
        if series.estimator != "close":
            result.metrics["note"] = (
                f"The {series.estimator} estimator reads the day's range and misses the overnight "
                "move, while GARCH and EWMA forecast close-to-close variance: their losses "
                "against this proxy are tilted against them (HAR and the networks learn the "
                "proxy itself)."
            )
        write_frame(run_dir / "predictions.parquet", result.predictions)
        write_json(run_dir / "metrics.json", result.metrics)
        write_json(run_dir / CONFIG, {**run_header("risk"), **dataclasses.asdict(config)})
    return result
