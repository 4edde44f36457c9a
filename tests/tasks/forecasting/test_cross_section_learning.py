"""Panel learning: a cross-sectional signal buried under the market's daily move is recovered
by normalised labels, ranking losses and trees; forecasts stay returns; runs reload."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from deepfin import Forecaster, load_run
from deepfin.training import TrainingConfig
from tests.conftest import price_frame

N_TICKERS, N_DAYS = 30, 420
SIGNAL = 0.4  # tomorrow's idiosyncratic return: minus this times today's, in idiosyncratic std


def _reversal_panel(seed: int = 0) -> pl.DataFrame:
    """Returns = a market move 3x the idiosyncratic one + reversal of today's relative return."""
    rng = np.random.default_rng(seed)
    market = 0.03 * rng.standard_normal(N_DAYS)
    idio = np.zeros((N_DAYS, N_TICKERS))
    for day in range(1, N_DAYS):
        relative = idio[day - 1] - idio[day - 1].mean()
        idio[day] = -SIGNAL * relative + 0.01 * rng.standard_normal(N_TICKERS)
    returns = market[:, None] + idio
    return pl.concat(
        price_frame(returns[:, i], ticker=f"S{i:02d}", start_price=40.0 + i)
        for i in range(N_TICKERS)
    )


@pytest.fixture(scope="module")
def reversal_panel() -> pl.DataFrame:
    return _reversal_panel()


def _fit(frame: pl.DataFrame, **settings) -> Forecaster:
    forecaster = Forecaster(
        lookback=2,
        features=("log_return",),
        training=TrainingConfig(epochs=4, batch_size=64, progress=False, patience=0, seed=0),
        **settings,
    )
    panel = forecaster.prepare(frame, val_fraction=0.2, test_fraction=0.2)
    forecaster.fit(panel)
    forecaster.evaluate(panel)
    return forecaster


@pytest.mark.parametrize(
    "settings",
    [
        {"model": "gru", "label_norm": "rank", "loss": "ic", "model_params": {"hidden_size": 8}},
        {
            "model": "gru",
            "label_norm": "zscore",
            "loss": "listnet",
            "model_params": {"hidden_size": 8},
        },
        {
            "model": "gru",
            "label_norm": "excess",
            "date_batches": True,
            "model_params": {"hidden_size": 8},
        },
        {"model": "gbdt", "label_norm": "rank", "model_params": {"num_leaves": 7}},
    ],
    ids=["rank-ic", "zscore-listnet", "excess-mse", "gbdt-rank"],
)
def test_normalised_labels_recover_a_signal_under_the_market_move(reversal_panel, settings):
    forecaster = _fit(reversal_panel, **settings)
    metrics = forecaster.metrics_
    assert metrics is not None
    row = metrics[settings["model"]]
    # the planted reversal is about a 0.35 rank correlation; the reversal factor sees it too
    assert row["rank_ic_mean"] > 0.2, row
    assert metrics["reversal"]["rank_ic_mean"] > 0.2
    predictions = forecaster.predictions_
    assert predictions is not None
    # forecasts are returns: the scores are mapped to the size of return they are worth
    forecast = predictions[f"{settings['model']}_log_return"].to_numpy()
    actual = predictions["actual_log_return"].to_numpy()
    assert 0 < forecast.std() < actual.std()
    assert set(forecaster.return_maps_) == {"model", "linear"}
    assert forecaster.return_maps_["model"][1] > 0


def test_a_run_trained_on_rank_labels_reloads_with_identical_forecasts(reversal_panel, tmp_path):
    forecaster = _fit(
        reversal_panel,
        model="gbdt",
        label_norm="rank",
        cross_section_norm="rank",
        model_params={"n_estimators": 30},
    )
    forecaster.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    before = forecaster.predict(reversal_panel)
    after = loaded.predict(reversal_panel)
    assert before.equals(after)
    assert loaded.return_maps_ == forecaster.return_maps_


def test_raw_mse_on_the_market_move_learns_less_of_the_ranking(reversal_panel):
    """The reason for normalised labels: without them the loss is spent on the market move."""
    ranked = _fit(
        reversal_panel, model="gru", label_norm="rank", loss="ic", model_params={"hidden_size": 8}
    )
    raw = _fit(reversal_panel, model="gru", model_params={"hidden_size": 8})
    assert ranked.metrics_ is not None and raw.metrics_ is not None
    assert ranked.metrics_["gru"]["rank_ic_mean"] > raw.metrics_["gru"]["rank_ic_mean"]


def _ten_day_reversal_panel(seed: int = 1) -> pl.DataFrame:
    """Tomorrow's idiosyncratic return reverses the last ten days' relative move."""
    rng = np.random.default_rng(seed)
    n_days = 500
    idio = 0.01 * rng.standard_normal((n_days, N_TICKERS))
    for day in range(10, n_days):
        move = idio[day - 10 : day].sum(axis=0)
        idio[day] += -0.15 * (move - move.mean())
    returns = 0.02 * rng.standard_normal(n_days)[:, None] + idio
    return pl.concat(
        price_frame(returns[:, i], ticker=f"S{i:02d}", start_price=10.0 * (i + 1))
        for i in range(N_TICKERS)
    )


def test_windows_relative_to_the_last_close_learn_a_ten_day_reversal(tmp_path):
    """Prices as ratios to the forecast day's close, whatever the ticker's price level."""
    frame = _ten_day_reversal_panel()
    forecaster = Forecaster(
        model="gru",
        lookback=11,
        features=("rel_close",),
        label_norm="rank",
        loss="ic",
        model_params={"hidden_size": 8},
        training=TrainingConfig(epochs=5, batch_size=64, progress=False, patience=0, seed=0),
    )
    panel = forecaster.prepare(frame, val_fraction=0.2, test_fraction=0.2)
    forecaster.fit(panel)
    forecaster.evaluate(panel)
    assert forecaster.metrics_ is not None
    # the planted reversal is about a 0.3 rank correlation; one day's reversal sees little of it
    assert forecaster.metrics_["gru"]["rank_ic_mean"] > 0.15, forecaster.metrics_["gru"]
    forecaster.save(tmp_path / "run")
    assert load_run(tmp_path / "run").predict(frame).equals(forecaster.predict(frame))
