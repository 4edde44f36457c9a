"""A credit run from a TOML file and overrides: the loans, the split, the scorer, training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfin.config import build_sections, read_toml
from deepfin.errors import ConfigError
from deepfin.tasks.credit.estimator import CreditConfig
from deepfin.training import TrainingConfig
from deepfin.training.privacy import PrivacyConfig


@dataclass(frozen=True)
class CreditDataConfig:
    """Where the loans are, how they are split, and the approval cut-off they are judged at."""

    source: str = ""  # a CSV or Parquet loan table
    test_fraction: float = 0.2
    val_fraction: float = 0.1  # of the rows left after the test set: early stopping, cut-off
    folds: int = 0  # k-fold cross-validation of the training rows; 0 or 1: none
    cutoff: float | None = None  # approve below this probability; None: KS-optimal on validation


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
