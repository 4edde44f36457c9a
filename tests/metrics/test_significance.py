"""The panel Diebold-Mariano test: a reference HAC regression, and its size under common shocks."""

import math

import numpy as np
import pytest
import statsmodels.api as sm

from deepfin.metrics.significance import diebold_mariano, panel_diebold_mariano


def correlated_panel(rng: np.random.Generator, n_dates: int, n_names: int):
    """Returns with a common daily shock that dominates each stock's own noise."""
    market = rng.normal(0, 0.01, n_dates)
    actual = market[:, None] + rng.normal(0, 0.003, (n_dates, n_names))  # (D, N)
    dates = np.repeat(np.arange(n_dates), n_names)
    return dates, actual


def test_panel_dm_equals_a_hac_regression_of_the_daily_differential_on_a_constant():
    rng = np.random.default_rng(0)
    dates, actual = correlated_panel(rng, 150, 20)
    forecast = 0.1 * actual + rng.normal(0, 0.004, actual.shape)
    result = panel_diebold_mariano(
        dates, actual.ravel(), forecast.ravel(), np.zeros(actual.size), horizon=1
    )
    daily = ((actual - forecast) ** 2 - actual**2).mean(axis=1)
    lags = math.floor(4 * (150 / 100) ** (2 / 9))
    reference = sm.OLS(daily, np.ones(150)).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False}, use_t=True
    )
    assert result["statistic"] == pytest.approx(reference.tvalues[0], rel=1e-10)
    assert result["p_value"] == pytest.approx(reference.pvalues[0], rel=1e-8)
    assert result["mean_loss_differential"] == pytest.approx(daily.mean())
    assert result["n_dates"] == 150


def test_under_the_null_the_panel_test_keeps_its_size_where_pooled_rows_do_not():
    # two forecasts tilted +g and -g are equally good in expectation, but on any one date the
    # common shock favours one of them for every stock at once
    rng = np.random.default_rng(1)
    pooled_rejections = panel_rejections = 0
    trials = 200
    for _ in range(trials):
        dates, actual = correlated_panel(rng, 100, 30)
        up, down = np.full(actual.size, 0.002), np.full(actual.size, -0.002)
        flat = actual.ravel()
        pooled_rejections += diebold_mariano(flat, up, down)["p_value"] < 0.05
        panel_rejections += panel_diebold_mariano(dates, flat, up, down)["p_value"] < 0.05
    assert pooled_rejections / trials > 0.5  # rows treated as independent: wildly over-confident
    assert panel_rejections / trials < 0.12  # one observation per date: close to the nominal 5 %


def test_panel_dm_of_a_single_series_matches_the_row_test_up_to_the_variance_estimator():
    rng = np.random.default_rng(2)
    actual = rng.normal(0, 0.01, 400)
    forecast = 0.2 * actual + rng.normal(0, 0.005, 400)
    dates = np.arange(400)
    panel = panel_diebold_mariano(dates, actual, forecast, np.zeros(400))
    rows = diebold_mariano(actual, forecast, np.zeros(400))
    assert np.sign(panel["statistic"]) == np.sign(rows["statistic"])
    assert panel["mean_loss_differential"] == pytest.approx(rows["mean_loss_differential"])


def test_panel_dm_refuses_too_few_dates_and_misaligned_dates():
    with pytest.raises(ValueError, match="at least 3 dates"):
        panel_diebold_mariano([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.0] * 4, [0.1] * 4)
    with pytest.raises(ValueError, match="one date per"):
        panel_diebold_mariano([0, 1], [0.1, 0.2, 0.3], [0.0] * 3, [0.1] * 3)
