"""Features look back only, match a hand computation, and the target marks jumps it spans."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.features import add_features, add_target, feature_warmup, jump_report
from deepfin.errors import DataError

FEATURES = ("log_return", "hl_range", "volatility_3", "rsi_4", "volume_z_5", "momentum_2")
START = dt.date(2020, 1, 1)


def panel(
    prices: dict[str, np.ndarray], volumes: dict[str, np.ndarray] | None = None
) -> pl.DataFrame:
    """A long frame, sorted by ticker and date, from close paths; high/low bracket the close."""
    parts = []
    for ticker, close in prices.items():
        n_rows = len(close)
        volume = volumes[ticker] if volumes else np.linspace(1e5, 3e5, n_rows) * (1 + close % 1)
        parts.append(
            pl.DataFrame(
                {
                    "date": pl.date_range(START, START + dt.timedelta(days=n_rows - 1), eager=True),
                    "ticker": [ticker] * n_rows,
                    "high": close * 1.02,
                    "low": close * 0.97,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pl.concat(parts)


def path(log_returns: list[float], start: float = 50.0) -> np.ndarray:
    """A positive price path from one-day log returns."""
    return start * np.exp(np.cumsum([0.0, *log_returns]))


def rows(values: pl.Series) -> list[float | None]:
    """A float column as a list, with NaN kept apart from null."""
    return values.to_list()


# --------------------------------------------------------------------------- causality
returns = st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=11, max_size=24)
volumes = st.lists(st.floats(1.0, 1e7, allow_nan=False), min_size=25, max_size=25)


@settings(max_examples=60, deadline=None)
@given(
    returns_a=returns,
    returns_b=returns,
    volume_a=volumes,
    volume_b=volumes,
    data=st.data(),
    window=st.integers(2, 6),
)
def test_changing_a_row_never_changes_earlier_rows_or_other_tickers(
    returns_a: list[float],
    returns_b: list[float],
    volume_a: list[float],
    volume_b: list[float],
    data: st.DataObject,
    window: int,
) -> None:
    features = (
        "log_return",
        "hl_range",
        f"volatility_{window}",
        f"rsi_{window}",
        f"volume_z_{window}",
        f"momentum_{window}",
    )
    close = {"A": path(returns_a), "B": path(returns_b, start=7.0)}
    volume = {
        "A": np.array(volume_a[: len(close["A"])]),
        "B": np.array(volume_b[: len(close["B"])]),
    }
    before = add_features(panel(close, volume), features)

    ticker = data.draw(st.sampled_from(["A", "B"]), label="ticker")
    position = data.draw(st.integers(0, len(close[ticker]) - 1), label="position")
    factor = data.draw(st.floats(0.5, 2.0).filter(lambda f: abs(f - 1) > 1e-3), label="factor")
    row = pl.int_range(pl.len()).over("ticker")
    hit = (pl.col("ticker") == ticker) & (row == position)
    changed = panel(close, volume).with_columns(
        pl.when(hit).then(pl.col(name) * factor).otherwise(pl.col(name))
        for name in ("high", "low", "close", "volume")
    )
    after = add_features(changed, features)

    untouched = (pl.col("ticker") != ticker) | (row < position)
    for name in features:
        assert rows(before.filter(untouched)[name]) == rows(after.filter(untouched)[name]), name
    if position > 0:  # the changed row itself does see the change
        assert rows(before.filter(hit)["log_return"]) != rows(after.filter(hit)["log_return"])


def test_features_follow_each_ticker_not_the_row_order() -> None:
    close = {"A": path([0.01, -0.02, 0.03] * 4), "B": path([-0.01, 0.02, 0.005] * 4, start=3.0)}
    by_ticker = add_features(panel(close), FEATURES)
    by_date = add_features(panel(close).sort("date", "ticker"), FEATURES)
    assert by_date.sort("ticker", "date").equals(by_ticker)


# ------------------------------------------------------------------ hand computations
def rolling(values: np.ndarray, window: int, statistic: object) -> np.ndarray:
    """statistic(values[t-window+1 : t+1]) per row t, NaN where the window is incomplete or NaN."""
    out = np.full(len(values), np.nan)
    for end in range(window - 1, len(values)):
        out[end] = statistic(values[end - window + 1 : end + 1])  # type: ignore[operator]
    return out


def hand_features(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, volume: np.ndarray
) -> dict[str, np.ndarray]:
    """FEATURES computed by hand with numpy; NaN where undefined."""
    previous = np.r_[np.nan, close[:-1]]
    log_return = np.log(close / previous)
    change = close - previous
    gain = rolling(np.maximum(change, 0), 4, np.mean)
    loss = rolling(np.maximum(-change, 0), 4, np.mean)
    rsi = np.where(gain + loss > 0, 100 * gain / np.where(gain + loss > 0, gain + loss, 1), 50.0)
    rsi[np.isnan(gain)] = np.nan
    log_volume = np.log1p(volume)
    spread = rolling(log_volume, 5, lambda w: np.std(w, ddof=1))  # polars' default ddof=1
    centred = log_volume - rolling(log_volume, 5, np.mean)
    volume_z = np.where(spread > 0, centred / np.where(spread > 0, spread, 1), 0.0)
    volume_z[np.isnan(spread)] = np.nan
    return {
        "log_return": log_return,
        "hl_range": np.log(high / low),
        "volatility_3": rolling(log_return, 3, lambda w: np.std(w, ddof=1)),
        "rsi_4": rsi,
        "volume_z_5": volume_z,
        "momentum_2": np.log(close / np.r_[np.nan, np.nan, close[:-2]]),
    }


def test_feature_values_match_numpy() -> None:
    rng = np.random.default_rng(7)
    close = {
        "A": path(list(rng.normal(0, 0.03, 29))),
        "B": path(list(rng.normal(0, 0.05, 19)), 9.0),
    }
    volume = {name: rng.uniform(1e3, 1e6, len(values)) for name, values in close.items()}
    frame = add_features(panel(close, volume), FEATURES)
    for ticker in close:
        part = frame.filter(pl.col("ticker") == ticker)
        expected = hand_features(
            part["close"].to_numpy(),
            part["high"].to_numpy(),
            part["low"].to_numpy(),
            part["volume"].to_numpy(),
        )
        for name in FEATURES:
            got = part[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
            np.testing.assert_allclose(got, expected[name], rtol=2e-5, atol=2e-6, err_msg=name)
            assert part[name].dtype == pl.Float32


def test_flat_prices_and_volume_give_neutral_rsi_and_zero_volume_z() -> None:
    frame = add_features(panel({"A": np.full(10, 4.0)}, {"A": np.full(10, 500.0)}), FEATURES)
    assert frame["rsi_4"].to_list() == [None] * 4 + [50.0] * 6
    assert frame["volume_z_5"].to_list() == [None] * 4 + [0.0] * 6
    assert frame["volatility_3"].drop_nulls().to_list() == [0.0] * 7


# -------------------------------------------------------------------------- warm-up
@pytest.mark.parametrize(
    "name",
    [
        "log_return",
        "hl_range",
        "volatility_2",
        "volatility_20",
        "rsi_2",
        "rsi_14",
        "volume_z_2",
        "volume_z_20",
        "momentum_5",
        "momentum_20",
    ],
)
def test_warmup_is_the_number_of_leading_null_rows(name: str) -> None:
    rng = np.random.default_rng(3)
    close = {"A": path(list(rng.normal(0, 0.02, 39))), "B": path(list(rng.normal(0, 0.02, 24)))}
    frame = add_features(panel(close), (name,))
    for ticker in close:
        column = frame.filter(pl.col("ticker") == ticker)[name]
        warmup = feature_warmup((name,))
        assert column.head(warmup).null_count() == warmup
        assert column.slice(warmup).null_count() == 0
        assert column.slice(warmup).is_finite().all()


def test_warmup_of_several_features_is_the_longest() -> None:
    assert feature_warmup(FEATURES) == 4  # rsi_4 and volume_z_5 need 4 rows of history
    assert feature_warmup(("log_return", "volume_z_5")) == 4
    assert feature_warmup(("hl_range",)) == 0
    assert feature_warmup(("rsi_14", "volatility_20")) == 20


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("macd", r"unknown feature 'macd'; choose from log_return.*volatility_N"),
        ("volatility_x", r"unknown feature 'volatility_x'"),
        ("Log_Return", r"unknown feature 'Log_Return'"),
        ("volatility", r"feature 'volatility': volatility needs a window, e.g. volatility_20"),
        ("log_return_5", r"feature 'log_return_5': log_return takes no window"),
        ("rsi_1", r"feature 'rsi_1': the window must be at least 2 rows"),
    ],
)
def test_bad_feature_names(name: str, message: str) -> None:
    frame = panel({"A": path([0.01] * 9)})
    with pytest.raises(DataError, match=message):
        add_features(frame, (name,))
    with pytest.raises(DataError, match=message):
        feature_warmup(("log_return", name))


def test_feature_selection_errors() -> None:
    frame = panel({"A": path([0.01] * 9)})
    with pytest.raises(DataError, match=r"no features selected; give at least one"):
        add_features(frame, ())
    with pytest.raises(DataError, match=r"features are repeated: \['rsi_3', 'rsi_3'\]"):
        add_features(frame, ("rsi_3", "rsi_3"))


def test_missing_price_columns_for_a_feature() -> None:
    frame = panel({"A": path([0.01] * 9)})
    with pytest.raises(DataError, match=r"need column\(s\) \['volume'\].*drop those features"):
        add_features(frame.drop("volume"), ("log_return", "volume_z_5"))
    with pytest.raises(DataError, match=r"need column\(s\) \['high', 'low'\]"):
        add_features(frame.drop("high", "low"), ("hl_range",))
    # features that do not read volume work without it
    assert add_features(frame.drop("volume"), ("rsi_3",)).height == frame.height


# ----------------------------------------------------------------------------- target
@pytest.mark.parametrize("horizon", [1, 3])
def test_target_is_the_forward_log_return_within_each_ticker(horizon: int) -> None:
    rng = np.random.default_rng(11)
    close = {"A": path(list(rng.normal(0, 0.02, 14))), "B": path(list(rng.normal(0, 0.02, 9)))}
    frame = add_target(panel(close), horizon=horizon, target="log_return", max_abs_log_return=0.4)
    prices = add_target(panel(close), horizon=horizon, target="price", max_abs_log_return=0.4)
    for ticker, values in close.items():
        part = frame.filter(pl.col("ticker") == ticker)["target"]
        n_rows = len(values)
        expected = np.log(values[horizon:] / values[:-horizon])
        np.testing.assert_allclose(part.head(n_rows - horizon).to_numpy(), expected, rtol=1e-12)
        assert part.tail(horizon).to_list() == [None] * horizon
        price = prices.filter(pl.col("ticker") == ticker)["target"]
        assert price.head(n_rows - horizon).to_list() == list(values[horizon:])
        assert price.tail(horizon).null_count() == horizon


def test_target_errors() -> None:
    frame = panel({"A": path([0.01] * 9)})
    with pytest.raises(DataError, match=r"unknown target 'volatility'; choose one of"):
        add_target(frame, horizon=1, target="volatility", max_abs_log_return=0.4)
    with pytest.raises(DataError, match=r"horizon must be at least 1 row, got 0"):
        add_target(frame, horizon=0, target="log_return", max_abs_log_return=0.4)


@pytest.mark.parametrize("horizon", [1, 2, 5])
def test_planted_split_is_flagged_and_only_windows_spanning_it_are_marked(horizon: int) -> None:
    rng = np.random.default_rng(5)
    calm = {"A": path(list(rng.normal(0, 0.01, 29))), "B": path(list(rng.normal(0, 0.01, 29)))}
    split_row = 17
    calm["B"][split_row:] /= 7.0  # an unadjusted 7:1 split: a fake one-day return of -1.95
    frame = add_target(panel(calm), horizon=horizon, target="log_return", max_abs_log_return=0.4)

    report = jump_report(frame)
    split_date = START + dt.timedelta(days=split_row)
    assert report.select("ticker", "date").rows() == [("B", split_date)]
    assert report["one_day_log_return"][0] == pytest.approx(-np.log(7), abs=0.05)

    b = frame.filter(pl.col("ticker") == "B")
    assert np.flatnonzero(b["jump"].to_numpy()).tolist() == [split_row]
    # target at row t spans the returns of rows t+1 .. t+horizon
    marked = np.flatnonzero(b["jump_ahead"].to_numpy()).tolist()
    assert marked == list(range(split_row - horizon, split_row))
    a = frame.filter(pl.col("ticker") == "A")
    assert not a["jump"].any() and not a["jump_ahead"].any()
    assert frame["jump_ahead"].null_count() == 0


def test_factors_a_closes_only_file_cannot_feed_are_counted_and_the_close_set_named():
    from deepfin.data.factors import FACTOR_SETS

    closes = pl.DataFrame(
        {"date": [dt.date(2020, 1, d) for d in range(1, 4)], "ticker": "A", "close": [1.0, 2, 3]}
    )
    features = FACTOR_SETS["alpha158"]
    needing = len(features) - len(FACTOR_SETS["alpha158_close"])
    with pytest.raises(
        DataError, match=rf"^{needing} feature\(s\) \(kmid, .* and {needing - 8} more"
    ) as error:
        add_features(closes, features)
    assert "alpha158_close" in str(error.value)
    assert "roc_5" not in str(error.value)  # a close-only factor is not among those named
