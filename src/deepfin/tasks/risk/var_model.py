"""A VaR run's model to keep: its historical, GARCH and FHS methods with the GJR-GARCH fitted
on every day of the run, forecasting the next `horizon` days' VaR and ES from a series' recent
returns as the walk-forward did at each origin."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepfin.data.volatility import VolatilityHistory
from deepfin.errors import DataError, RunFolderError
from deepfin.models.risk.garch import GARCHVolatility, GJRGARCHConfig
from deepfin.runs.files import read_config, read_json
from deepfin.tasks.risk.var import (
    GARCH_ERRORS,
    HISTORICAL_DAYS,
    garch_tails,
    historical_tails,
)

KEPT_METHODS = ("historical", *GARCH_ERRORS)  # the nets are refitted by the walk-forward only
MIN_RETURNS = HISTORICAL_DAYS // 2  # what historical simulation and the GARCH filter read
PARAMETERS = {"t": 6, "normal": 5}  # GJR-GARCH's mu, omega, alpha, gamma, beta (and nu)
LARGEST_RETURN = 1.0  # a daily log return past 1 (-63% .. +172%) is percent or a price


@dataclass
class VarModel:
    """The VaR/ES of the `horizon` days after the last of a series' daily log returns, by each
    kept method at each level, as positive losses in return units."""

    methods: tuple[str, ...]
    levels: tuple[float, ...]
    horizon: int
    coefficients: dict[str, list[float]]  # GJR-GARCH's errors ("t", "normal") -> parameters
    series: str = ""
    fitted_through: str = ""
    metrics_: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        history: VolatilityHistory,
        *,
        methods: tuple[str, ...],
        levels: tuple[float, ...],
        horizon: int,
        series: str = "",
        fitted_through: str = "",
    ) -> VarModel | None:
        """The run's kept methods with the GJR-GARCH fitted on all of `history`; None when the
        run has only nets."""
        kept = tuple(method for method in methods if method in KEPT_METHODS)
        if not kept:
            return None
        coefficients = {}
        for errors in sorted({GARCH_ERRORS[m] for m in kept if m in GARCH_ERRORS}):
            model = _garch(errors).fit(history, end=len(history.returns) - 1, horizon=1)
            assert model.coefficients_ is not None
            coefficients[errors] = [float(value) for value in model.coefficients_]
        return cls(kept, tuple(levels), horizon, coefficients, series, fitted_through)

    def to_config(self) -> dict[str, Any]:
        """What config.json keeps of the model."""
        return {
            "methods": list(self.methods),
            "levels": list(self.levels),
            "horizon": self.horizon,
            "coefficients": self.coefficients,
            "series": self.series,
            "fitted_through": self.fitted_through,
        }

    @classmethod
    def load(cls, run_dir: Path | str) -> VarModel:
        """The model a `deepfin risk var` run folder keeps, checked; executes no code from it."""
        run_dir = Path(run_dir)
        saved = read_config(run_dir, "risk")
        if "var" not in saved:
            raise RunFolderError(
                f"{run_dir} is a volatility backtest (walk-forward forecasts and their scores), "
                "not a fitted model; only `deepfin risk var` runs keep one"
            )
        kept = saved.get("model")
        if kept is None:
            raise RunFolderError(
                f"{run_dir} keeps no model to forecast with: its methods are nets only (refitted "
                "each fold), or an older deepfin wrote it; run `deepfin risk var` with "
                "historical, garch_t, garch_normal or fhs among --methods"
            )
        model = _checked(kept, run_dir)
        metrics_path = run_dir / "metrics.json"
        if metrics_path.exists():
            metrics = read_json(metrics_path)
            model.metrics_ = metrics if isinstance(metrics, dict) else {}
        return model

    def forecast(self, returns: np.ndarray) -> pl.DataFrame:
        """One row per method and level: the VaR and ES of the `horizon` days after the last of
        `returns` (daily log returns, oldest first, at least MIN_RETURNS)."""
        returns = check_returns(returns)
        history = VolatilityHistory(returns, returns**2)
        last = np.array([returns.size - 1])
        rows: list[dict[str, Any]] = []
        for method in self.methods:
            if method == "historical":
                tails = historical_tails(history, last, self.levels, self.horizon)
            else:
                model = _garch(GARCH_ERRORS[method])
                model.coefficients_ = np.array(self.coefficients[GARCH_ERRORS[method]])
                tails = garch_tails(
                    model,
                    history,
                    last,
                    self.levels,
                    fit_end=returns.size - 1,
                    filtered=method == "fhs",
                    horizon=self.horizon,
                )
            for level, tail in tails.items():
                var, es = float(tail.var[0]), float(tail.es[0])
                rows.append({"method": method, "level": level, "var": var, "es": max(es, var)})
        return pl.DataFrame(rows)


def check_returns(returns: np.ndarray | list[float]) -> np.ndarray:
    """`returns` as a float array, refused with the reason when too short, not finite, or in
    percent."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 1 or returns.size < MIN_RETURNS:
        raise DataError(
            f"send at least {MIN_RETURNS} daily returns (about a year), oldest first; "
            f"got {returns.size}"
        )
    if not np.isfinite(returns).all():
        raise DataError("every return must be a finite number")
    largest = float(np.abs(returns).max())
    if largest > LARGEST_RETURN:
        raise DataError(
            f"a daily log return of {largest:g} is past {LARGEST_RETURN:g}: send returns in "
            "return units (0.01 for 1%), not percent, or send closes instead"
        )
    if largest == 0.0:
        raise DataError("every return is zero: a series that never moves has no risk to model")
    return returns


