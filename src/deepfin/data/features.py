"""Causal features (each row sees only its own and earlier rows) and forward targets."""

from __future__ import annotations

import functools
import operator
import re

import polars as pl

from deepfin.data.factors import FACTOR_HELP, add_factor_columns, find_factor
from deepfin.errors import DataError

DEFAULT_FEATURES = ("log_return", "volatility_20", "rsi_14", "volume_z_20")
TARGETS = ("log_return", "price")
_FEATURE_PATTERN = re.compile(
    r"^(log_return|hl_range|volatility|rsi|volume_z|momentum)(?:_(\d+))?$"
)
_WINDOWED = {"volatility", "rsi", "volume_z", "momentum"}
# Window-relative inputs (Qlib's Alpha360 idea): a row holds the log of its price or volume,
# and each window shows them minus the log of its last close (prices) or last volume, so the
# network reads every day of the window as a ratio to the forecast day's close: invariant to
# the price level and to splits. feature -> (column read, the feature it is relative to)
RELATIVE: dict[str, tuple[str, str]] = {
    "rel_close": ("close", "rel_close"),
    "rel_open": ("open", "rel_close"),
    "rel_high": ("high", "rel_close"),
    "rel_low": ("low", "rel_close"),
    "rel_volume": ("volume", "rel_volume"),
}
RELATIVE_HELP = (
    "rel_close, rel_open, rel_high, rel_low (each day's price over the window's last close) "
    "and rel_volume (volume over the last volume), in logs"
)


def _log_return() -> pl.Expr:
    return (pl.col("close") / pl.col("close").shift(1)).log()


def _return_volatility(window: int) -> pl.Expr:
    """Sample standard deviation of the last `window` one-day log returns, summed afresh per row."""
    # not rolling_std: its running sums make a value depend, in the last bits, on how much
    # history precedes it, and a test panel must score exactly like the whole panel
    # added one lag after another: an element-wise chain has one order of additions, where
    # sum_horizontal's order (and so the last bit) varied from run to run
    squares = functools.reduce(
        operator.add, [(_log_return() ** 2).shift(lag) for lag in range(window)]
    )
    total = (pl.col("close") / pl.col("close").shift(window)).log()  # the window's returns
    variance = (squares - total**2 / window) / (window - 1)
    return variance.clip(lower_bound=0).sqrt()  # a flat window can round below 0


# one-line factors every panel evaluation scores beside the models: a network that cannot
# beat them has learned nothing a trader would pay for
FACTORS: dict[str, pl.Expr] = {
    "reversal": -_log_return(),  # short-term reversal: minus the last day's return
    "momentum_20": (pl.col("close") / pl.col("close").shift(20)).log(),
    # low volatility: calm stocks rank high (20 daily returns read the 20 earlier closes)
    "low_volatility_20": -_return_volatility(20),
}
FACTOR_HISTORY = 20  # earlier closes the longest factor reads


def add_factors(frame: pl.DataFrame) -> pl.DataFrame:
    """Append a `<factor>_signal` column per one-line factor, computed per ticker from the past."""
    return frame.with_columns(
        expr.over("ticker").alias(f"{name}_signal") for name, expr in FACTORS.items()
    )


def relative_anchors(names: tuple[str, ...]) -> list[int]:
    """Per feature column: the column its windows are relative to (see RELATIVE), or -1."""
    anchors = []
    for name in names:
        if name not in RELATIVE:
            anchors.append(-1)
            continue
        anchor = RELATIVE[name][1]
        if anchor not in names:
            raise DataError(
                f"feature '{name}' is relative to the window's last {RELATIVE[anchor][0]}: "
                f"add the feature {anchor}"
            )
        anchors.append(names.index(anchor))
    return anchors


def _feature_expr(name: str) -> tuple[dict[str, pl.Expr], pl.Expr]:
    """Per-ticker window columns of feature `name`, and the row-wise expression finishing it.

    Each rolling statistic gets a column of its own: polars evaluates a compound expression
    under `over` one ticker at a time, which made RSI and volume z-scores 3x slower.
    """
    if name in RELATIVE:
        column = pl.col(RELATIVE[name][0])
        # a log level; a price of 0 or less has no log and leaves its row unusable
        level = column.log1p() if name == "rel_volume" else column.log()
        return {name: level}, pl.col(name)
    match = _FEATURE_PATTERN.match(name)
    if match is None:
        raise DataError(
            f"unknown feature '{name}'; choose from log_return, hl_range, volatility_N, "
            "rsi_N, volume_z_N, momentum_N (N a window in rows, e.g. volatility_20), "
            f"{RELATIVE_HELP}, or " + FACTOR_HELP
        )
    kind, window_text = match.groups()
    if (kind in _WINDOWED) != (window_text is not None):
        raise DataError(
            f"feature '{name}': {kind} "
            + ("needs a window, e.g. " + f"{kind}_20" if kind in _WINDOWED else "takes no window")
        )
    window = int(window_text) if window_text else 0
    if kind in _WINDOWED and window < 2:
        raise DataError(f"feature '{name}': the window must be at least 2 rows")
    if kind == "log_return":
        return {name: _log_return()}, pl.col(name)
    if kind == "hl_range":
        return {name: (pl.col("high") / pl.col("low")).log()}, pl.col(name)
    if kind == "volatility":
        return {name: _log_return().rolling_std(window)}, pl.col(name)
    if kind == "momentum":
        return {name: (pl.col("close") / pl.col("close").shift(window)).log()}, pl.col(name)
    if kind == "rsi":
        # Cutler's RSI (simple means): finite memory, so a forecast does not depend on
        # how much history precedes the window, and predict() reproduces fit() exactly
        change = pl.col("close").diff()
        gain, loss = f"__{name}_gain", f"__{name}_loss"
        windows = {
            gain: change.clip(lower_bound=0).rolling_mean(window),
            loss: (-change).clip(lower_bound=0).rolling_mean(window),
        }
        total = pl.col(gain) + pl.col(loss)
        # a null total (warm-up) stays null: a made-up 50 would pass as real history
        return windows, pl.when(total > 0).then(100 * pl.col(gain) / total).when(total == 0).then(
            50.0
        )
    volume = pl.col("volume").log1p()
    mean, spread = f"__{name}_mean", f"__{name}_spread"
    windows = {mean: volume.rolling_mean(window), spread: volume.rolling_std(window)}
    centred = volume - pl.col(mean)
    return windows, pl.when(pl.col(spread) > 0).then(centred / pl.col(spread)).when(
        pl.col(spread) == 0
    ).then(0.0)


