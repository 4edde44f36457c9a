"""One-day value-at-risk and expected shortfall, walking forward: historical simulation, GJR-GARCH
with Student-t errors, and filtered historical simulation; each forecast for day t+1 is made
with days <= t and judged against day t+1's return."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.progress import Progress
from scipy import stats

from deepfin.data.portfolio import (
    AssetReturns,
    asset_returns,
    portfolio_log_returns,
    read_weights,
)
from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import ConfigError, DataError
from deepfin.metrics.risk import (
    acerbi_szekely_z2,
    breaches,
    check_level,
    christoffersen,
    fz0_loss,
    kupiec,
    traffic_light,
)
from deepfin.metrics.significance import diebold_mariano_losses
from deepfin.models import build_risk_model
from deepfin.models.risk.garch import PERCENT, GARCHVolatility
from deepfin.runs.files import CONFIG, run_header, write_frame, write_json
from deepfin.runs.folders import check_fresh_folder
from deepfin.runs.lock import run_lock
from deepfin.tasks.risk.config import VarRunConfig
from deepfin.tasks.risk.portfolio import risk_by_asset, stress_scenarios
from deepfin.tasks.risk.tail_networks import (
    TAIL_METHODS,
    TailFit,
    fit_tail_network,
    forecast_tail,
)
from deepfin.tasks.risk.volatility import Series, read_frame, series_of
from deepfin.training import TrainingConfig

log = logging.getLogger(__name__)

VAR_METHODS = ("historical", "garch_t", "fhs", "quantile", "fz0")  # the last two: nets
HISTORICAL_DAYS = 500  # two years of returns: the window historical simulation reads


@dataclass(frozen=True)
class TailNets:
    """How the quantile and fz0 methods' nets are built and trained each fold."""

    network: str
    lookback: int
    val_days: int
    training: TrainingConfig
    warm_start_epochs: int = 0  # epochs of every fold after the first; 0 keeps training.epochs
    warm_start: bool = True  # each fit starts from the last fit's weights
    refit_folds: int = 1  # fit the nets every this many folds; between fits they read new days


@dataclass(frozen=True)
class Tail:
    """VaR and ES (N,) as positive losses at one level."""

    var: np.ndarray
    es: np.ndarray


def empirical_tail(sample: np.ndarray, level: float) -> tuple[float, float]:
    """VaR and ES (positive) of the empirical distribution of `sample` at `level`."""
    tail = 1.0 - level
    quantile = float(np.quantile(sample, tail))
    below = sample[sample <= quantile]
    return -quantile, -float(below.mean())


def student_t_tail(level: float, dof: float) -> tuple[float, float]:
    """VaR and ES (positive) of a unit-variance Student-t at `level`."""
    tail = 1.0 - level
    scale = math.sqrt((dof - 2.0) / dof)  # t_nu has variance nu / (nu - 2)
    quantile = float(stats.t.ppf(tail, dof))
    shortfall = float(stats.t.pdf(quantile, dof)) / tail * (dof + quantile**2) / (dof - 1.0)
    return -quantile * scale, shortfall * scale


def historical_tails(
    history: VolatilityHistory, origins: np.ndarray, levels: tuple[float, ...]
) -> dict[float, Tail]:
    """Each origin's VaR/ES from the returns of its last HISTORICAL_DAYS days (t included)."""
    if int(origins.min()) + 1 < HISTORICAL_DAYS // 2:
        raise DataError(
            f"historical simulation needs at least {HISTORICAL_DAYS // 2} days of returns "
            "before the first test day; choose a later test_start"
        )
    tails = {level: Tail(np.empty(origins.size), np.empty(origins.size)) for level in levels}
    for position, origin in enumerate(origins):
        sample = history.returns[max(0, origin - HISTORICAL_DAYS + 1) : origin + 1]
        for level in levels:
            tails[level].var[position], tails[level].es[position] = empirical_tail(sample, level)
    return tails


