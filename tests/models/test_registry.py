"""The model registry: names, hyperparameter checks and config round trips."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import torch

from deepfin.models import (
    FITS,
    FORECAST_MODELS,
    MODELS,
    NEURAL_MODELS,
    TASKS,
    build_model,
    hyperparameters,
    model_config,
    model_names,
)

SIZES = {"n_features": 3, "lookback": 12, "n_outputs": 2}

# one non-default setting per hyperparameter, so a round trip that drops one shows up
NON_DEFAULT: dict[str, dict[str, Any]] = {
    "rnn": {"hidden_size": 8, "num_layers": 2, "dropout": 0.1},
    "lstm": {"hidden_size": 8, "num_layers": 2, "dropout": 0.1},
    "gru": {"hidden_size": 8, "num_layers": 2, "dropout": 0.1},
    "hybrid": {
        "hidden_size": 8,
        "num_layers": 2,
        "dropout": 0.1,
        "short_days": 6,
        "long_step": 3,
        "paths": "long",
    },
    "cnn": {"channels": 8, "kernel_size": 2, "num_levels": 3, "dropout": 0.1},
    "transformer": {
        "d_model": 16,
        "n_heads": 2,
        "num_layers": 1,
        "dim_feedforward": 24,
        "dropout": 0.1,
    },
    "naive": {},
    "linear": {"ridge_alpha": 0.5},
    "gbdt": {
        "lags": 2,
        "n_estimators": 50,
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_child_samples": 20,
        "feature_fraction": 0.5,
        "bagging_fraction": 0.7,
        "l2": 0.0,
        "early_stopping_rounds": 10,
    },
}


def sizes_of(name: str) -> dict[str, int]:
    """The test sizes; trees forecast one output."""
    return SIZES | {"n_outputs": 1} if MODELS[name].fit == "trees" else SIZES


def test_registry_lists_every_model_once() -> None:
    assert set(NON_DEFAULT) == set(FORECAST_MODELS)
    assert set(NEURAL_MODELS) == set(FORECAST_MODELS) - {"naive", "linear", "gbdt"}
    assert {name for task in TASKS for name in model_names(task)} == set(MODELS)
    assert {entry.fit for entry in MODELS.values()} <= set(FITS)
    for name in FORECAST_MODELS:
        first = [field.name for field in dataclasses.fields(MODELS[name].config)][:3]
        assert first == ["n_features", "lookback", "n_outputs"], name


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'lstn'") as error:
        build_model("lstn", **SIZES)
    for name in FORECAST_MODELS:
        assert name in str(error.value)


def test_unknown_hyperparameter_names_key_model_and_valid_keys() -> None:
    with pytest.raises(ValueError, match="'hiden_size'") as error:
        build_model("gru", **SIZES, params={"hiden_size": 8, "dropout": 0.0})
    message = str(error.value)
    assert "'gru'" in message
    assert "hidden_size" in message and "num_layers" in message


def test_data_sizes_are_refused_as_hyperparameters() -> None:
    with pytest.raises(ValueError, match="n_features comes from the data"):
        build_model("lstm", **SIZES, params={"n_features": 4})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("rnn", {"hidden_size": 0}, "hidden_size must be an integer >= 1; got 0"),
        ("lstm", {"num_layers": -1}, "num_layers must be an integer >= 1; got -1"),
        ("lstm", {"hidden_size": 8.0}, "hidden_size must be an integer >= 1; got 8.0"),
        ("gru", {"dropout": 1.0}, r"dropout must be a number in \[0, 1\); got 1.0"),
        ("hybrid", {"dropout": -0.1}, r"dropout must be a number in \[0, 1\); got -0.1"),
        ("hybrid", {"paths": "medium"}, "paths must be one of both, long, short; got 'medium'"),
        ("cnn", {"kernel_size": 0}, "kernel_size must be an integer >= 1; got 0"),
        ("transformer", {"d_model": 30}, "d_model=30 must be divisible by n_heads=4"),
        ("linear", {"ridge_alpha": -1.0}, "ridge_alpha must be a number >= 0; got -1.0"),
    ],
)
def test_invalid_hyperparameters_say_value_and_range(
    name: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(name, **SIZES, params=params)


@pytest.mark.parametrize("name", list(FORECAST_MODELS))
@pytest.mark.parametrize("size", ["n_features", "lookback", "n_outputs"])
def test_invalid_data_sizes_are_refused(name: str, size: str) -> None:
    with pytest.raises(ValueError, match=f"{size} must be an integer >= 1; got 0"):
        build_model(name, **{**SIZES, size: 0})


@pytest.mark.parametrize("name", list(FORECAST_MODELS))
def test_model_config_is_json_and_rebuilds_the_same_architecture(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, **sizes_of(name), params=NON_DEFAULT[name])
    config = json.loads(json.dumps(model_config(model)))
    assert config == {**sizes_of(name), **hyperparameters(name), **NON_DEFAULT[name]}

    sizes = {key: config.pop(key) for key in SIZES}
    rebuilt = build_model(name, **sizes, params=config)
    assert model_config(rebuilt) == model_config(model)
    assert repr(rebuilt) == repr(model)
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    assert shapes == {key: value.shape for key, value in rebuilt.state_dict().items()}


def test_model_config_refuses_a_plain_module() -> None:
    with pytest.raises(TypeError, match="no dataclass `config`"):
        model_config(torch.nn.Linear(2, 1))
