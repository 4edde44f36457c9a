"""Panels in chunks: the same windows and scalers as all at once, and time still flows one way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from deepfin.data.chunks import read_chunks
from deepfin.data.features import DEFAULT_FEATURES, add_features
from deepfin.data.io import read_prices
from deepfin.data.panel import Panel, load_panel
from deepfin.data.scaling import RunningMoments, Scaler
from deepfin.data.splits import chronological_split
from deepfin.data.windows import WindowDataset
from deepfin.errors import DataError
from tests.conftest import price_frame

LOOKBACK = 10
RELATIVE_FEATURES = ("rel_close", "rel_open", "rel_high", "rel_low", "rel_volume", "log_return")


@pytest.fixture
def prices() -> pl.DataFrame:
    """Eight tickers of 120 to 190 days, on different price levels."""
    rng = np.random.default_rng(3)
    frames = [
        price_frame(
            0.02 * rng.standard_normal(120 + 10 * i), ticker=f"T{i}", start_price=5.0 * 3**i
        )
        for i in range(8)
    ]
    return pl.concat(frames)


def panel_of(source: object, **changes: object) -> Panel:
    settings: dict[str, object] = {
        "lookback": LOOKBACK,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "chunk_rows": 300,  # a few tickers per chunk, and tickers that straddle Parquet batches
    }
    return load_panel(source, **(settings | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk_rows", [100, 300, 10_000])
def test_parquet_in_chunks_equals_the_frame_at_once(
    prices: pl.DataFrame, tmp_path: Path, chunk_rows: int
) -> None:
    path = tmp_path / "prices.parquet"
    prices.write_parquet(path, row_group_size=97)
    whole = panel_of(prices, chunk_rows=10**9)
    chunked = panel_of(path, chunk_rows=chunk_rows)
    assert chunked.tickers == whole.tickers == [f"T{i}" for i in range(8)]
    np.testing.assert_array_equal(chunked.features.numpy(), whole.features.numpy())
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(
            getattr(chunked, name).ends.numpy(), getattr(whole, name).ends.numpy()
        )


def test_windows_stay_in_one_ticker_and_score_only_their_own_part(prices: pl.DataFrame) -> None:
    panel = panel_of(prices)
    split = chronological_split(prices, val_fraction=0.2, test_fraction=0.2, embargo=1)
    bounds = {
        "train": (split.train["date"].min(), split.train["date"].max()),
        "val": (split.val["date"].min(), split.val["date"].max()),  # type: ignore[index]
        "test": (split.test["date"].min(), split.test["date"].max()),
    }
    ticker_of_row = np.repeat(np.arange(len(panel.tickers)), np.diff(panel.row_starts))
    dates = panel.days.astype("datetime64[D]")
    for name, (first, last) in bounds.items():
        data: WindowDataset = getattr(panel, name)
        assert len(data) > 0
        ends = data.ends.numpy().astype(np.int64)
        rows = ends[:, None] + np.arange(-LOOKBACK + 1, 2)  # the window and its target row
        assert (ticker_of_row[rows] == ticker_of_row[ends][:, None]).all()
        # the forecast origin and its outcome lie in the part; inputs may come from before it
        for row in (ends, ends + 1):
            assert (dates[row] >= np.datetime64(first)).all()
            assert (dates[row] <= np.datetime64(last)).all()
        assert (dates[rows] <= np.datetime64(last)).all()
        if name == "train":
            assert (dates[rows] >= np.datetime64(first)).all()


def test_validation_and_test_windows_take_their_warm_up_from_earlier_history(
    prices: pl.DataFrame,
) -> None:
    panel = panel_of(prices)
    split = chronological_split(prices, val_fraction=0.2, test_fraction=0.2, embargo=1)
    dates = panel.days.astype("datetime64[D]")
    for name, part in (("val", split.val), ("test", split.test)):
        assert part is not None
        ends = getattr(panel, name).ends.numpy()
        # every ticker trading on the part's first date scores a forecast made on it
        first = np.datetime64(part["date"].min())
        assert dates[ends].min() == first
        codes = np.searchsorted(panel.row_starts, ends, side="right") - 1
        scored = {
            panel.tickers[code]
            for code, end in zip(codes, ends, strict=True)
            if dates[end] == first
        }
        trading = set(part.filter(pl.col("date") == part["date"].min())["ticker"])
        assert scored == trading and len(trading) >= 3


def test_scalers_are_fitted_on_training_rows_only(prices: pl.DataFrame) -> None:
    panel = panel_of(prices, features=("log_return", "rsi_14"))
    split = chronological_split(prices, val_fraction=0.2, test_fraction=0.2, embargo=1)
    train = add_features(read_prices(split.train), ("log_return", "rsi_14"))
    values = train.select("log_return", "rsi_14").to_numpy().astype(np.float64)
    values = values[np.isfinite(values).all(axis=1)]
    np.testing.assert_allclose(panel.feature_scaler.center_[0], values.mean(0), rtol=1e-9)
    np.testing.assert_allclose(panel.feature_scaler.scale_[0], values.std(0), rtol=1e-9)
    scaled_train = panel.features.numpy()[panel.train.ends.numpy().astype(np.int64)]
    assert abs(scaled_train.mean(0)).max() < 0.2  # about standardised where it was fitted


@pytest.mark.parametrize("kind", ["standard", "minmax"])
@pytest.mark.parametrize("per_ticker", [False, True])
def test_running_moments_in_chunks_equal_one_fit(kind: str, per_ticker: bool) -> None:
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(4), [30, 1, 50, 19])  # contiguous tickers, as in a panel
    values = rng.normal(size=(len(codes), 3)) * [1.0, 1e3, 1e-3] + 1e4 * codes[:, None]
    tickers = ["A", "B", "C", "D"]
    expected = Scaler(kind=kind, per_ticker=per_ticker).fit(values, codes, tickers)
    moments = RunningMoments(4 if per_ticker else 1, 3)
    for first, stop in ((0, 31), (31, 81), (81, 100)):  # whole tickers per chunk
        groups = codes[first:stop] - codes[first] if per_ticker else np.zeros(stop - first, int)
        moments.update(
            values[first:stop],
            groups,
            first_group=int(codes[first]) if per_ticker else 0,
            n_groups=int(codes[stop - 1] - codes[first]) + 1 if per_ticker else 1,
        )
    got = moments.scaler(kind=kind, per_ticker=per_ticker, tickers=tickers)
    np.testing.assert_allclose(got.center_, expected.center_, rtol=1e-12)
    np.testing.assert_allclose(got.scale_, expected.scale_, rtol=1e-9)


def test_tickers_split_across_a_file_are_refused(prices: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "shuffled.parquet"
    shuffled = pl.concat([prices[:60], prices[200:], prices[60:200]])  # T0 twice, far apart
    shuffled.write_parquet(path)
    with pytest.raises(DataError, match=r"not contiguous; sort the data by ticker and date"):
        panel_of(path, chunk_rows=50)


def test_chunks_hold_whole_tickers(prices: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "prices.parquet"
    prices.write_parquet(path, row_group_size=33)
    chunks = list(read_chunks(path, chunk_rows=70))
    assert sum(chunk.height for chunk in chunks) == prices.height
    names = [set(chunk["ticker"].unique()) for chunk in chunks]
    assert all(not (a & b) for i, a in enumerate(names) for b in names[i + 1 :])


def test_default_features_and_sizes(prices: pl.DataFrame) -> None:
    panel = panel_of(prices)
    assert panel.features.shape == (prices.height, len(DEFAULT_FEATURES))
    assert panel.features.dtype.is_floating_point and panel.features.element_size() == 4
    inputs, targets = panel.train.batch(torch.arange(4))
    assert inputs.shape == (4, LOOKBACK, len(DEFAULT_FEATURES)) and targets.shape == (4, 1)


@pytest.mark.parametrize("features", [DEFAULT_FEATURES, RELATIVE_FEATURES], ids=["default", "rel"])
@pytest.mark.parametrize("period", ["embargo", "val", "test"])
@pytest.mark.parametrize("factor", [0.5, 40.0])
def test_a_change_after_the_training_end_leaves_training_unchanged(
    prices: pl.DataFrame, period: str, factor: float, features: tuple[str, ...]
) -> None:
    split = chronological_split(prices, val_fraction=0.2, test_fraction=0.2, embargo=1)
    assert split.val is not None
    calendar = prices["date"].unique().sort()
    train_end = split.train["date"].max()
    chosen = {
        "embargo": calendar.filter(calendar > train_end).head(1),
        "val": split.val["date"].unique().sort().head(3),
        "test": split.test["date"].unique().sort().tail(3),
    }[period]
    hit = pl.col("date").is_in(chosen.implode()) & (pl.col("ticker") == "T7")
    changed = prices.with_columns(
        pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close", "volume")
    )
    before, after = panel_of(prices, features=features), panel_of(changed, features=features)
    for name in ("feature_scaler", "target_scaler"):
        assert getattr(before, name).to_dict() == getattr(after, name).to_dict()
    np.testing.assert_array_equal(before.train.ends.numpy(), after.train.ends.numpy())
    train_rows = before.days <= before.rows.stamp(train_end)
    np.testing.assert_array_equal(
        before.features.numpy()[train_rows], after.features.numpy()[train_rows]
    )
    ends = before.train.ends
    assert torch.equal(before.train.batch(torch.arange(len(ends)))[1], after.train.targets[ends])


def test_relative_windows_are_log_ratios_to_the_window_s_last_close(prices: pl.DataFrame) -> None:
    panel = panel_of(prices, features=RELATIVE_FEATURES)
    positions = torch.arange(0, len(panel.train), 7)
    inputs = panel.train.inputs(positions).double()
    scale = torch.from_numpy(panel.feature_scaler.scale_[0])
    for window, end in zip(inputs, panel.train.ends[positions].tolist(), strict=True):
        rows = prices[end - LOOKBACK + 1 : end + 1]  # one ticker's rows, as the panel holds them
        last_close, last_volume = rows["close"][-1], rows["volume"][-1]
        for column, name in enumerate(("close", "open", "high", "low")):
            expected = np.log(rows[name].to_numpy() / last_close)
            np.testing.assert_allclose(window[:, column] * scale[column], expected, atol=2e-5)
        expected = np.log1p(rows["volume"].to_numpy()) - np.log1p(last_volume)
        np.testing.assert_allclose(window[:, 4] * scale[4], expected, atol=2e-5)
    # a window's own close is 1 times itself; the plain feature is scaled as always
    assert (inputs[:, -1, 0] == 0).all() and not (inputs[:, :, 5] == 0).all()
    # near unit scale: the spread of a window's log moves, fitted on training rows
    assert 0.5 < float(inputs[:, :, 0].std()) < 1.5


def test_relative_windows_do_not_see_the_price_level_or_a_split(prices: pl.DataFrame) -> None:
    """Every price of T3 times 7 (as in a reverse split), its volume divided by 7: same windows."""
    rescaled = prices.with_columns(
        pl.when(pl.col("ticker") == "T3").then(pl.col(c) * 7).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close")
    ).with_columns(
        pl.when(pl.col("ticker") == "T3").then(pl.col("volume") / 7).otherwise(pl.col("volume"))
    )
    before = panel_of(prices, features=RELATIVE_FEATURES[:4])
    after = panel_of(rescaled, features=RELATIVE_FEATURES[:4])
    positions = torch.arange(len(before.train))
    # rows hold float32 log levels: a difference of two is exact to about 1e-7 of the level
    torch.testing.assert_close(
        before.train.inputs(positions), after.train.inputs(positions), atol=1e-4, rtol=0
    )


def test_a_relative_feature_without_its_anchor_is_refused(prices: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="add the feature rel_close"):
        panel_of(prices, features=("rel_high", "log_return"))