def feature_warmup(features: tuple[str, ...]) -> int:
    """Leading rows per ticker whose features are undefined (not enough history)."""
    warmup = 0
    for name in features:
        factor = find_factor(name)  # a malformed factor name fails here
        if factor is not None:
            warmup = max(warmup, factor.warmup)
            continue
        # validates every name (a window that is missing, extra or < 2 included)
        _feature_expr(name)
        if name in RELATIVE:
            continue
        match = _FEATURE_PATTERN.match(name)
        assert match is not None  # _feature_expr accepted the name
        kind, window_text = match.groups()
        window = int(window_text or 0)
        rows = {"log_return": 1, "hl_range": 0, "volume_z": window - 1}.get(kind, window)
        warmup = max(warmup, rows)
    return warmup


def required_columns(features: tuple[str, ...]) -> set[str]:
    """Price columns the features read."""
    needed = {"close"}
    for name in features:
        factor = find_factor(name)
        if factor is not None:
            needed |= factor.columns
        if name.startswith("hl_range"):
            needed |= {"high", "low"}
        if name.startswith("volume_z"):
            needed.add("volume")
        if name in RELATIVE:
            needed.add(RELATIVE[name][0])
    return needed


def add_features(frame: pl.DataFrame, features: tuple[str, ...]) -> pl.DataFrame:
    """Append one column per feature, computed per ticker from past rows only."""
    if not features:
        raise DataError("no features selected; give at least one, e.g. log_return")
    if len(set(features)) != len(features):
        raise DataError(f"features are repeated: {list(features)}")
    relative_anchors(features)  # a relative feature without its anchor fails here
    missing = required_columns(features) - set(frame.columns)
    if missing:
        needing = [name for name in features if required_columns((name,)) & missing]
        named = ", ".join(needing[:8]) + (
            f" and {len(needing) - 8} more" if len(needing) > 8 else ""
        )
        factor = any(find_factor(name) is not None for name in needing)
        closes_only = " (for closes only, the factor set alpha158_close)" if factor else ""
        raise DataError(
            f"{len(needing)} feature(s) ({named}) need column(s) {sorted(missing)}, which the "
            f"data lacks; drop those features{closes_only} or supply the columns"
        )
    factors = tuple(name for name in features if find_factor(name) is not None)
    windows: dict[str, pl.Expr] = {}
    finished = []
    for name in features:
        if name in factors:
            continue
        columns, finish = _feature_expr(name)
        windows |= columns
        finished.append(finish.cast(pl.Float32).alias(name))
    staged = frame.with_columns(expr.over("ticker").alias(key) for key, expr in windows.items())
    staged = staged.with_columns(finished).drop([key for key in windows if key not in features])
    if not factors:
        return staged
    # the factors stage their own columns; then every feature in the order asked
    staged = add_factor_columns(staged, factors)
    return staged.select(*(c for c in staged.columns if c not in features), *features)


def add_target(
    frame: pl.DataFrame, *, horizon: int, target: str, max_abs_log_return: float
) -> pl.DataFrame:
    """Append `target` (value `horizon` rows ahead) and `jump` flags; the target looks ahead."""
    if target not in TARGETS:
        raise DataError(f"unknown target '{target}'; choose one of {list(TARGETS)}")
    if horizon < 1:
        raise DataError(f"horizon must be at least 1 row, got {horizon}")
    one_day = _log_return()
    future = pl.col("close").shift(-horizon)
    value = (future / pl.col("close")).log() if target == "log_return" else future
    # a jump beyond the bound looks like an unadjusted split or a bad tick
    jump = (one_day.abs() > max_abs_log_return).fill_null(False)
    jump_ahead = jump.cast(pl.Int32).rolling_sum(horizon).shift(-horizon) > 0
    return frame.with_columns(
        value.over("ticker").alias("target"),
        jump.over("ticker").alias("jump"),
        jump_ahead.over("ticker").fill_null(False).alias("jump_ahead"),
    )


def jump_report(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows flagged as suspicious jumps: ticker, date and the one-day log return."""
    with_return = frame.with_columns(_log_return().over("ticker").alias("one_day_log_return"))
    return with_return.filter(pl.col("jump")).select("ticker", "date", "one_day_log_return")
