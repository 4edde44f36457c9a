"""Alpha158 factors look back only, match plain per-row loops, and are null exactly in warm-up."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.factors import FACTOR_SETS, expand_factor_sets, find_factor
from deepfin.data.features import add_features, feature_warmup, required_columns
from deepfin.errors import DataError

ALPHA158 = expand_factor_sets(("alpha158",))
START = dt.date(2020, 1, 1)
LENGTHS = {"A": 97, "B": 74, "C": 63}  # C: the longest window (60) plus a change and two
TICKS = {"A": 0.0, "B": 0.05, "C": 0.0}  # B's prices in 5-cent ticks: ties for ranks and extremes


def ohlcv(seed: int, lengths: dict[str, int] = LENGTHS) -> pl.DataFrame:
    """A random OHLCV panel sorted by ticker and date, high and low bracketing open and close."""
    rng = np.random.default_rng(seed)
    parts = []
    for ticker, n_rows in lengths.items():
        close = rng.uniform(8, 12) * np.exp(np.cumsum(rng.normal(0, 0.02, n_rows)))
        open_ = close * np.exp(rng.normal(0, 0.01, n_rows))
        high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n_rows)))
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n_rows)))
        prices = {"open": open_, "high": high, "low": low, "close": close}
        if tick := TICKS.get(ticker, 0.0):  # rounding keeps low <= open, close <= high
            prices = {k: np.round(v / tick) * tick for k, v in prices.items()}
        dates = pl.date_range(START, START + dt.timedelta(days=n_rows - 1), eager=True)
        volume = rng.integers(10, 500, n_rows) * 100.0
        parts.append(pl.DataFrame({"date": dates, "ticker": ticker, **prices, "volume": volume}))
    return pl.concat(parts)


@functools.cache
def factors(seed: int = 0) -> pl.DataFrame:
    """Every Alpha158 factor of the panel ohlcv(seed)."""
    return add_features(ohlcv(seed), ALPHA158)


def position() -> pl.Expr:
    """Each row's position within its ticker."""
    return pl.int_range(pl.len()).over("ticker")


# --------------------------------------------------------------------------- causality
@settings(max_examples=6, deadline=None)
@given(cuts=st.fixed_dictionaries({t: st.integers(1, n - 1) for t, n in LENGTHS.items()}))
def test_cutting_off_later_rows_never_changes_earlier_factors(cuts: dict[str, int]) -> None:
    before_cut = position() < pl.col("ticker").replace_strict(cuts, return_dtype=pl.Int64)
    truncated = add_features(ohlcv(0).filter(before_cut), ALPHA158)
    assert truncated.equals(factors().filter(before_cut))


@settings(max_examples=6, deadline=None)
@given(ticker=st.sampled_from(list(LENGTHS)), rows=st.integers(1, 90), seed=st.integers(0, 99))
def test_another_tickers_rows_never_change_a_tickers_factors(
    ticker: str, rows: int, seed: int
) -> None:
    # the other ticker gets new prices, volumes and length
    other = ohlcv(seed, {ticker: rows}).with_columns(pl.lit(ticker).alias("ticker"))
    changed = pl.concat([factors().filter(pl.col("ticker") != ticker).select(other.columns), other])
    after = add_features(changed.sort("ticker", maintain_order=True), ALPHA158)
    kept = pl.col("ticker") != ticker
    assert after.filter(kept).equals(factors().filter(kept))


def test_a_shorter_history_gives_the_same_factors_after_its_warmup() -> None:
    # predict() featurizes only the rows its windows read: it must see what fit() saw
    dropped = 7
    later = add_features(ohlcv(0).filter(position() >= dropped), ALPHA158)
    for ticker in LENGTHS:
        full = factors().filter(pl.col("ticker") == ticker).slice(dropped)
        short = later.filter(pl.col("ticker") == ticker)
        for name in ALPHA158:
            warmup = feature_warmup((name,))
            np.testing.assert_allclose(
                short[name].slice(warmup).to_numpy(),
                full[name].slice(warmup).to_numpy(),
                rtol=1e-6,
                atol=1e-7,
                err_msg=f"{name} of {ticker}",
            )