def garch_tails(
    model: GARCHVolatility,
    history: VolatilityHistory,
    origins: np.ndarray,
    levels: tuple[float, ...],
    *,
    fit_end: int,
    filtered: bool,
) -> dict[float, Tail]:
    """Each origin's VaR/ES from the fitted GARCH's mean and next-day volatility: Student-t
    quantiles, or (`filtered`) the empirical tail of its standardised residuals on days 0 ..
    `fit_end` (filtered historical simulation, Barone-Adesi et al. 1999)."""
    assert model.coefficients_ is not None
    mean = float(model.coefficients_[0]) / PERCENT
    sigma = np.sqrt(model.daily_forecasts(history, origins, horizon=1)[:, 0])  # (N,)
    if filtered:
        residuals = np.asarray(model.fixed(history, fit_end).std_resid)
        residuals = residuals[np.isfinite(residuals)]
    tails = {}
    for level in levels:
        if filtered:
            var_z, es_z = empirical_tail(residuals, level)
        elif model.config.distribution == "t":
            var_z, es_z = student_t_tail(level, float(model.coefficients_[-1]))
        else:
            var_z = float(-stats.norm.ppf(1.0 - level))
            es_z = float(stats.norm.pdf(var_z) / (1.0 - level))
        tails[level] = Tail(var=sigma * var_z - mean, es=sigma * es_z - mean)
    return tails


def var_walk_forward(
    history: VolatilityHistory,
    fold_starts: list[int],
    last_origin: int,
    *,
    levels: tuple[float, ...],
    methods: tuple[str, ...] = ("historical", "garch_t", "fhs"),
    nets: TailNets | None = None,
    progress: bool = False,
) -> dict[str, dict[float, Tail]]:
    """Forecasts for days fold_start+1 .. of every fold, each method re-fitted per fold on the
    days before it; origins run from fold_starts[0] to last_origin."""
    for level in levels:
        check_level(level)
    unknown = [method for method in methods if method not in VAR_METHODS]
    if unknown:
        raise ConfigError(f"unknown VaR method(s) {unknown}; choose from {list(VAR_METHODS)}")
    if last_origin >= len(history) - 1:
        raise DataError("the last forecast origin needs a next day to judge it against")
    deep = [method for method in methods if method in TAIL_METHODS]
    if deep and nets is None:
        raise ConfigError(f"the {' and '.join(deep)} method(s) need a network: pass nets")
    fitted: dict[tuple[str, float], TailFit] = {}
    bounds = [*fold_starts, last_origin + 1]
    results: dict[str, dict[float, list[Tail]]] = {m: {lv: [] for lv in levels} for m in methods}
    model = build_risk_model("gjr_garch")
    assert isinstance(model, GARCHVolatility)
    bar = Progress(disable=not progress)
    task = bar.add_task("VaR folds", total=len(fold_starts))
    with bar:
        for fold, (start, stop) in enumerate(itertools.pairwise(bounds)):
            parts = _fold_tails(
                history, np.arange(start, stop), levels, methods, model, nets, fitted, fold
            )
            for method, by_level in parts.items():
                for level, tail in by_level.items():
                    results[method][level].append(tail)
            bar.advance(task)
    return {
        method: {
            level: Tail(
                np.concatenate([tail.var for tail in tails]),
                np.concatenate([tail.es for tail in tails]),
            )
            for level, tails in by_level.items()
        }
        for method, by_level in results.items()
    }


def _fold_tails(
    history: VolatilityHistory,
    origins: np.ndarray,
    levels: tuple[float, ...],
    methods: tuple[str, ...],
    model: GARCHVolatility,
    nets: TailNets | None,
    fitted: dict[tuple[str, float], TailFit],
    fold: int,
) -> dict[str, dict[float, Tail]]:
    """Every method's tails for one fold's origins, each fitted on the days before them (the
    nets every `nets.refit_folds` folds, reading each day's features in between)."""
    start = int(origins[0])
    parts: dict[str, dict[float, Tail]] = {}
    if "historical" in methods:
        parts["historical"] = historical_tails(history, origins, levels)
    if "garch_t" in methods or "fhs" in methods:
        model.fit(history, end=start - 1, horizon=1)
        for method in ("garch_t", "fhs"):
            if method in methods:
                parts[method] = garch_tails(
                    model, history, origins, levels, fit_end=start - 1, filtered=method == "fhs"
                )
    for method in (m for m in methods if m in TAIL_METHODS):
        assert nets is not None
        parts[method] = {}
        for level in levels:
            previous = fitted.get((method, level))
            if previous is None or fold % nets.refit_folds == 0:
                fitted[method, level] = _fit_tail(nets, method, level, history, start, previous)
            var, es = forecast_tail(
                fitted[method, level], history, origins, method=method, lookback=nets.lookback
            )
            parts[method][level] = Tail(var, es)
    return parts


