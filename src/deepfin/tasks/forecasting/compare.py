"""Leaderboards: several models (or variants of one) on one split, each over several seeds,
with the seeds' mean and spread, their ensemble, the baselines and the one-line factors."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepfin.config import RunConfig
from deepfin.errors import ConfigError
from deepfin.models import FORECAST_MODELS, MODELS, checked_params
from deepfin.runs.files import CONFIG, run_header, write_frame, write_json
from deepfin.runs.lock import run_lock
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.tasks.forecasting.evaluation import (
    HEADLINE_METRICS,
    REFERENCES,
    is_panel,
    primary_rmse,
    score_predictions,
)
from deepfin.tasks.forecasting.pipeline import prepare_run, run_forecast
from deepfin.tasks.forecasting.resume import check_run_dir

MAX_SEEDS = 100


@dataclass(frozen=True)
class ModelSpec:
    """A leaderboard entry: a registered model with some hyperparameters, under a label."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`model`, or `model[key=value,...]` for a variant."""
        if not self.params:
            return self.model
        return f"{self.model}[{','.join(f'{k}={v}' for k, v in self.params.items())}]"

    @property
    def folder(self) -> str:
        """The label as a folder name."""
        return re.sub(r"[^A-Za-z0-9_.=-]+", "-", self.label).strip("-")


def model_spec(model: str, params: dict[str, Any] | None = None) -> ModelSpec:
    """A checked spec: a forecasting model and hyperparameters it takes."""
    if model not in FORECAST_MODELS:
        raise ConfigError(f"unknown model {model!r}; choose from {sorted(FORECAST_MODELS)}")
    return ModelSpec(model, checked_params(model, params))


def run_compare(
    config: RunConfig, *, models: list[str | ModelSpec], run_dir: Path, seeds: int = 1
) -> pl.DataFrame:
    """Fit every model on one split, `seeds` times each; one leaderboard row per model (the
    mean over seeds, with `<metric>_std` beside it), and one per ensemble; saved as CSV/JSON."""
    with run_lock(run_dir):
        return _run_compare(config, models=models, run_dir=run_dir, seeds=seeds)


def _run_compare(
    config: RunConfig, *, models: list[str | ModelSpec], run_dir: Path, seeds: int
) -> pl.DataFrame:
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds must be between 1 and {MAX_SEEDS}; got {seeds}")
    specs = [model if isinstance(model, ModelSpec) else model_spec(model) for model in models]
    labels = [spec.label for spec in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"the models {labels} repeat one; name each once")
    check_run_dir(run_dir, resume=False)
    config, panel = prepare_run(config)
    rows: list[dict[str, Any]] = []
    last: Forecaster | None = None
    for spec in specs:
        runs: list[Forecaster] = []
        began = time.perf_counter()
        # a solved or fixed model gives the same fit whatever the seed
        seeded = seeds if MODELS[spec.model].fit in ("gradient", "trees") else 1
        for seed in range(seeded):
            forecast = config.forecast.for_model(spec.model)
            forecast = dataclasses.replace(
                forecast, model_params={**forecast.model_params, **spec.params}
            )
            training = dataclasses.replace(config.training, seed=config.training.seed + seed)
            folder = run_dir / spec.folder / (f"seed_{seed}" if seeded > 1 else "")
            model_run = dataclasses.replace(config, forecast=forecast, training=training)
            runs.append(run_forecast(model_run, run_dir=folder, panel=panel))
        seconds = (time.perf_counter() - began) / seeded
        rows.append(_seed_row(spec, runs, seconds))
        if seeded > 1:
            rows.append(_ensemble_row(spec, runs, horizon=config.forecast.horizon))
        last = runs[-1]
    assert last is not None and last.metrics_ is not None and last.predictions_ is not None
    # every model sees the same test rows: the baselines and references of any run stand
    for name in ("linear", "naive", *REFERENCES):
        if name in last.metrics_ and name not in labels:
            rows.append(_row(name, last.metrics_[name]))
    board = pl.DataFrame(_ranked(rows, panel=is_panel(last.predictions_)), infer_schema_length=None)
    write_frame(run_dir / "leaderboard.csv", board)
    header = {**run_header("compare"), **config.to_dict(), "models": labels, "seeds": seeds}
    write_json(run_dir / CONFIG, header)
    write_json(
        run_dir / "leaderboard.json",
        {"split": panel.describe(), "scored": last.scored_, "rows": board.to_dicts()},
    )
    return board


def _row(name: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    counts = {key: metrics.get(key) for key in ("n", "n_tickers", "n_excluded")}
    shown = {column: metrics.get(column) for column in HEADLINE_METRICS}
    return {"model": name, **shown, "epochs": None, "kept_epoch": None, "seconds": None} | (
        extra | counts
    )


def _seed_row(spec: ModelSpec, runs: list[Forecaster], seconds: float) -> dict[str, Any]:
    """The mean of each metric over the seeds, and its standard deviation when there are 2+."""
    metrics = [run.metrics_[spec.model] for run in runs if run.metrics_ is not None]
    row = _row(
        spec.label,
        metrics[0],
        seconds=seconds,
    )
    if MODELS[spec.model].fit == "gradient":  # epochs trained, and the one whose weights stayed
        row["epochs"] = float(np.mean([len(run.history_.epochs) for run in runs]))
        row["kept_epoch"] = float(np.mean([run.history_.best_epoch for run in runs]))
    for column in HEADLINE_METRICS:
        values = [m[column] for m in metrics if m.get(column) is not None]
        row[column] = float(np.mean(values)) if len(values) == len(metrics) else None
        if len(runs) > 1:
            row[f"{column}_std"] = (
                float(np.std(values, ddof=1)) if row[column] is not None else None
            )
    return row | {"seeds": len(runs)}


def _ensemble_row(spec: ModelSpec, runs: list[Forecaster], *, horizon: int) -> dict[str, Any]:
    """The seeds' mean forecast, scored as a model of its own."""
    tables = [run.predictions_ for run in runs if run.predictions_ is not None]
    column = f"{spec.model}_log_return"
    mean = np.mean([table[column].to_numpy() for table in tables], axis=0)
    table = tables[0].with_columns(
        pl.Series(column, mean), (pl.col("close") * np.exp(mean)).alias(f"{spec.model}_price")
    )
    metrics = score_predictions(table, [spec.model], horizon=horizon)[spec.model]
    return _row(f"{spec.label} ensemble", metrics) | {"seeds": len(runs)}


def _ranked(rows: list[dict[str, Any]], *, panel: bool) -> list[dict[str, Any]]:
    """Models first, best first (a panel by Rank IC, one series by the return error), then the
    references."""
    models = [row for row in rows if row["model"] not in REFERENCES]
    references = [row for row in rows if row["model"] in REFERENCES]
    if panel:
        models.sort(key=lambda row: np.inf if row["rank_ic_mean"] is None else -row["rank_ic_mean"])
    else:
        models.sort(key=lambda row: (row["return_rmse"] is None, primary_rmse(row) or 0.0))
    return models + references
