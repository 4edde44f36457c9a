"""Price charts as images (Jiang, Kelly and Xiu 2023), drawn with numpy index arithmetic.

A chart of `days` trading days is 3 pixels wide per day: the open's tick on the left, the
high-low bar in the middle, the close's tick on the right. Prices are scaled to the window's
own range (of highs, lows and the moving average); the moving average is a line through the
middle columns; volume bars fill the bottom fifth, scaled to the window's largest volume.
Black background (0), white marks (255), uint8. Every window is drawn at once: no loop over
windows, no plotting library, the same pixels on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfin.errors import ConfigError, DataError

WHITE = 255
# the paper's sizes (height) for 5-, 20- and 60-day charts; the width is 3 pixels a day
HEIGHTS = {5: 32, 20: 64, 60: 96}


@dataclass(frozen=True)
class ChartStyle:
    """How a window is drawn: its height in pixels, the moving average and the volume bars."""

    days: int
    height: int
    moving_average: bool = True
    volume: bool = True
    line: bool = False  # the closes as a line (for data without open, high and low)

    def __post_init__(self) -> None:
        if self.days < 2:
            raise ConfigError(f"a chart needs at least 2 days; got {self.days}")
        if self.height < 10:
            raise ConfigError(f"a chart needs at least 10 pixels of height; got {self.height}")

    @classmethod
    def of(cls, days: int, **options: bool) -> ChartStyle:
        """The paper's size for a 5-, 20- or 60-day chart (other windows: 64 pixels high)."""
        return cls(days=days, height=HEIGHTS.get(days, 64), **options)

    @property
    def width(self) -> int:
        """3 pixels a day."""
        return 3 * self.days

    @property
    def volume_rows(self) -> int:
        """The bottom fifth, for the volume bars (none without them)."""
        return self.height // 5 if self.volume else 0

    @property
    def price_rows(self) -> int:
        """The rows above the volume bars."""
        return self.height - self.volume_rows


def moving_average(close: np.ndarray, days: int) -> np.ndarray:
    """The mean of the last `days` closes at each row (N,); NaN until there are `days`."""
    sums = np.concatenate([[0.0], np.cumsum(close, dtype=np.float64)])
    average = np.full(close.size, np.nan)
    average[days - 1 :] = (sums[days:] - sums[:-days]) / days
    return average


def render(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray | None,
    ends: np.ndarray,
    style: ChartStyle,
    average: np.ndarray | None = None,
) -> np.ndarray:
    """Charts (B, height, width) uint8 of the windows of `style.days` rows ending at `ends`.

    The prices are one series' rows (N,) (or a panel's, with `ends` inside one ticker each);
    `average` (N,) is the moving average to draw (computed causally by the caller, e.g.
    `moving_average(close, days)`); a window reads rows end-days+1 .. end only.
    """
    days, rows = style.days, style.price_rows
    ends = np.asarray(ends, dtype=np.int64)
    if ends.size and (ends.min() < days - 1 or ends.max() >= close.size):
        raise DataError(f"a {days}-day chart needs {days} rows up to its end; some ends lack them")
    offsets = np.arange(-days + 1, 1)
    index = ends[:, None] + offsets  # (B, D): the rows of each window
    o, h, lo, c = open_[index], high[index], low[index], close[index]
    if np.isnan(o).any() or np.isnan(h).any() or np.isnan(lo).any() or np.isnan(c).any():
        raise DataError("a chart window holds a missing price; drop or fill those days first")
    top, bottom = h.max(axis=1, keepdims=True), lo.min(axis=1, keepdims=True)  # (B, 1)
    ma = None
    if style.moving_average:
        if average is None:
            raise ConfigError("a chart with a moving average needs `average`")
        ma = average[index]  # (B, D), NaN where the history is too short: not drawn
        top = np.fmax(top, np.nanmax(np.where(np.isnan(ma), -np.inf, ma), 1, keepdims=True))
        bottom = np.fmin(bottom, np.nanmin(np.where(np.isnan(ma), np.inf, ma), 1, keepdims=True))
    span = np.where(top > bottom, top - bottom, 1.0)

    def row_of(price: np.ndarray) -> np.ndarray:
        # the window's high on row 0, its low on the last price row
        return np.rint((top - price) / span * (rows - 1)).astype(np.int64)

    images = np.zeros((ends.size, style.height, style.width), dtype=np.uint8)

    def draw_line(values: np.ndarray) -> None:
        # a series (B, D) through the middle columns, one pixel per column (none where NaN)
        by_column = _average_by_column(values, style.width)  # (B, W)
        drawn = ~np.isnan(by_column)
        line = np.clip(row_of(np.where(drawn, by_column, top)), 0, rows - 1)
        hit_batch, hit_column = np.nonzero(drawn)
        images[hit_batch, line[hit_batch, hit_column], hit_column] = WHITE

    if style.line:
        draw_line(c)
    else:
        batch = np.arange(ends.size)[:, None]  # (B, 1)
        column = 3 * np.arange(days)[None, :]  # (1, D): each day's left column
        images[batch, row_of(o), column] = WHITE
        images[batch, row_of(c), column + 2] = WHITE
        # the high-low bar: every row between the high's and the low's, in the middle column
        grid = np.arange(rows)[None, None, :]  # (1, 1, rows)
        bar = (grid >= row_of(h)[..., None]) & (grid <= row_of(lo)[..., None])  # (B, D, rows)
        middle = images[:, :rows, 1::3]  # (B, rows, D): a view of the middle columns
        middle[bar.transpose(0, 2, 1)] = WHITE
    if ma is not None:
        draw_line(ma)
    if style.volume and volume is not None:
        v = volume[index].astype(np.float64)  # (B, D)
        largest = np.where(v.max(axis=1, keepdims=True) > 0, v.max(axis=1, keepdims=True), 1.0)
        heights = np.rint(v / largest * style.volume_rows).astype(np.int64)  # (B, D)
        volume_grid = np.arange(style.volume_rows)[None, None, :]  # 0 = the bottom row
        filled = volume_grid < heights[..., None]  # (B, D, volume rows)
        bars = images[:, rows:, 1::3][:, ::-1]  # (B, volume rows, D), bottom row first
        bars[filled.transpose(0, 2, 1)] = WHITE
    return images


def _average_by_column(ma: np.ndarray, width: int) -> np.ndarray:
    """The moving average (B, D) at every column (B, W): each day's value on its middle column,
    joined to its neighbours' by linear interpolation (flat beyond the first and last day)."""
    days = ma.shape[1]
    position = np.clip((np.arange(width) - 1) / 3.0, 0, days - 1)  # (W,) in days
    left = np.floor(position).astype(np.int64)
    right = np.minimum(left + 1, days - 1)
    weight = position - left
    return ma[:, left] * (1 - weight) + ma[:, right] * weight
