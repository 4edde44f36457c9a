"""chronological_split: date-disjoint ordered parts, an exact embargo, fractions respected."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.splits import Split, chronological_split
from deepfin.errors import DataError

START = dt.date(2019, 1, 1)


def calendar_panel(n_dates: int, tickers: tuple[str, ...] = ("A", "B", "C")) -> pl.DataFrame:
    """Each ticker on a ragged subset of `n_dates` business-like dates (every date used once)."""
    dates = [START + dt.timedelta(days=day + 2 * (day // 5)) for day in range(n_dates)]
    parts = []
    for index, ticker in enumerate(tickers):
        # ticker i starts i dates late, so the calendar is the union, not one ticker's dates
        own = dates[index:] if index < len(tickers) - 1 else dates
        parts.append(
            pl.DataFrame(
                {"date": own, "ticker": [ticker] * len(own), "close": [1.0 + index] * len(own)}
            )
        )
    return pl.concat(parts)


def part_dates(part: pl.DataFrame | None) -> list[dt.date]:
    """The sorted distinct dates of a part."""
    assert part is not None
    return part["date"].unique().sort().to_list()


def check_layout(frame: pl.DataFrame, split: Split, *, embargo: int) -> None:
    """Parts are ordered, date-disjoint, and exactly `embargo` calendar dates lie between them."""
    calendar = frame["date"].unique().sort().to_list()
    parts = [split.train, *([split.val] if split.val is not None else []), split.test]
    spans = [part_dates(part) for part in parts]
    for dates in spans:  # each part is one contiguous run of the calendar
        first = calendar.index(dates[0])
        assert calendar[first : first + len(dates)] == dates
    for earlier, later in itertools.pairwise(spans):
        assert earlier[-1] < later[0]
        gap = calendar.index(later[0]) - calendar.index(earlier[-1]) - 1
        assert gap == embargo
    assert spans[0][0] == calendar[0] and spans[-1][-1] == calendar[-1]
    # every row of a kept date goes to its part, untouched
    for part, dates in zip(parts, spans, strict=True):
        assert part.equals(frame.filter(pl.col("date").is_in(dates)))


@settings(max_examples=60, deadline=None)
@given(
    n_dates=st.integers(30, 300),
    val_fraction=st.sampled_from([0.0, 0.1, 0.15, 0.2]),
    test_fraction=st.sampled_from([0.05, 0.15, 0.3]),
    embargo=st.integers(0, 5),
)
def test_parts_are_disjoint_ordered_and_embargoed(
    n_dates: int, val_fraction: float, test_fraction: float, embargo: int
) -> None:
    frame = calendar_panel(n_dates)
    split = chronological_split(
        frame, val_fraction=val_fraction, test_fraction=test_fraction, embargo=embargo
    )
    check_layout(frame, split, embargo=embargo)
    assert len(part_dates(split.test)) == round(n_dates * test_fraction)
    if val_fraction:
        assert len(part_dates(split.val)) == round(n_dates * val_fraction)
    else:
        assert split.val is None
    n_gaps = 2 if split.val is not None else 1
    n_val = 0 if split.val is None else len(part_dates(split.val))
    n_train = len(part_dates(split.train))
    assert n_train + n_val + len(part_dates(split.test)) + n_gaps * embargo == n_dates


def test_defaults_on_a_hundred_dates() -> None:
    frame = calendar_panel(100)
    split = chronological_split(frame)
    assert [len(part_dates(part)) for part in (split.train, split.val, split.test)] == [68, 15, 15]
    check_layout(frame, split, embargo=1)
    described = split.describe()
    assert list(described) == ["train", "val", "test"]
    assert described["test"].endswith("(15 days)")


def test_test_start_fixes_the_first_test_date() -> None:
    frame = calendar_panel(60)
    calendar = part_dates(frame)
    split = chronological_split(frame, val_fraction=0.1, embargo=2, test_start=calendar[45])
    assert part_dates(split.test) == calendar[45:]
    assert len(part_dates(split.val)) == 6
    check_layout(frame, split, embargo=2)
    # a start that is not itself a trading date begins the test at the next one
    between = calendar[45] - dt.timedelta(days=1)
    assert between not in calendar
    later = chronological_split(frame, val_fraction=0.0, test_start=between)
    assert part_dates(later.test)[0] == calendar[45]


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"), [(-0.1, 0.2), (1.0, 0.2), (0.1, 0.0), (0.1, 1.0)]
)
def test_bad_fractions(val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(DataError, match=r"must lie in \[0, 1\) and \(0, 1\)"):
        chronological_split(
            calendar_panel(50), val_fraction=val_fraction, test_fraction=test_fraction
        )


def test_fractions_that_leave_no_training_dates() -> None:
    with pytest.raises(DataError, match=r"50 dates are too few .* use more data, smaller"):
        chronological_split(calendar_panel(50), val_fraction=0.5, test_fraction=0.5)


def test_too_few_dates_for_the_embargo() -> None:
    with pytest.raises(DataError, match=r"10 dates are too few .*embargo of 5"):
        chronological_split(calendar_panel(10), val_fraction=0.2, test_fraction=0.2, embargo=5)


def test_negative_embargo() -> None:
    with pytest.raises(DataError, match=r"embargo must be >= 0 days, got -1"):
        chronological_split(calendar_panel(50), embargo=-1)


def test_test_start_after_the_last_date() -> None:
    frame = calendar_panel(40)
    with pytest.raises(DataError, match=r"test_start 2030-01-01 is after the last date"):
        chronological_split(frame, test_start=dt.date(2030, 1, 1))
    with pytest.raises(DataError, match=r"too few"):  # everything would be test
        chronological_split(frame, test_start=dt.date(2000, 1, 1))


def test_a_part_with_history_adds_only_earlier_dates_as_input_rows() -> None:
    frame = calendar_panel(200)
    split = chronological_split(frame, val_fraction=0.2, test_fraction=0.2, embargo=3)
    calendar = frame["date"].unique().sort().to_list()
    test, (first, last) = split.with_history("test", 25)
    assert (first, last) == (split.test["date"].min(), split.test["date"].max())
    dates = test["date"].unique().sort().to_list()
    assert dates[0] == calendar[calendar.index(first) - 25] and dates[-1] == last
    # the extra rows are exactly the source's rows on the 25 dates before the part
    assert test.filter(pl.col("date") >= first).equals(split.test)
    history = test.filter(pl.col("date") < first)
    assert history["date"].n_unique() == 25
    val, _ = split.with_history("val", 1_000)  # more history than there is: from the start
    assert val["date"].min() == calendar[0]
