"""A credit run from a TOML file and overrides: the loans, the split, the scorer, training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.config import build_sections, read_toml
from deepfin.data.tabular.encoding import UNKNOWN_POLICIES
from deepfin.errors import ConfigError
from deepfin.models import TABULAR_MODELS
from deepfin.training import TrainingConfig
from deepfin.training.privacy import PrivacyConfig


@dataclass(frozen=True)
class CreditConfig:
    """What to predict, from which columns, with which model; what stays out of the model."""

    model: str = "ft_transformer"
    target: str = "default"
    default_value: str | None = None  # the target value meaning default, when not 0/1
    numeric: tuple[str, ...] = ()  # named here: forced numeric; the rest is inferred
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    allow_columns: tuple[str, ...] = ()  # identifier-looking columns accepted as features
    sensitive: tuple[str, ...] = ()  # never features; used for the fairness table only
    date_col: str | None = None  # for out-of-time splits; never a feature
    baselines: tuple[str, ...] = ("logistic", "lightgbm")
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    min_category_count: int = 10
    unknown_categories: str = "error"
    integrated_gradient_steps: int = 32

    def __post_init__(self) -> None:
        for name in (self.model, *self.baselines):
            if name not in TABULAR_MODELS:
                raise ConfigError(f"unknown model {name!r}; choose one of {list(TABULAR_MODELS)}")
        if self.unknown_categories not in UNKNOWN_POLICIES:
            raise ConfigError(
                f"unknown_categories={self.unknown_categories!r}; choose one of "
                f"{list(UNKNOWN_POLICIES)}"
            )
        if self.min_category_count < 1 or self.integrated_gradient_steps < 1:
            raise ConfigError(
                f"min_category_count={self.min_category_count} and integrated_gradient_steps="
                f"{self.integrated_gradient_steps} must both be >= 1"
            )
        roles = {"drop": self.drop, "sensitive": self.sensitive, "numeric": self.numeric}
        roles |= {"categorical": self.categorical, "allow_columns": self.allow_columns}
        clashes = [role for role, columns in roles.items() if self.target in columns]
        if clashes or self.target == self.date_col:
            raise ConfigError(
                f"the target {self.target!r} is also named in {clashes or ['date_col']}; the "
                "target is what the model learns to predict: name it only as the target"
            )
        for name in ("numeric", "categorical", "drop", "allow_columns", "sensitive", "baselines"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True)
class CreditDataConfig:
    """Where the loans are, how they are split, and the approval cut-off they are judged at."""

    source: str = ""  # a CSV or Parquet loan table
    test_fraction: float = 0.2
    val_fraction: float = 0.1  # of the rows left after the test set: early stopping, cut-off
    folds: int = 0  # k-fold cross-validation of the training rows (k >= 2); 0: none
    cutoff: float | None = None  # approve below this probability; None: KS-optimal on validation

    def __post_init__(self) -> None:
        fractions = {"test_fraction": self.test_fraction, "val_fraction": self.val_fraction}
        bad = {name: value for name, value in fractions.items() if not 0 < value < 1}
        if bad:
            raise ConfigError(f"{bad} must lie strictly between 0 and 1")
        if self.folds < 0 or self.folds == 1:
            raise ConfigError(
                f"folds={self.folds}: cross-validation needs at least 2 folds (0: none)"
            )
        if self.cutoff is not None and not 0 < self.cutoff < 1:
            raise ConfigError(
                f"cutoff={self.cutoff} is a default probability: it must lie strictly between 0 "
                "and 1 (leave it out to take the KS-optimal cut-off on validation)"
            )


@dataclass(frozen=True)
class CreditPrivacyConfig:
    """DP-SGD for the network: off unless enabled, with the budget to spend."""

    enabled: bool = False
    epsilon: float = 3.0
    delta: float = 1e-5
    max_grad_norm: float = 5.0

    def privacy(self) -> PrivacyConfig | None:
        """The privacy settings the scorer takes, or None when DP-SGD is off."""
        if not self.enabled:
            return None
        return PrivacyConfig(self.epsilon, self.delta, self.max_grad_norm)


@dataclass(frozen=True)
class CreditRunConfig:
    """Everything one `deepfin credit train` run needs."""

    data: CreditDataConfig = field(default_factory=CreditDataConfig)
    credit: CreditConfig = field(default_factory=CreditConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    privacy: CreditPrivacyConfig = field(default_factory=CreditPrivacyConfig)
    runs_dir: str = "runs"


SECTIONS: dict[str, type] = {
    "data": CreditDataConfig,
    "credit": CreditConfig,
    "training": TrainingConfig,
    "privacy": CreditPrivacyConfig,
}
# tabular nets train on bigger batches, with decoupled weight decay
TRAINING_DEFAULTS = {
    "epochs": 30,
    "batch_size": 256,
    "optimizer": "adamw",
    "weight_decay": 1e-5,
    "patience": 5,
}


def load_credit_config(
    path: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> CreditRunConfig:
    """Defaults, then the TOML file at `path`, then `overrides` ({"section.key": value})."""
    source = str(path) if path else "overrides"
    built = build_sections(
        read_toml(path, overrides),
        SECTIONS,
        source=source,
        defaults={"training": TRAINING_DEFAULTS},
    )
    config = CreditRunConfig(**built)
    if not config.data.source:
        raise ConfigError(f"no loan table: give --data or source under [data] in {source}")
    return config
