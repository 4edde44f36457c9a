"""Run configuration: dataclasses, loaded from TOML plus overrides; unknown keys fail by name."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.data.cross_section import check_norms
from deepfin.data.factors import expand_factor_sets
from deepfin.data.features import DEFAULT_FEATURES, RELATIVE
from deepfin.data.io import LAYOUTS
from deepfin.errors import ConfigError
from deepfin.models import FORECAST_MODELS, MODELS, NEURAL_MODELS, checked_params, hyperparameters
from deepfin.training import TrainingConfig

# mse and huber score each window alone; ic (minus the per-date Pearson correlation) and
# listnet (a listwise ranking loss) score whole cross-sections, so they need date batches
LOSSES = ("mse", "huber", "ic", "listnet")
CROSS_SECTION_LOSSES = ("ic", "listnet")
WINDOWS = ("expanding", "rolling")


@dataclass(frozen=True)
class ForecastConfig:
    """What to forecast and from what: the model, window, features, target and scaling."""

    model: str = "hybrid"
    lookback: int = 30
    horizon: int = 1
    features: tuple[str, ...] = DEFAULT_FEATURES
    target: str = "log_return"
    scaler: str = "standard"
    scale_per_ticker: bool = False
    loss: str = "mse"
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_abs_log_return: float = 0.4  # one-day moves beyond this are flagged as bad data
    label_norm: str = "none"  # per-date normalisation of the labels: none, excess, zscore, rank
    cross_section_norm: str = "none"  # per-date normalisation of the inputs: none, zscore, rank
    date_batches: bool = False  # each batch holds whole cross-sections (all tickers of a date)
    quantiles: tuple[float, ...] = ()  # a quantile head beside the point forecast: 0.05,0.5,0.95
    conformal: bool = False  # shift each quantile to its nominal share on the validation days
    adaptive: bool = False  # and keep moving it there as test outcomes become known

    def __post_init__(self) -> None:
        if self.model not in FORECAST_MODELS:
            raise ConfigError(
                f"unknown model '{self.model}'; choose one of {sorted(FORECAST_MODELS)}"
            )
        if self.lookback < 1 or self.horizon < 1:
            raise ConfigError(
                f"lookback={self.lookback} and horizon={self.horizon} must both be >= 1"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss '{self.loss}'; choose one of {list(LOSSES)}")
        if not self.max_abs_log_return > 0:  # NaN fails this too: it would switch the filter off
            raise ConfigError(
                f"max_abs_log_return must be a number > 0, got {self.max_abs_log_return}"
            )
        checked_params(self.model, self.model_params)  # a key of another model is refused
        check_norms(features=self.cross_section_norm, labels=self.label_norm)
        if self.target != "log_return" and (self.label_norm, self.cross_section_norm) != (
            "none",
            "none",
        ):
            raise ConfigError(
                "label_norm and cross_section_norm need target=log_return: price levels are "
                "not comparable across tickers"
            )
        if self.loss in CROSS_SECTION_LOSSES and not self.date_batches:
            # a ranking loss compares the tickers of one date: the batches must hold them
            object.__setattr__(self, "date_batches", True)
        # a factor set (alpha158) stands for its factors, in order, after the features before it
        object.__setattr__(self, "features", expand_factor_sets(tuple(self.features)))
        relative = [name for name in self.features if name in RELATIVE]
        if relative and self.cross_section_norm != "none":
            raise ConfigError(
                f"cross_section_norm={self.cross_section_norm} would compare the log price "
                f"levels of {', '.join(relative)} across tickers, not their windows' ratios; "
                "set cross_section_norm to none or leave out the rel_* features"
            )

        object.__setattr__(self, "quantiles", _checked_quantiles(self.quantiles))
        if self.quantiles:
            if MODELS[self.model].fit != "gradient":
                raise ConfigError(
                    f"quantiles need a network trained by gradient descent; {self.model} is "
                    f"not one: choose one of {list(NEURAL_MODELS)}"
                )
            if self.target != "log_return" or self.label_norm != "none":
                raise ConfigError(
                    "quantiles are of the log return: target=log_return, label_norm=none"
                )
            if self.loss in CROSS_SECTION_LOSSES:
                raise ConfigError(f"quantiles need a per-window loss (mse, huber), not {self.loss}")
        elif self.conformal or self.adaptive:
            raise ConfigError("conformal and adaptive calibrate quantiles: give --quantiles too")

    def for_model(self, name: str) -> ForecastConfig:
        """The same settings for model `name`, with the model parameters it takes (and the
        quantile head only if it is a network)."""
        params = {k: v for k, v in self.model_params.items() if k in hyperparameters(name)}
        if MODELS[name].fit != "gradient":
            return dataclasses.replace(
                self,
                model=name,
                model_params=params,
                quantiles=(),
                conformal=False,
                adaptive=False,
            )
        return dataclasses.replace(self, model=name, model_params=params)


def _checked_quantiles(quantiles: tuple[float, ...]) -> tuple[float, ...]:
    """The quantiles sorted, each in (0, 1) and none twice, or a ConfigError saying why."""
    try:
        values = tuple(sorted(float(q) for q in quantiles))
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"quantiles must be numbers in (0, 1), e.g. 0.05,0.5,0.95; got {list(quantiles)}"
        ) from error
    if any(not 0 < q < 1 for q in values):
        raise ConfigError(f"every quantile must lie in (0, 1); got {list(values)}")
    if len(set(values)) != len(values):
        raise ConfigError(f"a quantile is given twice in {list(values)}")
    return values


@dataclass(frozen=True)
class DataConfig:
    """Where the prices come from and which of them to use."""

    source: str = "sp500"  # a built-in data set name (`deepfin data list`) or a file path
    columns: dict[str, str] = field(default_factory=dict)  # role -> column name in the file
    tickers: tuple[str, ...] = ()  # keep only these; empty keeps all
    max_tickers: int = 0  # keep the first N tickers in file order; 0 keeps all
    ffill_limit: int = 5
    layout: str = "auto"  # long, wide (a date column and a column of closes per ticker), auto

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown layout '{self.layout}'; choose one of {list(LAYOUTS)}")
        if self.max_tickers < 0:
            raise ConfigError(f"max_tickers must be >= 0 (0 keeps all), got {self.max_tickers}")
        if self.ffill_limit < 0:
            raise ConfigError(
                f"ffill_limit must be >= 0 rows (0 fills no gap), got {self.ffill_limit}"
            )


@dataclass(frozen=True)
class SplitConfig:
    """Chronological split by fractions of the calendar."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    embargo: int = -1  # days dropped between parts; -1 means the forecast horizon

    def __post_init__(self) -> None:
        if self.embargo < -1:
            raise ConfigError(
                f"embargo must be >= 0 days, or -1 for the forecast horizon; got {self.embargo}"
            )


