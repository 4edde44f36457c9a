"""Quantile forecasts: the loss, conformal shifts that reach the nominal share, the band scores by
hand, and a forecaster whose bands cover the built-in S&P 500's test period, saved and loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deepfin.cli import app
from deepfin.config import ForecastConfig
from deepfin.data.samples import load_sample
from deepfin.errors import ConfigError
from deepfin.runs.load import load_run
from deepfin.tasks.forecasting.quantiles import (
    band_scores,
    conformal_corrections,
    point_and_quantile_loss,
    track_quantiles,
)


def test_the_loss_is_the_point_loss_plus_each_pinball() -> None:
    outputs = torch.tensor([[0.1, -1.0, 0.0, 1.0], [0.3, -0.5, 0.2, 0.4]])
    targets = torch.tensor([[0.5], [-1.0]])
    loss = point_and_quantile_loss((0.1, 0.5, 0.9), torch.nn.functional.mse_loss)
    pinball = 0.0
    for k, tau in enumerate((0.1, 0.5, 0.9)):
        error = targets[:, 0] - outputs[:, 1 + k]
        pinball += torch.maximum(tau * error, (tau - 1) * error).mean()
    expected = ((outputs[:, 0] - targets[:, 0]) ** 2).mean() + pinball
    assert float(loss(outputs, targets)) == pytest.approx(float(expected))


def test_conformal_shifts_reach_the_nominal_share_on_fresh_data() -> None:
    generator = np.random.default_rng(0)
    quantiles = (0.05, 0.5, 0.95)
    # forecasts far too narrow: the standard normal's quantiles of a variable of spread 2
    narrow = np.array([-1.645, 0.0, 1.645])
    held_out, fresh = generator.normal(0, 2, 2000), generator.normal(0, 2, 20_000)
    shifts = conformal_corrections(np.tile(narrow, (2000, 1)), held_out, quantiles)
    below = [(fresh < narrow[k] + shifts[k]).mean() for k in range(3)]
    assert below == pytest.approx([0.05, 0.5, 0.95], abs=0.015)
    before = [(fresh < narrow[k]).mean() for k in range(3)]
    assert before[0] > 0.15 and before[2] < 0.85  # uncalibrated, the band was far too narrow
    with pytest.raises(ConfigError, match="at least 20"):
        conformal_corrections(np.zeros((5, 3)), np.zeros(5), quantiles)


def test_band_scores_by_hand() -> None:
    actual = np.array([0.0, 2.0, -3.0, 0.5])
    forecasts = np.tile([-1.0, 0.0, 1.0], (4, 1))  # quantiles 0.1, 0.5, 0.9
    scores = band_scores(actual, forecasts, (0.1, 0.5, 0.9))
    interval = scores["intervals"]["80%"]
    assert interval["coverage"] == 0.5 and interval["width"] == 2.0
    # misses: 2.0 above by 1, -3.0 below by 2; alpha 0.2 -> 2/alpha = 10
    assert interval["interval_score"] == pytest.approx(2.0 + 10 * (1 + 2) / 4)
    assert scores["below"]["q0.5"] == 0.25
    # errors actual - 1 = -1, 1, -4, -0.5: losses 0.1 (1 - 0.9), 0.9, 0.4, 0.05
    assert scores["pinball"]["q0.9"] == pytest.approx(np.mean([0.1, 0.9, 0.4, 0.05]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"model": "linear", "quantiles": (0.1, 0.9)}, "network trained by gradient"),
        ({"model": "gru", "conformal": True}, "give --quantiles too"),
        ({"model": "gru", "quantiles": (0.1, 1.2)}, "lie in \\(0, 1\\)"),
        ({"model": "gru", "quantiles": (0.1, 0.1)}, "twice"),
        ({"model": "gru", "quantiles": ("low",)}, "must be numbers"),
        ({"model": "gru", "quantiles": (0.5,), "target": "price"}, "target=log_return"),
    ],
)
def test_bad_quantile_settings(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ForecastConfig(**settings)


def test_conformal_bands_cover_the_sp500_test_period(tmp_path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["forecast", "--model", "gru", "--quantiles", "0.05,0.5,0.95", "--conformal",
         "--epochs", "3", "--lookback", "20", "--no-progress", "--run-dir", str(run)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "90% interval after conformal calibration: coverage" in result.output
    metrics = json.loads((run / "metrics.json").read_text())
    coverage = metrics["gru"]["quantiles"]["intervals"]["90%"]["coverage"]
    assert 0.85 <= coverage <= 0.95
    assert "Quantile forecasts" in (run / "report.html").read_text()
    forecaster = load_run(run)
    assert forecaster.config.quantiles == (0.05, 0.5, 0.95)
    assert forecaster.quantile_shifts_.shape == (3,) and forecaster.quantile_shifts_.any()
    predicted = forecaster.predict(load_sample("sp500"))
    low, mid, high = (predicted[f"forecast_q{q}"].to_numpy() for q in ("0.05", "0.5", "0.95"))
    assert (low <= mid).all() and (mid <= high).all()


def test_tracking_restores_coverage_when_the_test_period_is_wilder() -> None:
    generator = np.random.default_rng(3)
    quantiles = (0.1, 0.5, 0.9)
    actual = generator.normal(0, 2.0, 3000)  # twice the spread the forecasts were made for
    forecasts = np.tile([-1.2816, 0.0, 1.2816], (3000, 1))
    dates = np.arange(3000)
    usable = np.ones(3000, dtype=bool)
    moved, offsets = track_quantiles(
        dates, forecasts, actual, usable, quantiles, horizon=1, step=0.05
    )
    inside = (actual >= moved[:, 0]) & (actual <= moved[:, 2])
    assert ((actual >= forecasts[:, 0]) & (actual <= forecasts[:, 2])).mean() < 0.55
    assert inside[500:].mean() == pytest.approx(0.8, abs=0.03)
    assert offsets[2] > 1.0 and offsets[0] < -1.0  # the band widened
    # causal: an outcome moves only the quantiles of later dates
    changed = actual.copy()
    changed[2000:] += 50.0
    later, _ = track_quantiles(dates, forecasts, changed, usable, quantiles, horizon=1, step=0.05)
    assert np.array_equal(later[:2001], moved[:2001])
    assert not np.array_equal(later[2001:], moved[2001:])
    # a horizon of 5 waits 5 dates for each outcome
    slow, _ = track_quantiles(dates, forecasts, changed, usable, quantiles, horizon=5, step=0.05)
    assert np.array_equal(
        slow[:2005],
        track_quantiles(dates, forecasts, actual, usable, quantiles, horizon=5, step=0.05)[0][
            :2005
        ],
    )


def test_adaptive_bands_on_the_sp500(tmp_path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["forecast", "--model", "gru", "--quantiles", "0.05,0.25,0.5,0.75,0.95", "--conformal",
         "--adaptive", "--epochs", "3", "--lookback", "20", "--no-progress", "--no-report",
         "--run-dir", str(run)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "after conformal and adaptive calibration" in result.output
    intervals = json.loads((run / "metrics.json").read_text())["gru"]["quantiles"]["intervals"]
    assert intervals["50%"]["coverage"] == pytest.approx(0.5, abs=0.02)
    assert intervals["90%"]["coverage"] == pytest.approx(0.9, abs=0.02)
    assert load_run(run).quantile_offsets_.any()  # the forecasts after the test carry them
