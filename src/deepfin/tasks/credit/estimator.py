"""CreditScorer: default probability from a deep tabular model, beside logistic and boosting."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from deepfin.data.batches import TensorRows
from deepfin.data.tabular.encoding import LoanSource, TabularEncoder, binary_target, read_loans
from deepfin.errors import ConfigError
from deepfin.explain.attribution import group_columns, integrated_gradients, reason_codes
from deepfin.metrics.classification import (
    bin_shares,
    ks_statistic,
    score_bin_edges,
    scorecard_points,
)
from deepfin.models import MODELS, build_tabular_model
from deepfin.models.tabular.boosting import LightGBMScorer
from deepfin.models.tabular.logistic import LogisticScorer
from deepfin.tasks.base import Estimator
from deepfin.tasks.credit.columns import feature_columns
from deepfin.tasks.credit.config import CreditConfig
from deepfin.training import History, TrainingConfig, fit_model
from deepfin.training.privacy import PrivacyConfig, make_private

log = logging.getLogger(__name__)

BANDS = ("A", "B", "C", "D", "E")  # A: the safest fifth of training applicants
Scorer = nn.Module | LightGBMScorer


class CreditScorer(Estimator):
    """Scores applicants: default probability, scorecard points, band and reason codes."""

    def __init__(
        self,
        *,
        model: str = "ft_transformer",
        target: str = "default",
        default_value: str | None = None,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        drop: tuple[str, ...] = (),
        allow_columns: tuple[str, ...] = (),
        sensitive: tuple[str, ...] = (),
        date_col: str | None = None,
        baselines: tuple[str, ...] = ("logistic", "lightgbm"),
        model_params: dict[str, Any] | None = None,
        min_category_count: int = 10,
        unknown_categories: str = "error",
        integrated_gradient_steps: int = 32,
        training: TrainingConfig | None = None,
        privacy: PrivacyConfig | None = None,
    ) -> None:
        self.config = CreditConfig(
            model=model,
            target=target,
            default_value=default_value,
            numeric=numeric,
            categorical=categorical,
            drop=drop,
            allow_columns=allow_columns,
            sensitive=sensitive,
            date_col=date_col,
            baselines=baselines,
            model_params=dict(model_params or {}),
            min_category_count=min_category_count,
            unknown_categories=unknown_categories,
            integrated_gradient_steps=integrated_gradient_steps,
        )
        self.training = training or TrainingConfig(epochs=30, batch_size=256, patience=5)
        self.privacy = privacy
        self.model_: Scorer | None = None
        self.baselines_: dict[str, Scorer] = {}
        self.history_ = History()
        self.metrics_: dict[str, Any] | None = None
        self.predictions_: pl.DataFrame | None = None

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable."""
        return {
            **dataclasses.asdict(self.config),
            "training": dataclasses.asdict(self.training),
            "privacy": dataclasses.asdict(self.privacy) if self.privacy else None,
        }

    # ----------------------------------------------------------------------------- fit
    def fit(self, train: LoanSource, val: LoanSource | None = None) -> CreditScorer:
        """Learn encoders on `train` only, then the model and baselines; `val` stops training."""
        cfg = self.config
        frame = read_loans(train)
        labels = binary_target(frame, cfg.target, default_value=cfg.default_value)
        self.numeric_, self.categorical_, self.excluded_identifiers_ = feature_columns(frame, cfg)
        self.encoder_ = TabularEncoder(min_category_count=cfg.min_category_count).fit(
            frame, numeric=self.numeric_, categorical=self.categorical_
        )
        x = self.encoder_.transform(frame)
        self.reference_ = x.mean(axis=0)  # the average applicant: where reason codes start
        x_val = y_val = None
        if val is not None:
            val_frame = read_loans(val)
            y_val = binary_target(val_frame, cfg.target, default_value=cfg.default_value)
            x_val = self.encoder_.transform(val_frame, unknown="other")
        else:
            log.warning("no validation rows: nets train every epoch and boosting every tree")
        self.privacy_: dict[str, Any] | None = None
        self.model_ = self._fit_one(cfg.model, x, labels, x_val, y_val, primary=True)
        self.baselines_ = {
            name: self._fit_one(name, x, labels, x_val, y_val, primary=False)
            for name in cfg.baselines
            if name != cfg.model
        }
        train_probability = self.probability_of(self.model_, x)
        self.score_edges_ = score_bin_edges(train_probability)  # for PSI at any later date
        self.train_score_shares_ = bin_shares(train_probability, self.score_edges_)
        self.band_edges_ = np.quantile(train_probability, np.linspace(0, 1, len(BANDS) + 1)[1:-1])
        # the approval cut-off (KS-optimal) is chosen before the test set is seen: on the
        # validation rows, or on the training rows when there are none
        if x_val is not None and y_val is not None:
            val_probability = self.probability_of(self.model_, x_val)
            self.cutoff_: float | None = ks_statistic(y_val, val_probability)[1]
        else:
            self.cutoff_ = ks_statistic(labels, train_probability)[1]
        return self

    def _fit_one(
        self,
        name: str,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray | None,
        y_val: np.ndarray | None,
        *,
        primary: bool,
    ) -> Scorer:
        params = self.config.model_params if primary else {}
        torch.manual_seed(self.training.seed)  # initial weights are reproducible too
        model = build_tabular_model(name, n_features=x.shape[1], params=params)
        private_training = primary and self.privacy is not None
        fit = MODELS[name].fit
        if fit == "trees":
            assert isinstance(model, LightGBMScorer)
            if private_training:
                raise ConfigError(f"DP training needs a neural model; {name} is not supported")
            return model.fit(x, y, x_val=x_val, y_val=y_val, seed=self.training.seed)
        assert isinstance(model, nn.Module)
        if fit == "closed_form" and not private_training:
            # solved exactly (Newton's method); under DP-SGD it is trained like the nets
            assert isinstance(model, LogisticScorer)
            model.fit_newton(torch.from_numpy(x), torch.from_numpy(y))
            return model.eval()
        trainable: nn.Module = model
        training, optimizer, private = self.training, None, None
        if primary and self.privacy is not None:
            if self.training.l1 or self.training.l2:
                raise ConfigError(
                    "l1 and l2 penalties bypass DP-SGD's per-sample clipping; use weight_decay"
                )
            private = make_private(
                trainable, privacy=self.privacy, training=self.training, rows=len(x)
            )
            trainable, optimizer = private.model, private.optimizer
            # per-sample clipping replaces the global clip
            training = dataclasses.replace(self.training, grad_clip=0.0)
        with warnings.catch_warnings():
            # Opacus' hooks warn on every model whose inputs need no gradient, as ours never do
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            history = fit_model(
                trainable,
                _rows(x, y),
                _rows(x_val, y_val) if x_val is not None and y_val is not None else None,
                loss_fn=nn.functional.binary_cross_entropy_with_logits,
                config=training,
                optimizer=optimizer,
                poisson_sampling=private is not None,
            )
        if primary:
            self.history_ = history
        if private is not None:
            private.release()  # the per-sample gradient hooks would break attributions later
            self.privacy_ = private.spent(epochs=len(history.epochs))
        return model.cpu().eval()

    # ------------------------------------------------------------------------- predict
    def probability_of(self, model: Scorer, x: np.ndarray) -> np.ndarray:
        """Default probability per encoded row (N, F) under `model` (the scorer or a baseline)."""
        return 1 / (1 + np.exp(-self._log_odds(model, x)))

    def _log_odds(self, model: Scorer, x: np.ndarray) -> np.ndarray:
        if isinstance(model, LightGBMScorer):
            return model.log_odds(x)
        with torch.no_grad():
            return model(torch.from_numpy(x)).double().numpy()[:, 0]

    def encode(self, data: LoanSource) -> np.ndarray:
        """Encoded applicants (N, F) as the model sees them."""
        self.check_is_fitted()
        frame = read_loans(data)
        return self.encoder_.transform(frame, unknown=self.config.unknown_categories)

    def predict_proba(self, data: LoanSource) -> np.ndarray:
        """Default probability per row."""
        self.check_is_fitted()
        assert self.model_ is not None
        return self.probability_of(self.model_, self.encode(data))

    def explain(self, data: LoanSource) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Attributions (N, C) per input column, their names, and the reference log-odds (N,)."""
        self.check_is_fitted()
        x = self.encode(data)
        encoded, reference_log_odds = self.attributions(x)
        grouped, names = group_columns(encoded, self.encoder_.feature_sources_)
        return grouped, names, reference_log_odds

    def attributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Attributions (N, encoded F) of the model's log-odds, and the reference log-odds (N,)."""
        model = self.model_
        if isinstance(model, LightGBMScorer):
            return model.contributions(x)
        assert model is not None
        reference = torch.from_numpy(self.reference_.astype(np.float32))
        attributions = integrated_gradients(
            model, torch.from_numpy(x), reference, steps=self.config.integrated_gradient_steps
        )
        reference_log_odds = self._log_odds(model, self.reference_[None].astype(np.float32))
        return attributions, np.full(len(x), reference_log_odds[0])

    def score(self, data: LoanSource, *, top_k: int = 3, reasons: bool = True) -> pl.DataFrame:
        """Per row: default probability, scorecard points, band and (optionally) reason codes."""
        self.check_is_fitted()
        if reasons and top_k < 1:
            raise ConfigError(f"top_k={top_k}: give at least 1 reason code each way")
        assert self.model_ is not None
        x = self.encode(data)
        probability = self.probability_of(self.model_, x)
        out = pl.DataFrame(
            {
                "default_probability": probability,
                "score": scorecard_points(probability),
                "band": self.bands(probability),
            }
        )
        if not reasons:
            return out
        encoded, _ = self.attributions(x)
        grouped, names = group_columns(encoded, self.encoder_.feature_sources_)
        return pl.concat([out, reason_codes(grouped, names, top_k=top_k)], how="horizontal")

    def bands(self, probability: np.ndarray) -> list[str]:
        """Risk band per probability, A (safest fifth of training applicants) to E."""
        return [BANDS[i] for i in np.searchsorted(self.band_edges_, probability, side="right")]

    # -------------------------------------------------------------------- evaluate, io
    def evaluate(self, test: LoanSource, *, cutoff: float | None = None) -> dict[str, Any]:
        """Metrics of the model and the baselines on `test`, with the tables the report shows."""
        from deepfin.tasks.credit.evaluation import evaluate_scorer

        return evaluate_scorer(self, read_loans(test), cutoff=cutoff)

    def save(self, run_dir: Path | str) -> Path:
        """Write config, weights, preprocessing, history and (if evaluated) metrics."""
        from deepfin.tasks.credit.files import save_scorer

        return save_scorer(self, Path(run_dir))

    @classmethod
    def load(cls, run_dir: Path | str) -> CreditScorer:
        """Rebuild a fitted CreditScorer from a run folder; executes no code from it."""
        from deepfin.tasks.credit.files import load_scorer

        return load_scorer(Path(run_dir))


def _rows(x: np.ndarray, y: np.ndarray) -> TensorRows:
    """Encoded applicants (N, F) and their outcomes (N, 1), as the training loop takes them."""
    features = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    targets = torch.from_numpy(y.astype(np.float32)[:, None])  # (N,) -> (N, 1)
    return TensorRows(features, targets)
