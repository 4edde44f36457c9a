"""The chart classifier learns a pattern only a chart shows, finds nothing in a random walk,
and comes back from its run folder unchanged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from deepfin.data.chart_panel import ChartPanel, split_charts
from deepfin.data.charts import ChartStyle
from deepfin.errors import DataError
from deepfin.runs.load import load_run
from deepfin.tasks.charts.estimator import ChartClassifier
from deepfin.training import TrainingConfig

FAST = TrainingConfig(epochs=4, batch_size=128, learning_rate=1e-3, patience=2, progress=False)


def candle_panel(
    tickers: int, days: int, *, signal: float, seed: int = 0, start: dt.date = dt.date(2015, 1, 1)
) -> pl.DataFrame:
    """OHLCV random walks where a day that closes above its open is followed by a rise of
    `signal` (in units of the daily volatility): visible in a chart's last candle, invisible
    to close-to-close returns (every close-to-close move is drawn the same way)."""
    rng = np.random.default_rng(seed)
    calendar = pl.date_range(start, start + dt.timedelta(days=days - 1), "1d", eager=True)
    frames = []
    for i in range(tickers):
        close_up = rng.random(days) < 0.5  # does the day close above its open?
        drift = np.r_[0.0, np.where(close_up[:-1], signal, -signal)] * 0.01
        log_return = drift + rng.normal(0, 0.01, days)
        close = 50 * np.exp(np.cumsum(log_return))
        gap = np.abs(rng.normal(0, 0.006, days))
        opening = close * np.exp(np.where(close_up, -gap, gap))
        high = np.maximum(opening, close) * np.exp(np.abs(rng.normal(0, 0.004, days)))
        low = np.minimum(opening, close) * np.exp(-np.abs(rng.normal(0, 0.004, days)))
        frames.append(
            pl.DataFrame(
                {
                    "date": calendar,
                    "ticker": f"S{i:04d}",
                    "open": opening,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.uniform(1e5, 1e6, days),
                }
            )
        )
    return pl.concat(frames)


def small_split(frame: pl.DataFrame, *, stride: int = 1):
    panel = ChartPanel.from_frame(frame, ChartStyle.of(5))
    return split_charts(panel, horizon=1, stride=stride, test_fraction=0.3, val_fraction=0.2)


def classifier(**options) -> ChartClassifier:
    return ChartClassifier(model_params={"channels": 8}, training=FAST, **options)


def test_the_net_learns_a_pattern_only_the_chart_shows() -> None:
    split = small_split(candle_panel(40, 160, signal=1.0))
    model = classifier().fit(split.train, split.val)
    metrics = model.evaluate(split.test)
    rows = metrics["models"]
    assert rows["chart_cnn"]["auc"] > 0.6
    assert rows["chart_cnn"]["auc_p"] < 1e-6 and rows["chart_cnn"]["daily_auc_p"] < 1e-3
    # close-to-close returns carry none of it: the logistic baseline stays near a coin
    assert abs(rows["logistic"]["auc"] - 0.5) < 0.04
    assert metrics["verdict"].startswith("chart_cnn beats every baseline")
    assert rows["chart_cnn"]["hml_sharpe"] > rows["logistic"]["hml_sharpe"]
    assert set(metrics["auc_by_year"]["chart_cnn"]) <= {"2015"}


def test_a_random_walk_gives_a_coin_flip() -> None:
    # no signal: a test AUC away from 0.5 would mean the labels leak into the charts
    split = small_split(candle_panel(1200, 70, signal=0.0, seed=4), stride=1)
    two_epochs = ChartClassifier(
        model_params={"channels": 8}, training=TrainingConfig(**{**FAST.__dict__, "epochs": 2})
    )
    model = two_epochs.fit(split.train, split.val)
    rows = model.evaluate(split.test)["models"]
    assert len(split.test) > 20_000
    for name in ("chart_cnn", "logistic", "reversal_1w", "momentum_20d"):
        assert abs(rows[name]["auc"] - 0.5) < 0.012, (name, rows[name]["auc"])


def test_the_run_folder_gives_back_the_same_probabilities(tmp_path) -> None:
    frame = candle_panel(12, 90, signal=1.0, seed=2)
    split = small_split(frame)
    model = classifier(ensemble=2).fit(split.train, split.val)
    model.evaluate(split.test)
    model.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded, ChartClassifier)
    np.testing.assert_allclose(loaded.up_probability(split.test), model.up_probability(split.test))
    # the ensemble's probability is the mean of its nets'
    single = ChartClassifier(model_params={"channels": 8}, training=FAST)
    single.models_, single.style_, single.horizon_ = model.models_[:1], model.style_, 1
    first = single.up_probability(split.test)
    single.models_ = model.models_[1:]
    np.testing.assert_allclose(
        (first + single.up_probability(split.test)) / 2, model.up_probability(split.test)
    )
    latest = loaded.predict(frame, latest=True)
    assert latest.height == 12 and latest["date"].n_unique() == 1
    assert latest["date"][0] == frame["date"].max()
    assert loaded.examples_ is not None and loaded.examples_.images.shape == (6, 32, 15)
    np.testing.assert_array_equal(loaded.examples_.images, model.examples_.images)


def test_charts_drawn_another_way_are_refused() -> None:
    split = small_split(candle_panel(6, 60, signal=0.5))
    model = classifier().fit(split.train, None)
    other = ChartPanel.from_frame(candle_panel(6, 60, signal=0.5), ChartStyle.of(20))
    other_split = split_charts(other, horizon=1, stride=1)
    with pytest.raises(DataError, match="drawn as"):
        model.up_probability(other_split.test)
    # closes alone cannot feed nets that learned bars; the message says what would
    with pytest.raises(DataError, match=r"lacks open, high, low .*trained with --style line"):
        model.predict(candle_panel(6, 60, signal=0.5).select("date", "ticker", "close"))


def test_one_class_of_training_charts_is_refused() -> None:
    frame = candle_panel(4, 60, signal=0.0).with_columns(
        (pl.int_range(pl.len()).over("ticker").cast(pl.Float64) + 10.0).alias("close")
    )
    frame = frame.with_columns(
        pl.max_horizontal("high", "close").alias("high"),
        pl.min_horizontal("low", "close").alias("low"),
    )
    split = small_split(frame)
    with pytest.raises(DataError, match="every training chart is labelled up"):
        classifier().fit(split.train, split.val)
