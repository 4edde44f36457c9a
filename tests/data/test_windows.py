"""Windows: never across tickers or bad rows, equal to explicit slices, and never copied."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfin.data.windows import WindowDataset, window_ends


def brute_force_ends(codes: np.ndarray, row_ok: np.ndarray, lookback: int) -> list[int]:
    """Every end t whose rows t-lookback+1 .. t are one ticker and all usable, by looping."""
    ends = []
    for end in range(len(codes)):
        start = end - lookback + 1
        if start < 0:
            continue
        window = range(start, end + 1)
        if all(codes[row] == codes[end] for row in window) and all(row_ok[row] for row in window):
            ends.append(end)
    return ends


@st.composite
def panels(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Ticker codes (contiguous runs of random length), random bad rows and a lookback."""
    lengths = draw(st.lists(st.integers(0, 15), min_size=1, max_size=5))
    codes = np.repeat(np.arange(len(lengths)), lengths).astype(np.int64)
    row_ok = np.array(
        draw(st.lists(st.booleans(), min_size=len(codes), max_size=len(codes))), dtype=bool
    )
    if draw(st.booleans()):  # mostly usable rows too, so long clean runs are common
        row_ok = row_ok | np.array(
            draw(st.lists(st.booleans(), min_size=len(codes), max_size=len(codes))), dtype=bool
        )
    lookback = draw(st.integers(1, 8))
    return codes, row_ok.astype(bool), lookback


@settings(max_examples=200, deadline=None)
@given(panels())
def test_window_ends_match_a_brute_force_loop(panel: tuple[np.ndarray, np.ndarray, int]) -> None:
    codes, row_ok, lookback = panel
    ends = window_ends(codes, row_ok, lookback=lookback)
    assert ends.dtype == np.int64
    assert ends.tolist() == brute_force_ends(codes, row_ok, lookback)
    for end in ends:  # spelled out: no window spans two tickers or holds a bad row
        window = slice(end - lookback + 1, end + 1)
        assert len(set(codes[window].tolist())) == 1
        assert row_ok[window].all()


def test_window_ends_on_fewer_rows_than_the_lookback() -> None:
    ends = window_ends(np.zeros(3, dtype=np.int64), np.ones(3, dtype=bool), lookback=4)
    assert ends.tolist() == []


def dataset(lookback: int = 4) -> tuple[WindowDataset, torch.Tensor, torch.Tensor]:
    """A dataset over two tickers of 9 and 7 rows, 3 features; also its features and targets."""
    codes = np.repeat([0, 1], [9, 7])
    features = torch.arange(16 * 3, dtype=torch.float32).reshape(16, 3)
    targets = torch.arange(16, dtype=torch.float32)[:, None] * -1.0
    row_ok = np.ones(16, dtype=bool)
    row_ok[12] = False
    ends = torch.from_numpy(window_ends(codes, row_ok, lookback=lookback))
    return WindowDataset(features, targets, ends, lookback=lookback), features, targets


def test_inputs_equal_explicit_slices() -> None:
    data, features, targets = dataset()
    positions = torch.tensor([len(data) - 1, 0, 2, 2])
    inputs, batch_targets = data.batch(positions)
    assert inputs.shape == (4, 4, 3)  # (B, T, F)
    for row, position in enumerate(positions.tolist()):
        end = int(data.ends[position])
        assert torch.equal(inputs[row], features[end - 3 : end + 1])
        assert torch.equal(batch_targets[row], targets[end])
    assert torch.equal(data.inputs(positions), inputs)


def test_all_windows_equal_explicit_slices() -> None:
    data, features, _ = dataset(lookback=3)
    inputs = data.inputs(torch.arange(len(data)))
    expected = torch.stack([features[end - 2 : end + 1] for end in data.ends.tolist()])
    assert torch.equal(inputs, expected)


def test_windows_are_a_view_of_the_features_not_a_copy() -> None:
    for lookback in (1, 5, 12):
        data, features, _ = dataset(lookback=lookback)
        windows = data._windows
        assert windows.untyped_storage().data_ptr() == features.untyped_storage().data_ptr()
        # memory grows with rows, not rows x lookback
        assert windows.untyped_storage().nbytes() == features.untyped_storage().nbytes()
        features[0, 0] = 1000.0 + lookback  # a write to the rows shows through the view
        assert windows[0, 0, 0] == 1000.0 + lookback


def test_too_few_rows_for_one_window_gives_an_empty_dataset() -> None:
    features = torch.ones(3, 2)
    data = WindowDataset(features, torch.ones(3, 1), torch.zeros(0, dtype=torch.int64), lookback=5)
    assert len(data) == 0
    assert data.inputs(torch.zeros(0, dtype=torch.int64)).shape == (0, 5, 2)


def test_to_keeps_the_windows() -> None:
    data, _, _ = dataset()
    moved = data.to(torch.device("cpu"))
    positions = torch.arange(len(data))
    assert torch.equal(moved.inputs(positions), data.inputs(positions))
    assert moved.lookback == data.lookback
