"""One-day value-at-risk and expected shortfall, walking forward: historical simulation, GJR-GARCH
with Student-t errors, and filtered historical simulation; each forecast for day t+1 is made
with days <= t and judged against day t+1's return."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np
from rich.progress import Progress
from scipy import stats

from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import ConfigError, DataError
from deepfin.metrics.risk import (
    check_level,
)
from deepfin.models import build_risk_model
from deepfin.models.risk.garch import PERCENT, GARCHVolatility
from deepfin.tasks.risk.tail_networks import (
    TAIL_METHODS,
    TailFit,
    fit_tail_network,
    forecast_tail,
)
from deepfin.training import TrainingConfig

log = logging.getLogger(__name__)

VAR_METHODS = ("historical", "garch_t", "garch_normal", "fhs", "quantile", "fz0")  # +2 nets
# the GJR-GARCH errors each GARCH method reads (FHS reads the t model's residuals)
GARCH_ERRORS = {"garch_t": "t", "garch_normal": "normal", "fhs": "t"}
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
    history: VolatilityHistory, origins: np.ndarray, levels: tuple[float, ...], horizon: int = 1
) -> dict[float, Tail]:
    """Each origin's VaR/ES of the `horizon`-day return from the returns of its last
    HISTORICAL_DAYS days (t included): their overlapping `horizon`-day sums."""
    if int(origins.min()) + 1 < HISTORICAL_DAYS // 2:
        raise DataError(
            f"historical simulation needs at least {HISTORICAL_DAYS // 2} days of returns "
            "before the first test day; choose a later test_start"
        )
    tails = {level: Tail(np.empty(origins.size), np.empty(origins.size)) for level in levels}
    for position, origin in enumerate(origins):
        sample = history.returns[max(0, origin - HISTORICAL_DAYS + 1) : origin + 1]
        if horizon > 1:
            sample = np.convolve(sample, np.ones(horizon), mode="valid")
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
    horizon: int = 1,
) -> dict[float, Tail]:
    """Each origin's VaR/ES of the next `horizon` days' return from the fitted GARCH.

    One day: its mean and next-day volatility times Student-t quantiles, or (`filtered`) the
    empirical tail of its standardised residuals on days 0 .. `fit_end` (filtered historical
    simulation, Barone-Adesi et al. 1999). Several days: the t's quantiles scaled by the
    volatility of the sum (the model's variance forecasts of each day added up), or (`filtered`)
    the tail of `horizon`-day sums along paths that bootstrap those residuals through the model.
    """
    assert model.coefficients_ is not None
    if filtered and horizon > 1:
        sums = model.simulated_sums(history, origins, horizon=horizon)  # (N, paths)
        tails = {}
        for level in levels:
            pairs = [empirical_tail(row, level) for row in sums]
            tails[level] = Tail(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        return tails
    mean = horizon * float(model.coefficients_[0]) / PERCENT
    daily = model.daily_forecasts(history, origins, horizon=horizon)  # (N, horizon)
    sigma = np.sqrt(daily.sum(axis=1))  # (N,) of the sum of the next horizon days
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
    horizon: int = 1,
) -> dict[str, dict[float, Tail]]:
    """Forecasts of the `horizon` days after each origin, each method re-fitted per fold on the
    days before it; origins run from fold_starts[0] to last_origin."""
    for level in levels:
        check_level(level)
    unknown = [method for method in methods if method not in VAR_METHODS]
    if unknown:
        raise ConfigError(f"unknown VaR method(s) {unknown}; choose from {list(VAR_METHODS)}")
    if last_origin >= len(history) - horizon:
        raise DataError(f"the last forecast origin needs {horizon} day(s) after it to judge it")
    if horizon > 1 and any(method in TAIL_METHODS for method in methods):
        raise ConfigError(
            "the quantile and fz0 nets forecast one day's tail; use --horizon 1 for them, or "
            "historical, garch_t and fhs for several days"
        )
    deep = [method for method in methods if method in TAIL_METHODS]
    if deep and nets is None:
        raise ConfigError(f"the {' and '.join(deep)} method(s) need a network: pass nets")
    fitted: dict[tuple[str, float], TailFit] = {}
    bounds = [*fold_starts, last_origin + 1]
    results: dict[str, dict[float, list[Tail]]] = {m: {lv: [] for lv in levels} for m in methods}
    models: dict[str, GARCHVolatility] = {}
    for errors in {GARCH_ERRORS[m] for m in methods if m in GARCH_ERRORS}:
        model = build_risk_model("gjr_garch", params={"distribution": errors})
        assert isinstance(model, GARCHVolatility)
        models[errors] = model
    bar = Progress(disable=not progress)
    task = bar.add_task("VaR folds", total=len(fold_starts))
    with bar:
        for fold, (start, stop) in enumerate(itertools.pairwise(bounds)):
            parts = _fold_tails(
                history,
                np.arange(start, stop),
                levels,
                methods,
                models,
                nets,
                fitted,
                fold,
                horizon,
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
    models: dict[str, GARCHVolatility],
    nets: TailNets | None,
    fitted: dict[tuple[str, float], TailFit],
    fold: int,
    horizon: int,
) -> dict[str, dict[float, Tail]]:
    """Every method's tails for one fold's origins, each fitted on the days before them (the
    nets every `nets.refit_folds` folds, reading each day's features in between)."""
    start = int(origins[0])
    parts: dict[str, dict[float, Tail]] = {}
    if "historical" in methods:
        parts["historical"] = historical_tails(history, origins, levels, horizon)
    for model in models.values():
        model.fit(history, end=start - 1, horizon=1)
    for method in (m for m in methods if m in GARCH_ERRORS):
        parts[method] = garch_tails(
            models[GARCH_ERRORS[method]],
            history,
            origins,
            levels,
            fit_end=start - 1,
            filtered=method == "fhs",
            horizon=horizon,
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
