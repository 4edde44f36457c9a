"""Qlib's Alpha158 factors by name: factor sets and their expansion, warm-up and columns.

Names are Qlib's in lower case: the window-free candle shapes (`kmid`, `klow2`, `open0`) and
`<family>_<window>` (`roc_5`, `beta_20`, `vsumd_60`), each a causal function of one ticker's
current and earlier rows (formulas in factor_formulas.py). Qlib's VWAP0 is left out, since
price files carry no VWAP: the alpha158 set holds 157 factors. Where Qlib fills a warm-up with
partial windows, these factors are null: a value over fewer rows than named is not that factor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from deepfin.data.factor_formulas import CANDLES, FAMILIES, Plan
from deepfin.errors import DataError

WINDOWS = (5, 10, 20, 30, 60)  # Qlib's rolling windows, in rows
_WINDOWED = re.compile(r"^([a-z]+\d?)_(\d+)$")

FACTOR_SETS: dict[str, tuple[str, ...]] = {
    "alpha158": (*CANDLES, *(f"{family}_{window}" for family in FAMILIES for window in WINDOWS)),
    # the families that read closes only, for close-only data such as a wide file of closes
    "alpha158_close": tuple(
        f"{family}_{window}"
        for family, spec in FAMILIES.items()
        if spec.columns == {"close"}
        for window in WINDOWS
    ),
    # not factors: the window-relative prices and volume of data/features.py (Alpha360's idea)
    "alpha360": ("rel_close", "rel_open", "rel_high", "rel_low", "rel_volume"),
}
FACTOR_HELP = (
    f"an Alpha158 factor: {', '.join(CANDLES)} (no window) or "
    f"{', '.join(f'{family}_N' for family in FAMILIES)} (N a window of at least 2 rows, "
    f"e.g. beta_20); or a factor set ({', '.join(FACTOR_SETS)}), expanded by "
    "deepfin.data.factors.expand_factor_sets"
)


@dataclass(frozen=True)
class Factor:
    """One factor of a family (or a candle shape, window 0): its columns and its warm-up."""

    name: str
    family: str
    window: int
    columns: frozenset[str]
    warmup: int  # leading rows per ticker where the factor is undefined

    def finish(self, plan: Plan) -> pl.Expr:
        """The row-wise expression of this factor, its columns asked of `plan`."""
        if self.window == 0:
            return CANDLES[self.family][1]
        return FAMILIES[self.family].formula(plan, self.window)


def find_factor(name: str) -> Factor | None:
    """The factor `name` names, None if it names none; a family without a window fails."""
    if name in CANDLES:
        return Factor(name, name, 0, CANDLES[name][0] | {"close"}, warmup=0)
    if name in FAMILIES:
        raise DataError(f"feature '{name}': {name} needs a window, e.g. {name}_20")
    if name in FACTOR_SETS:
        raise DataError(
            f"feature '{name}' names a set of {len(FACTOR_SETS[name])} factors, not one; pass "
            "the features through deepfin.data.factors.expand_factor_sets first"
        )
    match = _WINDOWED.match(name)
    if match is None:
        return None
    family, window = match.group(1), int(match.group(2))
    if family in CANDLES:
        raise DataError(f"feature '{name}': {family} takes no window")
    if family not in FAMILIES:
        return None
    if window < 2:
        raise DataError(f"feature '{name}': the window must be at least 2 rows")
    spec = FAMILIES[family]
    warmup = window - 1 + int(spec.extra_row)
    return Factor(name, family, window, spec.columns | {"close"}, warmup=warmup)


def expand_factor_sets(features: tuple[str, ...]) -> tuple[str, ...]:
    """`features` with each factor-set name (alpha158, ...) replaced by its factors, in order.

    A factor that a set brings but `features` already lists is not repeated, so
    ("roc_5", "alpha158") names roc_5 once.
    """
    expanded: list[str] = []
    for name in features:
        if name in FACTOR_SETS:
            expanded += [f for f in FACTOR_SETS[name] if f not in features and f not in expanded]
        else:
            expanded.append(name)
    return tuple(expanded)


def percentile_ranks(
    values: np.ndarray, row: np.ndarray, windows: Iterable[int]
) -> dict[str, np.ndarray]:
    """Qlib's Rank (pandas' rank(pct=True), ties averaged) of each row within each window.

    One pass over the lags serves every window; polars' rolling_rank took 8x longer. Rows are
    one ticker's after another: a window reaching back before its ticker's first row, or
    holding a NaN, is NaN.
    """
    wanted = set(windows)
    below = np.zeros(len(values), dtype=np.int32)
    tied = np.ones(len(values), dtype=np.int32)  # today ties with itself
    missing = np.r_[0, np.cumsum(np.isnan(values))]
    ranks = {}
    for lag in range(1, max(wanted)):
        earlier, today = values[:-lag], values[lag:]
        below[lag:] += earlier < today
        tied[lag:] += earlier == today
        window = lag + 1
        if window in wanted:
            rank = (below + (tied + 1) / 2) / window  # the average rank of the tied rows
            holds_nan = np.ones(len(values), dtype=bool)
            holds_nan[lag:] = missing[window:] - missing[:-window] > 0
            ranks[f"__close_rank_{window}"] = np.where((row >= lag) & ~holds_nan, rank, np.nan)
    return ranks


def add_factor_columns(frame: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
    """Append one float32 column per factor of `names`, computed per ticker from past rows.

    Stages: per-ticker shifts, row-wise inputs, per-ticker rolling statistics of plain columns
    (a rolling statistic of an expression under `over` runs ticker by ticker, 3x slower), then
    the row-wise finish.
    """
    plan = Plan()
    finished = {}
    for name in names:
        factor = find_factor(name)
        if factor is None:
            raise DataError(f"'{name}' is not a factor; choose {FACTOR_HELP}")
        finished[name] = factor.finish(plan).cast(pl.Float32)
    # each ticker's rows together, so that the groups are runs of a sorted key: `over` then
    # slices instead of gathering (1.4x faster) and the numpy ranks see one ticker at a time
    frame = frame.rechunk()  # dropping the staged columns of a chunked frame copied it all
    runs = frame["ticker"].rle_id()
    regroup = frame.height > 0 and runs[-1] + 1 != frame["ticker"].n_unique()
    staged = (
        frame.with_row_index("__order").sort("ticker", maintain_order=True) if regroup else frame
    )
    staged = staged.with_columns(staged["ticker"].rle_id().set_sorted().alias("__run"))
    staged = staged.with_columns(e.over("__run").alias(k) for k, e in plan.shifts.items())
    staged = staged.with_columns(e.alias(k) for k, e in plan.inputs.items())
    staged = staged.with_columns(e.over("__run").alias(k) for k, e in plan.windows.items())
    if plan.rank_windows:
        close, row = staged["close"].cast(pl.Float64).to_numpy(), staged["__row"].to_numpy()
        ranks = percentile_ranks(close, row, plan.rank_windows)
        staged = staged.with_columns(pl.Series(k, v, nan_to_null=True) for k, v in ranks.items())
    # lazily: polars then computes a sub-expression that factors share (a slope) once
    staged = staged.lazy().with_columns(e.alias(k) for k, e in finished.items()).collect()
    if regroup:
        staged = staged.sort("__order")
    return staged.drop(c for c in staged.columns if c.startswith("__") and c not in frame.columns)
