"""Chart images: a 5-day chart drawn by hand matches pixel for pixel, the moving average and the
volume bars land where they should, and an image never reads a later day."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.charts import ChartStyle, moving_average, render
from deepfin.errors import ConfigError, DataError

# five days whose range is 100..125, so a price p sits on row 125 - p of the 26 price rows
OPEN = np.array([110.0, 115, 112, 101, 107])
HIGH = np.array([120.0, 125, 118, 108, 111])
LOW = np.array([105.0, 110, 100, 100, 104])
CLOSE = np.array([115.0, 112, 101, 107, 110])
VOLUME = np.array([6.0, 3, 2, 4, 1])  # bars of 6, 3, 2, 4 and 1 of the 6 volume rows

# drawn by hand: per day, the open tick (left), the high-low bar (middle), the close (right)
HAND_DRAWN = """
....#..........
....#..........
....#..........
....#..........
....#..........
.#..#..........
.#..#..........
.#..#..#.......
.#..#..#.......
.#..#..#.......
.####..#.......
.#..#..#.......
.#..#..#.......
.#..####.......
.#..#..#.....#.
##..#..#.....##
.#.....#.....#.
.#.....#..#..#.
.#.....#..####.
.#.....#..#..#.
.#.....#..#..#.
.......#..#..#.
.......#..#....
.......#..#....
.......####....
.......#..#....
.#.............
.#.............
.#........#....
.#..#.....#....
.#..#..#..#....
.#..#..#..#..#.
"""


def hand_drawn() -> np.ndarray:
    lines = HAND_DRAWN.strip().splitlines()
    return np.array([[0 if ch == "." else 255 for ch in line] for line in lines], dtype=np.uint8)


def test_a_five_day_chart_matches_the_hand_drawn_one() -> None:
    style = ChartStyle(days=5, height=32, moving_average=False)
    image = render(OPEN, HIGH, LOW, CLOSE, VOLUME, np.array([4]), style)[0]
    assert image.shape == (32, 15) and image.dtype == np.uint8
    expected = hand_drawn()
    assert np.array_equal(image, expected), "\\n" + "\\n".join(
        "".join("#" if v else "." for v in row) for row in image
    )


def test_the_moving_average_is_a_line_through_the_middle_columns() -> None:
    close = np.full(40, 100.0)
    close[-20:] = np.linspace(100, 120, 20)
    ma = moving_average(close, 20)
    high, low = close + 1, close - 1
    style = ChartStyle.of(20, volume=False)
    image = render(close, high, low, close, None, np.array([39]), style, average=ma)[0]
    assert image.shape == (64, 60)
    # the average's pixel on day d's middle column: its row by the window's own scale
    window = slice(20, 40)
    top = max(high[window].max(), ma[window].max())
    bottom = min(low[window].min(), ma[window].min())
    for day in (0, 10, 19):
        row = round((top - ma[20 + day]) / (top - bottom) * 63)
        assert image[row, 3 * day + 1] == 255
    with pytest.raises(ConfigError, match="needs `average`"):
        render(close, high, low, close, None, np.array([39]), style)


def test_batches_draw_each_window_as_alone() -> None:
    generator = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(generator.normal(0, 0.01, 300)))
    high, low = close * 1.01, close * 0.99
    volume = generator.integers(1, 100, 300).astype(float)
    style = ChartStyle.of(20)
    ma = moving_average(close, 20)
    ends = np.arange(40, 300, 7)
    batch = render(close, high, low, close, volume, ends, style, average=ma)
    for k in (0, 5, len(ends) - 1):
        alone = render(close, high, low, close, volume, ends[k : k + 1], style, average=ma)
        assert np.array_equal(batch[k], alone[0])
    assert set(np.unique(batch)) == {0, 255}


@settings(max_examples=25, deadline=None)
@given(end=st.integers(40, 120), shock=st.floats(0.5, 2.0), later=st.integers(1, 30))
def test_an_image_never_reads_a_later_day(end: int, shock: float, later: int) -> None:
    generator = np.random.default_rng(end)
    close = 100 * np.exp(np.cumsum(generator.normal(0, 0.01, 160)))
    volume = generator.integers(1, 100, 160).astype(float)
    style = ChartStyle.of(20)

    def chart(prices: np.ndarray, volumes: np.ndarray) -> np.ndarray:
        ma = moving_average(prices, 20)
        return render(prices, prices * 1.01, prices * 0.99, prices, volumes, np.array([end]),
                      style, average=ma)[0]  # fmt: skip

    changed, changed_volume = close.copy(), volume.copy()
    changed[end + later :] *= shock
    changed_volume[end + later :] *= shock
    assert np.array_equal(chart(close, volume), chart(changed, changed_volume))


def test_bad_windows_are_refused() -> None:
    style = ChartStyle(days=5, height=32, moving_average=False)
    with pytest.raises(DataError, match="needs 5 rows"):
        render(OPEN, HIGH, LOW, CLOSE, VOLUME, np.array([3]), style)
    gap = CLOSE.copy()
    gap[2] = np.nan
    with pytest.raises(DataError, match="missing price"):
        render(OPEN, HIGH, LOW, gap, VOLUME, np.array([4]), style)
    with pytest.raises(ConfigError, match="at least 2 days"):
        ChartStyle(days=1, height=32)
