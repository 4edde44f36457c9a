"""The run folder of a Forecaster: plain JSON, CSV, Parquet and safetensors; nothing pickled."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from deepfin.config import ForecastConfig
from deepfin.data.scaling import Scaler
from deepfin.errors import RunFolderError
from deepfin.models import DATA_SIZES, build_model, model_config
from deepfin.models.forecasting.gbdt import GBDTForecaster
from deepfin.models.forecasting.linear import LinearForecaster
from deepfin.runs.booster import BOOSTER, read_booster_text
from deepfin.runs.files import CONFIG, PREPROCESS, RunFiles, open_run, read_weights, write_run
from deepfin.runs.weights import Weights
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.training import TrainingConfig


def save_forecaster(forecaster: Forecaster, run_dir: Path) -> Path:
    """Write the run folder; returns it."""
    forecaster.check_is_fitted()
    assert forecaster.model_ is not None and forecaster.linear_ is not None
    tensors = {f"model.{k}": v for k, v in forecaster.model_.state_dict().items()}
    tensors |= {f"linear.{k}": v for k, v in forecaster.linear_.state_dict().items()}
    files = RunFiles(
        config={
            **forecaster.get_params(),
            "model_config": model_config(forecaster.model_),
            "linear_config": model_config(forecaster.linear_),
        },
        preprocess={
            "features": list(forecaster.config.features),
            "target": forecaster.config.target,
            "feature_scaler": forecaster.feature_scaler_.to_dict(),
            "target_scaler": forecaster.target_scaler_.to_dict(),
            "return_maps": {k: list(v) for k, v in forecaster.return_maps_.items()},
            "quantile_shifts": forecaster.quantile_shifts_.tolist(),
            "quantile_offsets": forecaster.quantile_offsets_.tolist(),
            "quantile_step": forecaster.quantile_step_,
        },
        tensors=tensors,
        history=forecaster.history_,
        metrics=forecaster.metrics_,
        predictions=forecaster.predictions_,
    )
    if isinstance(forecaster.model_, GBDTForecaster):
        files.texts = {BOOSTER: forecaster.model_.to_text()}
    return write_run(run_dir, "forecast", files)


def load_forecaster(run_dir: Path) -> Forecaster:
    """Rebuild a fitted Forecaster from its run folder."""
    return open_run(run_dir, "forecast", _forecaster)


def _forecaster(run_dir: Path, files: RunFiles) -> Forecaster:
    saved = files.config
    config_fields = {field.name for field in dataclasses.fields(ForecastConfig)}
    config = ForecastConfig(**{k: v for k, v in saved.items() if k in config_fields})
    forecaster = Forecaster.from_config(config, TrainingConfig(**saved["training"]))
    weights = read_weights(run_dir, files.hashes)
    forecaster.model_ = _rebuild(weights, "model", config.model, saved["model_config"])
    if isinstance(forecaster.model_, GBDTForecaster):
        trees = forecaster.model_
        inputs = trees.config.lags * trees.config.n_features
        trees.load_text(read_booster_text(run_dir, files.hashes, n_features=inputs))
    linear = _rebuild(weights, "linear", "linear", saved["linear_config"])
    assert isinstance(linear, LinearForecaster)
    forecaster.linear_ = linear
    _check_agrees(run_dir, config, saved, files.preprocess)
    forecaster.feature_scaler_ = Scaler.from_dict(files.preprocess["feature_scaler"])
    forecaster.target_scaler_ = Scaler.from_dict(files.preprocess["target_scaler"])
    forecaster.return_maps_ = _return_maps(run_dir, config, files.preprocess)
    shifts = files.preprocess.get("quantile_shifts", [0.0] * len(config.quantiles))
    if len(shifts) != len(config.quantiles):
        raise RunFolderError(
            f"{run_dir / PREPROCESS} holds {len(shifts)} quantile shift(s) for "
            f"{len(config.quantiles)} quantile(s); the folder is damaged: re-run"
        )
    forecaster.quantile_shifts_ = np.asarray(shifts, dtype=np.float64)
    offsets = files.preprocess.get("quantile_offsets", [0.0] * len(config.quantiles))
    if len(offsets) != len(config.quantiles):
        raise RunFolderError(f"{run_dir / PREPROCESS} holds the wrong number of quantile offsets")
    forecaster.quantile_offsets_ = np.asarray(offsets, dtype=np.float64)
    forecaster.quantile_step_ = float(files.preprocess.get("quantile_step", 0.0))
    forecaster.history_ = files.history
    forecaster.metrics_ = files.metrics
    return forecaster


def _rebuild(weights: Weights, prefix: str, name: str, config: dict[str, Any]) -> nn.Module:
    """The model `name` of `config`, holding the weights under `prefix.`; sizes checked first."""
    params = dict(config)
    sizes = {key: params.pop(key) for key in DATA_SIZES["forecast"]}
    return weights.module(
        prefix,
        lambda: build_model(name, **sizes, params=params),
        described=f"{prefix}_config of {weights.path.parent / CONFIG}",
    )


def _check_agrees(
    run_dir: Path, config: ForecastConfig, saved: dict[str, Any], preprocess: dict[str, Any]
) -> None:
    """The settings in config.json are those the weights and scalers were fitted with."""
    for name in ("model_config", "linear_config"):
        if saved[name]["lookback"] != config.lookback:
            raise RunFolderError(
                f"{run_dir / CONFIG} says lookback={config.lookback}, but its model was trained "
                f"on windows of {saved[name]['lookback']}; re-run or restore the file"
            )
    if list(preprocess["features"]) != list(config.features):
        raise RunFolderError(
            f"the features of {run_dir / CONFIG} ({', '.join(config.features)}) are not those "
            f"its scalers were fitted on ({', '.join(preprocess['features'])}); re-run or "
            "restore the run folder"
        )


def _return_maps(
    run_dir: Path, config: ForecastConfig, preprocess: dict[str, Any]
) -> dict[str, tuple[float, float]]:
    """The score-to-return maps of a run trained on normalised labels, checked."""
    saved = preprocess.get("return_maps", {})
    wanted = {"model", "linear"} if config.label_norm != "none" else set()
    good = isinstance(saved, dict) and set(saved) == wanted
    maps = {}
    for name, pair in saved.items() if good else ():
        numbers = isinstance(pair, list) and len(pair) == 2
        if not numbers or not all(isinstance(v, int | float) and math.isfinite(v) for v in pair):
            good = False
            break
        maps[name] = (float(pair[0]), float(pair[1]))
    if not good:
        raise RunFolderError(
            f"the return_maps of {run_dir / 'preprocess.json'} do not fit label_norm="
            f"{config.label_norm} (expected finite (intercept, slope) pairs for "
            f"{sorted(wanted) or 'no model'}); re-run or restore the run folder"
        )
    return maps
