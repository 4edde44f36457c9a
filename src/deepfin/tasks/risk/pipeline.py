"""`deepfin risk var` end to end: the series (one ticker's, or a portfolio's), the walk-forward
VaR/ES forecasts, their backtests, the portfolio's risk by asset, and the run folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepfin.data.portfolio import (
    AssetReturns,
    asset_returns,
    check_weighted,
    portfolio_log_returns,
    read_portfolio_weights,
)
from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import DataError
from deepfin.runs.files import CONFIG, run_header, write_frame, write_json
from deepfin.runs.folders import check_fresh_folder
from deepfin.runs.lock import run_lock
from deepfin.tasks.risk.config import VarRunConfig
from deepfin.tasks.risk.evaluation import backtest_table
from deepfin.tasks.risk.portfolio import risk_by_asset, stress_scenarios
from deepfin.tasks.risk.var import TailNets, var_walk_forward
from deepfin.tasks.risk.var_model import VarModel
from deepfin.tasks.risk.volatility import Series, read_frame, series_of

log = logging.getLogger(__name__)


def run_var(config: VarRunConfig, *, run_dir: Path) -> dict[str, Any]:
    """Read the series, forecast each test day's VaR/ES walking forward, backtest, and save the
    forecasts and the table into `run_dir`."""
    check_fresh_folder(run_dir)
    with run_lock(run_dir):
        series, portfolio = read_portfolio(config)
        dates = series.dates
        start = dt.date.fromisoformat(config.walk_forward.test_start or str(dates[len(dates) // 2]))
        first = next((i for i, date in enumerate(dates) if date >= start), len(dates))
        horizon = config.var.horizon
        last_origin = len(dates) - 1 - horizon  # the last day whose next days are all known
        if first > last_origin:
            raise DataError(f"test_start {start} leaves no test day: the data ends {dates[-1]}")
        starts = list(range(first, last_origin + 1, config.walk_forward.refit_every))
        nets = TailNets(
            network=config.var.network,
            lookback=config.var.lookback,
            val_days=config.walk_forward.val_days,
            training=config.training,
            warm_start_epochs=config.walk_forward.warm_start_epochs,
            warm_start=config.walk_forward.warm_start,
            refit_folds=max(1, config.var.network_refit_every // config.walk_forward.refit_every),
        )
        forecasts = var_walk_forward(
            series.history,
            starts,
            last_origin,
            levels=config.var.levels,
            methods=config.var.methods,
            nets=nets,
            progress=config.training.progress,
            horizon=horizon,
        )
        # the return over the `horizon` days after each origin, dated by the origin's next day
        sums = np.concatenate([[0.0], np.cumsum(series.history.returns)])
        origins = np.arange(first, last_origin + 1)
        outcome = sums[origins + 1 + horizon] - sums[origins + 1]
        table = backtest_table(outcome, forecasts, horizon=horizon)
        columns: dict[str, Any] = {"date": dates[first + 1 : last_origin + 2], "return": outcome}
        for method, by_level in forecasts.items():
            for level, tail in by_level.items():
                columns[f"{method}_var_{level:g}"] = tail.var
                columns[f"{method}_es_{level:g}"] = tail.es
        if portfolio is not None:
            assets, weights = portfolio
            named = dict(config.var.stress)
            portfolio_metrics = {
                "tickers": assets.tickers,
                "weights": weights.tolist(),
                "risk_by_asset": risk_by_asset(assets, weights, max(config.var.levels)),
                "stress": stress_scenarios(dates, series.history.returns, named),
            }
        metrics = {
            "series": series.name,
            "test": [str(columns["date"][0]), str(columns["date"][-1])],
            "refits": len(starts),
            "horizon": horizon,
            "backtests": table.to_dicts(),
            **({"portfolio": portfolio_metrics} if portfolio is not None else {}),
        }
        kept = VarModel.fit(
            series.history,
            methods=config.var.methods,
            levels=config.var.levels,
            horizon=horizon,
            series=series.name,
            fitted_through=str(dates[-1]),
        )
        write_frame(run_dir / "predictions.parquet", pl.DataFrame(columns))
        write_json(run_dir / "metrics.json", metrics)
        saved = {**run_header("risk"), **dataclasses.asdict(config)}
        if kept is not None:  # what `load_run` and `deepfin serve` open
            saved["model"] = kept.to_config()
        write_json(run_dir / CONFIG, saved)
    return metrics


def read_portfolio(
    config: VarRunConfig,
) -> tuple[Series, tuple[AssetReturns, np.ndarray] | None]:
    """The series a VaR run forecasts: one ticker's, or a portfolio's (weights from a file, else
    equal) when the data holds several tickers and none is named; with its assets and weights."""
    frame = read_frame(config.data)
    tickers = frame["ticker"].unique(maintain_order=True).to_list()
    settings = config.var
    if settings.ticker or (len(tickers) == 1 and not settings.weights):
        return series_of(frame, config.data.source, ticker=settings.ticker, estimator="close"), None
    held = list(config.data.tickers) or tickers[: config.data.max_tickers or None]
    table = read_portfolio_weights(settings.weights) if settings.weights else None
    if table is not None:
        check_weighted(table, tickers, why="the data lacks")
        held = [ticker for ticker in tickers if table.get(ticker)]  # no other ticker's gaps
    frame = frame.filter(pl.col("ticker").is_in(held))
    start = config.walk_forward.test_start
    assets = asset_returns(frame, judged_before=dt.date.fromisoformat(start) if start else None)
    if table is not None:
        check_weighted(
            {t: w for t, w in table.items() if w}, assets.tickers, why="left out for missing prices"
        )
        weights = np.array([table[ticker] for ticker in assets.tickers])
    else:
        log.warning("no --weights: an equal-weight portfolio of %d tickers", len(assets.tickers))
        weights = np.full(len(assets.tickers), 1.0 / len(assets.tickers))
    log_returns = portfolio_log_returns(assets, weights)
    history = VolatilityHistory(log_returns, log_returns**2)
    name = f"portfolio of {len(assets.tickers)} tickers"
    return Series(name, assets.dates, history, "close"), (assets, weights)
