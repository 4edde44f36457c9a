"""The run folder of a Forecaster: plain JSON, CSV, Parquet and safetensors; nothing pickled."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepfin.config import ForecastConfig
from deepfin.data.scaling import Scaler
from deepfin.models import DATA_SIZES, build_model, model_config
from deepfin.models.forecasting.linear import LinearForecaster
from deepfin.runs.files import WEIGHTS, RunFiles, read_run, read_tensors, write_run
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
        },
        tensors=tensors,
        history=forecaster.history_,
        metrics=forecaster.metrics_,
        predictions=forecaster.predictions_,
    )
    return write_run(run_dir, "forecast", files)


def load_forecaster(run_dir: Path) -> Forecaster:
    """Rebuild a fitted Forecaster from its run folder."""
    files = read_run(run_dir, "forecast")
    saved = files.config
    config_fields = {field.name for field in dataclasses.fields(ForecastConfig)}
    config = ForecastConfig(**{k: v for k, v in saved.items() if k in config_fields})
    forecaster = Forecaster.from_config(config, TrainingConfig(**saved["training"]))
    forecaster.model_ = _rebuild(
        config.model, saved["model_config"], read_tensors(run_dir / WEIGHTS, "model")
    )
    linear = _rebuild("linear", saved["linear_config"], read_tensors(run_dir / WEIGHTS, "linear"))
    assert isinstance(linear, LinearForecaster)
    forecaster.linear_ = linear
    forecaster.feature_scaler_ = Scaler.from_dict(files.preprocess["feature_scaler"])
    forecaster.target_scaler_ = Scaler.from_dict(files.preprocess["target_scaler"])
    forecaster.history_ = files.history
    forecaster.metrics_ = files.metrics
    return forecaster


def _rebuild(name: str, config: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    params = dict(config)
    sizes = {key: params.pop(key) for key in DATA_SIZES["forecast"]}
    module = build_model(name, **sizes, params=params)
    module.load_state_dict(state)
    module.eval()
    return module
