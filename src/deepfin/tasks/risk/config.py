"""The settings of `deepfin risk volatility`, declared once: estimator, CLI and TOML read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.config import DataConfig, WalkForwardConfig, build_sections, read_toml
from deepfin.data.volatility import check_estimator
from deepfin.errors import ConfigError
from deepfin.models import NEURAL_MODELS, model_names
from deepfin.training import TrainingConfig

VOLATILITY_LOSSES = ("qlike", "mse")  # mse: on the log variance


def volatility_models() -> tuple[str, ...]:
    """Every model a volatility run can fit: the risk desk's and the forecasting nets."""
    return (*model_names("risk"), *NEURAL_MODELS)


@dataclass(frozen=True)
class VolatilityConfig:
    """What is forecast (the average variance over the next `horizon` days, by `estimator`) and
    by which models; the first model is the one the verdict judges."""

    models: tuple[str, ...] = (
        "lstm",
        "gru",
        "hybrid",
        "har",
        "ewma",
        "garch",
        "gjr_garch",
        "egarch",
    )
    estimator: str = "close"  # close, parkinson, garman_klass or rogers_satchell
    horizon: int = 1  # trading days: 1, 5 and 22 are a day, a week and a month
    ticker: str = ""  # which series of a panel; empty for a file of one series
    lookback: int = 22  # days of history a network reads (a month: HAR's longest lag)
    loss: str = "qlike"  # the networks' training loss: qlike, or mse of the log variance
    model_params: dict[str, Any] = field(default_factory=dict)  # for every network

    def __post_init__(self) -> None:
        check_estimator(self.estimator)
        known = volatility_models()
        unknown = [name for name in self.models if name not in known]
        if unknown or not self.models:
            raise ConfigError(
                f"unknown volatility model(s) {unknown or '(none given)'}; "
                f"choose from {list(known)}"
            )
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"a model is named twice in {list(self.models)}")
        if isinstance(self.horizon, bool) or not 1 <= self.horizon <= 252:
            raise ConfigError(f"horizon must be 1 to 252 trading days; got {self.horizon}")
        if not 2 <= self.lookback <= 1000:
            raise ConfigError(f"lookback must be 2 to 1000 days; got {self.lookback}")
        if self.loss not in VOLATILITY_LOSSES:
            raise ConfigError(
                f"unknown loss {self.loss!r}; choose one of {list(VOLATILITY_LOSSES)}"
            )


@dataclass(frozen=True)
class VarConfig:
    """One-day VaR and ES of one series at each level, by each method."""

    # also quantile and fz0, the nets
    methods: tuple[str, ...] = ("historical", "garch_normal", "garch_t", "fhs")
    levels: tuple[float, ...] = (0.99, 0.975)
    horizon: int = 1  # days the loss is over: 1, or 10 as Basel asks
    ticker: str = ""  # which series of a panel; empty for a file of one series
    network: str = "lstm"  # the net of the quantile and fz0 methods
    lookback: int = 22  # days of history the net reads
    network_refit_every: int = 252  # days between the nets' fits; they read every new day
    weights: str = ""  # a CSV/Parquet of ticker, weight: the portfolio of a panel's tickers
    stress: dict[str, str] = field(default_factory=dict)  # name -> "start:end" (ISO dates)

    def __post_init__(self) -> None:
        from deepfin.metrics.risk import check_level
        from deepfin.tasks.risk.var import VAR_METHODS

        if self.network not in NEURAL_MODELS:
            raise ConfigError(
                f"unknown network {self.network!r}; choose from {list(NEURAL_MODELS)}"
            )
        if not 2 <= self.lookback <= 1000:
            raise ConfigError(f"lookback must be 2 to 1000 days; got {self.lookback}")
        if isinstance(self.horizon, bool) or not 1 <= self.horizon <= 60:
            raise ConfigError(f"horizon must be 1 to 60 trading days; got {self.horizon}")
        if self.network_refit_every < 1:
            raise ConfigError(
                f"network_refit_every must be >= 1 day; got {self.network_refit_every}"
            )

        unknown = [method for method in self.methods if method not in VAR_METHODS]
        if unknown or not self.methods:
            raise ConfigError(
                f"unknown VaR method(s) {unknown or '(none given)'}; "
                f"choose from {list(VAR_METHODS)}"
            )
        if not self.levels:
            raise ConfigError("give at least one confidence level, e.g. --levels 0.99")
        try:
            levels = tuple(float(level) for level in self.levels)
        except ValueError as error:
            raise ConfigError(
                f"levels must be numbers in (0, 1), e.g. 0.99,0.975; got {list(self.levels)}"
            ) from error
        levels = tuple(check_level(level) for level in levels)
        if any(level < 0.5 for level in levels):
            raise ConfigError(
                f"a VaR level is a confidence of at least 0.5 (0.99 for the 1% tail); got "
                f"{[level for level in levels if level < 0.5]}"
            )
        object.__setattr__(self, "levels", levels)


# the networks are re-fitted every fold from the last fold's weights, so each fold trains briefly
RISK_TRAINING: dict[str, Any] = {
    "epochs": 30,
    "patience": 5,
    "batch_size": 256,
    "learning_rate": 1e-3,
}
RISK_WALK_FORWARD: dict[str, Any] = {
    "test_start": "2009-01-02",
    "val_days": 252,
    "warm_start_epochs": 3,
}


@dataclass(frozen=True)
class VolatilityRunConfig:
    """Everything one `deepfin risk volatility` run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    volatility: VolatilityConfig = field(default_factory=VolatilityConfig)
    walk_forward: WalkForwardConfig = field(
        default_factory=lambda: WalkForwardConfig(**RISK_WALK_FORWARD)
    )
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(**RISK_TRAINING))
    runs_dir: str = "runs"


def load_volatility_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> VolatilityRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    return VolatilityRunConfig(**_sections(path, overrides, "volatility", VolatilityConfig))


def load_var_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> VarRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    return VarRunConfig(**_sections(path, overrides, "var", VarConfig))


def _sections(
    path: Path | str | None, overrides: dict[str, Any] | None, name: str, task: type
) -> dict[str, Any]:
    """Every section of a risk run (the task's own is `name`), over the risk defaults."""
    sections = {
        "data": DataConfig,
        name: task,
        "walk_forward": WalkForwardConfig,
        "training": TrainingConfig,
    }
    defaults = {"walk_forward": RISK_WALK_FORWARD, "training": RISK_TRAINING}
    source = str(path) if path else "overrides"
    built = build_sections(read_toml(path, overrides), sections, source=source, defaults=defaults)
    if built["walk_forward"].window != "expanding":
        raise ConfigError(
            f"a risk run fits every model on all the days before each test block (an expanding "
            f"window); window={built['walk_forward'].window} is not offered here ({source})"
        )
    return built


@dataclass(frozen=True)
class VarRunConfig:
    """Everything one `deepfin risk var` run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    var: VarConfig = field(default_factory=VarConfig)
    walk_forward: WalkForwardConfig = field(
        default_factory=lambda: WalkForwardConfig(**RISK_WALK_FORWARD)
    )
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(**RISK_TRAINING))
    runs_dir: str = "runs"