def _fit_tail(
    nets: TailNets,
    method: str,
    level: float,
    history: VolatilityHistory,
    start: int,
    previous: TailFit | None,
) -> TailFit:
    previous = previous if nets.warm_start else None
    training = nets.training
    if previous is not None and nets.warm_start_epochs:
        training = dataclasses.replace(training, epochs=nets.warm_start_epochs)
    return fit_tail_network(
        nets.network,
        method,
        level,
        history,
        start=start,
        val_days=nets.val_days,
        lookback=nets.lookback,
        training=dataclasses.replace(training, progress=False),
        previous=previous,
    )


def backtest_table(
    returns: np.ndarray, forecasts: dict[str, dict[float, Tail]], *, benchmark: str = "fhs"
) -> pl.DataFrame:
    """One row per method and level: breaches, Kupiec, Christoffersen, the traffic light (at
    99%), Acerbi-Szekely Z2 and the mean FZ0 loss with a Diebold-Mariano test against
    `benchmark`. `returns[i]` is the return of the day after origin i."""
    rows: list[dict[str, Any]] = []
    for method, by_level in forecasts.items():
        for level, tail in by_level.items():
            hits = breaches(returns, tail.var)
            coverage, independence = kupiec(hits, level), christoffersen(hits, level)
            z2 = acerbi_szekely_z2(returns, tail.var, np.maximum(tail.es, tail.var), level)
            loss = fz0_loss(returns, tail.var, tail.es, level)
            row: dict[str, Any] = {
                "method": method,
                "level": level,
                "days": int(hits.size),
                "breaches": int(hits.sum()),
                "breach_rate": float(hits.mean()),
                "kupiec_p": coverage["p_value"],
                "independence_p": independence["independence_p_value"],
                "conditional_coverage_p": independence["conditional_coverage_p_value"],
                "z2": z2["statistic"],
                "z2_p": z2["p_value"],
                "fz0": float(loss.mean()),
                "traffic_light": (
                    str(traffic_light(hits, level)["zone"])
                    if level == 0.99 and hits.size >= 250
                    else None
                ),
            }
            if benchmark in forecasts and method != benchmark:
                other = forecasts[benchmark][level]
                against = fz0_loss(returns, other.var, other.es, level)
                row[f"dm_p_fz0_{benchmark}"] = diebold_mariano_losses(loss, against)["p_value"]
            rows.append(row)
    return pl.DataFrame(rows)


def run_var(config: VarRunConfig, *, run_dir: Path) -> dict[str, Any]:
    """Read the series, forecast each test day's VaR/ES walking forward, backtest, and save the
    forecasts and the table into `run_dir`."""
    check_fresh_folder(run_dir)
    with run_lock(run_dir):
        series, portfolio = read_portfolio(config)
        dates = series.dates
        start = dt.date.fromisoformat(config.walk_forward.test_start or str(dates[len(dates) // 2]))
        first = next((i for i, date in enumerate(dates) if date >= start), len(dates))
        last_origin = len(dates) - 2  # the last day with a next day to judge it against
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
        )
        next_day = series.history.returns[first + 1 : last_origin + 2]
        table = backtest_table(next_day, forecasts)
        columns: dict[str, Any] = {"date": dates[first + 1 : last_origin + 2], "return": next_day}
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
            "backtests": table.to_dicts(),
            **({"portfolio": portfolio_metrics} if portfolio is not None else {}),
        }
        write_frame(run_dir / "predictions.parquet", pl.DataFrame(columns))
        write_json(run_dir / "metrics.json", metrics)
        write_json(run_dir / CONFIG, {**run_header("risk"), **dataclasses.asdict(config)})
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
    if config.data.tickers:
        frame = frame.filter(pl.col("ticker").is_in(list(config.data.tickers)))
    if config.data.max_tickers:
        frame = frame.filter(pl.col("ticker").is_in(tickers[: config.data.max_tickers]))
    start = config.walk_forward.test_start
    assets = asset_returns(frame, judged_before=dt.date.fromisoformat(start) if start else None)
    if settings.weights:
        weights = read_weights(settings.weights, assets.tickers)
    else:
        log.warning("no --weights: an equal-weight portfolio of %d tickers", len(assets.tickers))
        weights = np.full(len(assets.tickers), 1.0 / len(assets.tickers))
    log_returns = portfolio_log_returns(assets, weights)
    history = VolatilityHistory(log_returns, log_returns**2)
    name = f"portfolio of {int((weights != 0).sum())} tickers"
    return Series(name, assets.dates, history, "close"), (assets, weights)
