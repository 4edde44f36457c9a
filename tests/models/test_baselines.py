"""Naive and ridge baselines: set forecasts and the closed-form ridge solution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepfin.models import build_model
from deepfin.models.forecasting.baselines import NaiveForecaster
from deepfin.models.forecasting.linear import LinearForecaster

LOOKBACK, N_FEATURES = 4, 3


def naive(n_outputs: int) -> NaiveForecaster:
    """A naive forecaster at the test sizes."""
    model = build_model("naive", n_features=N_FEATURES, lookback=LOOKBACK, n_outputs=n_outputs)
    assert isinstance(model, NaiveForecaster)
    return model


def linear(ridge_alpha: float, n_outputs: int = 2) -> LinearForecaster:
    """A linear forecaster at the test sizes."""
    model = build_model(
        "linear",
        n_features=N_FEATURES,
        lookback=LOOKBACK,
        n_outputs=n_outputs,
        params={"ridge_alpha": ridge_alpha},
    )
    assert isinstance(model, LinearForecaster)
    return model


def ridge_reference(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an unpenalised intercept, by hand: solve on centred data."""
    mean_x, mean_y = x.mean(0), y.mean(0)
    xc, yc = x - mean_x, y - mean_y
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)  # (D, O)
    return coef, mean_y - mean_x @ coef


def test_naive_defaults_to_zero_and_has_nothing_to_train() -> None:
    model = naive(2)
    assert list(model.parameters()) == []
    assert torch.equal(model(torch.randn(5, LOOKBACK, N_FEATURES)), torch.zeros(5, 2))


def test_naive_constant_forecast() -> None:
    model = naive(2)
    model.set_forecast(constant=torch.tensor([0.25, -1.5]))
    out = model(torch.randn(5, LOOKBACK, N_FEATURES))
    assert torch.equal(out, torch.tensor([[0.25, -1.5]]).expand(5, 2))


def test_naive_last_value_plus_constant() -> None:
    model = naive(2)
    model.set_forecast(constant=torch.tensor(0.5), source_feature=2)
    x = torch.randn(5, LOOKBACK, N_FEATURES)
    expected = (x[:, -1, 2] + 0.5).unsqueeze(1).expand(5, 2)
    torch.testing.assert_close(model(x), expected)
    # a later constant-only call forgets the source feature
    model.set_forecast(constant=torch.tensor(0.0))
    assert torch.equal(model(x), torch.zeros(5, 2))


def test_naive_refuses_a_missing_feature() -> None:
    with pytest.raises(ValueError, match=r"source_feature=3 is not a feature index; use 0\.\.2"):
        naive(1).set_forecast(constant=torch.tensor(0.0), source_feature=3)


def test_linear_closed_form_matches_numpy_ridge() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, LOOKBACK, N_FEATURES)).astype(np.float32)
    y = (rng.normal(size=(50, 2)) + np.array([3.0, -2.0])).astype(np.float32)
    model = linear(ridge_alpha=2.5).fit_closed_form([(torch.from_numpy(x), torch.from_numpy(y))])

    coef, intercept = ridge_reference(x.reshape(50, -1).astype(np.float64), y, alpha=2.5)
    np.testing.assert_allclose(model.linear.weight.detach().numpy(), coef.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.linear.bias.detach().numpy(), intercept, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        predictions = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(predictions, x.reshape(50, -1) @ coef + intercept, atol=1e-5)


def test_linear_batched_accumulation_equals_one_batch() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(103, LOOKBACK, N_FEATURES), torch.randn(103, 2)
    whole = linear(ridge_alpha=1.0).fit_closed_form([(x, y)])
    batches = zip(x.split(10), y.split(10), strict=True)  # a one-pass iterator, as a loader gives
    batched = linear(ridge_alpha=1.0).fit_closed_form(batches)
    torch.testing.assert_close(batched.linear.weight, whole.linear.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(batched.linear.bias, whole.linear.bias, rtol=1e-6, atol=1e-7)


def test_linear_recovers_planted_coefficients() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, LOOKBACK, N_FEATURES)
    weight, bias = torch.randn(2, LOOKBACK * N_FEATURES), torch.tensor([0.7, -0.3])
    y = x.flatten(1) @ weight.T + bias  # noiseless
    model = linear(ridge_alpha=1e-8).fit_closed_form([(x, y)])
    torch.testing.assert_close(model.linear.weight.detach(), weight, rtol=0, atol=1e-4)
    torch.testing.assert_close(model.linear.bias.detach(), bias, rtol=0, atol=1e-4)


def test_linear_never_shrinks_the_intercept() -> None:
    # a huge penalty zeroes the slopes, but the forecast must fall back on the mean target
    torch.manual_seed(0)
    x, y = torch.randn(40, LOOKBACK, N_FEATURES), torch.randn(40, 2) + 5.0
    model = linear(ridge_alpha=1e12).fit_closed_form([(x, y)])
    assert model.linear.weight.abs().max() < 1e-9
    torch.testing.assert_close(model.linear.bias.detach(), y.mean(0), rtol=0, atol=1e-5)


def test_linear_fit_errors_say_what_to_do() -> None:
    with pytest.raises(ValueError, match="got no batches"):
        linear(1.0).fit_closed_form([])
    with pytest.raises(ValueError, match="do not match"):
        linear(1.0).fit_closed_form([(torch.randn(4, LOOKBACK + 1, N_FEATURES), torch.randn(4, 2))])
    constant = torch.ones(10, LOOKBACK, N_FEATURES)
    with pytest.raises(ValueError, match="set ridge_alpha > 0"):
        linear(0.0).fit_closed_form([(constant, torch.randn(10, 2))])
