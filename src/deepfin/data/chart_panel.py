"""A panel's prices held once for drawing charts, the charts' days and labels, and their split.

Every (ticker, day) with `window` rows up to it can be drawn (the rows are the only input); its
label is the sign of the log return from its close to the close `horizon` rows later. Charts
are sampled on every `stride`-th day of the panel's calendar, the same days for every ticker,
so each sampled day is a cross-section. Parts are split by date: a chart is in training only
if its outcome is known before validation starts, and in validation only if its outcome is
known before the test starts (an embargo of `horizon` rows); inputs may reach back freely.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from deepfin.data.charts import ChartStyle, moving_average, render
from deepfin.errors import ConfigError, DataError

log = logging.getLogger(__name__)
OHLC = ("open", "high", "low", "close")


@dataclass
class ChartPanel:
    """Every ticker's rows (N,) contiguous in ticker order, their moving average and dates."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None
    average: np.ndarray  # the `style.days` moving average of each ticker's closes (NaN at first)
    days: np.ndarray  # (N,) int64 days since 1970-01-01
    row_starts: np.ndarray  # first row of each ticker, then N
    tickers: list[str]
    style: ChartStyle

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, style: ChartStyle) -> ChartPanel:
        """The panel of a long price frame (as `read_prices` returns: sorted by ticker, date)."""
        missing = [name for name in OHLC if name not in frame.columns]
        if style.line:
            missing = [] if "close" in frame.columns else ["close"]
        if missing:
            raise DataError(
                f"a bar chart needs open, high, low and close; the data lacks "
                f"{', '.join(missing)}; draw the closes as a line chart instead (--style line)"
            )
        if style.volume and "volume" not in frame.columns:
            log.warning("the data has no volume column: the charts are drawn without volume bars")
        close = frame["close"].to_numpy().astype(np.float64)
        if style.line:
            opening = high = low = close
        else:
            opening, high, low = (frame[name].to_numpy().astype(np.float64) for name in OHLC[:3])
            widened = (np.maximum(opening, close) > high) | (np.minimum(opening, close) < low)
            if widened.any():
                # drawn as is, an open or close beyond its bar would fall outside the chart
                log.warning(
                    "%d day(s) have an open or close outside their high-low range (adjusted "
                    "closes beside unadjusted highs and lows?); their bars are widened to hold it",
                    int(widened.sum()),
                )
                high = np.maximum(high, np.maximum(opening, close))
                low = np.minimum(low, np.minimum(opening, close))
        tickers = frame["ticker"]
        starts = np.flatnonzero(np.r_[True, tickers[1:].to_numpy() != tickers[:-1].to_numpy()])
        row_starts = np.r_[starts, frame.height].astype(np.int64)
        average = moving_average(close, style.days)
        position = np.arange(frame.height) - np.repeat(starts, np.diff(row_starts))
        average[position < style.days - 1] = np.nan  # never averaged across two tickers
        volume = None
        if "volume" in frame.columns and style.volume:
            volume = frame["volume"].to_numpy().astype(np.float64)
        return cls(
            open=opening,
            high=high,
            low=low,
            close=close,
            volume=volume,
            average=average,
            days=frame["date"].cast(pl.Date).to_physical().to_numpy().astype(np.int64),
            row_starts=row_starts,
            tickers=tickers.to_numpy()[starts].astype(str).tolist(),
            style=style,
        )

    @property
    def ticker_of_row(self) -> np.ndarray:
        """(N,) the ticker index of each row."""
        return np.repeat(np.arange(len(self.tickers)), np.diff(self.row_starts))

    def render(self, ends: np.ndarray) -> np.ndarray:
        """Charts (B, H, W) uint8 of the windows ending at rows `ends`."""
        return render(
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            ends,
            self.style,
            self.average,
        )

    def past_return(self, ends: np.ndarray, days: int) -> np.ndarray:
        """Log return over the `days` rows up to each end (fewer at a ticker's start)."""
        first = self.row_starts[self.ticker_of_row[ends]]
        return np.log(self.close[ends] / self.close[np.maximum(first, ends - days)])

    def dollar_volume(self, ends: np.ndarray) -> np.ndarray | None:
        """(B,) the mean close times volume over each chart's window (None without volume)."""
        if self.volume is None:
            return None
        index = ends[:, None] + np.arange(-self.style.days + 1, 1)[None, :]  # (B, D)
        return np.asarray((self.close[index] * self.volume[index]).mean(axis=1))

    def window_returns(self, ends: np.ndarray) -> np.ndarray:
        """(B, days - 1) the daily log returns inside each chart's window."""
        index = ends[:, None] + np.arange(-self.style.days + 1, 1)[None, :]  # (B, D)
        return np.diff(np.log(self.close[index]), axis=1)


@dataclass
class ChartSamples:
    """Charts by their last row, with the row of their outcome (-1: not yet known)."""

    ends: np.ndarray  # (M,) int64
    outcomes: np.ndarray  # (M,) int64
    log_return: np.ndarray  # (M,) float64: close to close over the horizon; NaN when unknown

    def __len__(self) -> int:
        return int(self.ends.size)

    @property
    def labels(self) -> np.ndarray:
        """(M,) int64: 1 when the price rose over the horizon, else 0."""
        return (self.log_return > 0).astype(np.int64)

    @property
    def labelled(self) -> ChartSamples:
        """The charts whose outcome is known."""
        return self.take(self.outcomes >= 0)

    def take(self, chosen: np.ndarray) -> ChartSamples:
        """The charts at a boolean mask or positions."""
        return ChartSamples(self.ends[chosen], self.outcomes[chosen], self.log_return[chosen])


