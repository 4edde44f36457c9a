"""GARCH(1,1), GJR-GARCH and EGARCH with Student-t errors, fitted by the `arch` package.

Each fit estimates the parameters on the training days; forecasts between fits keep them
fixed and update the filter day by day. Returns are scaled to percent for the optimiser.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PERCENT = 100.0  # arch's optimiser is best conditioned on returns in percent
DISTRIBUTIONS = ("t", "normal")
MIN_FIT_DAYS = 250
SIMULATIONS = 500  # paths per origin for EGARCH's multi-day forecast (it has no closed form)


@dataclass(frozen=True)
class GARCHConfig:
    """GARCH(1,1) (Bollerslev 1986)."""

    distribution: str = "t"  # Student-t errors, or normal

    process: ClassVar[Literal["GARCH", "EGARCH"]] = "GARCH"
    asymmetric: ClassVar[bool] = False  # GJR's extra term for negative returns

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"unknown error distribution {self.distribution!r}; choose one of {DISTRIBUTIONS}"
            )


@dataclass(frozen=True)
class GJRGARCHConfig(GARCHConfig):
    """GJR-GARCH(1,1,1) (Glosten, Jagannathan and Runkle 1993): bad news moves variance more."""

    asymmetric: ClassVar[bool] = True


@dataclass(frozen=True)
class EGARCHConfig(GARCHConfig):
    """EGARCH(1,1,1) (Nelson 1991): the log variance, with an asymmetric term."""

    process: ClassVar[Literal["GARCH", "EGARCH"]] = "EGARCH"
    asymmetric: ClassVar[bool] = True


class GARCHVolatility:
    """A GARCH-family model of daily returns: fit on a prefix, forecast at later origins."""

    def __init__(self, config: GARCHConfig) -> None:
        self.config = config
        self.coefficients_: np.ndarray | None = None  # arch's parameters, in its order
        self.failed_fits_: int = 0  # fits that did not converge (previous parameters kept)

    def _model(self, returns: np.ndarray, *, seed: int = 0) -> Any:
        from arch import arch_model
        from arch.univariate import Normal, StudentsT

        model = arch_model(
            returns * PERCENT,
            mean="Constant",
            vol=self.config.process,
            p=1,
            q=1,
            o=1 if self.config.asymmetric else 0,
        )
        # seeded: EGARCH's simulated forecasts are then the same for the same data
        errors = StudentsT if self.config.distribution == "t" else Normal
        model.distribution = errors(seed=seed)
        return model

    def fit(self, history: VolatilityHistory, *, end: int, horizon: int) -> GARCHVolatility:
        """Estimate on days 0 .. end; a fit that fails keeps the previous parameters."""
        if end + 1 < MIN_FIT_DAYS:
            raise DataError(
                f"a GARCH fit needs at least {MIN_FIT_DAYS} days of returns; got {end + 1}"
            )
        model = self._model(history.returns[: end + 1])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence is judged by the flag below
                result = model.fit(disp="off", show_warning=False)
            converged = result.convergence_flag == 0 and np.isfinite(result.params).all()
        except (ValueError, np.linalg.LinAlgError):
            converged, result = False, None
        if converged:
            self.coefficients_ = result.params.to_numpy()
        else:
            self.failed_fits_ += 1
            if self.coefficients_ is None and result is None:
                raise DataError(
                    f"the {self.config.process} fit on days 0-{end} failed and there are no "
                    "earlier parameters to keep; give it a longer training period"
                )
            if self.coefficients_ is None:
                self.coefficients_ = result.params.to_numpy()
            log.warning(
                "%s fit on days 0-%d did not converge; keeping the previous parameters",
                self.config.process,
                end,
            )
        return self

    def fixed(self, history: VolatilityHistory, last: int, *, seed: int = 0) -> Any:
        """arch's result with the fitted parameters over days 0 .. last."""
        assert self.coefficients_ is not None, "fit first"
        return self._model(history.returns[: last + 1], seed=seed).fix(self.coefficients_)

    def _forecasts(
        self, history: VolatilityHistory, origins: np.ndarray, *, horizon: int, method: str
    ) -> Any:
        """arch's forecasts from the first to the last origin; the model sees days 0 .. the
        last origin only, and its random draws are seeded by the first."""
        first = int(origins.min())
        result = self.fixed(history, int(origins.max()), seed=first)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return result.forecast(
                horizon=horizon,
                start=first,
                reindex=False,
                method=method,
                simulations=SIMULATIONS,
                random_state=np.random.RandomState(first),  # arch's bootstrap draws from it
            )

    def daily_forecasts(
        self, history: VolatilityHistory, origins: np.ndarray, *, horizon: int
    ) -> np.ndarray:
        """Variance of each day t+1 .. t+horizon at each origin t, (N, horizon), in return
        units squared."""
        method = "analytic" if self.config.process == "GARCH" or horizon == 1 else "simulation"
        forecasts = self._forecasts(history, origins, horizon=horizon, method=method)
        variance = forecasts.variance.to_numpy()[origins - int(origins.min())]  # (N, horizon)
        return variance / PERCENT**2

    def forecast(
        self, history: VolatilityHistory, origins: np.ndarray, *, horizon: int
    ) -> np.ndarray:
        """Average variance over days t+1 .. t+horizon for each origin t."""
        return self.daily_forecasts(history, origins, horizon=horizon).mean(axis=1)

    def simulated_sums(
        self, history: VolatilityHistory, origins: np.ndarray, *, horizon: int
    ) -> np.ndarray:
        """Sums of the next `horizon` daily returns along bootstrapped paths, (N, SIMULATIONS):
        standardised residuals up to each origin drawn through the fitted model (filtered
        historical simulation over several days)."""
        forecasts = self._forecasts(history, origins, horizon=horizon, method="bootstrap")
        paths = forecasts.simulations.values[origins - int(origins.min())]  # (N, paths, horizon)
        return paths.sum(axis=2) / PERCENT  # percent -> return units
