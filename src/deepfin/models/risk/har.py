"""HAR (Corsi 2009): the next h days' average variance from the last day's, week's and month's,
by least squares on the training days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfin.data.volatility import HAR_LAGS, VolatilityHistory, forward_mean, trailing_means
from deepfin.errors import DataError


@dataclass(frozen=True)
class HARConfig:
    """HAR has no hyperparameters: its lags are Corsi's 1, 5 and 22 days."""


class HARVolatility:
    """Least squares of the h-day average variance on its trailing 1/5/22-day means."""

    def __init__(self, config: HARConfig) -> None:
        self.config = config
        self.coefficients_: np.ndarray | None = None  # (1 + lags,): intercept first

    def fit(self, history: VolatilityHistory, *, end: int, horizon: int) -> HARVolatility:
        """Learn from the days whose regressors and whole target lie in days 0 .. end."""
        regressors = trailing_means(history.variance[: end + 1])  # (N, 3)
        target = forward_mean(history.variance[: end + 1], horizon)
        usable = np.isfinite(regressors).all(axis=1) & np.isfinite(target)
        if usable.sum() < 2 * (len(HAR_LAGS) + 1):
            raise DataError(
                f"HAR needs at least {2 * (len(HAR_LAGS) + 1)} training days with "
                f"{max(HAR_LAGS)} days of history and {horizon} days ahead; got {int(usable.sum())}"
            )
        design = np.column_stack([np.ones(int(usable.sum())), regressors[usable]])
        self.coefficients_, *_ = np.linalg.lstsq(design, target[usable], rcond=None)
        return self

    def forecast(
        self, history: VolatilityHistory, origins: np.ndarray, *, horizon: int
    ) -> np.ndarray:
        """Average variance over days t+1 .. t+horizon for each origin t (reads days <= t)."""
        assert self.coefficients_ is not None, "fit first"
        regressors = trailing_means(history.variance[: int(origins.max()) + 1])[origins]
        design = np.column_stack([np.ones(origins.size), regressors])
        # least squares can go below zero after a calm month; no variance can
        return np.maximum(design @ self.coefficients_, history.floor)
