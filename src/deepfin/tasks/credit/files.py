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
from deepfin.models import MODELS, build_tabular_model, model_config
from deepfin.models.tabular.boosting import LightGBMScorer
from deepfin.runs.booster import BOOSTER, read_booster_text
from deepfin.runs.files import (
    CONFIG,
    PREPROCESS,
    RUN,
    RunFiles,
    open_run,
    read_weights,
    write_json,
    write_run,
)
from deepfin.runs.folders import check_fresh_folder
from deepfin.runs.lock import run_lock
from deepfin.tasks.credit.config import CreditConfig
from deepfin.tasks.credit.estimator import BANDS, CreditScorer
from deepfin.training import TrainingConfig
from deepfin.training.privacy import PrivacyConfig

log = logging.getLogger(__name__)

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
        files.texts = {BOOSTER: model.to_text()}
    else:
        files.tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    return write_run(run_dir, "credit", files)


def load_scorer(run_dir: Path) -> CreditScorer:
    """Rebuild a fitted CreditScorer from its run folder."""
    return open_run(run_dir, "credit", _scorer)


def _scorer(run_dir: Path, files: RunFiles) -> CreditScorer:
    saved = files.config
    fields = {field.name for field in dataclasses.fields(CreditConfig)}
    privacy = PrivacyConfig(**saved["privacy"]) if saved.get("privacy") else None
    scorer = CreditScorer(
        **{k: v for k, v in saved.items() if k in fields},
        training=TrainingConfig(**saved["training"]),
        privacy=privacy,
    )
    scorer.model_ = _load_model(run_dir, scorer.config.model, saved["model_config"], files)
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
    _check_scorer(run_dir, scorer, preprocess, saved["model_config"]["n_features"])
    return scorer


def _check_scorer(
    run_dir: Path, scorer: CreditScorer, preprocess: dict[str, Any], n_features: int
) -> None:
    """What preprocess.json holds agrees with itself and with the model it sits beside."""
    where = f"{run_dir / PREPROCESS}"
    names = scorer.encoder_.feature_names_
    for column, stats in scorer.encoder_.numeric_.items():
        values = [stats.get("fill", stats.get("median")), stats["mean"], stats["scale"]]
        if not (np.isfinite(values).all() and stats["scale"] > 0):
            raise RunFolderError(
                f"{where}: the encoding of {column!r} has a scale of 0 or a non-finite "
                "statistic; re-run or restore the run folder"
            )
    widths = {
        "the encoder's columns": len(names),
        "the model's inputs": n_features,
        "the reference applicant": scorer.reference_.size,
    }
    if "feature_names" in preprocess:
        widths["feature_names"] = len(preprocess["feature_names"])
    if len(set(widths.values())) > 1:
        raise RunFolderError(
            f"{where} does not fit its model: "
            + ", ".join(f"{what} {width}" for what, width in widths.items())
            + "; re-run or restore the run folder"
        )
    edges = {"band_edges": scorer.band_edges_, "score_edges": scorer.score_edges_}
    for name, values in edges.items():
        if values.ndim != 1 or not np.isfinite(values).all() or (np.diff(values) < 0).any():
            raise RunFolderError(f"{where}: {name} are not increasing numbers; re-run or restore")
    if scorer.band_edges_.size != len(BANDS) - 1:
        raise RunFolderError(
            f"{where}: {scorer.band_edges_.size} band_edges for {len(BANDS)} bands "
            f"({', '.join(BANDS)}) need {len(BANDS) - 1}; re-run or restore the run folder"
        )
    if scorer.train_score_shares_.size != scorer.score_edges_.size + 1:
        raise RunFolderError(f"{where}: train_score_shares do not match score_edges; re-run")


def _load_model(
    run_dir: Path, name: str, config: dict[str, Any], files: RunFiles
) -> nn.Module | LightGBMScorer:
    """The fitted model: its sizes checked against the weights, or its trees' text checked."""
    params = dict(config)
    n_features = params.pop("n_features")
    if MODELS[name].fit == "trees":
        booster = build_tabular_model(name, n_features=n_features, params=params)
        assert isinstance(booster, LightGBMScorer)
        text = read_booster_text(run_dir, files.hashes, n_features=n_features)
        return LightGBMScorer.from_text(booster.config, text)

    def build() -> nn.Module:
        module = build_tabular_model(name, n_features=n_features, params=params)
        assert isinstance(module, nn.Module)
        return module

    weights = read_weights(run_dir, files.hashes)
    return weights.module("model", build, described=f"model_config of {run_dir / CONFIG}")


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
    """Read, split, fit on train (+val), evaluate on test, save; cross-validate if folds > 1.

    The run folder is locked throughout: a second run into it fails at once.
    """
    check_fresh_folder(run_dir)
    with run_lock(run_dir):
        frame = read_loans(source)
        split = split_credit_data(
            frame, scorer, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed
        )
        described = str(source) if isinstance(source, str | Path) else type(source).__name__
        write_json(run_dir / RUN, {"source": described, "split": split.describe(), "folds": folds})
        scorer.fit(split.train, split.val)
        scorer.evaluate(split.test, cutoff=cutoff)
        scorer.save(run_dir)
        if folds > 1:
            cross = cross_validate(scorer, split, folds=folds, seed=seed)
            write_json(run_dir / CROSS_VALIDATION, cross)
    return scorer


def _model_config(model: nn.Module | LightGBMScorer) -> dict[str, Any]:
    if isinstance(model, LightGBMScorer):
        return dataclasses.asdict(model.config)
    return model_config(model)
