"""Whole runs from a RunConfig: load data, split, fit, evaluate, save; and model leaderboards."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepfin.backtest import BacktestConfig, forecasts_from_predictions
from deepfin.backtest import run_backtest as trade
from deepfin.config import DataConfig, ForecastConfig, RunConfig
from deepfin.data.chunks import parquet_columns, streams
from deepfin.data.columns import PRICE_FIELDS, find_alias
from deepfin.data.features import DEFAULT_FEATURES, FACTOR_HISTORY, FACTORS, required_columns
from deepfin.data.io import PriceSource
from deepfin.data.panel import Panel
from deepfin.data.samples import load_prices
from deepfin.runs.files import CONFIG, run_header, write_frame, write_json
from deepfin.runs.lock import run_lock
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.preprocess import check_suspects
from deepfin.tasks.forecasting.resume import check_resumed_settings, check_run_dir
from deepfin.tasks.forecasting.walk_forward import walk_forward
from deepfin.training import distributed

log = logging.getLogger(__name__)


def open_prices(config: DataConfig) -> tuple[PriceSource, dict[str, Any], set[str]]:
    """The source a run reads, how to read it, and the price columns it has.

    A long Parquet file stays a path and is streamed in chunks; anything else is read and
    validated once here.
    """
    if streams(config.source, config.layout):
        names = parquet_columns(config.source)
        named = set(config.columns.values())
        roles = {
            role
            for role in PRICE_FIELDS
            if config.columns.get(role) in names or (find_alias(names, role) not in (None, *named))
        }
        read = {"columns": dict(config.columns) or None, "ffill_limit": config.ffill_limit}
        return config.source, read, roles
    frame = load_prices(
        config.source,
        columns=dict(config.columns) or None,
        layout=config.layout,
        ffill_limit=config.ffill_limit,
    )
    return frame, {"layout": "long", "ffill_limit": config.ffill_limit}, set(frame.columns)


def prepare_run(config: RunConfig) -> tuple[RunConfig, Panel]:
    """The run's prices as a Panel split by date, and the config with the features they feed."""
    source, read, roles = open_prices(config.data)
    config = dataclasses.replace(config, forecast=usable_features(config.forecast, roles))
    forecaster = Forecaster.from_config(config.forecast, config.training)
    panel = forecaster.prepare(
        source,
        val_fraction=config.split.val_fraction,
        test_fraction=config.split.test_fraction,
        embargo=config.split.embargo if config.split.embargo >= 0 else None,
        tickers=config.data.tickers,
        max_tickers=config.data.max_tickers,
        **read,
    )
    return config, panel


def usable_features(config: ForecastConfig, columns: set[str]) -> ForecastConfig:
    """The default features the data can feed: closes-only files leave out volume and range.

    Features the user chose are kept as chosen, so a missing column is an error that names it.
    """
    if config.features != DEFAULT_FEATURES:
        return config
    kept = tuple(f for f in config.features if required_columns((f,)) <= columns)
    if kept == config.features:
        return config
    left_out = [f for f in config.features if f not in kept]
    log.warning(
        "the data has no %s column(s): leaving out feature(s) %s (name features with --features)",
        "/".join(sorted(required_columns(tuple(left_out)) - columns)),
        ", ".join(left_out),
    )
    return dataclasses.replace(config, features=kept)


