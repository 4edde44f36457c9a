"""Scores of volatility forecasts: MSE and QLIKE as ratios to HAR and GJR-GARCH, Diebold-Mariano
tests against both, Mincer-Zarnowitz, the Model Confidence Set, and the verdict on the first
model."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from deepfin.metrics.risk import (
    acerbi_szekely_z2,
    breaches,
    christoffersen,
    fz0_loss,
    kupiec,
    traffic_light,
)
from deepfin.metrics.significance import diebold_mariano_losses
from deepfin.metrics.volatility import (
    mincer_zarnowitz,
    model_confidence_set,
    qlike_losses,
    squared_losses,
)
from deepfin.tasks.risk.var import Tail

BENCHMARKS = ("har", "gjr_garch")  # the models a risk desk already trusts
MCS_SIZE = 0.1


def score_volatility(
    predictions: pl.DataFrame, models: list[str], *, horizon: int
) -> dict[str, Any]:
    """Per model: MSE, QLIKE, their ratios and DM p-values against each benchmark fitted,
    Mincer-Zarnowitz, MCS p-value (QLIKE, 10%); and the verdict sentence on models[0]."""
    realised = predictions["realised"].to_numpy()
    losses = {
        name: {
            "qlike": qlike_losses(realised, predictions[name].to_numpy()),
            "mse": squared_losses(realised, predictions[name].to_numpy()),
        }
        for name in models
    }
    confidence = (
        model_confidence_set({name: loss["qlike"] for name, loss in losses.items()}, size=MCS_SIZE)
        if len(models) > 1
        else {models[0]: 1.0}
    )
    rows: dict[str, dict[str, Any]] = {}
    for name in models:
        own = losses[name]
        row: dict[str, Any] = {
            "n": int(realised.size),
            "mse": float(own["mse"].mean()),
            "qlike": float(own["qlike"].mean()),
        }
        for benchmark in BENCHMARKS:
            if benchmark not in losses or benchmark == name:
                continue
            for loss in ("mse", "qlike"):
                row[f"{loss}_ratio_{benchmark}"] = row[loss] / float(losses[benchmark][loss].mean())
                test = diebold_mariano_losses(own[loss], losses[benchmark][loss], horizon=horizon)
                row[f"dm_p_{loss}_{benchmark}"] = test["p_value"]
        regression = mincer_zarnowitz(realised, predictions[name].to_numpy(), horizon=horizon)
        row |= {f"mz_{key}": value for key, value in regression.items()}
        row["mcs_p_value"] = confidence[name]
        row["in_mcs"] = confidence[name] >= MCS_SIZE
        rows[name] = row
    return {"models": rows, "verdict": verdict(models[0], rows), "horizon": horizon}


def verdict(model: str, rows: dict[str, dict[str, Any]]) -> str:
    """Whether `model` beats HAR on QLIKE, significantly, in words."""
    row = rows[model]
    if model == "har" or "qlike_ratio_har" not in row:
        best = min(rows, key=lambda name: rows[name]["qlike"])
        return f"{best} has the lowest QLIKE ({rows[best]['qlike']:.4f})."
    ratio, p_value = row["qlike_ratio_har"], row["dm_p_qlike_har"]
    set_note = "in" if row["in_mcs"] else "not in"
    if ratio < 1 and p_value < 0.05:
        return (
            f"{model} beats HAR: QLIKE {ratio:.3f} times HAR's (Diebold-Mariano p = "
            f"{p_value:.3g}); it is {set_note} the 10% Model Confidence Set."
        )
    how = "below it but not significantly" if ratio < 1 else "no better"
    return (
        f"{model} does not beat HAR: QLIKE {ratio:.3f} times HAR's, {how} (Diebold-Mariano "
        f"p = {p_value:.3g}); it is {set_note} the 10% Model Confidence Set. Well-rolled HAR "
        "models are rarely beaten by neural nets in published comparisons."
    )


def backtest_table(
    returns: np.ndarray,
    forecasts: dict[str, dict[float, Tail]],
    *,
    benchmark: str = "fhs",
    horizon: int = 1,
) -> pl.DataFrame:
    """One row per method and level: breaches, Kupiec, Christoffersen, the traffic light (at
    99%), Acerbi-Szekely Z2 and the mean FZ0 loss with a Diebold-Mariano test against
    `benchmark`. `returns[i]` is the return of the `horizon` days after origin i; several days'
    forecasts overlap, so the tests read every `horizon`-th origin (non-overlapping outcomes)."""
    keep = np.arange(0, len(returns), horizon)
    returns = returns[keep]
    forecasts = {
        method: {level: Tail(tail.var[keep], tail.es[keep]) for level, tail in by_level.items()}
        for method, by_level in forecasts.items()
    }
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