def test_factors_follow_each_ticker_not_the_row_order() -> None:
    by_date = add_features(ohlcv(0).sort("date", "ticker"), ALPHA158)
    assert by_date.sort("ticker", "date").equals(factors())


# ----------------------------------------------------------------- plain per-row loops
def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def std(values: list[float]) -> float:
    """The sample standard deviation (ddof 1), as pandas and Qlib use it."""
    centre = mean(values)
    return math.sqrt(sum((v - centre) ** 2 for v in values) / (len(values) - 1))


def corr(left: list[float], right: list[float]) -> float:
    left_mean, right_mean = mean(left), mean(right)
    cross = sum((a - left_mean) * (b - right_mean) for a, b in zip(left, right, strict=True))
    spread = sum((a - left_mean) ** 2 for a in left) * sum((b - right_mean) ** 2 for b in right)
    return cross / math.sqrt(spread)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (pandas' default)."""
    ordered = sorted(values)
    place = (len(ordered) - 1) * q
    below = math.floor(place)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (place - below)


def regression(values: list[float]) -> tuple[float, float, float]:
    """Slope, R-squared and last residual of `values` regressed on 1, 2, ..., n."""
    n = len(values)
    x_mean, y_mean = (n + 1) / 2, mean(values)
    sxy = sum((x - x_mean) * (y - y_mean) for x, y in enumerate(values, start=1))
    sxx = sum((x - x_mean) ** 2 for x in range(1, n + 1))
    syy = sum((y - y_mean) ** 2 for y in values)
    slope = sxy / sxx
    return slope, sxy**2 / (sxx * syy), values[-1] - (y_mean + slope * (n - x_mean))


Rows = dict[str, list[float]]
# family -> (rows before the window it reads, value at row t for window d)
REFERENCE: dict[str, tuple[int, Callable[[Rows, int, int], float]]] = {}


def reference(family: str, extra_row: int = 0) -> Callable[..., Callable[[Rows, int, int], float]]:
    def register(
        function: Callable[[Rows, int, int], float],
    ) -> Callable[[Rows, int, int], float]:
        REFERENCE[family] = (extra_row, function)
        return function

    return register


def last(values: list[float], t: int, d: int) -> list[float]:
    """values[t - d + 1 .. t]: the d rows up to and including row t."""
    return values[t - d + 1 : t + 1]


def changes(values: list[float], t: int, d: int) -> list[float]:
    """The d one-row changes up to row t."""
    return [values[i] - values[i - 1] for i in range(t - d + 1, t + 1)]


def ratios(values: list[float], t: int, d: int) -> list[float]:
    """The d one-row ratios value / previous value up to row t."""
    return [values[i] / values[i - 1] for i in range(t - d + 1, t + 1)]


reference("roc", 1)(lambda p, t, d: p["close"][t - d] / p["close"][t])
reference("ma")(lambda p, t, d: mean(last(p["close"], t, d)) / p["close"][t])
reference("std")(lambda p, t, d: std(last(p["close"], t, d)) / p["close"][t])
reference("beta")(lambda p, t, d: regression(last(p["close"], t, d))[0] / p["close"][t])
reference("rsqr")(lambda p, t, d: regression(last(p["close"], t, d))[1])
reference("resi")(lambda p, t, d: regression(last(p["close"], t, d))[2] / p["close"][t])
reference("max")(lambda p, t, d: max(last(p["high"], t, d)) / p["close"][t])
reference("min")(lambda p, t, d: min(last(p["low"], t, d)) / p["close"][t])
reference("qtlu")(lambda p, t, d: quantile(last(p["close"], t, d), 0.8) / p["close"][t])
reference("qtld")(lambda p, t, d: quantile(last(p["close"], t, d), 0.2) / p["close"][t])


@reference("rank")
def _rank(p: Rows, t: int, d: int) -> float:
    window, today = last(p["close"], t, d), p["close"][t]
    below, tied = sum(v < today for v in window), sum(v == today for v in window)
    return (below + (tied + 1) / 2) / d  # ties share their average rank


@reference("rsv")
def _rsv(p: Rows, t: int, d: int) -> float:
    bottom, top = min(last(p["low"], t, d)), max(last(p["high"], t, d))
    return (p["close"][t] - bottom) / (top - bottom + 1e-12)


def first_place(values: list[float], extreme: Callable[[list[float]], float]) -> int:
    """The 1-based place of the first occurrence of the extreme value."""
    return values.index(extreme(values)) + 1


reference("imax")(lambda p, t, d: first_place(last(p["high"], t, d), max) / d)
reference("imin")(lambda p, t, d: first_place(last(p["low"], t, d), min) / d)


@reference("imxd")
def _imxd(p: Rows, t: int, d: int) -> float:
    high, low = last(p["high"], t, d), last(p["low"], t, d)
    return (first_place(high, max) - first_place(low, min)) / d


@reference("corr")
def _corr(p: Rows, t: int, d: int) -> float:
    return corr(last(p["close"], t, d), [math.log(v + 1) for v in last(p["volume"], t, d)])


@reference("cord", 1)
def _cord(p: Rows, t: int, d: int) -> float:
    volume = [math.log(r + 1) for r in ratios(p["volume"], t, d)]
    return corr(ratios(p["close"], t, d), volume)


reference("cntp", 1)(lambda p, t, d: sum(c > 0 for c in changes(p["close"], t, d)) / d)
reference("cntn", 1)(lambda p, t, d: sum(c < 0 for c in changes(p["close"], t, d)) / d)


@reference("cntd", 1)
def _cntd(p: Rows, t: int, d: int) -> float:
    moves = changes(p["close"], t, d)
    return (sum(c > 0 for c in moves) - sum(c < 0 for c in moves)) / d


def sums(moves: list[float], up: float, down: float) -> float:
    """(up * gains + down * losses) / (sum of absolute moves + 1e-12)."""
    gains, losses = sum(max(c, 0.0) for c in moves), sum(max(-c, 0.0) for c in moves)
    return (up * gains + down * losses) / (sum(abs(c) for c in moves) + 1e-12)


for prefix, column in (("", "close"), ("v", "volume")):
    for suffix, up, down in (("p", 1, 0), ("n", 0, 1), ("d", 1, -1)):

        def _sums(p: Rows, t: int, d: int, column: str = column, up: int = up, down: int = down):
            return sums(changes(p[column], t, d), up, down)

        reference(f"{prefix}sum{suffix}", 1)(_sums)

reference("vma")(lambda p, t, d: mean(last(p["volume"], t, d)) / (p["volume"][t] + 1e-12))
reference("vstd")(lambda p, t, d: std(last(p["volume"], t, d)) / (p["volume"][t] + 1e-12))


@reference("wvma", 1)
def _wvma(p: Rows, t: int, d: int) -> float:
    volume = last(p["volume"], t, d)
    weighted = [abs(r - 1) * v for r, v in zip(ratios(p["close"], t, d), volume, strict=True)]
    return std(weighted) / (mean(weighted) + 1e-12)


CANDLES: dict[str, Callable[[float, float, float, float], float]] = {
    "kmid": lambda o, h, lo, c: (c - o) / o,
    "klen": lambda o, h, lo, c: (h - lo) / o,
    "kmid2": lambda o, h, lo, c: (c - o) / (h - lo + 1e-12),
    "kup": lambda o, h, lo, c: (h - max(o, c)) / o,
    "kup2": lambda o, h, lo, c: (h - max(o, c)) / (h - lo + 1e-12),
    "klow": lambda o, h, lo, c: (min(o, c) - lo) / o,
    "klow2": lambda o, h, lo, c: (min(o, c) - lo) / (h - lo + 1e-12),
    "ksft": lambda o, h, lo, c: (2 * c - h - lo) / o,
    "ksft2": lambda o, h, lo, c: (2 * c - h - lo) / (h - lo + 1e-12),
    "open0": lambda o, h, lo, c: o / c,
    "high0": lambda o, h, lo, c: h / c,
    "low0": lambda o, h, lo, c: lo / c,
}


def by_ticker(frame: pl.DataFrame) -> dict[str, tuple[Rows, pl.DataFrame]]:
    """Each ticker's price columns as plain lists, and its rows."""
    parts = frame.partition_by("ticker", as_dict=True)
    return {
        str(key[0]): (
            {c: part[c].to_list() for c in ("open", "high", "low", "close", "volume")},
            part,
        )
        for key, part in parts.items()
    }


def got(part: pl.DataFrame, name: str) -> np.ndarray:
    assert part[name].dtype == pl.Float32
    return part[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def test_every_family_and_candle_has_a_reference() -> None:
    families = {n.rsplit("_", 1)[0] for n in ALPHA158 if find_factor(n).window}  # type: ignore[union-attr]
    assert families == set(REFERENCE)
    assert set(ALPHA158) - {f"{f}_{d}" for f in families for d in (5, 10, 20, 30, 60)} == set(
        CANDLES
    )


@pytest.mark.parametrize("family", sorted(REFERENCE))
def test_windowed_factors_match_a_plain_loop(family: str) -> None:
    extra_row, formula = REFERENCE[family]
    for window in (5, 30, 60) if family in {"beta", "rank", "imax", "qtlu"} else (5, 30):
        name = f"{family}_{window}"
        for ticker, (prices, part) in by_ticker(factors()).items():
            expected = [
                formula(prices, t, window) if t >= window - 1 + extra_row else np.nan
                for t in range(part.height)
            ]
            np.testing.assert_allclose(
                got(part, name), expected, rtol=2e-6, atol=1e-7, err_msg=f"{name} of {ticker}"
            )


def test_candle_shapes_match_a_plain_loop() -> None:
    for prices, part in by_ticker(factors()).values():
        rows = list(zip(*(prices[c] for c in ("open", "high", "low", "close")), strict=True))
        for name, formula in CANDLES.items():
            expected = [formula(*row) for row in rows]
            np.testing.assert_allclose(
                got(part, name), expected, rtol=2e-6, atol=1e-7, err_msg=name
            )


def test_flat_prices_give_qlibs_values_and_leave_correlations_undefined() -> None:
    n_rows = 70
    flat = pl.DataFrame(
        {
            "date": pl.date_range(START, START + dt.timedelta(days=n_rows - 1), eager=True),
            "ticker": "F",
            **{c: np.full(n_rows, 12.5) for c in ("open", "high", "low", "close")},
            "volume": np.full(n_rows, 4e4),
        }
    )
    frame = add_features(flat, ALPHA158).tail(5)
    for name in ("rsqr_20", "corr_20", "cord_20"):  # Qlib: NaN where a series is flat
        assert frame[name].null_count() == 5, name
    expected = {"std_20": 0.0, "beta_20": 0.0, "resi_20": 0.0, "sump_20": 0.0, "vsumd_20": 0.0}
    expected |= {"cntp_20": 0.0, "wvma_20": 0.0, "kmid2": 0.0, "rsv_20": 0.0, "ma_20": 1.0}
    expected |= {"rank_20": 10.5 / 20, "imax_20": 1 / 20, "imxd_20": 0.0}  # ties: first, average
    for name, value in expected.items():
        assert frame[name].to_list() == pytest.approx([value] * 5, abs=1e-6), name


def test_a_zero_volume_day_leaves_the_volume_change_correlation_undefined_not_infinite() -> None:
    frame = ohlcv(3, {"Z": 40}).with_columns(
        pl.when(pl.int_range(pl.len()) == 20).then(0.0).otherwise(pl.col("volume")).alias("volume")
    )
    cord = add_features(frame, ("cord_5", "vma_5"))
    # row 21's volume ratio divides by zero: the windows that hold it are undefined
    assert cord["cord_5"].slice(21, 5).null_count() == 5
    assert cord["cord_5"].slice(26).null_count() == 0
    assert cord["vma_5"].is_finite().all()


# ---------------------------------------------------------------------------- warm-up
def test_warmup_is_the_number_of_leading_null_rows_and_nothing_after_is_missing() -> None:
    assert feature_warmup(ALPHA158) == 60
    for name in ALPHA158:
        warmup = feature_warmup((name,))
        for ticker, (_, part) in by_ticker(factors()).items():
            column = part[name]
            assert column.head(warmup).null_count() == warmup, (name, ticker)
            assert column.slice(warmup).is_finite().all(), (name, ticker)  # no null, no NaN


def test_warmups_of_single_factors() -> None:
    assert feature_warmup(("kmid", "open0")) == 0
    assert feature_warmup(("ma_5",)) == 4  # the first window of 5 closes ends on row 4
    assert feature_warmup(("roc_5",)) == 5  # reads the close 5 rows back
    assert feature_warmup(("sump_20", "imax_10")) == 20  # 20 changes span 21 rows
    assert feature_warmup(("log_return", "beta_60")) == 59


# ---------------------------------------------------------------- columns and names
def test_close_only_data_and_factors_needing_more_columns() -> None:
    closes = ohlcv(1).select("date", "ticker", "close")
    with pytest.raises(DataError, match=r"need column\(s\) \['volume'\].*drop those features"):
        add_features(closes, ("roc_5", "vma_5"))
    with pytest.raises(DataError, match=r"need column\(s\) \['high', 'low', 'open'\]"):
        add_features(closes, ("kmid2",))
    close_only = expand_factor_sets(("alpha158_close",))
    assert required_columns(close_only) == {"close"}
    assert required_columns(ALPHA158) == {"open", "high", "low", "close", "volume"}
    assert required_columns(("imin_5",)) == {"low", "close"}
    assert add_features(closes, close_only).columns == [*closes.columns, *close_only]


def test_factor_sets_expand_in_place_without_repeats() -> None:
    assert len(ALPHA158) == len(set(ALPHA158)) == 157  # Qlib's 158 less VWAP0
    assert ALPHA158[:3] == ("kmid", "klen", "kmid2")
    assert ALPHA158[12:14] == ("roc_5", "roc_10") and ALPHA158[-1] == "vsumd_60"
    assert set(FACTOR_SETS["alpha158_close"]) < set(ALPHA158)
    assert expand_factor_sets(("log_return", "alpha158")) == ("log_return", *ALPHA158)
    mixed = expand_factor_sets(("alpha158_close", "rsi_14", "alpha158", "roc_5"))
    # a factor named on its own keeps its place; the sets leave it out
    assert len(mixed) == len(set(mixed)) == 158 and mixed[-1] == "roc_5"
    assert mixed.index("rsi_14") == len(FACTOR_SETS["alpha158_close"]) - 1
    assert expand_factor_sets(("rsi_14",)) == ("rsi_14",)


def test_features_and_factors_together_keep_the_order_asked() -> None:
    frame = add_features(ohlcv(0), ("rsi_14", "kmid", "log_return", "beta_5"))
    assert frame.columns[-4:] == ["rsi_14", "kmid", "log_return", "beta_5"]
    assert frame["kmid"].equals(factors()["kmid"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("beta", r"feature 'beta': beta needs a window, e.g. beta_20"),
        ("kmid_5", r"feature 'kmid_5': kmid takes no window"),
        ("roc_1", r"feature 'roc_1': the window must be at least 2 rows"),
        ("alpha158", r"'alpha158' names a set of 157 factors.*expand_factor_sets"),
        ("beta_x", r"unknown feature 'beta_x'; choose from log_return.*kmid, klen.*roc_N"),
        ("BETA_20", r"unknown feature 'BETA_20'.*vsumd_N.*alpha158, alpha158_close"),
    ],
)
def test_bad_factor_names(name: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        add_features(ohlcv(0), (name,))
    with pytest.raises(DataError, match=message):
        feature_warmup(("log_return", name))