def returns_of_closes(closes: np.ndarray | list[float]) -> np.ndarray:
    """Daily log returns of closes (oldest first), refused when a close is not positive."""
    closes = np.asarray(closes, dtype=np.float64)
    if not (np.isfinite(closes).all() and (closes > 0).all()):
        raise DataError("every close must be a positive number")
    return np.diff(np.log(closes))


def _garch(errors: str) -> GARCHVolatility:
    return GARCHVolatility(GJRGARCHConfig(distribution=errors))


def _checked(kept: Any, run_dir: Path) -> VarModel:
    """config.json's model block as a VarModel, every field checked."""
    where = f"{run_dir}/config.json's model"
    if not isinstance(kept, dict):
        raise RunFolderError(f"{where} is not an object; re-run `deepfin risk var`")
    methods = kept.get("methods")
    levels = kept.get("levels")
    horizon = kept.get("horizon")
    coefficients = kept.get("coefficients")
    if (
        not isinstance(methods, list)
        or not methods
        or any(method not in KEPT_METHODS for method in methods)
    ):
        raise RunFolderError(f"{where} names unknown methods {methods!r}")
    if (
        not isinstance(levels, list)
        or not levels
        or any(not isinstance(level, float) or not 0.5 <= level < 1 for level in levels)
    ):
        raise RunFolderError(f"{where} holds levels {levels!r}, not confidences in [0.5, 1)")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 60:
        raise RunFolderError(f"{where} holds horizon {horizon!r}, not 1 to 60 days")
    if not isinstance(coefficients, dict):
        raise RunFolderError(f"{where} holds no GARCH parameters")
    for errors in {GARCH_ERRORS[m] for m in methods if m in GARCH_ERRORS}:
        values = coefficients.get(errors)
        if (
            not isinstance(values, list)
            or len(values) != PARAMETERS[errors]
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in values)
        ):
            raise RunFolderError(
                f"{where} holds {values!r} for the GJR-GARCH with {errors} errors, not "
                f"{PARAMETERS[errors]} finite numbers"
            )
    return VarModel(
        tuple(methods),
        tuple(levels),
        horizon,
        {errors: [float(v) for v in values] for errors, values in coefficients.items()},
        str(kept.get("series", "")),
        str(kept.get("fitted_through", "")),
    )
