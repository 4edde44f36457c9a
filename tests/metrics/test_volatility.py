"""QLIKE, Mincer-Zarnowitz (against statsmodels' HAC regression) and the Model Confidence Set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepfin.errors import DataError
from deepfin.metrics.volatility import (
    mincer_zarnowitz,
    model_confidence_set,
    qlike_losses,
    squared_losses,
)


def test_qlike_by_hand_and_zero_at_the_truth() -> None:
    losses = qlike_losses([2.0, 1.0], [1.0, 1.0])
    assert losses.tolist() == pytest.approx([2 - math.log(2) - 1, 0.0])
    # too low costs more than too high by the same factor
    assert qlike_losses([1.0], [0.5])[0] > qlike_losses([1.0], [2.0])[0]
    assert squared_losses([2.0], [1.5])[0] == pytest.approx(0.25)


def test_qlike_refuses_variances_that_are_not_positive() -> None:
    with pytest.raises(DataError, match="forecast holds 1 variance"):
        qlike_losses([1.0, 1.0], [1.0, 0.0])


def planted(n_days: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(3)
    variance = np.exp(np.cumsum(generator.normal(0, 0.05, n_days)) - 9)
    realised = variance * generator.chisquare(1, n_days)  # a noisy proxy: E = variance
    return realised, variance


def test_mincer_zarnowitz_equals_statsmodels_hac() -> None:
    sm = pytest.importorskip("statsmodels.api")
    realised, variance = planted()
    ours = mincer_zarnowitz(realised, variance, horizon=5)
    lags = max(4, math.floor(4 * (realised.size / 100) ** (2 / 9)))
    fit = sm.OLS(realised, sm.add_constant(variance)).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False}
    )
    assert ours["intercept"] == pytest.approx(fit.params[0], rel=1e-8)
    assert ours["slope"] == pytest.approx(fit.params[1], rel=1e-8)
    assert ours["r2"] == pytest.approx(fit.rsquared, rel=1e-8)
    wald = fit.wald_test((np.eye(2), np.array([0.0, 1.0])), scalar=True, use_f=False)
    assert ours["wald_statistic"] == pytest.approx(float(wald.statistic), rel=1e-6)


def test_mincer_zarnowitz_passes_the_truth_and_rejects_a_biased_forecast() -> None:
    realised, variance = planted()
    assert mincer_zarnowitz(realised, variance)["p_value"] > 0.05
    biased = mincer_zarnowitz(realised, 2.5 * variance)
    assert biased["slope"] == pytest.approx(0.4, abs=0.15)
    assert biased["p_value"] < 0.01


def test_the_confidence_set_drops_a_clearly_worse_model() -> None:
    realised, variance = planted()
    losses = {
        "truth": qlike_losses(realised, variance),
        "close": qlike_losses(realised, variance * 1.02),
        "far": qlike_losses(realised, variance * 3.0),
    }
    p_values = model_confidence_set(losses, size=0.1)
    assert set(p_values) == set(losses)
    assert p_values["far"] < 0.1
    assert p_values["truth"] >= 0.1
    assert max(p_values.values()) == 1.0


def test_the_confidence_set_needs_two_models() -> None:
    with pytest.raises(DataError, match="at least 2"):
        model_confidence_set({"one": np.ones(10)})
