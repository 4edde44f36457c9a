"""Backtests of value-at-risk and expected shortfall forecasts, and the losses that rank them.

Conventions: `returns[t]` is the return realised on day t; `var[t]` and `es[t]` are the
forecasts of it made with data up to day t-1, as positive losses at confidence `level`
(0.99: the 1% tail); a breach is `returns[t] < -var[t]`. Aligning the forecasts so is the
caller's job (`tasks/risk`); these functions only count.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import ConfigError, DataError
from deepfin.metrics.regression import checked_series

BASEL_WINDOW = 250  # trading days per traffic-light judgement
# Basel's zones by the binomial probability of at most that many breaches (at 99%: 0-4 green,
# 5-9 yellow, 10 or more red)
GREEN_BELOW, RED_FROM = 0.95, 0.9999
Z2_CHUNK = 500  # simulated samples drawn at once for Z2's null


def check_level(level: float) -> float:
    """`level` as a float in (0, 1), or a ConfigError that says what a level is."""
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ConfigError(f"a confidence level is in (0, 1), e.g. 0.99 for 99%; got {level!r}")
    return float(level)


def breaches(returns: npt.ArrayLike, var: npt.ArrayLike) -> np.ndarray:
    """Days whose loss exceeded the VaR forecast (bool, one per day)."""
    returns_v, var_v = checked_series(returns=returns, var=var)
    return returns_v < -var_v


def _log_likelihood(count: float, total: float, probability: float) -> float:
    """log of p^count (1-p)^(total-count), with 0 log 0 = 0."""
    value = 0.0
    if count > 0:
        value += count * math.log(probability)
    if total - count > 0:
        value += (total - count) * math.log1p(-probability)
    return value


def kupiec(hits: npt.ArrayLike, level: float) -> dict[str, float]:
    """Kupiec's proportion-of-failures test: is the breach rate the nominal 1 - level?"""
    tail = 1.0 - check_level(level)
    hit_v = _hits(hits)
    n_days, n_hits = hit_v.size, float(hit_v.sum())
    observed = n_hits / n_days
    statistic = -2.0 * (
        _log_likelihood(n_hits, n_days, tail) - _log_likelihood(n_hits, n_days, observed)
    )
    statistic = max(statistic, 0.0)
    return {
        "breaches": n_hits,
        "days": float(n_days),
        "rate": observed,
        "expected_rate": tail,
        "statistic": statistic,
        "p_value": float(stats.chi2.sf(statistic, df=1)),
    }


def christoffersen(hits: npt.ArrayLike, level: float) -> dict[str, float]:
    """Christoffersen's independence test (does a breach make the next one likelier?) and
    conditional coverage (independence and the nominal rate together, chi-square with 2 df)."""
    hit_v = _hits(hits).astype(np.int64)
    if hit_v.size < 2:
        raise DataError("Christoffersen's test needs at least 2 days of forecasts")
    before, after = hit_v[:-1], hit_v[1:]
    n00 = float(((before == 0) & (after == 0)).sum())
    n01 = float(((before == 0) & (after == 1)).sum())
    n10 = float(((before == 1) & (after == 0)).sum())
    n11 = float(((before == 1) & (after == 1)).sum())
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pooled = (n01 + n11) / (n00 + n01 + n10 + n11)
    independent = _log_likelihood(n01 + n11, n00 + n01 + n10 + n11, pooled)
    markov = _log_likelihood(n01, n00 + n01, pi0) + _log_likelihood(n11, n10 + n11, pi1)
    independence = max(-2.0 * (independent - markov), 0.0)
    coverage = kupiec(hit_v.astype(bool), level)["statistic"] + independence
    return {
        "independence_statistic": independence,
        "independence_p_value": float(stats.chi2.sf(independence, df=1)),
        "breach_after_breach": pi1,
        "breach_after_none": pi0,
        "conditional_coverage_statistic": coverage,
        "conditional_coverage_p_value": float(stats.chi2.sf(coverage, df=2)),
    }


def traffic_light(hits: npt.ArrayLike, level: float = 0.99) -> dict[str, object]:
    """Basel's traffic-light zone of the last 250 days, and how many whole 250-day blocks (from
    the end backwards) fell in each zone."""
    tail = 1.0 - check_level(level)
    hit_v = _hits(hits)
    if hit_v.size < BASEL_WINDOW:
        raise DataError(
            f"the traffic light judges {BASEL_WINDOW} days of forecasts; got {hit_v.size}"
        )

    def zone(count: int) -> str:
        probability = float(stats.binom.cdf(count, BASEL_WINDOW, tail))
        return (
            "green" if probability < GREEN_BELOW else "red" if probability >= RED_FROM else "yellow"
        )

    n_blocks = hit_v.size // BASEL_WINDOW
    blocks = hit_v[hit_v.size - n_blocks * BASEL_WINDOW :].reshape(n_blocks, BASEL_WINDOW)
    zones = [zone(int(count)) for count in blocks.sum(axis=1)]
    last = int(hit_v[-BASEL_WINDOW:].sum())
    return {
        "zone": zone(last),
        "breaches_last_250": last,
        **{f"{colour}_blocks": zones.count(colour) for colour in ("green", "yellow", "red")},
    }


