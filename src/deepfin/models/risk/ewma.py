"""EWMA variance (RiskMetrics 1996): yesterday's estimate decayed, plus today's squared return."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import ConfigError


@dataclass(frozen=True)
class EWMAConfig:
    """RiskMetrics' daily decay."""

    decay: float = 0.94

    def __post_init__(self) -> None:
        if not 0 < self.decay < 1:
            raise ConfigError(f"ewma: decay must be in (0, 1); got {self.decay}")


class EWMAVolatility:
    """sigma2[t] = decay * sigma2[t-1] + (1 - decay) * r[t]^2; flat over any horizon."""

    def __init__(self, config: EWMAConfig) -> None:
        self.config = config
        self.coefficients_: np.ndarray | None = np.array([config.decay])  # nothing to learn

    def fit(self, history: VolatilityHistory, *, end: int, horizon: int) -> EWMAVolatility:
        """Nothing is learned: the decay is fixed."""
        return self

    def forecast(
        self, history: VolatilityHistory, origins: np.ndarray, *, horizon: int
    ) -> np.ndarray:
        """The filtered variance at each origin t (days <= t), the forecast of every later day."""
        squared = history.returns[: int(origins.max()) + 1] ** 2
        decay = self.config.decay
        # the recursion as a linear filter, started as if the day before the first had the
        # first day's squared return (causal: no later day sets the start)
        estimate, _ = lfilter([1.0 - decay], [1.0, -decay], squared, zi=[decay * squared[0]])
        return np.maximum(estimate[origins], history.floor)
