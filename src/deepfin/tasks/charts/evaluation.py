"""How well the up-probabilities of the test charts sort the stocks: accuracy, AUC and its
tests, AUC per year, cross-sectional Rank IC, and decile portfolios after costs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from deepfin.data.chart_panel import ChartSet
from deepfin.metrics.direction import auc_by_group, daily_auc_test, delong_test
from deepfin.metrics.portfolio import TRADING_DAYS, decile_portfolios
from deepfin.metrics.ranking import cross_sectional_ic, ic_summary

PROBABILITY_MODELS = ("logistic",)  # besides the net; the sign rules' scores are returns


def chart_stride(charts: ChartSet) -> int:
    """Trading days between consecutive chart days."""
    calendar = np.unique(charts.panel.days)
    days = np.unique(charts.panel.days[charts.samples.ends])
    if days.size < 2:
        return 1
    return max(1, int(np.median(np.diff(np.searchsorted(calendar, days)))))


def chart_metrics(
    test: ChartSet, scores: dict[str, np.ndarray], *, horizon: int, cost_bps: float
) -> dict[str, Any]:
    """Per model: its scores judged on the test charts; the first model is the net."""
    labels, log_return = test.samples.labels, test.samples.log_return
    dates, tickers = test.dates, test.tickers
    stride = chart_stride(test)
    overlap = max(1, math.ceil(horizon / stride))  # chart days whose outcomes overlap
    days = np.unique(dates)
    # one book per horizon: its outcome is known before the next is formed
    rebalancing = np.isin(dates, days[::overlap])
    per_year = TRADING_DAYS / (overlap * stride)
    size = test.panel.dollar_volume(test.samples.ends)
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    net = next(iter(scores))
    rows: dict[str, dict[str, Any]] = {}
    by_year: dict[str, dict[str, float]] = {}
    deciles: dict[str, list[float]] = {}
    for name, score in scores.items():
        threshold = 0.5 if name == net or name in PROBABILITY_MODELS else 0.0
        delong = delong_test(labels, score)
        daily = daily_auc_test(labels, score, dates)
        ic = cross_sectional_ic(dates, log_return, score)
        rank_ic = ic_summary(ic["rank_ic"], horizon=overlap) if ic["rank_ic"].size > 1 else {}
        book: dict[str, Any] = {
            "dates": dates[rebalancing],
            "tickers": tickers[rebalancing],
            "forecast": score[rebalancing],
            "actual_return": log_return[rebalancing],
            "periods_per_year": per_year,
            "cost_bps": cost_bps,
        }
        equal = decile_portfolios(**book)
        weighted = equal if size is None else decile_portfolios(**book, weight=size[rebalancing])
        booked = equal.dates.size > 0  # days with fewer tickers than deciles make no book
        rows[name] = {
            "accuracy": float(((score > threshold) == labels).mean()),
            "auc": delong["auc"],
            "auc_se": delong["se"],
            "auc_p": delong["p_value"],
            "daily_auc": daily["mean_auc"],
            "daily_auc_p": daily["p_value"],
            "rank_ic": rank_ic.get("mean"),
            "rank_ic_t": rank_ic.get("t_stat"),
            "hml_return": float(equal.long_short.mean()) if booked else None,
            "hml_sharpe": equal.sharpe,
            "hml_sharpe_net": equal.sharpe_net,
            "hml_turnover": float(equal.turnover.mean()) if booked else None,
            "hml_vw_sharpe": weighted.sharpe,
            "hml_vw_sharpe_net": weighted.sharpe_net,
        }
        year_names, year_aucs = auc_by_group(labels, score, years)
        by_year[name] = {str(y): float(a) for y, a in zip(year_names, year_aucs, strict=True)}
        deciles[name] = equal.mean_returns.tolist() if booked else []
    return {
        "models": rows,
        "auc_by_year": by_year,
        "decile_returns": deciles,
        "verdict": verdict(net, rows),
        "test": {
            "charts": len(test),
            "days": int(days.size),
            "tickers": int(np.unique(tickers).size),
            "first": str(dates.min()),
            "last": str(dates.max()),
            "up_share": float(labels.mean()),
            "rebalancing_days": int(days[::overlap].size),
            "value_weights": "dollar volume" if size is not None else "equal (no volume)",
        },
    }


def verdict(net: str, rows: dict[str, dict[str, Any]]) -> str:
    """Whether the net's AUC beats every baseline's, and whether it differs from 0.5."""
    mine = rows[net]
    beaten = [name for name in rows if name != net and rows[name]["auc"] >= mine["auc"]]
    significance = (
        f"AUC {mine['auc']:.4f} (DeLong p {mine['auc_p']:.3g}; by day p {mine['daily_auc_p']:.3g})"
    )
    if beaten:
        return f"{net} does not beat {', '.join(beaten)} on AUC: {significance}"
    return f"{net} beats every baseline on AUC: {significance}"


def prediction_frame(test: ChartSet, scores: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per test chart: day, ticker, outcome, and each model's score."""
    return pl.DataFrame(
        {
            "date": test.dates,
            "ticker": test.tickers,
            "log_return": test.samples.log_return,
            "up": test.samples.labels,
            **{name: score for name, score in scores.items()},
        }
    )
