"""A frame's rows as a forecaster holds them, and the linear baseline fitted beside every model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from torch import nn

from deepfin.data.windows import WindowDataset
from deepfin.models import build_model
from deepfin.models.forecasting.baselines import LinearForecaster
from deepfin.training import evaluate_loss

# ridge penalties tried for the linear baseline; a fair baseline is tuned like the model is
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0)
DEFAULT_RIDGE_ALPHA = 1.0  # without a validation period to choose one


@dataclass
class Rows:
    """One frame's rows held once: scaled inputs and targets plus the windows over them."""

    frame: pl.DataFrame  # date, ticker, close, future_close, jump_ahead, factor signals per row
    data: WindowDataset  # every window with complete inputs
    known: np.ndarray  # per window: its outcome is in the data
    suspect: np.ndarray  # per window: its outcome spans a one-day move beyond the bad-tick bound
    codes: np.ndarray  # per row: the ticker's code
    tickers: list[str]  # code -> ticker

    @property
    def labelled(self) -> np.ndarray:
        """Windows to learn from: the outcome is known and trustworthy."""
        return self.known & ~self.suspect

    def made_between(self, origins: tuple[dt.date, dt.date] | None) -> np.ndarray:
        """Per window: made on a date within `origins` (first, last); all when None."""
        if origins is None:
            return np.ones(len(self.known), dtype=bool)
        dates = self.frame["date"].to_numpy()[self.data.ends.numpy()]
        return (dates >= np.datetime64(origins[0])) & (dates <= np.datetime64(origins[1]))

    def scored_dates(self, keep: np.ndarray) -> str:
        """First and last forecast origin among the kept windows, and how many dates."""
        dates = self.frame["date"].gather(self.data.ends.numpy()[keep])
        return f"{dates.min()!s} .. {dates.max()!s} ({dates.n_unique()} days)"


def ticker_codes(frame: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per row, the code of its ticker; and the tickers in order of first appearance."""
    tickers = frame["ticker"].unique(maintain_order=True).to_list()
    codes = frame["ticker"].cast(pl.Enum(tickers)).to_physical().to_numpy().astype(np.int64)
    return codes, tickers


def suspect_hint(rows: Rows, bound: float) -> str:
    """What to do when most outcomes span suspect jumps."""
    n_suspect, n_known = int((rows.known & rows.suspect).sum()), int(rows.known.sum())
    return (
        f"{n_suspect} of its {n_known} outcomes span a one-day move beyond "
        f"max_abs_log_return={bound:g}. If such moves are real in this data (intraday bars, "
        "crypto, penny stocks), raise the bound (CLI: --max-abs-log-return)"
    )


def labelled_windows(rows: Rows, keep: np.ndarray) -> WindowDataset:
    """The windows of `rows` that `keep` marks, over the same rows."""
    ends = rows.data.ends[torch.from_numpy(keep)]
    return WindowDataset(rows.data.features, rows.data.targets, ends, lookback=rows.data.lookback)


def fit_linear_baseline(
    train: WindowDataset, val: WindowDataset | None, *, lookback: int
) -> LinearForecaster:
    """Ridge regression on the window; the penalty is chosen on the validation period."""
    best: tuple[float, LinearForecaster] | None = None
    for alpha in RIDGE_ALPHAS if val is not None else (DEFAULT_RIDGE_ALPHA,):
        linear = build_model(
            "linear",
            n_features=train.features.shape[1],
            lookback=lookback,
            n_outputs=1,
            params={"ridge_alpha": alpha},
        )
        assert isinstance(linear, LinearForecaster)
        linear.fit_closed_form(_chunks(train))
        score = evaluate_loss(linear, val, nn.functional.mse_loss) if val is not None else 0.0
        if best is None or score < best[0]:
            best = (score, linear)
    assert best is not None
    return best[1]


def _chunks(data: WindowDataset, size: int = 8192) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), size):
        yield data.batch(torch.arange(start, min(start + size, len(data))))
