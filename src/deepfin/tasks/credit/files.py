"""The run folder of a CreditScorer and whole credit runs: split, fit, evaluate, cross-validate."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from torch import nn

from deepfin.data.tabular.encoding import LoanSource, TabularEncoder, binary_target, read_loans
from deepfin.data.tabular.splits import LoanSplit, split_loans, stratified_folds
from deepfin.errors import RunFolderError
from deepfin.models import build_tabular_model, model_config
from deepfin.models.tabular.boosting import LightGBMScorer
from deepfin.runs.files import (
    RUN,
    WEIGHTS,
    RunFiles,
    read_run,
    read_tensors,
    write_json,
    write_run,
)
from deepfin.tasks.credit.config import CreditConfig
from deepfin.tasks.credit.estimator import CreditScorer
from deepfin.training import TrainingConfig
from deepfin.training.privacy import PrivacyConfig

log = logging.getLogger(__name__)

BOOSTER = "model.lgb.txt"  # LightGBM's own text format: readable, and loading runs no code
CROSS_VALIDATION = "cross_validation.json"


def save_scorer(scorer: CreditScorer, run_dir: Path) -> Path:
    """Write the run folder (no raw rows, identifiers or sensitive values); returns it."""
    scorer.check_is_fitted()
    model = scorer.model_
    assert model is not None
    files = RunFiles(
        config={**scorer.get_params(), "model_config": _model_config(model)},
        preprocess={
            "encoder": scorer.encoder_.to_dict(),
            "feature_names": scorer.encoder_.feature_names_,
            "reference": scorer.reference_.tolist(),
            "score_edges": scorer.score_edges_.tolist(),
            "train_score_shares": scorer.train_score_shares_.tolist(),
            "band_edges": scorer.band_edges_.tolist(),
            "cutoff": scorer.cutoff_,
            # names and reasons only: the values never leave the caller's data
            "excluded_identifiers": scorer.excluded_identifiers_,
            "privacy": scorer.privacy_,
        },
        history=scorer.history_,
        metrics=scorer.metrics_,
        predictions=scorer.predictions_,
    )
    if isinstance(model, LightGBMScorer):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / BOOSTER).write_text(model.to_text())
    else:
        files.tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    return write_run(run_dir, "credit", files)


def load_scorer(run_dir: Path) -> CreditScorer:
    """Rebuild a fitted CreditScorer from its run folder."""
    files = read_run(run_dir, "credit")
    saved = files.config
    fields = {field.name for field in dataclasses.fields(CreditConfig)}
    privacy = PrivacyConfig(**saved["privacy"]) if saved.get("privacy") else None
    scorer = CreditScorer(
        **{k: v for k, v in saved.items() if k in fields},
        training=TrainingConfig(**saved["training"]),
        privacy=privacy,
    )
    params = dict(saved["model_config"])
    n_features = params.pop("n_features")
    model = build_tabular_model(scorer.config.model, n_features=n_features, params=params)
    if isinstance(model, LightGBMScorer):
        if not (run_dir / BOOSTER).exists():
            raise RunFolderError(f"{run_dir / BOOSTER} is missing; the run has no model")
        model = LightGBMScorer.from_text(model.config, (run_dir / BOOSTER).read_text())
    else:
        assert isinstance(model, nn.Module)
        model.load_state_dict(read_tensors(run_dir / WEIGHTS, "model"))
        model.eval()
    scorer.model_ = model
    preprocess = files.preprocess
    scorer.encoder_ = TabularEncoder.from_dict(preprocess["encoder"])
    scorer.numeric_ = list(scorer.encoder_.numeric_)
    scorer.categorical_ = list(scorer.encoder_.categorical_)
    scorer.reference_ = np.asarray(preprocess["reference"], dtype=np.float64)
    scorer.score_edges_ = np.asarray(preprocess["score_edges"], dtype=np.float64)
    scorer.train_score_shares_ = np.asarray(preprocess["train_score_shares"], dtype=np.float64)
    scorer.band_edges_ = np.asarray(preprocess["band_edges"], dtype=np.float64)
    scorer.cutoff_ = preprocess.get("cutoff")  # absent in run folders of earlier versions
    scorer.excluded_identifiers_ = dict(preprocess["excluded_identifiers"])
    scorer.privacy_ = preprocess.get("privacy")
    scorer.history_ = files.history
    scorer.metrics_ = files.metrics
    scorer.predictions_ = files.predictions
    return scorer


def split_credit_data(
    frame: pl.DataFrame,
    scorer: CreditScorer,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> LoanSplit:
    """Out-of-time split when the scorer has a date column, else stratified by the target."""
    cfg = scorer.config
    labels = binary_target(frame, cfg.target, default_value=cfg.default_value)
    return split_loans(
        frame,
        labels=labels,
        date_col=cfg.date_col,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
    )


def cross_validate(
    scorer: CreditScorer, split: LoanSplit, *, folds: int, seed: int = 0
) -> dict[str, Any]:
    """Refit on each of `folds` stratified folds of the training rows; metrics per fold."""
    cfg = scorer.config
    labels = binary_target(split.train, cfg.target, default_value=cfg.default_value)
    rows = []
    for fold, held_out in enumerate(stratified_folds(labels, folds=folds, seed=seed)):
        mask = np.zeros(split.train.height, dtype=bool)
        mask[held_out] = True
        fold_scorer = CreditScorer(
            **dataclasses.asdict(cfg), training=scorer.training, privacy=scorer.privacy
        )
        fold_scorer.fit(split.train.filter(pl.Series(~mask)), split.val)
        metrics = fold_scorer.evaluate(split.train.filter(pl.Series(mask)))["models"]
        rows += [{"fold": fold + 1, "model": name, **m} for name, m in metrics.items()]
    table = pl.DataFrame(rows)
    summary = (
        table.group_by("model", maintain_order=True)
        .agg(pl.col(name).mean().alias(f"{name}_mean") for name in ("auc", "ks", "brier"))
        .join(
            table.group_by("model", maintain_order=True).agg(
                pl.col(name).std().alias(f"{name}_std") for name in ("auc", "ks", "brier")
            ),
            on="model",
        )
    )
    return {"folds": rows, "summary": summary.to_dicts()}


def run_credit(
    scorer: CreditScorer,
    source: LoanSource,
    *,
    run_dir: Path,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    folds: int = 0,
    cutoff: float | None = None,
) -> CreditScorer:
    """Read, split, fit on train (+val), evaluate on test, save; cross-validate if folds > 1."""
    frame = read_loans(source)
    split = split_credit_data(
        frame, scorer, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    described = str(source) if isinstance(source, str | Path) else type(source).__name__
    write_json(run_dir / RUN, {"source": described, "split": split.describe(), "folds": folds})
    scorer.fit(split.train, split.val)
    scorer.evaluate(split.test, cutoff=cutoff)
    scorer.save(run_dir)
    if folds > 1:
        write_json(
            run_dir / CROSS_VALIDATION, cross_validate(scorer, split, folds=folds, seed=seed)
        )
    return scorer


def _model_config(model: nn.Module | LightGBMScorer) -> dict[str, Any]:
    if isinstance(model, LightGBMScorer):
        return dataclasses.asdict(model.config)
    return model_config(model)
