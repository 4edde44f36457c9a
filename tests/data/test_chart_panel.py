"""Charts of a panel: causal images, labels from later days only, a date split with an embargo."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.chart_panel import ChartPanel, chart_samples, split_charts
from deepfin.data.charts import ChartStyle
from deepfin.data.images import Augmentation, ChartBatches, ImageArrays
from deepfin.errors import DataError


def price_frame(tickers: int = 3, days: int = 80, seed: int = 0, late: int = 0) -> pl.DataFrame:
    """A random-walk OHLCV panel; the last ticker starts `late` days after the others."""
    rng = np.random.default_rng(seed)
    calendar = pl.date_range(dt.date(2020, 1, 1), dt.date(2021, 12, 31), "1d", eager=True)
    frames = []
    for i in range(tickers):
        skip = late if i == tickers - 1 else 0
        n = days - skip
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        opening = close * np.exp(rng.normal(0, 0.01, n))
        high = np.maximum(opening, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
        low = np.minimum(opening, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
        frames.append(
            pl.DataFrame(
                {
                    "date": calendar[skip:days],
                    "ticker": f"T{i}",
                    "open": opening,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.uniform(1e5, 1e6, n),
                }
            )
        )
    return pl.concat(frames)


def test_each_chart_is_its_own_window_and_its_label_the_later_close() -> None:
    frame = price_frame()
    panel = ChartPanel.from_frame(frame, ChartStyle.of(20))
    samples = chart_samples(panel, horizon=5, stride=3)
    # the same calendar days for every ticker, every third from the first whole window
    days = panel.days[samples.ends]
    assert np.isin(np.unique(days), np.unique(panel.days)[19::3]).all()
    first = samples.ends[0]
    alone = ChartPanel.from_frame(frame.slice(first - 19, 20), ChartStyle.of(20))
    np.testing.assert_array_equal(
        panel.render(samples.ends[:1])[0], alone.render(np.array([19]))[0]
    )
    close = frame["close"].to_numpy()
    known = samples.outcomes >= 0
    np.testing.assert_allclose(
        samples.log_return[known],
        np.log(close[samples.ends[known] + 5] / close[samples.ends[known]]),
    )
    # the last charts of a ticker have no outcome yet, and never borrow the next ticker's
    assert (samples.outcomes[~known] == -1).all() and np.isnan(samples.log_return[~known]).all()
    ticker = panel.ticker_of_row
    assert (ticker[samples.ends[known]] == ticker[samples.outcomes[known]]).all()
    assert (samples.labels == (samples.log_return > 0)).all()


@settings(max_examples=25, deadline=None)
# a factor near 1 may move no pixel; one a quarter away always moves the changed day's bar
@given(st.integers(0, 239), st.floats(0.5, 0.8) | st.floats(1.25, 2.0))
def test_a_chart_never_reads_a_later_day(changed_row: int, factor: float) -> None:
    frame = price_frame()
    later = frame.with_columns(
        [
            pl.when(pl.int_range(pl.len()) == changed_row)
            .then(pl.col(name) * factor)
            .otherwise(pl.col(name))
            .alias(name)
            for name in ("open", "high", "low", "close", "volume")
        ]
    )
    style = ChartStyle.of(20)
    before, after = ChartPanel.from_frame(frame, style), ChartPanel.from_frame(later, style)
    samples = chart_samples(before, horizon=5, stride=1)
    ticker = before.ticker_of_row
    untouched = (samples.ends < changed_row) | (ticker[samples.ends] != ticker[changed_row])
    np.testing.assert_array_equal(
        before.render(samples.ends[untouched]), after.render(samples.ends[untouched])
    )
    # and the test can fail: the chart ending on the changed day does change
    if changed_row in set(samples.ends.tolist()):
        at = np.array([changed_row])
        assert not np.array_equal(before.render(at), after.render(at))


def test_the_split_keeps_an_embargo_of_the_horizon() -> None:
    frame = price_frame(tickers=4, days=300)
    panel = ChartPanel.from_frame(frame, ChartStyle.of(20))
    split = split_charts(panel, horizon=20, stride=5, test_fraction=0.3, val_fraction=0.2)
    assert split.val is not None
    val_first = split.val.dates.min().astype(np.int64)
    test_first = split.test.dates.min().astype(np.int64)
    for part, limit in ((split.train, val_first), (split.val, test_first)):
        outcome_day = panel.days[part.samples.outcomes]
        assert (outcome_day < limit).all()
    assert split.train.dates.max() < split.val.dates.min() < split.test.dates.min()
    # charts whose label reaches into the next part are dropped, not moved
    calendar = np.unique(panel.days)
    test_day = np.flatnonzero(calendar == split.test.dates.min().astype(np.int64))[0]
    assert int(calendar.size * 0.7) <= test_day < int(calendar.size * 0.7) + 5
    split_on = split_charts(panel, horizon=20, stride=5, test_start=dt.date(2020, 9, 1))
    assert str(split_on.test.dates.min()) >= "2020-09-01"


def test_short_tickers_are_skipped_with_a_warning_naming_how_many(caplog) -> None:
    frame = price_frame(tickers=3, days=80, late=65)  # the last ticker has 15 days
    panel = ChartPanel.from_frame(frame, ChartStyle.of(20))
    with caplog.at_level(logging.WARNING):
        samples = chart_samples(panel, horizon=5, stride=1)
    assert "1 of 3 ticker(s) have fewer than 20 days" in caplog.text
    assert set(panel.ticker_of_row[samples.ends]) == {0, 1}


def test_missing_prices_name_the_columns_and_a_line_chart_draws_closes() -> None:
    frame = price_frame().drop("open", "low")
    with pytest.raises(DataError, match=r"lacks open, low.*--style line"):
        ChartPanel.from_frame(frame, ChartStyle.of(20))
    panel = ChartPanel.from_frame(frame.drop("high"), ChartStyle.of(20, line=True))
    images = panel.render(np.array([30, 40]))
    assert images.shape == (2, 64, 60) and images.max() == 255
    # one pixel of close line and one of average per column above the volume bars
    assert ((images[:, : panel.style.price_rows] > 0).sum(axis=1) <= 2).all()


def test_an_open_outside_its_bar_widens_the_bar(caplog) -> None:
    frame = price_frame().with_columns(
        pl.when(pl.int_range(pl.len()) == 30)
        .then(pl.col("high") * 1.2)
        .otherwise(pl.col("open"))
        .alias("open")
    )
    with caplog.at_level(logging.WARNING):
        panel = ChartPanel.from_frame(frame, ChartStyle.of(20))
    assert "1 day(s) have an open or close outside" in caplog.text
    assert panel.high[30] == pytest.approx(frame["open"][30])
    assert panel.render(np.array([30])).shape == (1, 64, 60)


def test_chart_batches_draw_the_charts_at_the_positions_asked() -> None:
    panel = ChartPanel.from_frame(price_frame(), ChartStyle.of(5))
    split = split_charts(panel, horizon=5, stride=1)
    batches = ChartBatches(split.train)
    images, labels = batches.batch(torch.tensor([3, 0]))
    assert images.shape == (2, 1, 32, 15) and images.dtype == torch.float32
    expected = panel.render(split.train.samples.ends[[3, 0]]) / 255.0
    np.testing.assert_array_equal(images[:, 0].numpy(), expected.astype(np.float32))
    assert labels.tolist() == split.train.samples.labels[[3, 0]].tolist()


def test_augmentation_flips_and_shifts_only_when_asked() -> None:
    images = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    images[:, 0, 2, 1] = 255
    plain = ImageArrays(images, torch.zeros(64, dtype=torch.long))
    assert torch.equal(plain.batch(torch.arange(64))[0], images.float() / 255)
    torch.manual_seed(0)
    flipped = ImageArrays(images, torch.zeros(64), Augmentation(flip=True)).batch(torch.arange(64))
    where = flipped[0][:, 0, 2].argmax(1)
    assert set(where.tolist()) == {1, 6}
    shifted = ImageArrays(images, torch.zeros(64), Augmentation(shift=1)).batch(torch.arange(64))
    assert len({tuple(torch.nonzero(image[0])[0].tolist()) for image in shifted[0]}) > 3