@dataclass
class ChartSet:
    """Charts of one part (or of new data) over the panel they are drawn from."""

    panel: ChartPanel
    samples: ChartSamples
    horizon: int

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def dates(self) -> np.ndarray:
        """(M,) datetime64[D] of each chart's last day."""
        return self.panel.days[self.samples.ends].astype("datetime64[D]")

    @property
    def tickers(self) -> np.ndarray:
        """(M,) each chart's ticker."""
        return np.asarray(self.panel.tickers)[self.panel.ticker_of_row[self.samples.ends]]


def chart_samples(panel: ChartPanel, *, horizon: int, stride: int) -> ChartSamples:
    """Every ticker's chart on every `stride`-th day of the calendar (from the first day that
    has a whole window), with its outcome `horizon` rows later where the ticker has it."""
    if horizon < 1 or stride < 1:
        raise ConfigError(f"horizon and stride must be >= 1; got {horizon} and {stride}")
    days, window = panel.style.days, panel.style.days
    calendar = np.unique(panel.days)
    if calendar.size < window:
        raise DataError(f"a {window}-day chart needs {window} days; the data has {calendar.size}")
    chosen = np.zeros(calendar.size, dtype=bool)
    chosen[window - 1 :: stride] = True
    position = np.arange(panel.days.size) - np.repeat(
        panel.row_starts[:-1], np.diff(panel.row_starts)
    )
    lengths = np.diff(panel.row_starts)
    short = int((lengths < days).sum())
    if short:
        log.warning(
            "%d of %d ticker(s) have fewer than %d days and draw no chart",
            short,
            lengths.size,
            days,
        )
    ends = np.flatnonzero(chosen[np.searchsorted(calendar, panel.days)] & (position >= days - 1))
    if not ends.size:
        raise DataError(f"no ticker has {days} days for a chart; use a shorter --window")
    last_row = panel.row_starts[1:][panel.ticker_of_row[ends]] - 1
    outcomes = np.where(ends + horizon <= last_row, ends + horizon, -1)
    known = outcomes >= 0
    log_return = np.full(ends.size, np.nan)
    log_return[known] = np.log(panel.close[outcomes[known]] / panel.close[ends[known]])
    return ChartSamples(ends, outcomes, log_return)


@dataclass
class ChartSplit:
    """Training, validation (or None) and test charts, split by date with an embargo."""

    train: ChartSet
    val: ChartSet | None
    test: ChartSet

    def describe(self) -> dict[str, str]:
        """First and last chart day and the number of charts of each part."""
        parts = {"train": self.train, "val": self.val, "test": self.test}
        return {
            name: f"{part.dates.min()} .. {part.dates.max()} ({len(part)} charts)"
            for name, part in parts.items()
            if part is not None and len(part)
        }


def split_charts(
    panel: ChartPanel,
    *,
    horizon: int,
    stride: int,
    test_start: dt.date | None = None,
    test_fraction: float = 0.3,
    val_fraction: float = 0.2,
) -> ChartSplit:
    """The labelled charts split by date: the test from `test_start` (else the last
    `test_fraction` of the calendar), validation the last `val_fraction` of the days before."""
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1:
        raise ConfigError(
            f"need 0 < test_fraction < 1 and 0 <= val_fraction < 1; got {test_fraction} and "
            f"{val_fraction}"
        )
    samples = chart_samples(panel, horizon=horizon, stride=stride).labelled
    calendar = np.unique(panel.days)
    if test_start is not None:
        test_day = int(np.datetime64(test_start, "D").astype(np.int64))
        if not calendar[0] < test_day <= calendar[-1]:
            raise ConfigError(
                f"test_start {test_start} is not inside the data "
                f"({calendar[0].astype('datetime64[D]')} .. {calendar[-1].astype('datetime64[D]')})"
            )
    else:
        test_day = int(calendar[int(calendar.size * (1 - test_fraction))])
    before = calendar[calendar < test_day]
    val_day = int(before[int(before.size * (1 - val_fraction))]) if val_fraction else test_day
    chart_day, outcome_day = panel.days[samples.ends], panel.days[samples.outcomes]
    # embargo: a chart trains only if its label is known before the next part's first day
    parts = {
        "train": outcome_day < val_day,
        "val": (chart_day >= val_day) & (outcome_day < test_day),
        "test": chart_day >= test_day,
    }
    sets = {name: ChartSet(panel, samples.take(mask), horizon) for name, mask in parts.items()}
    for name in ("train", "test"):
        if not len(sets[name]):
            raise DataError(
                f"no {name} charts with known outcomes: the data is too short for a "
                f"{panel.style.days}-day window and a {horizon}-day horizon; move test_start"
            )
    val = sets["val"] if val_fraction and len(sets["val"]) else None
    return ChartSplit(sets["train"], val, sets["test"])