@dataclass(frozen=True)
class WalkForwardConfig:
    """How the folds move through time."""

    refit_every: int = 21  # trading days per fold: 21 is a monthly re-fit
    window: str = "expanding"  # expanding: train from the start; rolling: the last train_days
    train_days: int = 504  # rolling window length; ignored when expanding
    val_days: int = 63  # the validation block before each test block (early stopping)
    test_fraction: float = 0.3  # share of the calendar covered by test blocks
    test_start: str = ""  # ISO date of the first test origin; given, it replaces test_fraction
    embargo: int = -1  # days between train, validation and test; -1 means the horizon
    warm_start: bool = True  # start each fold from the previous fold's weights
    warm_start_epochs: int = 0  # epochs of a warm-started fold; 0 keeps training.epochs

    def __post_init__(self) -> None:
        if self.window not in WINDOWS:
            raise ConfigError(f"unknown window '{self.window}'; choose one of {list(WINDOWS)}")
        if self.refit_every < 1 or self.val_days < 1 or self.train_days < 1:
            raise ConfigError("refit_every, val_days and train_days must be >= 1 day")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must lie in (0, 1), got {self.test_fraction}")
        if self.embargo < -1:
            raise ConfigError(
                f"embargo must be >= 0 days, or -1 for the forecast horizon; got {self.embargo}"
            )
        if self.test_start:
            try:
                dt.date.fromisoformat(self.test_start)
            except ValueError as error:
                raise ConfigError(
                    f"test_start must be an ISO date such as 2009-01-02; got {self.test_start!r}"
                ) from error
        if self.warm_start_epochs < 0:
            raise ConfigError(
                f"warm_start_epochs must be >= 0 (0 keeps training.epochs), got "
                f"{self.warm_start_epochs}"
            )


