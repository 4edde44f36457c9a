"""Walk-forward folds: ordered, embargoed, each fitted only on its own past."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.config import ForecastConfig, WalkForwardConfig
from deepfin.errors import DataError
from deepfin.tasks.forecasting.walk_forward import make_folds, walk_forward
from deepfin.training import TrainingConfig
from tests.conftest import price_frame

DATES = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(400)]
LINEAR = ForecastConfig(model="linear", lookback=5, features=("log_return", "volatility_5"))


@given(
    refit_every=st.integers(1, 40),
    val_days=st.integers(1, 30),
    embargo=st.integers(0, 5),
    window=st.sampled_from(["expanding", "rolling"]),
    horizon=st.integers(1, 3),
)
@settings(max_examples=60, deadline=None)
def test_folds_are_ordered_embargoed_and_cover_the_test_period(
    refit_every, val_days, embargo, window, horizon
):
    config = WalkForwardConfig(
        refit_every=refit_every, val_days=val_days, embargo=embargo, window=window, train_days=50
    )
    folds = make_folds(DATES, config, horizon=horizon)
    position = {date: i for i, date in enumerate(DATES)}
    for fold in folds:
        train_end, val_start = position[fold.train[1]], position[fold.val[0]]
        val_end, test_start = position[fold.val[1]], position[fold.test[0]]
        assert fold.train[0] <= fold.train[1] < fold.val[0] <= fold.val[1] < fold.test[0]
        assert val_start - train_end - 1 == embargo and test_start - val_end - 1 == embargo
        if window == "rolling":
            assert position[fold.train[1]] - position[fold.train[0]] + 1 == 50
        else:
            assert fold.train[0] == DATES[0]
    # test blocks tile the tested period without gaps or overlaps, and every origin has an outcome
    for before, after in itertools.pairwise(folds):
        assert position[after.test[0]] == position[before.test[1]] + 1
    assert position[folds[-1].test[1]] == len(DATES) - 1 - horizon


def test_folds_without_room_for_training_say_what_to_change():
    with pytest.raises(DataError, match=r"no room for training.*lower test_fraction"):
        make_folds(DATES[:60], WalkForwardConfig(test_fraction=0.5, val_days=40), horizon=1)


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    return pl.concat(
        price_frame(0.01 * rng.standard_normal(220), ticker=f"T{i}", start_price=40.0 + i)
        for i in range(5)
    )


def _run(frame: pl.DataFrame, models: list[str]):
    config = WalkForwardConfig(refit_every=15, val_days=20, test_fraction=0.3)
    training = TrainingConfig(epochs=1, progress=False)
    return walk_forward(
        frame, forecast=LINEAR, training=training, config=config, models=models, progress=False
    )


def test_stitched_forecasts_are_out_of_sample_and_unique(panel):
    result = _run(panel, ["linear"])
    predictions = result.predictions
    assert predictions.select("date", "ticker").is_unique().all()
    for fold in result.folds:
        rows = predictions.filter(pl.col("fold") == fold.index)
        assert rows["date"].min() >= fold.test[0] and rows["date"].max() <= fold.test[1]
        assert rows["date"].min() > fold.val[1]  # every forecast comes after its fold's fit
    assert set(result.fold_metrics["model"]) == {"linear", "naive"}
    assert result.metrics["linear"]["n"] == predictions.height


def test_each_fold_fits_on_its_own_past_only(panel):
    """Changing prices after a fold's training end never changes that fold's scalers."""
    result = _run(panel, ["linear"])
    fold = result.folds[1]
    later = panel.with_columns(
        pl.when(pl.col("date") > fold.train[1])
        .then(pl.col("close") * 1.5)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    changed = _run(later, ["linear"])
    assert changed.scaler_states[0] == result.scaler_states[0]
    assert changed.scaler_states[1] == result.scaler_states[1]
    assert changed.scaler_states[-1] != result.scaler_states[-1]  # later folds do see it


@pytest.mark.slow
def test_neural_models_warm_start_across_folds(panel):
    config = WalkForwardConfig(refit_every=30, val_days=20, test_fraction=0.3, warm_start_epochs=1)
    result = walk_forward(
        panel,
        forecast=LINEAR,
        training=TrainingConfig(epochs=2, progress=False),
        config=config,
        models=["gru", "lstm"],
        progress=False,
    )
    assert {"gru_log_return", "lstm_log_return", "linear_log_return"} <= set(
        result.predictions.columns
    )
    assert set(result.fold_metrics["model"]) == {"gru", "lstm", "linear", "naive"}
    assert len(result.last["gru"].history_.epochs) == 1  # the last fold was warm-started


def test_each_fold_validates_on_val_days_of_windows_after_its_warm_up(panel):
    result = _run(panel, ["linear"])
    forecaster = result.last["linear"]
    # "a .. b (N days)": the origins that the early stopping and the ridge penalty saw
    validated_days = int(forecaster.scored_["val"].rsplit("(", 1)[1].split()[0])
    assert validated_days >= 20 - 1  # val_days=20, less the horizon without an outcome
    fold = result.folds[-1]
    position = {date: i for i, date in enumerate(panel["date"].unique().sort().to_list())}
    warmup = LINEAR.lookback + 5 + 1  # lookback, volatility_5 and the first return
    assert position[fold.val[1]] - position[fold.val[0]] + 1 == warmup + 20
