"""Forecaster: learning a planted signal, persistence, prediction and its errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from deepfin.data.features import FACTOR_HISTORY
from deepfin.data.splits import chronological_split
from deepfin.errors import DataError, NotFittedError, TrainingError
from deepfin.tasks.forecasting.estimator import Forecaster
from deepfin.training import TrainingConfig
from tests.conftest import nonlinear_ar_returns, price_frame

NOISE = 0.01
FAST = TrainingConfig(epochs=2, progress=False)


@pytest.fixture(scope="module")
def planted_split():
    returns = nonlinear_ar_returns(3000, noise=NOISE, seed=0)
    return chronological_split(price_frame(returns), embargo=1)


def _return_rmse(forecaster: Forecaster, name: str) -> float:
    table = forecaster.predictions_
    assert table is not None
    errors = table["actual_log_return"].to_numpy() - table[f"{name}_log_return"].to_numpy()
    return float(np.sqrt(np.mean(errors**2)))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lstm", "gru", "hybrid", "transformer"])
def test_learns_planted_nonlinear_signal_to_the_noise_floor(planted_split, model):
    training = TrainingConfig(epochs=20, learning_rate=3e-3, patience=5, progress=False)
    forecaster = Forecaster(model=model, lookback=10, features=("log_return",), training=training)
    forecaster.fit(planted_split.train, planted_split.val).evaluate(planted_split.test)
    assert _return_rmse(forecaster, model) < 1.10 * NOISE
    # the baselines cannot: the naive forecast ignores the signal, ridge cannot bend
    assert _return_rmse(forecaster, "naive") > 1.3 * NOISE
    assert _return_rmse(forecaster, "linear") > 1.15 * NOISE


def test_save_load_round_trip_gives_identical_forecasts(planted_split, tmp_path):
    forecaster = Forecaster(model="gru", lookback=8, training=FAST).fit(
        planted_split.train, planted_split.val
    )
    forecaster.evaluate(planted_split.test)
    run_dir = forecaster.save(tmp_path / "run")
    expected = {
        "config.json",
        "model.safetensors",
        "preprocess.json",
        "history.csv",
        "training.json",
        "metrics.json",
        "predictions.parquet",
    }
    assert expected <= {path.name for path in run_dir.iterdir()}
    for name in ("config.json", "preprocess.json", "metrics.json"):
        json.loads((run_dir / name).read_text())  # strict JSON: no NaN, no pickles
    assert any(key.startswith("linear.") for key in load_file(run_dir / "model.safetensors"))
    loaded = Forecaster.load(run_dir)
    original = forecaster.predict(planted_split.test)
    again = loaded.predict(planted_split.test)
    assert original.equals(again)
    saved = pl.read_parquet(run_dir / "predictions.parquet")
    joined = saved.join(again, on=["date", "ticker"])
    assert joined.height == saved.height
    np.testing.assert_array_equal(joined["gru_log_return"], joined["forecast_log_return"])


def test_predict_forecasts_from_the_latest_window(planted_split):
    forecaster = Forecaster(model="linear", lookback=5).fit(planted_split.train)
    forecasts = forecaster.predict(planted_split.test)
    assert forecasts["date"].max() == planted_split.test["date"].max()
    close = forecasts["close"].to_numpy()
    np.testing.assert_allclose(
        forecasts["forecast_price"], close * np.exp(forecasts["forecast_log_return"])
    )


def test_price_target_uses_its_own_scaler(planted_split):
    forecaster = Forecaster(model="lstm", lookback=8, target="price", training=FAST)
    forecaster.fit(planted_split.train, planted_split.val)
    metrics = forecaster.evaluate(planted_split.test)
    features_state = forecaster.feature_scaler_.to_dict()
    target_state = forecaster.target_scaler_.to_dict()
    assert len(target_state["center"][0]) == 1
    assert target_state["center"][0][0] == pytest.approx(
        planted_split.train["close"].to_numpy()[40:].mean(), rel=0.05
    )
    assert features_state["center"] != target_state["center"]
    # the linear model reads the scaled price level back correctly; a recurrent net
    # extrapolates levels outside the training range poorly, which is why returns are the default
    assert metrics["linear"]["price_mape"] < 1.5
    assert np.isfinite(metrics["lstm"]["price_mape"])


def test_panel_evaluation_reports_cross_sectional_ic(panel):
    split = chronological_split(panel, embargo=1)
    metrics = (
        Forecaster(model="linear", lookback=5).fit(split.train, split.val).evaluate(split.test)
    )
    for name in ("linear",):
        for key in ("ic_mean", "icir", "rank_ic_mean", "rank_ic_t_stat"):
            assert np.isfinite(metrics[name][key])
    assert "ic_mean" not in metrics["naive"]


def test_short_tickers_are_dropped_with_a_warning(panel, caplog):
    short = (
        panel.filter(pl.col("ticker") == "T0")
        .head(20)
        .with_columns(pl.lit("SHORT").alias("ticker"))
    )
    with caplog.at_level(logging.WARNING):
        Forecaster(model="naive", lookback=30).fit(pl.concat([panel, short]))
    assert "SHORT (20)" in caplog.text


def test_too_short_data_says_how_many_rows_are_needed(panel):
    tiny = panel.filter(pl.col("ticker") == "T1").head(12)
    with pytest.raises(
        DataError, match=r"need at least 51 rows per ticker for lookback=30.*T1 has 12"
    ):
        Forecaster(model="naive", lookback=30).fit(tiny)


def test_unfitted_forecaster_says_to_fit_first(panel):
    with pytest.raises(NotFittedError, match="call fit"):
        Forecaster().predict(panel)


def test_jumps_are_kept_out_of_training_and_metrics_but_still_forecast(panel):
    ticker = panel.filter(pl.col("ticker") == "T2")
    close = ticker["close"].to_numpy().copy()
    close[150:] /= 7.0  # an unadjusted 7:1 split
    broken = ticker.with_columns(pl.Series("close", close))
    forecaster = Forecaster(model="linear", lookback=5).fit(broken)
    # the split day's return is kept out of the training targets and their scaler
    assert forecaster.target_scaler_.to_dict()["scale"][0][0] < 0.1
    metrics = forecaster.evaluate(broken)
    table = forecaster.predictions_
    assert table is not None
    # the day before the jump still has a forecast, flagged: a book can hold the stock through it
    suspect = table.filter(pl.col("suspect_outcome"))
    assert suspect.height == 1
    assert suspect["actual_log_return"][0] == pytest.approx(np.log(1 / 7), rel=0.05)
    assert np.isfinite(suspect["linear_log_return"][0])
    # ... and it is left out of the metrics, which say so
    assert metrics["linear"]["n_excluded"] == 1
    assert metrics["linear"]["n"] == table.height - 1


def test_unknown_model_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'lstmm'.*hybrid"):
        Forecaster(model="lstmm")


def test_validation_and_test_windows_take_their_warm_up_from_the_history_before_them(panel):
    split = chronological_split(panel, val_fraction=0.2, test_fraction=0.2, embargo=1)
    forecaster = Forecaster(model="linear", lookback=10)
    val, val_dates = split.with_history("val", forecaster.context_rows)
    forecaster.fit(split.train, val, val_origins=val_dates)
    n_val_dates = split.val["date"].n_unique()
    # "first .. last (N days)": every validation date but the last has a scored window
    assert forecaster.scored_["val"] == (
        f"{val_dates[0]} .. {split.val['date'].unique().sort()[-2]} ({n_val_dates - 1} days)"
    )
    test, test_dates = split.with_history("test", forecaster.context_rows)
    forecaster.evaluate(test, origins=test_dates)
    assert forecaster.predictions_ is not None
    assert forecaster.predictions_["date"].min() == test_dates[0]
    # without the history the first lookback + warm-up dates of each part go unscored
    alone = Forecaster(model="linear", lookback=10).fit(split.train, split.val)
    lost = alone.context_rows - 2  # the rows before the first complete window
    assert alone.scored_["val"].endswith(f"({n_val_dates - 1 - lost} days)")


def test_a_prepared_panel_fits_and_scores_like_its_frames():
    rng = np.random.default_rng(5)
    prices = pl.concat(
        price_frame(0.01 * rng.standard_normal(260), ticker=f"T{i}") for i in range(6)
    )
    forecaster = Forecaster(model="linear", lookback=10, features=("log_return", "rsi_14"))
    panel = forecaster.prepare(prices, val_fraction=0.2, test_fraction=0.2)
    metrics = forecaster.fit(panel).evaluate(panel)
    # the same split as frames, validation and test taking their warm-up from earlier rows
    split = chronological_split(prices, val_fraction=0.2, test_fraction=0.2, embargo=1)
    frames = Forecaster(model="linear", lookback=10, features=("log_return", "rsi_14"))
    val, val_dates = split.with_history("val", frames.context_rows)
    test, test_dates = split.with_history("test", frames.context_rows)
    again = frames.fit(split.train, val, val_origins=val_dates).evaluate(test, origins=test_dates)
    assert metrics["linear"]["n"] == again["linear"]["n"] > 0
    assert metrics["linear"]["return_rmse"] == pytest.approx(again["linear"]["return_rmse"])
    with pytest.raises(ValueError, match="prepared with"):
        Forecaster(model="linear", lookback=5, features=("log_return", "rsi_14")).fit(panel)
    with pytest.raises(ValueError, match="carries its own validation"):
        forecaster.fit(panel, split.val)


@pytest.mark.parametrize("per_ticker", [False, True])
def test_the_test_panel_scores_exactly_like_the_whole_panel(per_ticker):
    # ragged histories: tickers listed late, one delisted before the test period begins
    rng = np.random.default_rng(11)
    frames = [
        price_frame(0.01 * rng.standard_normal(n), ticker=f"T{i}", start_price=10.0 + i)
        for i, n in enumerate([300, 300, 240, 200, 300, 300, 150])
    ]
    kept = [300, 280, 240, 200, 300, 190, 150]
    prices = pl.concat(frame.tail(n) for frame, n in zip(frames, kept, strict=True))
    prices = prices.filter(~((pl.col("ticker") == "T6") & (pl.col("date") > pl.date(2000, 4, 1))))
    forecaster = Forecaster(
        model="lstm",
        lookback=12,
        model_params={"hidden_size": 4},
        scale_per_ticker=per_ticker,
        training=TrainingConfig(epochs=1, progress=False),
    )
    panel = forecaster.prepare(prices, val_fraction=0.2, test_fraction=0.25)
    forecaster.fit(panel)
    whole = forecaster.evaluate(panel)
    whole_table = forecaster.predictions_
    small = panel.test_panel(history=FACTOR_HISTORY)
    assert small.rows.n_rows < panel.rows.n_rows / 2
    assert "T6" not in small.tickers  # no test window: none of its rows are kept
    assert forecaster.evaluate(small) == whole
    assert forecaster.predictions_.equals(whole_table)
    # a factor reading further back than the history kept would lose its first values
    short = forecaster.evaluate(panel.test_panel(history=FACTOR_HISTORY - 14))
    assert short != whole


def test_nan_weights_are_never_written_as_forecasts(panel):
    split = chronological_split(panel, embargo=1)
    forecaster = Forecaster(model="linear", lookback=10).fit(split.train, split.val)
    with torch.no_grad():
        for weight in forecaster.model_.parameters():
            weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="forecasts are NaN or infinite: the model's weights"):
        forecaster.predict(panel)


def test_on_a_panel_the_kept_epoch_is_chosen_on_validation_rank_ic(panel, tmp_path):
    training = TrainingConfig(epochs=2, progress=False)
    forecaster = Forecaster(
        model="lstm", lookback=10, model_params={"hidden_size": 4}, training=training
    )
    prepared = forecaster.prepare(panel, val_fraction=0.3, test_fraction=0.2)
    forecaster.fit(prepared)
    history = forecaster.history_
    assert history.selected_by == "val_score" and history.best_score is not None
    assert {"val_score"} <= set(history.epochs[0])
    forecaster.evaluate(prepared)
    forecaster.save(tmp_path / "run")
    assert "val_score" in pl.read_csv(tmp_path / "run" / "history.csv").columns
    # one series has no cross-section: the validation loss chooses
    single = Forecaster(
        model="lstm", lookback=10, model_params={"hidden_size": 4}, training=training
    )
    split = chronological_split(panel.filter(pl.col("ticker") == "T0"), embargo=1)
    single.fit(split.train, split.val)
    assert single.history_.selected_by == "val_loss"
