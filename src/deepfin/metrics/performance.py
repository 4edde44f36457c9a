"""Performance statistics of a periodic return series: return, risk, ratios, drawdowns."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from deepfin.errors import ConfigError, DataError

Stats = dict[str, float | str | None]


def performance_stats(
    returns: npt.ArrayLike,
    dates: Any,
    *,
    periods_per_year: int = 252,
    risk_free_rate: float = 0.0,
    start_date: dt.date | None = None,
    active: npt.ArrayLike | None = None,
) -> Stats:
    """Annualised return and risk, Sharpe, Sortino, Calmar, max drawdown and hit rate."""
    # dates: one per return (its end date), any sequence polars can hold; start_date: the date of
    # the starting capital, reported as the peak when the worst drawdown starts from it.
    # active: the periods that held a position, for the hit rate (default: non-zero returns).
    period_return = np.asarray(returns, dtype=np.float64)
    if period_return.ndim != 1 or period_return.size == 0:
        raise DataError(f"returns must be 1-D and non-empty; got shape {period_return.shape}")
    if not np.isfinite(period_return).all() or (period_return < -1).any():
        raise DataError(
            "returns must be finite and >= -1 (a loss beyond the whole capital); check the "
            "leverage or the prices"
        )
    date_list = pl.Series("date", dates).to_list()
    if len(date_list) != period_return.size:
        raise DataError(f"{len(date_list)} dates for {period_return.size} returns; pass one each")
    if periods_per_year < 1:
        raise ConfigError(f"periods_per_year must be >= 1; got {periods_per_year}")
    n_days = period_return.size
    equity, drawdown = equity_and_drawdown(period_return)
    years = n_days / periods_per_year
    annual_return = float(equity[-1] ** (1 / years) - 1) if equity[-1] > 0 else -1.0
    # an annual risk-free rate compounds to this per period, as empyrical's per-period rf
    excess = period_return - ((1 + risk_free_rate) ** (1 / periods_per_year) - 1)
    root_periods = math.sqrt(periods_per_year)
    volatility = float(period_return.std(ddof=1)) if n_days > 1 else 0.0
    # downside deviation over every period (gains count as 0), as empyrical and quantstats do
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
    max_drawdown = float(min(drawdown.min(), 0.0))

    trough = int(np.argmin(drawdown))
    peak_value = max(1.0, float(equity[: trough + 1].max()))
    at_peak = np.flatnonzero(equity[: trough + 1] >= peak_value)
    recovered = np.flatnonzero(equity[trough + 1 :] >= peak_value)
    peak_date = date_list[at_peak[-1]] if at_peak.size else start_date
    in_drawdown = max_drawdown < 0
    active_mask = period_return != 0 if active is None else np.asarray(active, dtype=bool)
    return {
        "n_days": n_days,
        "total_return": float(equity[-1] - 1),
        "annual_return": annual_return,
        "annual_volatility": volatility * root_periods,
        "sharpe": float(excess.mean() / volatility * root_periods) if volatility > 0 else None,
        "sortino": float(excess.mean() / downside * root_periods) if downside > 0 else None,
        "calmar": annual_return / -max_drawdown if in_drawdown else None,
        "max_drawdown": max_drawdown,
        "drawdown_peak_date": _iso(peak_date) if in_drawdown else None,
        "drawdown_trough_date": _iso(date_list[trough]) if in_drawdown else None,
        "drawdown_recovery_date": (
            _iso(date_list[trough + 1 + recovered[0]]) if in_drawdown and recovered.size else None
        ),
        "hit_rate": float((period_return[active_mask] > 0).mean()) if active_mask.any() else None,
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def equity_and_drawdown(period_return: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Growth of 1 and its drawdown from the running peak, the starting capital included."""
    equity = np.cumprod(1 + period_return)
    running_peak = np.maximum(np.maximum.accumulate(equity), 1.0)
    return equity, equity / running_peak - 1
