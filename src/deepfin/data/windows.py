"""Sliding windows as index arithmetic over rows held once: no window is ever copied out."""

from __future__ import annotations

import numpy as np
import torch


def window_ends(ticker_codes: np.ndarray, row_ok: np.ndarray, *, lookback: int) -> np.ndarray:
    """Row positions t whose window [t-lookback+1, t] lies in one ticker with every row usable."""
    n_rows = len(ticker_codes)
    if n_rows < lookback:
        return np.zeros(0, dtype=np.int64)
    bad_so_far = np.concatenate([[0], np.cumsum(~row_ok)])  # bad_so_far[i]: bad rows before i
    ends = np.arange(lookback - 1, n_rows, dtype=np.int64)
    starts = ends - lookback + 1
    # rows are contiguous per ticker, so equal codes at both ends mean one ticker throughout
    same_ticker = ticker_codes[starts] == ticker_codes[ends]
    clean = bad_so_far[ends + 1] - bad_so_far[starts] == 0
    return ends[same_ticker & clean]


class WindowDataset:
    """Windows over a (rows, F) feature tensor; a batch is gathered only when asked for.

    `anchors` (F,): per column, the column whose value on the window's last row it is shown
    relative to (subtracted from every row of the window), or -1 for a column shown as it is.
    """

    def __init__(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        ends: torch.Tensor,
        *,
        lookback: int,
        anchors: torch.Tensor | None = None,
    ) -> None:
        self.features = features
        self.targets = targets
        self.ends = ends
        self.lookback = lookback
        self.anchors = anchors
        if anchors is not None:
            self._relative = torch.nonzero(anchors >= 0).flatten().to(features.device)
            self._anchor_of = anchors[anchors >= 0].to(features.device)
        # a strided view, not a copy: row i of the view is the window starting at row i
        if len(features) >= lookback:
            self._windows = features.unfold(0, lookback, 1)  # (rows, F) -> (rows-T+1, F, T)
        else:  # too few rows for any window; unfold would raise instead of giving none
            self._windows = features.new_empty((0, features.shape[1], lookback))

    def __len__(self) -> int:
        return len(self.ends)

    def inputs(self, positions: torch.Tensor) -> torch.Tensor:
        """Input windows for the given positions, (B, T, F)."""
        starts = self.ends[positions] - self.lookback + 1
        windows = self._windows[starts].transpose(1, 2)  # (B, F, T) -> (B, T, F), a copy
        if self.anchors is None or not len(self._relative):
            return windows
        last = windows[:, -1:, self._anchor_of]  # (B, 1, relative columns), a copy
        windows[:, :, self._relative] -= last
        return windows

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, T, F) and targets (B, O) for the given positions."""
        return self.inputs(positions), self.targets[self.ends[positions]]

    def to(self, device: torch.device) -> WindowDataset:
        """The same windows with their rows on `device`."""
        return WindowDataset(
            self.features.to(device),
            self.targets.to(device),
            self.ends.to(device),
            lookback=self.lookback,
            anchors=self.anchors,
        )


class DatedWindows(WindowDataset):
    """Windows that know their forecast date: a batch can be whole cross-sections.

    Targets come with the window's date code as a second column (B, 2), so a loss can compare
    the tickers of one date; `batch_positions` plans an epoch of batches of whole dates.
    """

    def __init__(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        ends: torch.Tensor,
        dates: torch.Tensor,
        *,
        lookback: int,
        anchors: torch.Tensor | None = None,
    ) -> None:
        super().__init__(features, targets, ends, lookback=lookback, anchors=anchors)
        self.dates = dates  # (windows,) int64 date codes 0..D-1
        self.by_date = torch.argsort(dates, stable=True)  # window positions, date after date
        counts = torch.bincount(dates)
        self.date_starts = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

    @classmethod
    def of(cls, windows: WindowDataset, stamps: torch.Tensor) -> DatedWindows:
        """`windows` with each one's date, from the date stamp of its last row (W,)."""
        _, codes = torch.unique(stamps, return_inverse=True)
        return cls(
            windows.features,
            windows.targets,
            windows.ends,
            codes,
            lookback=windows.lookback,
            anchors=windows.anchors,
        )

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, T, F) and targets with the date code (B, O + 1)."""
        inputs, targets = super().batch(positions)
        dates = self.dates[positions].to(targets.dtype).unsqueeze(1)  # (B,) -> (B, 1)
        return inputs, torch.cat([targets, dates], dim=1)

    def batch_positions(self, windows_per_batch: int) -> list[torch.Tensor]:
        """An epoch's batches: dates in a random order (torch's generator), each batch whole
        dates, the fewest that reach `windows_per_batch` windows."""
        batches, current, size = [], [], 0
        starts = self.date_starts.tolist()
        for date in torch.randperm(len(starts) - 1).tolist():
            current.append(self.by_date[starts[date] : starts[date + 1]])
            size += starts[date + 1] - starts[date]
            if size >= windows_per_batch:
                batches.append(torch.cat(current))
                current, size = [], 0
        if current:
            batches.append(torch.cat(current))
        return batches

    def to(self, device: torch.device) -> DatedWindows:
        """The same windows with their rows on `device`."""
        return DatedWindows(
            self.features.to(device),
            self.targets.to(device),
            self.ends.to(device),
            self.dates.to(device),
            lookback=self.lookback,
            anchors=self.anchors,
        )
