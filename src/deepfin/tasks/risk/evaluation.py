"""Scores of volatility forecasts: MSE and QLIKE as ratios to HAR and GJR-GARCH, Diebold-Mariano
tests against both, Mincer-Zarnowitz, the Model Confidence Set, and the verdict on the first
model."""

from __future__ import annotations

from typing import Any

import polars as pl

from deepfin.metrics.significance import diebold_mariano_losses
from deepfin.metrics.volatility import (
    mincer_zarnowitz,
    model_confidence_set,
    qlike_losses,
    squared_losses,
)

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
