"""A portfolio's risk by asset: covariance forecasts (EWMA, Ledoit-Wolf), the Euler allocation of
its VaR to the assets (contributions that sum to the total), and historical stress scenarios."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from scipy import stats

from deepfin.data.portfolio import AssetReturns
from deepfin.errors import ConfigError, DataError

EWMA_DECAY = 0.94
SHRINKAGE_DAYS = 500  # the window Ledoit-Wolf reads
STRESS_DAYS = (1, 10)


def ewma_covariance(returns: np.ndarray, decay: float = EWMA_DECAY) -> np.ndarray:
    """RiskMetrics' covariance (A, A) after the last of `returns` (D, A)."""
    weights = (1.0 - decay) * decay ** np.arange(returns.shape[0])[::-1]  # (D,), newest largest
    weights /= weights.sum()
    return (returns * weights[:, None]).T @ returns


def shrunk_covariance(returns: np.ndarray, days: int = SHRINKAGE_DAYS) -> np.ndarray:
    """Ledoit and Wolf's shrunk covariance (A, A) of the last `days` of `returns` (D, A)."""
    from sklearn.covariance import LedoitWolf

    window = returns[-days:]
    if window.shape[0] < 30:
        raise DataError(f"{window.shape[0]} days are too few for a covariance; give 30 or more")
    return LedoitWolf(assume_centered=True).fit(window).covariance_


def euler_contributions(
    weights: np.ndarray, covariance: np.ndarray, level: float
) -> dict[str, Any]:
    """Normal VaR of the portfolio and each asset's component VaR w_i (Cov w)_i / sigma * z,
    which sum to it (Euler's theorem: VaR is homogeneous of degree one in the weights)."""
    sigma = float(np.sqrt(weights @ covariance @ weights))
    if sigma == 0:
        raise DataError("the portfolio's variance is zero; check the weights")
    z = float(stats.norm.ppf(level))
    marginal = covariance @ weights / sigma  # (A,) d sigma / d w
    component = weights * marginal * z
    return {"var": z * sigma, "component": component, "share": component / (z * sigma)}


def stress_scenarios(
    dates: list[dt.date], log_returns: np.ndarray, named: dict[str, str]
) -> list[dict[str, Any]]:
    """The worst 1-day and 10-day losses in the data, and the loss over each named period
    ("start:end" in ISO dates, both inclusive)."""
    rows: list[dict[str, Any]] = []
    sums = np.concatenate([[0.0], np.cumsum(log_returns)])
    for days in STRESS_DAYS:
        if log_returns.size < days:
            continue
        totals = sums[days:] - sums[:-days]  # (D - days + 1,) window ending at i + days - 1
        worst = int(np.argmin(totals))
        rows.append(
            {
                "scenario": f"worst {days}-day",
                "start": str(dates[worst]),
                "end": str(dates[worst + days - 1]),
                "return": float(np.expm1(totals[worst])),
            }
        )
    for name, period in named.items():
        start, end = _period(name, period)
        inside = [i for i, date in enumerate(dates) if start <= date <= end]
        if not inside:
            raise DataError(
                f"stress period {name} ({period}) holds no day of the data, which runs "
                f"{dates[0]} to {dates[-1]}"
            )
        total = sums[inside[-1] + 1] - sums[inside[0]]
        rows.append(
            {
                "scenario": name,
                "start": str(dates[inside[0]]),
                "end": str(dates[inside[-1]]),
                "return": float(np.expm1(total)),
            }
        )
    return rows


def _period(name: str, period: str) -> tuple[dt.date, dt.date]:
    try:
        start_text, end_text = period.split(":")
        start, end = dt.date.fromisoformat(start_text), dt.date.fromisoformat(end_text)
    except ValueError as error:
        raise ConfigError(
            f"stress period {name} must be start:end in ISO dates, e.g. "
            f"2015-08-17:2015-08-28; got {period!r}"
        ) from error
    if end < start:
        raise ConfigError(f"stress period {name} ends ({end}) before it starts ({start})")
    return start, end


def risk_by_asset(assets: AssetReturns, weights: np.ndarray, level: float) -> list[dict[str, Any]]:
    """Per asset at the last date: weight and component VaR (share of the total) under the
    EWMA and the Ledoit-Wolf covariance."""
    ewma = euler_contributions(weights, ewma_covariance(assets.returns), level)
    shrunk = euler_contributions(weights, shrunk_covariance(assets.returns), level)
    return [
        {
            "ticker": ticker,
            "weight": float(weights[i]),
            "component_var_ewma": float(ewma["component"][i]),
            "share_ewma": float(ewma["share"][i]),
            "component_var_ledoit_wolf": float(shrunk["component"][i]),
            "share_ledoit_wolf": float(shrunk["share"][i]),
        }
        for i, ticker in enumerate(assets.tickers)
    ]