def new_run_dir(runs_dir: Path | str, label: str) -> Path:
    """A fresh, time-stamped folder under `runs_dir`."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(runs_dir) / f"{stamp}-{label}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(runs_dir) / f"{stamp}-{label}-{suffix}"
    return path


def run_forecast(
    config: RunConfig, *, run_dir: Path, resume: bool = False, panel: Panel | None = None
) -> Forecaster:
    """Fit on train (+val), evaluate on test, save everything into `run_dir` (locked meanwhile).

    `panel`: the run's prices already prepared (as `prepare_run` gives them with `config`).
    """
    with run_lock(run_dir) if distributed.is_main_process() else nullcontext():
        return _run_forecast(config, run_dir=run_dir, resume=resume, panel=panel)


def _run_forecast(
    config: RunConfig, *, run_dir: Path, resume: bool, panel: Panel | None
) -> Forecaster:
    # under DDP every rank trains; only the main one writes the run folder
    main_process = distributed.is_main_process()
    if main_process:
        check_run_dir(run_dir, resume=resume)  # before the data is read
    owned = panel is None
    if panel is None:
        config, panel = prepare_run(config)
    if main_process and resume:
        check_resumed_settings(run_dir, config, panel.describe())
    forecaster = Forecaster.from_config(config.forecast, config.training)
    forecaster.check_outcomes(panel, part="test")  # before, not after, the training
    split = panel.describe()
    if main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "run.json", {**config.to_dict(), "split": split})
    forecaster.fit(panel, checkpoint_dir=run_dir / "checkpoint", resume=resume)
    if main_process:
        if owned:  # the test windows need only their own rows: the training rows can go
            panel = panel.test_panel(history=FACTOR_HISTORY)
        forecaster.evaluate(panel)
        forecaster.save(run_dir)
        # the rows each part held, and the forecast origins that were actually scored
        write_json(
            run_dir / "run.json",
            {**config.to_dict(), "split": split, "scored": forecaster.scored_},
        )
    return forecaster


def run_backtest(
    config: RunConfig, *, models: list[str], strategy: BacktestConfig, run_dir: Path
) -> dict[str, Any]:
    """Walk-forward forecasts of every model, traded with costs; all saved into `run_dir`."""
    with run_lock(run_dir):
        return _run_backtest(config, models=models, strategy=strategy, run_dir=run_dir)


def _run_backtest(
    config: RunConfig, *, models: list[str], strategy: BacktestConfig, run_dir: Path
) -> dict[str, Any]:
    check_run_dir(run_dir, resume=False)
    source, read, roles = open_prices(config.data)
    config = dataclasses.replace(config, forecast=usable_features(config.forecast, roles))
    forecaster = Forecaster.from_config(config.forecast, config.training)
    rows = forecaster.collect(
        source, tickers=config.data.tickers, max_tickers=config.data.max_tickers, **read
    )
    calendar = np.unique(rows.stamps)
    first_test = calendar[int(len(calendar) * (1 - config.walk_forward.test_fraction))]
    # before any fold trains: the outcomes the folds will be scored on must be trustworthy
    tested = rows.known & (rows.stamps >= first_test)
    check_suspects(rows, tested, part="walk-forward test", bound=config.forecast.max_abs_log_return)
    run_dir.mkdir(parents=True, exist_ok=True)
    panel = len(rows.tickers) > 1
    if panel and strategy.top_k is None and strategy.top_fraction is None:
        # a panel strategy needs a book size: the top decile is the usual first look
        strategy = dataclasses.replace(strategy, top_fraction=0.1)
    write_json(
        run_dir / "run.json",
        {**config.to_dict(), "models": models, "strategy": dataclasses.asdict(strategy)},
    )
    result = walk_forward(
        rows,
        forecast=config.forecast,
        training=config.training,
        config=config.walk_forward,
        models=models,
        progress=config.training.progress,
    )
    first, last = result.predictions["date"].min(), result.predictions["date"].max()
    first_stamp = result.predictions["date"].to_physical().min()
    prices = rows.prices(np.flatnonzero(rows.stamps >= first_stamp))
    stats: dict[str, Any] = {}
    daily: pl.DataFrame | None = None
    # the naive forecast (a zero return) carries no signal to trade: the benchmark stands in;
    # on a panel the one-line factors are traded too, the bar a network's book has to clear
    factors = [name for name in FACTORS if panel and name in result.metrics]
    for name in [*dict.fromkeys([*models, "linear", *factors])]:
        forecasts = forecasts_from_predictions(result.predictions, model=name)
        traded = trade(forecasts=forecasts, prices=prices, config=strategy)
        stats[name] = {"gross": traded.stats["gross"], "net": traded.stats["net"]}
        columns = traded.daily.select(
            "date",
            pl.col("gross_return").alias(f"{name}_gross_return"),
            pl.col("net_return").alias(f"{name}_net_return"),
        )
        if daily is None:
            stats["benchmark"] = {"gross": traded.stats["benchmark"]}
            daily = traded.daily.select("date", "benchmark_return").join(columns, on="date")
        else:
            daily = daily.join(columns, on="date", how="left")
    assert daily is not None
    long_short = strategy.mode == "long_short"
    kind = "long/short" if long_short else "long/flat"
    book = (
        f"top {strategy.top_k or f'{strategy.top_fraction:.0%}'} by forecast"
        if panel
        else "by the sign of the forecast"
    )
    description = (
        f"Walk-forward out-of-sample forecasts from {first!s} to {last!s}, re-fitted every "
        f"{config.walk_forward.refit_every} days ({config.walk_forward.window} window); "
        f"{kind}, {book}, rebalanced every {strategy.rebalance_every} day(s), "
        f"{strategy.cost_bps:g} bps per unit traded. "
        + (
            "A long/short book is self-financing, so it is judged against cash (a zero "
            "return): its own Sharpe ratio is the test. The benchmark rows, the equal-weight "
            "universe, are context only."
            if long_short and panel
            else "Benchmark: " + ("the equal-weight universe." if panel else "buy-and-hold.")
        )
    )
    write_frame(run_dir / "predictions.parquet", result.predictions)
    write_frame(run_dir / "folds.csv", result.fold_metrics)
    write_frame(run_dir / "backtest_daily.parquet", daily)
    write_json(run_dir / "metrics.json", result.metrics)
    write_json(run_dir / "backtest.json", {"description": description, "stats": stats})
    write_json(
        run_dir / CONFIG,
        {
            **run_header("backtest"),
            **config.to_dict(),
            "models": models,
            "strategy": dataclasses.asdict(strategy),
        },
    )
    for name, forecaster in result.last.items():
        forecaster.save(run_dir / f"last_fold_{name}")
    return stats
