"""Quantile forecasts of any trained forecasting net: a head of one output per quantile beside
the point forecast, the pinball loss, split-conformal calibration on the validation period, and
the scores of the bands (pinball loss, coverage, width, interval score)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from deepfin.data.rows import PriceRows
from deepfin.data.scaling import Scaler
from deepfin.errors import ConfigError
from deepfin.tasks.forecasting.losses import LossFunction
from deepfin.training import predict_batches


def quantile_name(quantile: float) -> str:
    """The column suffix of a quantile: q0.05."""
    return f"q{quantile:g}"


def point_and_quantile_loss(quantiles: tuple[float, ...], point: LossFunction) -> LossFunction:
    """`point` on output 0 and the pinball loss of each quantile on outputs 1.., all against
    the label (targets' column 0)."""
    levels = torch.tensor(quantiles)

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        label = targets[:, :1]
        error = label - outputs[:, 1:]  # (B, Q)
        tau = levels.to(outputs.device, outputs.dtype)
        pinball = torch.maximum(tau * error, (tau - 1.0) * error).mean(0).sum()
        return point(outputs[:, :1], targets) + pinball

    return loss


def conformal_corrections(
    forecasts: np.ndarray, actual: np.ndarray, quantiles: tuple[float, ...]
) -> np.ndarray:
    """Per quantile (Q,), the shift that makes its share of outcomes below it on held-out days
    the nominal one (split conformal, one-sided for each quantile; finite-sample conservative
    for the outer quantiles)."""
    if actual.size < 20:
        raise ConfigError(
            f"conformal calibration needs at least 20 validation forecasts; got {actual.size}"
        )
    residuals = actual[:, None] - forecasts  # (N, Q)
    n_obs = actual.size
    corrections = np.empty(len(quantiles))
    for column, quantile in enumerate(quantiles):
        if quantile >= 0.5:  # an upper bound: the ceil((n+1)q)-th smallest residual
            rank = min(n_obs, int(np.ceil((n_obs + 1) * quantile)))
        else:  # a lower bound: the floor((n+1)q)-th
            rank = max(1, int(np.floor((n_obs + 1) * quantile)))
        corrections[column] = np.sort(residuals[:, column])[rank - 1]
    return corrections


def band_scores(
    actual: np.ndarray, forecasts: np.ndarray, quantiles: tuple[float, ...]
) -> dict[str, Any]:
    """Pinball loss per quantile and on average; for each central interval (q, 1-q) among the
    quantiles its coverage, mean width and interval score (Gneiting and Raftery 2007)."""
    error = actual[:, None] - forecasts
    tau = np.array(quantiles)
    pinball = np.maximum(tau * error, (tau - 1.0) * error).mean(axis=0)  # (Q,)
    scores: dict[str, Any] = {
        "pinball": {quantile_name(q): float(p) for q, p in zip(quantiles, pinball, strict=True)},
        "mean_pinball": float(pinball.mean()),
        "below": {
            quantile_name(q): float((actual < forecasts[:, k]).mean())
            for k, q in enumerate(quantiles)
        },
        "intervals": {},
    }
    for low_column, low in enumerate(quantiles):
        high = round(1.0 - low, 10)
        if low >= 0.5 or high not in quantiles:
            continue
        lower, upper = forecasts[:, low_column], forecasts[:, quantiles.index(high)]
        alpha = 2.0 * low
        below, above = np.maximum(lower - actual, 0.0), np.maximum(actual - upper, 0.0)
        scores["intervals"][f"{1 - alpha:.0%}"] = {
            "nominal": 1.0 - alpha,
            "coverage": float(((actual >= lower) & (actual <= upper)).mean()),
            "width": float((upper - lower).mean()),
            "interval_score": float((upper - lower + 2.0 / alpha * (below + above)).mean()),
        }
    return scores


def quantile_forecasts(
    model: nn.Module,
    rows: PriceRows,
    ends: np.ndarray,
    *,
    target_scaler: Scaler,
    lookback: int,
    shifts: np.ndarray,
) -> np.ndarray:
    """Log-return quantiles (N, Q) of the windows at `ends`: the head's outputs 1.., as returns,
    sorted per window, each moved by its conformal shift, and sorted again, so quantiles never
    cross (rearranging a quantile forecast never raises its pinball loss: Chernozhukov,
    Fernandez-Val and Galichon 2010)."""
    scaled = predict_batches(model, rows.windows(ends, lookback=lookback)).numpy()  # (N, 1+Q)
    raw = target_scaler.inverse_transform(scaled, rows.codes(ends), rows.tickers)[:, 1:]
    return np.sort(np.sort(raw, axis=1) + shifts, axis=1)


def quantile_columns(
    forecasts: np.ndarray, quantiles: tuple[float, ...], prefix: str
) -> list[pl.Series]:
    """One column of log-return quantiles per quantile, named prefix_q0.05 and so on."""
    return [
        pl.Series(f"{prefix}_{quantile_name(q)}", forecasts[:, k]) for k, q in enumerate(quantiles)
    ]


def track_quantiles(
    dates: np.ndarray,
    forecasts: np.ndarray,
    actual: np.ndarray,
    usable: np.ndarray,
    quantiles: tuple[float, ...],
    *,
    horizon: int,
    step: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (N, Q) moved online: once the outcomes of a date's forecasts are known
    (`horizon` dates later), each quantile moves by `step` times its nominal share minus the
    share of those outcomes below it (quantile tracking: Angelopoulos, Candes and Tibshirani
    2023), so its coverage holds when the test period is calmer or wilder than validation.
    Rows are in any order; `usable` rows (trustworthy outcomes) alone move it. Returns the
    moved quantiles and the offsets (Q,) reached at the end, for forecasts after it."""
    tau = np.asarray(quantiles)
    unique, date_index = np.unique(dates, return_inverse=True)
    order = np.argsort(date_index, kind="stable")
    starts = np.searchsorted(date_index[order], np.arange(unique.size + 1))
    offsets = np.zeros(tau.size)
    moved = np.empty_like(forecasts)
    for k in range(unique.size):
        rows = order[starts[k] : starts[k + 1]]
        moved[rows] = forecasts[rows] + offsets
        known = k - horizon + 1  # the date whose outcomes are known at this date's close
        if known >= 0:
            done = order[starts[known] : starts[known + 1]]
            done = done[usable[done]]
            if done.size:
                below = (actual[done, None] < moved[done]).mean(axis=0)  # (Q,)
                offsets = offsets + step * (tau - below)
    return np.sort(moved, axis=1), offsets
