"""Losses and tests of variance forecasts: QLIKE, Mincer-Zarnowitz, the Model Confidence Set."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

from deepfin.errors import DataError
from deepfin.metrics.regression import checked_series


def positive_series(**named: npt.ArrayLike) -> list[np.ndarray]:
    """The inputs as checked 1-D float arrays, every value a positive variance."""
    series = checked_series(**named)
    for name, values in zip(named, series, strict=True):
        if (values <= 0).any():
            raise DataError(
                f"{name} holds {int((values <= 0).sum())} variance(s) <= 0; a variance "
                "forecast or proxy must be positive (floor it, or drop those days)"
            )
    return series


def qlike_losses(realised: npt.ArrayLike, forecast: npt.ArrayLike) -> np.ndarray:
    """Per-day QLIKE loss r/f - log(r/f) - 1 (0 at a perfect forecast): robust to a noisy
    variance proxy (Patton 2011), and it punishes forecasts too low more than too high."""
    realised_v, forecast_v = positive_series(realised=realised, forecast=forecast)
    ratio = realised_v / forecast_v
    return ratio - np.log(ratio) - 1.0


def squared_losses(realised: npt.ArrayLike, forecast: npt.ArrayLike) -> np.ndarray:
    """Per-day squared error of a variance forecast."""
    realised_v, forecast_v = checked_series(realised=realised, forecast=forecast)
    return (realised_v - forecast_v) ** 2


def mincer_zarnowitz(
    realised: npt.ArrayLike, forecast: npt.ArrayLike, *, horizon: int = 1
) -> dict[str, float]:
    """Regression of the realised variance on its forecast: an unbiased forecast has intercept
    0 and slope 1 (Wald test with Newey-West errors, for overlapping horizons)."""
    realised_v, forecast_v = checked_series(realised=realised, forecast=forecast)
    n_obs = realised_v.size
    if n_obs < 10 or np.ptp(forecast_v) == 0:
        raise DataError("Mincer-Zarnowitz needs at least 10 days of forecasts that vary")
    design = np.column_stack([np.ones(n_obs), forecast_v])  # (N, 2)
    coefficients, *_ = np.linalg.lstsq(design, realised_v, rcond=None)
    residuals = realised_v - design @ coefficients
    lags = max(horizon - 1, math.floor(4 * (n_obs / 100) ** (2 / 9)))
    scores = design * residuals[:, None]  # (N, 2)
    meat = np.zeros((2, 2))
    centred = scores - scores.mean(axis=0)
    for lag in range(lags + 1):
        weight = 1.0 if lag == 0 else 2.0 * (1.0 - lag / (lags + 1))
        product = centred[lag:].T @ centred[: n_obs - lag] / n_obs
        meat += weight * (product + product.T) / 2.0
    bread = np.linalg.inv(design.T @ design / n_obs)
    covariance = bread @ meat @ bread / n_obs
    deviation = coefficients - np.array([0.0, 1.0])
    wald = float(deviation @ np.linalg.solve(covariance, deviation))
    total = float(((realised_v - realised_v.mean()) ** 2).sum())
    return {
        "intercept": float(coefficients[0]),
        "slope": float(coefficients[1]),
        "r2": 1.0 - float(residuals @ residuals) / total if total > 0 else 0.0,
        "wald_statistic": wald,
        "p_value": float(stats.chi2.sf(wald, df=2)),
    }


def model_confidence_set(
    losses: dict[str, np.ndarray], *, size: float = 0.1, block_size: int = 10, seed: int = 0
) -> dict[str, float]:
    """Hansen, Lunde and Nason's Model Confidence Set (arch's implementation): each model's
    MCS p-value; the models with p-value >= `size` form the set of the best at that level."""
    from arch.bootstrap import MCS

    names = list(losses)
    if len(names) < 2:
        raise DataError("the Model Confidence Set compares at least 2 models")
    table = np.column_stack([np.asarray(losses[name], dtype=np.float64) for name in names])
    if not np.isfinite(table).all():
        raise DataError("the Model Confidence Set needs finite losses on every day")
    confidence = MCS(table, size=size, block_size=block_size, method="R", seed=seed)
    confidence.compute()
    p_values = confidence.pvalues["Pvalue"]
    return {names[int(index)]: float(p_values.loc[index]) for index in p_values.index}
