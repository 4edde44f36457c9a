"""The formulas of Qlib's Alpha158 factors, as polars expressions over one ticker's rows.

A formula asks a Plan for the columns it reads (earlier rows, row-wise inputs, rolling
statistics), each under a name that formulas share (RSV reuses MAX's and MIN's columns), and
returns the row-wise expression that finishes it, normalised as Qlib normalises it: prices by
the current close, volumes by the current volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

GUARD = 1e-12  # Qlib's guard against a zero denominator
# Qlib leaves a correlation undefined where either series' window std is within 2e-5 of 0
FLAT_STD = 2e-5
POSITION_BITS = 32  # a row's index fits in the low 32 bits of a key (4 billion rows a chunk)

close, open_, high, low, volume = (pl.col(c) for c in ("close", "open", "high", "low", "volume"))


class Plan:
    """The columns that a set of factors reads, stage by stage, each computed once."""

    def __init__(self) -> None:
        self.shifts: dict[str, pl.Expr] = {}  # per ticker: positions and earlier rows
        self.inputs: dict[str, pl.Expr] = {}  # row by row, from the columns and the shifts
        self.windows: dict[str, pl.Expr] = {}  # per ticker: rolling statistics of columns
        self.rank_windows: set[int] = set()  # percentile ranks of the close, by numpy

    def row(self) -> pl.Expr:
        """Each row's position within its ticker, 0 for the first."""
        self.shifts["__row"] = pl.int_range(pl.len(), dtype=pl.Int64)
        return pl.col("__row")

    def earlier(self, column: str, rows: int) -> pl.Expr:
        """`column` as it was `rows` rows earlier in the same ticker."""
        self.shifts[f"__{column}_lag_{rows}"] = pl.col(column).shift(rows)
        return pl.col(f"__{column}_lag_{rows}")

    def input(self, key: str, expr: pl.Expr) -> pl.Expr:
        """A row-wise column (of columns and shifts) that rolling statistics then read."""
        self.inputs[key] = expr
        return pl.col(key)

    def rolling(self, key: str, expr: pl.Expr) -> pl.Expr:
        """A rolling statistic of one plain column, evaluated per ticker."""
        self.windows[key] = expr
        return pl.col(key)

    def rank(self, window: int) -> pl.Expr:
        """Today's close's percentile among the window's closes (numpy: factors.py)."""
        self.row()
        self.rank_windows.add(window)
        return pl.col(f"__close_rank_{window}")


Formula = Callable[[Plan, int], pl.Expr]


# ------------------------------------------------------------------ candle shape (no window)
_RANGE = high - low + GUARD
CANDLES: dict[str, tuple[frozenset[str], pl.Expr]] = {
    name: (frozenset(columns.split()), formula)
    for name, columns, formula in (
        ("kmid", "open close", (close - open_) / open_),
        ("klen", "open high low", (high - low) / open_),
        ("kmid2", "open high low close", (close - open_) / _RANGE),
        ("kup", "open high close", (high - pl.max_horizontal(open_, close)) / open_),
        ("kup2", "open high low close", (high - pl.max_horizontal(open_, close)) / _RANGE),
        ("klow", "open low close", (pl.min_horizontal(open_, close) - low) / open_),
        ("klow2", "open high low close", (pl.min_horizontal(open_, close) - low) / _RANGE),
        ("ksft", "open high low close", (2 * close - high - low) / open_),
        ("ksft2", "open high low close", (2 * close - high - low) / _RANGE),
        ("open0", "open close", open_ / close),
        ("high0", "high close", high / close),
        ("low0", "low close", low / close),
    )
}


# ------------------------------------------------------------------------ shared windows
def _var(plan: Plan, column: str, window: int) -> pl.Expr:
    """The rolling variance (ddof 1) of a plain column."""
    key = f"__{column.strip('_')}_var_{window}"
    return plan.rolling(key, pl.col(column).rolling_var(window))


def _correlation(plan: Plan, left: str, right: str, window: int) -> pl.Expr:
    """The rolling correlation of input columns `left` and `right`, null where either is flat.

    cov = (var(l + r) - var(l) - var(r)) / 2: polars' rolling_corr keeps running sums of
    products whose rounding (1e-10 relative) turns a flat window's 0/0 into +-inf.
    """
    both = f"__{left.strip('_')}_plus_{right.strip('_')}"
    # inputs are evaluated side by side: the sum is written from their own expressions
    plan.input(both, plan.inputs.get(left, pl.col(left)) + plan.inputs.get(right, pl.col(right)))
    var_left, var_right = _var(plan, left, window), _var(plan, right, window)
    cov = (_var(plan, both, window) - var_left - var_right) / 2
    flat = (var_left.sqrt() <= FLAT_STD) | (var_right.sqrt() <= FLAT_STD)
    value = (cov / (var_left * var_right).sqrt()).clip(-1.0, 1.0)  # rounding can pass +-1
    # NaN: the window holds a zero-volume day's infinite volume ratio
    return pl.when(~flat & value.is_not_nan()).then(value)