def acerbi_szekely_z2(
    returns: npt.ArrayLike,
    var: npt.ArrayLike,
    es: npt.ArrayLike,
    level: float,
    *,
    simulations: int = 10_000,
    degrees_of_freedom: float = 5.0,
    seed: int = 0,
) -> dict[str, float]:
    """Acerbi and Szekely's (2014) Z2 test of expected shortfall: about 0 when ES is right,
    negative when the tail losses are larger than forecast (one-sided p-value).

    The p-value is simulated under the null of Student-t losses whose ES is each day's
    forecast; Acerbi and Szekely found Z2's critical values nearly the same across tails
    (about -0.7 at 5% for the 2.5% tail), so the choice of null distribution matters little.
    """
    tail = 1.0 - check_level(level)
    returns_v, var_v, es_v = checked_series(returns=returns, var=var, es=es)
    if (es_v <= 0).any() or (es_v < var_v - 1e-12).any():
        raise DataError("expected shortfall must be positive and at least the VaR every day")
    n_days = returns_v.size
    statistic = float(np.sum(returns_v * (returns_v < -var_v) / es_v) / (n_days * tail) + 1.0)
    null = _z2_null(n_days, tail, degrees_of_freedom, simulations, seed)
    p_value = float((np.sum(null <= statistic) + 1) / (simulations + 1))
    return {"statistic": statistic, "p_value": p_value}


@functools.lru_cache(maxsize=16)
def _z2_null(
    n_days: int, tail: float, degrees_of_freedom: float, simulations: int, seed: int
) -> np.ndarray:
    """Z2 of `simulations` samples of `n_days` Student-t losses whose ES is the forecast: the
    same for every method and level of one backtest, so computed once; drawn in chunks, so the
    memory is a chunk's, not simulations x days."""
    # the standardised t's quantile and ES at `tail`, so each day's scale matches its ES
    quantile = float(stats.t.ppf(tail, degrees_of_freedom))
    density = float(stats.t.pdf(quantile, degrees_of_freedom))
    shortfall = density / tail * (degrees_of_freedom + quantile**2) / (degrees_of_freedom - 1)
    generator = np.random.default_rng(seed)
    null = np.empty(simulations)
    for start in range(0, simulations, Z2_CHUNK):
        stop = min(start + Z2_CHUNK, simulations)
        draws = generator.standard_t(degrees_of_freedom, size=(stop - start, n_days))
        # per simulated day: X / ES = t / shortfall, a breach when t < quantile
        null[start:stop] = np.sum(draws * (draws < quantile), axis=1)
    null = null / (shortfall * n_days * tail) + 1.0
    null.flags.writeable = False  # shared by the cache
    return null


def pinball_loss(
    returns: npt.ArrayLike, quantile_forecast: npt.ArrayLike, quantile: float
) -> np.ndarray:
    """Per-day pinball (quantile) loss of a forecast of the `quantile` of returns."""
    check_level(quantile)
    returns_v, forecast_v = checked_series(returns=returns, quantile_forecast=quantile_forecast)
    error = returns_v - forecast_v
    return np.maximum(quantile * error, (quantile - 1.0) * error)


def fz0_loss(
    returns: npt.ArrayLike, var: npt.ArrayLike, es: npt.ArrayLike, level: float
) -> np.ndarray:
    """Per-day FZ0 loss (Patton, Ziegel and Chen 2019) of joint VaR/ES forecasts; lower is
    better, and only a forecast of both the true VaR and the true ES minimises its mean."""
    tail = 1.0 - check_level(level)
    returns_v, var_v, es_v = checked_series(returns=returns, var=var, es=es)
    if (es_v <= 0).any():
        raise DataError("FZ0 needs a positive expected shortfall every day")
    quantile, shortfall = -var_v, -es_v  # in return units: e <= v < 0
    hit = (returns_v <= quantile).astype(np.float64)
    return (
        -hit * (quantile - returns_v) / (tail * shortfall)
        + quantile / shortfall
        + np.log(-shortfall)
        - 1.0
    )


def _hits(hits: npt.ArrayLike) -> np.ndarray:
    hit_v = np.asarray(hits)
    if hit_v.ndim != 1 or hit_v.size == 0:
        raise DataError(f"breaches must be a non-empty 1-D series; got shape {hit_v.shape}")
    if hit_v.dtype != bool:
        if not np.isin(hit_v, (0, 1)).all():
            raise DataError("breaches must be true/false (or 0/1) per day")
        hit_v = hit_v.astype(bool)
    return hit_v
