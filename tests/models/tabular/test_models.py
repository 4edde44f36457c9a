"""Contract every credit scorer keeps: shapes, gradients, learning, persistence, seeding."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from deepfin.models import MODELS, TABULAR_MODELS, build_tabular_model, model_config
from deepfin.models.tabular.boosting import LightGBMScorer

BATCH, N_FEATURES = 16, 6
NEURAL = [name for name in TABULAR_MODELS if issubclass(MODELS[name].module, nn.Module)]
SMALL = {"ft_transformer": {"d_token": 8, "n_heads": 2, "num_layers": 1, "dim_feedforward": 16}}


def make(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_tabular_model(name, n_features=N_FEATURES, params=SMALL.get(name, {}))
    assert isinstance(model, nn.Module)
    return model


def test_registry_holds_the_four_credit_models():
    assert set(TABULAR_MODELS) == {"logistic", "mlp", "ft_transformer", "lightgbm"}
    assert set(NEURAL) == {"logistic", "mlp", "ft_transformer"}
    for name in TABULAR_MODELS:
        assert dataclasses.fields(MODELS[name].config)[0].name == "n_features"
    # how each is fitted comes from the registry, never from its name inside a task
    assert {name: MODELS[name].fit for name in TABULAR_MODELS} == {
        "logistic": "closed_form",
        "mlp": "gradient",
        "ft_transformer": "gradient",
        "lightgbm": "trees",
    }


@pytest.mark.parametrize("name", NEURAL)
def test_maps_rows_to_one_log_odds_each_and_every_parameter_learns(name):
    model = make(name)
    x = torch.randn(BATCH, N_FEATURES)
    out = model(x)
    assert out.shape == (BATCH, 1)
    out.sum().backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not silent, f"no gradient reaches {silent}"


@pytest.mark.parametrize("name", NEURAL)
def test_overfits_one_small_batch(name):
    model = make(name)
    x = torch.randn(BATCH, N_FEATURES)
    y = (x[:, :1] + x[:, 1:2] > 0).float()  # separable, so even the logistic model can fit it
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.functional.binary_cross_entropy_with_logits
    first = float(loss_fn(model(x), y).detach())
    for _ in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    assert float(loss_fn(model(x), y).detach()) < 0.2 * first


@pytest.mark.parametrize("name", NEURAL)
def test_safetensors_round_trip_and_fixed_seed_give_identical_outputs(name, tmp_path: Path):
    model = make(name).eval()
    x = torch.randn(BATCH, N_FEATURES)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    params = {k: v for k, v in model_config(model).items() if k != "n_features"}
    rebuilt = build_tabular_model(name, n_features=N_FEATURES, params=params)
    assert isinstance(rebuilt, nn.Module)
    rebuilt.load_state_dict(load_file(tmp_path / "model.safetensors"))
    torch.testing.assert_close(rebuilt.eval()(x), model(x), rtol=0, atol=0)
    torch.testing.assert_close(make(name, seed=3)(x), make(name, seed=3)(x), rtol=0, atol=0)


def test_lightgbm_learns_round_trips_as_text_and_attributions_add_up():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, N_FEATURES)).astype(np.float32)
    y = (rng.random(600) < 1 / (1 + np.exp(-3 * x[:, 0]))).astype(int)
    model = build_tabular_model("lightgbm", n_features=N_FEATURES, params={"n_estimators": 50})
    assert isinstance(model, LightGBMScorer)
    model.fit(x[:400], y[:400], x_val=x[400:], y_val=y[400:], seed=0)
    log_odds = model.log_odds(x)
    assert np.corrcoef(log_odds, x[:, 0])[0, 1] > 0.8
    contributions, reference = model.contributions(x)
    np.testing.assert_allclose(contributions.sum(1) + reference, log_odds, atol=1e-9)
    again = LightGBMScorer.from_text(model.config, model.to_text())
    np.testing.assert_array_equal(again.log_odds(x), log_odds)
    assert "@" not in model.to_text()  # plain numbers and splits, nothing from the rows


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("mlp", {"n_features": 3}, "comes from the data"),
        ("mlp", {"width": 3}, "unknown hyperparameter.*'width'.*hidden_size"),
        ("ft_transformer", {"d_token": 10, "n_heads": 4}, "divisible"),
        ("mlp", {"dropout": 1.5}, r"dropout must be a number in \[0, 1\)"),
        ("lightgbm", {"learning_rate": 0}, r"learning_rate must be a number in \(0, 1\]"),
        ("forest", {}, "unknown model 'forest'"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(name, params, message):
    with pytest.raises(ValueError, match=message):
        build_tabular_model(name, n_features=N_FEATURES, params=params)