def _trend(plan: Plan, window: int) -> tuple[pl.Expr, pl.Expr]:
    """The slope of the close's regression on time over the window, and its correlation."""
    plan.input("__close_time", close + plan.row())  # time: one step per row of the ticker
    var_close, var_both = _var(plan, "close", window), _var(plan, "__close_time", window)
    var_time = window * (window + 1) / 12  # the variance (ddof 1) of 1, 2, ..., window
    cov = (var_both - var_close - var_time) / 2
    corr = (cov / (var_close * var_time).sqrt()).clip(-1.0, 1.0)
    return cov / var_time, pl.when(var_close.sqrt() > FLAT_STD).then(corr)


def _extreme(plan: Plan, column: str, window: int, *, highest: bool) -> tuple[pl.Expr, pl.Expr]:
    """The window's highest (lowest) value, and Qlib's IdxMax (IdxMin): its first 1-based place.

    Qlib counts places from the window's oldest row (1) to today (window): the high was window
    - IdxMax rows ago. A key ranks the value, then its row: the window's smallest key is its
    first extreme. The rank reads every row, yet only the order of the window's own values
    decides the result, so it stays causal (and exact, in integers).
    """
    index = pl.int_range(pl.len(), dtype=pl.Int64)  # over all rows: inputs run unpartitioned
    plan.input("__index", index)
    order = pl.col(column).fill_nan(None).rank("dense", descending=highest).cast(pl.Int64)
    key = plan.input(f"__{column}_key", order * 2**POSITION_BITS + index)
    first = plan.rolling(f"__{column}_key_min_{window}", key.rolling_min(window))
    first %= 2**POSITION_BITS  # the row of the first extreme
    return pl.col(column).gather(first), first - pl.col("__index") + window


def _moves(column: str, up: float, down: float) -> Formula:
    """(up * gains + down * losses) / (sum of absolute one-row moves), as Qlib's SUMP."""

    def formula(plan: Plan, window: int) -> pl.Expr:
        previous = plan.earlier(column, 1)
        moved = plan.input(f"__{column}_move", (pl.col(column) - previous).abs())
        total = plan.rolling(f"__{column}_move_sum_{window}", moved.rolling_sum(window))
        net = pl.col(column) - plan.earlier(column, window)  # the window's changes telescope
        gains, losses = (total + net) / 2, (total - net) / 2
        return (up * gains + down * losses) / (total + GUARD)

    return formula


def _count(up: float, down: float) -> Formula:
    """up * share of rising days + down * share of falling days, over the window."""

    def formula(plan: Plan, window: int) -> pl.Expr:
        previous = plan.earlier("close", 1)
        rising = plan.input("__close_rose", (close > previous).cast(pl.Float64))
        falling = plan.input("__close_fell", (close < previous).cast(pl.Float64))
        shares = [
            plan.rolling(f"__close_rose_mean_{window}", rising.rolling_mean(window)),
            plan.rolling(f"__close_fell_mean_{window}", falling.rolling_mean(window)),
        ]
        return up * shares[0] + down * shares[1]

    return formula


# ------------------------------------------------------------------ the windowed families
def _roc(plan: Plan, window: int) -> pl.Expr:
    return plan.earlier("close", window) / close


def _ma(plan: Plan, window: int) -> pl.Expr:
    return plan.rolling(f"__close_mean_{window}", close.rolling_mean(window)) / close


def _std(plan: Plan, window: int) -> pl.Expr:
    return _var(plan, "close", window).sqrt() / close


def _resi(plan: Plan, window: int) -> pl.Expr:
    # today's close less the line's value at x = window: the mean + slope * (window - 1) / 2
    mean = plan.rolling(f"__close_mean_{window}", close.rolling_mean(window))
    return (close - mean - _trend(plan, window)[0] * (window - 1) / 2) / close


def _quantile(quantile: float, key: str) -> Formula:
    def formula(plan: Plan, window: int) -> pl.Expr:
        # linear interpolation between order statistics, as pandas (Qlib's engine) does
        rolled = close.rolling_quantile(quantile, "linear", window_size=window)
        return plan.rolling(f"{key}_{window}", rolled) / close

    return formula


def _extreme_ratio(column: str, *, highest: bool) -> Formula:
    """MAX (MIN): the window's highest high (lowest low) over today's close."""
    return lambda plan, window: _extreme(plan, column, window, highest=highest)[0] / close


