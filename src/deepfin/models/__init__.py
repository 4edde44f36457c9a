"""Models by name: the forecasting and tabular registries, their builders and `model_config`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import nn

from deepfin.models.forecasting.baselines import (
    LinearConfig,
    LinearForecaster,
    NaiveConfig,
    NaiveForecaster,
)
from deepfin.models.forecasting.cnn import CNNConfig, CNNForecaster
from deepfin.models.forecasting.gru import GRUConfig, GRUForecaster
from deepfin.models.forecasting.hybrid import HybridConfig, HybridForecaster
from deepfin.models.forecasting.lstm import LSTMConfig, LSTMForecaster
from deepfin.models.forecasting.rnn import RNNConfig, RNNForecaster
from deepfin.models.forecasting.transformer import TransformerConfig, TransformerForecaster
from deepfin.models.tabular.boosting import LightGBMConfig, LightGBMScorer
from deepfin.models.tabular.ft_transformer import FTTransformerConfig, FTTransformerScorer
from deepfin.models.tabular.logistic import LogisticConfig, LogisticScorer
from deepfin.models.tabular.mlp import MLPConfig, MLPScorer

# name -> (config class, module class); adding a model means one new file and one line here
MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "rnn": (RNNConfig, RNNForecaster),
    "lstm": (LSTMConfig, LSTMForecaster),
    "gru": (GRUConfig, GRUForecaster),
    "hybrid": (HybridConfig, HybridForecaster),
    "cnn": (CNNConfig, CNNForecaster),
    "transformer": (TransformerConfig, TransformerForecaster),
    "naive": (NaiveConfig, NaiveForecaster),
    "linear": (LinearConfig, LinearForecaster),
}

# the models trained by gradient descent; the baselines are set or solved in closed form
NEURAL_MODELS: tuple[str, ...] = ("rnn", "lstm", "gru", "hybrid", "cnn", "transformer")

# inferred from the data by the caller, so never accepted as hyperparameters
DATA_SIZES: tuple[str, ...] = ("n_features", "lookback", "n_outputs")

# credit scorers: encoded applicants (B, F) -> default log-odds (B, 1); name -> (config, class)
TABULAR_MODELS: dict[str, tuple[type, type]] = {
    "logistic": (LogisticConfig, LogisticScorer),
    "mlp": (MLPConfig, MLPScorer),
    "ft_transformer": (FTTransformerConfig, FTTransformerScorer),
    "lightgbm": (LightGBMConfig, LightGBMScorer),  # not an nn.Module: grown, not trained by SGD
}

__all__ = [
    "DATA_SIZES",
    "MODELS",
    "NEURAL_MODELS",
    "TABULAR_MODELS",
    "build_model",
    "build_tabular_model",
    "hyperparameters",
    "model_config",
]


def hyperparameters(name: str) -> dict[str, Any]:
    """Default hyperparameters of the model `name` (the config fields after the data sizes)."""
    config_class, _ = _lookup(name)
    return {
        field.name: field.default
        for field in dataclasses.fields(config_class)
        if field.name not in DATA_SIZES
    }


def build_model(
    name: str,
    *,
    n_features: int,
    lookback: int,
    n_outputs: int,
    params: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Build the model `name` for windows (B, lookback, n_features) -> forecasts (B, n_outputs)."""
    config_class, module_class = _lookup(name)
    params = dict(params or {})
    valid = sorted(hyperparameters(name))
    sizes = sorted(set(params) & set(DATA_SIZES))
    if sizes:
        raise ValueError(
            f"{name}: {', '.join(sizes)} come from the data, not from params; "
            "pass them as keyword arguments; "
            f"valid keys are: {', '.join(valid) or 'none'}"
        )
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid keys are: {', '.join(valid) or 'none (this model takes no hyperparameters)'}"
        )
    config = config_class(n_features=n_features, lookback=lookback, n_outputs=n_outputs, **params)
    return module_class(config)


def model_config(model: nn.Module) -> dict[str, Any]:
    """The model's config as a JSON-serialisable dict, data sizes included."""
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(
            f"{type(model).__name__} has no dataclass `config`; build it with build_model"
        )
    return dataclasses.asdict(config)


def _lookup(name: str) -> tuple[type, type[nn.Module]]:
    """Registry entry for `name`, or a ValueError listing the valid names."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_tabular_model(
    name: str, *, n_features: int, params: Mapping[str, Any] | None = None
) -> nn.Module | LightGBMScorer:
    """Build the credit scorer `name` for encoded applicants (B, n_features) -> log-odds (B, 1)."""
    if name not in TABULAR_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(TABULAR_MODELS)}")
    config_class, module_class = TABULAR_MODELS[name]
    params = dict(params or {})
    valid = sorted(f.name for f in dataclasses.fields(config_class) if f.name != "n_features")
    if "n_features" in params:
        raise ValueError(
            f"{name}: n_features comes from the data, not from params; valid keys are: "
            f"{', '.join(valid) or 'none'}"
        )
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid keys are: {', '.join(valid) or 'none (this model takes no hyperparameters)'}"
        )
    model: nn.Module | LightGBMScorer = module_class(config_class(n_features=n_features, **params))
    return model
