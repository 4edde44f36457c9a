"""LightGBM gradient boosting: the baseline a deep credit model has to beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from deepfin.errors import ConfigError, DataError
from deepfin.models.tabular.logistic import check_positive_ints

if TYPE_CHECKING:  # lightgbm takes seconds to import; only credit scoring needs it
    import lightgbm as lgb


@dataclass(frozen=True)
class LightGBMConfig:
    """Sizes and hyperparameters of the boosted trees."""

    n_features: int
    n_estimators: int = 1000  # an upper bound: early stopping on validation picks the count
    learning_rate: float = 0.03
    num_leaves: int = 31
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    l2: float = 1.0
    early_stopping_rounds: int = 50

    def __post_init__(self) -> None:
        check_positive_ints(
            "lightgbm",
            n_features=self.n_features,
            n_estimators=self.n_estimators,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            early_stopping_rounds=self.early_stopping_rounds,
        )
        for name in ("learning_rate", "feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value <= 1:
                raise ConfigError(f"lightgbm: {name} must be a number in (0, 1]; got {value!r}")
        if not isinstance(self.l2, int | float) or self.l2 < 0:
            raise ConfigError(f"lightgbm: l2 must be a number >= 0; got {self.l2!r}")


class LightGBMScorer:
    """Boosted trees with the scorers' interface: log-odds out, attributions that add up."""

    def __init__(self, config: LightGBMConfig) -> None:
        self.config = config
        self.booster_: lgb.Booster | None = None

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        seed: int = 0,
    ) -> LightGBMScorer:
        """Grow trees on (N, F) features and 0/1 labels; validation rows stop the growth."""
        if x.shape[1] != self.config.n_features:
            raise DataError(
                f"lightgbm: got {x.shape[1]} features, built for {self.config.n_features}"
            )
        cfg = self.config
        self.booster_ = grow_trees(
            tree_params("binary", cfg, seed),
            x,
            y,
            x_val,
            y_val,
            rounds=cfg.n_estimators,
            patience=cfg.early_stopping_rounds,
        )
        return self

    def _booster(self) -> lgb.Booster:
        if self.booster_ is None:
            raise RuntimeError("lightgbm: the model is not fitted; call fit first")
        return self.booster_

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Default log-odds (N,) for encoded applicants (N, F)."""
        booster = self._booster()
        return np.asarray(booster.predict(x, raw_score=True, num_iteration=booster.best_iteration))

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP attributions (N, F) and the reference log-odds (N,) they add up from."""
        booster = self._booster()
        # exact Shapley values of the trees: they sum to log-odds minus the expected log-odds
        raw = booster.predict(x, pred_contrib=True, num_iteration=booster.best_iteration)
        values = np.asarray(raw)  # (N, F + 1), the last column is the expected value
        return values[:, :-1], values[:, -1]

    def to_text(self) -> str:
        """The model in LightGBM's own text format (no pickle)."""
        return self._booster().model_to_string(num_iteration=self._booster().best_iteration)

    @classmethod
    def from_text(cls, config: LightGBMConfig, text: str) -> LightGBMScorer:
        """Rebuild a fitted model from `to_text` output."""
        import lightgbm as lgb

        scorer = cls(config)
        scorer.booster_ = lgb.Booster(model_str=text)
        return scorer


def tree_params(objective: str, config: Any, seed: int) -> dict[str, Any]:
    """LightGBM's parameters from a tree config's fields: deterministic, quiet."""
    return {
        "objective": objective,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples,
        "feature_fraction": config.feature_fraction,
        "bagging_fraction": config.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": config.l2,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def grow_trees(
    params: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    rounds: int,
    patience: int,
) -> lgb.Booster:
    """Up to `rounds` trees; with validation rows, stopped after `patience` rounds without gain."""
    import lightgbm as lgb

    train_set = lgb.Dataset(x, label=y, free_raw_data=True)
    valid_sets: list[lgb.Dataset] = []
    callbacks: list[Any] = []
    if x_val is not None and y_val is not None and len(y_val):
        valid_sets = [lgb.Dataset(x_val, label=y_val, reference=train_set)]
        callbacks = [lgb.early_stopping(patience, verbose=False)]
    return lgb.train(
        params, train_set, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks
    )