def _extreme_place(column: str, *, highest: bool) -> Formula:
    """IMAX (IMIN): Qlib's IdxMax (IdxMin) over the window length."""
    return lambda plan, window: _extreme(plan, column, window, highest=highest)[1] / window


def _rsv(plan: Plan, window: int) -> pl.Expr:
    bottom = _extreme(plan, "low", window, highest=False)[0]
    return (close - bottom) / (_extreme(plan, "high", window, highest=True)[0] - bottom + GUARD)


def _imxd(plan: Plan, window: int) -> pl.Expr:
    # > 0 where the lowest low came before the highest high
    low_place = _extreme(plan, "low", window, highest=False)[1]
    return (_extreme(plan, "high", window, highest=True)[1] - low_place) / window


def _corr(plan: Plan, window: int) -> pl.Expr:
    # the close against log volume (log1p: a zero-volume day stays finite)
    plan.input("__log_volume", volume.log1p())
    return _correlation(plan, "close", "__log_volume", window)


def _cord(plan: Plan, window: int) -> pl.Expr:
    # one-row change ratios of the close and of the volume, the latter log1p'd as Qlib does
    plan.input("__close_ratio", close / plan.earlier("close", 1))
    plan.input("__volume_ratio", (volume / plan.earlier("volume", 1)).log1p())
    return _correlation(plan, "__close_ratio", "__volume_ratio", window)


def _vma(plan: Plan, window: int) -> pl.Expr:
    mean = plan.rolling(f"__volume_mean_{window}", volume.rolling_mean(window))
    return mean / (volume + GUARD)


def _vstd(plan: Plan, window: int) -> pl.Expr:
    return _var(plan, "volume", window).sqrt() / (volume + GUARD)


def _wvma(plan: Plan, window: int) -> pl.Expr:
    # the spread of volume-weighted absolute returns relative to their mean
    weighted = (close / plan.earlier("close", 1) - 1).abs() * volume
    mean = plan.input("__weighted", weighted).rolling_mean(window)
    spread = _var(plan, "__weighted", window).sqrt()
    return spread / (plan.rolling(f"__weighted_mean_{window}", mean) + GUARD)


@dataclass(frozen=True)
class Family:
    """A windowed factor family: the price columns it reads and its formula for a window."""

    columns: frozenset[str]
    formula: Formula
    extra_row: bool = False  # reads the row before the window (a lag or a change)


def _family(columns: str, formula: Formula, *, extra_row: bool = False) -> Family:
    return Family(frozenset(columns.split()), formula, extra_row)


# in the order of Qlib's Alpha158DL.get_feature_config
FAMILIES: dict[str, Family] = {
    "roc": _family("close", _roc, extra_row=True),
    "ma": _family("close", _ma),
    "std": _family("close", _std),
    "beta": _family("close", lambda plan, window: _trend(plan, window)[0] / close),
    "rsqr": _family("close", lambda plan, window: _trend(plan, window)[1] ** 2),
    "resi": _family("close", _resi),
    "max": _family("high close", _extreme_ratio("high", highest=True)),
    "min": _family("low close", _extreme_ratio("low", highest=False)),
    "qtlu": _family("close", _quantile(0.8, "__close_q80")),
    "qtld": _family("close", _quantile(0.2, "__close_q20")),
    "rank": _family("close", lambda plan, window: plan.rank(window)),
    "rsv": _family("high low close", _rsv),
    "imax": _family("high close", _extreme_place("high", highest=True)),
    "imin": _family("low close", _extreme_place("low", highest=False)),
    "imxd": _family("high low close", _imxd),
    "corr": _family("close volume", _corr),
    "cord": _family("close volume", _cord, extra_row=True),
    "cntp": _family("close", _count(1.0, 0.0), extra_row=True),
    "cntn": _family("close", _count(0.0, 1.0), extra_row=True),
    "cntd": _family("close", _count(1.0, -1.0), extra_row=True),
    "sump": _family("close", _moves("close", 1.0, 0.0), extra_row=True),
    "sumn": _family("close", _moves("close", 0.0, 1.0), extra_row=True),
    "sumd": _family("close", _moves("close", 1.0, -1.0), extra_row=True),
    "vma": _family("volume", _vma),
    "vstd": _family("volume", _vstd),
    "wvma": _family("close volume", _wvma, extra_row=True),
    "vsump": _family("volume", _moves("volume", 1.0, 0.0), extra_row=True),
    "vsumn": _family("volume", _moves("volume", 0.0, 1.0), extra_row=True),
    "vsumd": _family("volume", _moves("volume", 1.0, -1.0), extra_row=True),
}
