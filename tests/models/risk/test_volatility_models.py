"""HAR against least squares by hand, EWMA's recursion, GARCH recovering planted parameters, and
every risk model's forecast at day t blind to later days."""

from __future__ import annotations

import numpy as np
import pytest

from deepfin.data.volatility import VolatilityHistory, forward_mean, trailing_means
from deepfin.errors import ConfigError, DataError
from deepfin.models import build_risk_model, model_names


def garch_history(days: int = 3000, seed: int = 0) -> tuple[VolatilityHistory, np.ndarray]:
    """A GARCH(1,1)-t path (omega .02, alpha .08, beta .9, nu 8, in percent) and its variance."""
    from arch import arch_model
    from arch.univariate import StudentsT

    model = arch_model(None, mean="Zero", vol="GARCH", p=1, q=1, dist="studentst")
    model.distribution = StudentsT(seed=seed)  # arch's draws, seeded
    simulated = model.simulate([0.02, 0.08, 0.9, 8.0], days, burn=500, initial_value=None)
    returns = simulated["data"].to_numpy() / 100
    true_variance = simulated["volatility"].to_numpy() ** 2 / 1e4
    return VolatilityHistory(returns, returns**2), true_variance


@pytest.fixture(scope="module")
def history() -> VolatilityHistory:
    return garch_history()[0]


def test_har_is_least_squares_on_the_trailing_means(history: VolatilityHistory) -> None:
    model = build_risk_model("har").fit(history, end=1999, horizon=5)
    regressors = trailing_means(history.variance[:2000])
    target = forward_mean(history.variance[:2000], 5)
    usable = np.isfinite(regressors).all(axis=1) & np.isfinite(target)
    design = np.column_stack([np.ones(usable.sum()), regressors[usable]])
    expected = np.linalg.lstsq(design, target[usable], rcond=None)[0]
    assert model.coefficients_ == pytest.approx(expected)
    origins = np.arange(2000, 2010)
    by_hand = np.column_stack([np.ones(10), trailing_means(history.variance)[origins]]) @ expected
    assert model.forecast(history, origins, horizon=5) == pytest.approx(
        np.maximum(by_hand, history.floor)
    )


def test_ewma_follows_the_riskmetrics_recursion(history: VolatilityHistory) -> None:
    model = build_risk_model("ewma", params={"decay": 0.9})
    squared = history.returns[:50] ** 2
    estimate = squared[0]
    for day in range(1, 50):
        estimate = 0.9 * estimate + 0.1 * squared[day]
    assert model.forecast(history, np.array([49]), horizon=1)[0] == pytest.approx(estimate)
    with pytest.raises(ConfigError, match="decay"):
        build_risk_model("ewma", params={"decay": 1.5})


def test_garch_recovers_planted_parameters() -> None:
    history, true_variance = garch_history(days=6000, seed=1)
    model = build_risk_model("garch").fit(history, end=5999, horizon=1)
    _, _, alpha, beta, nu = model.coefficients_
    assert alpha == pytest.approx(0.08, abs=0.025)
    assert beta == pytest.approx(0.9, abs=0.03)
    assert nu == pytest.approx(8.0, abs=2.5)
    # its one-day forecasts track the true conditional variance of the next day
    origins = np.arange(3000, 5998)
    forecast = model.forecast(history, origins, horizon=1)
    assert np.corrcoef(forecast, true_variance[origins + 1])[0, 1] > 0.97


@pytest.mark.parametrize("name", model_names("risk"))
def test_a_forecast_at_day_t_reads_no_later_day(name: str, history: VolatilityHistory) -> None:
    model = build_risk_model(name).fit(history, end=1499, horizon=5)
    origins = np.arange(1500, 1530)
    before = model.forecast(history, origins, horizon=5)
    shocked = VolatilityHistory(history.returns.copy(), history.variance.copy())
    shocked.returns[1520:] *= 5
    shocked.variance[1520:] *= 25
    after = model.forecast(shocked, origins, horizon=5)
    if name == "egarch":  # simulated paths: the same seed, the same draws
        assert after[:20] == pytest.approx(before[:20], rel=1e-10)
    else:
        assert np.array_equal(after[:20], before[:20])
    assert not np.allclose(after[21:], before[21:])  # the shock is seen once it has happened
    assert (before > 0).all()


def test_garch_needs_a_year_of_returns(history: VolatilityHistory) -> None:
    with pytest.raises(DataError, match="at least 250 days"):
        build_risk_model("gjr_garch").fit(history, end=99, horizon=1)


def test_a_garch_fit_that_fails_keeps_the_previous_parameters(
    history: VolatilityHistory, caplog: pytest.LogCaptureFixture
) -> None:
    model = build_risk_model("gjr_garch").fit(history, end=1999, horizon=1)
    kept = model.coefficients_.copy()
    flat = VolatilityHistory(np.zeros(len(history)), np.ones(len(history)))
    model.fit(flat, end=1999, horizon=1)
    assert model.failed_fits_ == 1
    assert np.array_equal(model.coefficients_, kept)
    assert "keeping the previous parameters" in caplog.text
