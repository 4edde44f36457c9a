"""Gradient-boosted trees on a window's latest rows: the strongest simple model on factors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from deepfin.errors import ConfigError, NotFittedError
from deepfin.models.forecasting.baselines import check_sizes
from deepfin.models.tabular.boosting import grow_trees, tree_params
from deepfin.models.tabular.logistic import check_positive_ints

if TYPE_CHECKING:  # lightgbm takes seconds to import; only a tree model needs it
    import lightgbm as lgb


@dataclass(frozen=True)
class GBDTConfig:
    """Sizes and hyperparameters of the boosted trees (Qlib's LightGBM on Alpha158, roughly)."""

    n_features: int
    lookback: int
    n_outputs: int
    lags: int = 1  # latest rows of the window the trees read: factors already summarise history
    n_estimators: int = 1000  # an upper bound: early stopping on validation picks the count
    learning_rate: float = 0.05
    num_leaves: int = 63
    min_child_samples: int = 200  # daily returns are mostly noise: leaves need many rows
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    l2: float = 1.0
    early_stopping_rounds: int = 50

    def __post_init__(self) -> None:
        check_sizes("gbdt", self.n_features, self.lookback, self.n_outputs)
        check_positive_ints(
            "gbdt",
            lags=self.lags,
            n_estimators=self.n_estimators,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            early_stopping_rounds=self.early_stopping_rounds,
        )
        if self.lags > self.lookback:
            raise ConfigError(f"gbdt: lags={self.lags} exceeds the lookback of {self.lookback}")
        if self.n_outputs != 1:
            raise ConfigError(f"gbdt: forecasts one output; got n_outputs={self.n_outputs}")
        for name in ("learning_rate", "feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value <= 1:
                raise ConfigError(f"gbdt: {name} must be a number in (0, 1]; got {value!r}")
        if not isinstance(self.l2, int | float) or self.l2 < 0:
            raise ConfigError(f"gbdt: l2 must be a number >= 0; got {self.l2!r}")


class GBDTForecaster(nn.Module):
    """LightGBM regression of the target on the window's last `lags` rows; tensors in and out.

    A module without parameters, so the forecaster predicts, scores and checks it like any
    other model; its trees are saved as LightGBM text, never pickled.
    """

    def __init__(self, config: GBDTConfig) -> None:
        super().__init__()
        self.config = config
        self.booster_: lgb.Booster | None = None

    def rows(self, x: torch.Tensor) -> np.ndarray:
        """The trees' inputs (B, lags * F) of windows (B, T, F)."""
        latest = x[:, -self.config.lags :, :]  # (B, T, F) -> (B, lags, F)
        return latest.reshape(len(x), -1).float().cpu().numpy()  # -> (B, lags * F)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        seed: int = 0,
    ) -> GBDTForecaster:
        """Grow trees on inputs (N, lags * F) and targets (N,); validation stops the growth."""
        cfg = self.config
        with_val = x_val is not None and y_val is not None and len(y_val) > 0
        self.booster_ = grow_trees(
            tree_params("regression", cfg, seed),
            x,
            y,
            x_val,
            y_val,
            # without validation nothing stops the growth: a modest number of trees
            rounds=cfg.n_estimators if with_val else min(cfg.n_estimators, 200),
            patience=cfg.early_stopping_rounds,
        )
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map windows (B, T, F) to forecasts (B, 1)."""
        if self.booster_ is None:
            raise NotFittedError("gbdt: the trees are not grown yet; fit the forecaster first")
        best = self.booster_.best_iteration or None
        values = np.asarray(self.booster_.predict(self.rows(x), num_iteration=best))
        return torch.from_numpy(values.astype(np.float32)).unsqueeze(1)  # (B,) -> (B, 1)

    def to_text(self) -> str:
        """The trees in LightGBM's text format."""
        if self.booster_ is None:
            raise NotFittedError("gbdt: the trees are not grown yet; fit the forecaster first")
        return self.booster_.model_to_string(num_iteration=self.booster_.best_iteration or None)

    def load_text(self, text: str) -> GBDTForecaster:
        """Hold the trees of `to_text` output."""
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_str=text)
        return self