@dataclass(frozen=True)
class RunConfig:
    """Everything one `deepfin forecast` run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    walk_forward: WalkForwardConfig = field(default_factory=WalkForwardConfig)
    runs_dir: str = "runs"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, as written to a run's config.json."""
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "split": SplitConfig,
    "forecast": ForecastConfig,
    "training": TrainingConfig,
    "walk_forward": WalkForwardConfig,
}


def load_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    raw = read_toml(path, overrides)
    built = build_sections(raw, SECTIONS, source=str(path) if path else "overrides")
    return RunConfig(**built)


def read_toml(path: Path | str | None, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The TOML file at `path` (or nothing), with `overrides` ({"section.key": value}) on top."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"no config file at {path}")
        try:
            # TOML is UTF-8 by definition, whatever the locale says
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from error
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        target = raw.setdefault(section, {}) if section else raw
        if not isinstance(target, dict):
            raise ConfigError(f"'{section}' is a value, not a section")
        target[key] = value
    return raw


def build_sections(
    raw: dict[str, Any],
    sections: dict[str, type],
    *,
    source: str,
    defaults: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Each section's dataclass from its table (over `defaults`), and `runs_dir`; unknown keys
    and sections fail by name."""
    unknown = set(raw) - set(sections) - {"runs_dir"}
    if unknown:
        raise ConfigError(
            f"unknown section(s) {sorted(unknown)} in {source}; the sections are "
            f"{sorted(sections)} and the key runs_dir"
        )
    built: dict[str, Any] = {}
    for name, section_class in sections.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"[{name}] in {source} must be a table of keys")
        known = {f.name: f for f in dataclasses.fields(section_class)}
        bad = sorted(set(values) - set(known))
        if bad:
            raise ConfigError(
                f"unknown key(s) {bad} in [{name}] of {source}; valid keys: {sorted(known)}"
            )
        hints = typing.get_type_hints(section_class)
        coerced = {key: _coerce(name, key, value, hints[key]) for key, value in values.items()}
        try:
            built[name] = section_class(**{**(defaults or {}).get(name, {}), **coerced})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"[{name}] in {source}: {error}") from error
    if "runs_dir" in raw:
        if not isinstance(raw["runs_dir"], str):
            raise ConfigError(
                f"runs_dir = {raw['runs_dir']!r} in {source} has the wrong type; expected str"
            )
        built["runs_dir"] = raw["runs_dir"]
    return built


def _coerce(section: str, key: str, value: Any, hint: Any) -> Any:
    """Check a value against its field's type; lists become tuples where a tuple is expected."""
    origin = typing.get_origin(hint)
    expected = origin or hint
    if origin is types.UnionType:
        expected = tuple(typing.get_origin(a) or a for a in typing.get_args(hint))
    if expected is tuple and isinstance(value, list | tuple):
        return tuple(value)
    floats = expected is float or (isinstance(expected, tuple) and float in expected)
    if floats and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise ConfigError(
            f"[{section}] {key} = {value!r} has the wrong type; "
            f"expected {getattr(hint, '__name__', hint)}"
        )
    return value
